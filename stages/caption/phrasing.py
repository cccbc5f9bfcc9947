"""Turn a `MotionSummary` and an asset's name and tags into varied, deterministic English captions."""

from __future__ import annotations

import hashlib
import random
import re

from stages.caption.motion import MotionSummary, PartMotion

AXIS_PHRASES = {
    "vertical": ["its vertical axis", "a vertical axis", "its upright axis"],
    "left-right": ["a horizontal axis", "its side-to-side axis"],
    "front-back": ["its front-to-back axis", "a horizontal axis"],
}
SPEED_ADVERBS = {"slow": ["slowly", "gently", "leisurely"], "moderate": ["steadily", "at an even pace", ""],
                 "fast": ["quickly", "rapidly", "briskly"]}
GENERIC_NAMES = {"", "object", "mesh", "model", "scene", "untitled", "asset", "gltf", "glb"}


def caption_rng(clip_id: str, caption_index: int) -> random.Random:
    """A random generator seeded by the clip id and caption index (stable across runs and machines)."""
    digest = hashlib.sha256(f"{clip_id}:{caption_index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def subject(asset: dict | None) -> str:
    """A noun phrase for the asset from its name (or first tag): "the robot arm", else "the object"."""
    asset = asset or {}
    candidates = [str(asset.get("name") or "")] + [str(t) for t in (asset.get("tags") or [])]
    for raw in candidates:
        words = re.sub(r"[_\-.]+", " ", raw)
        words = re.sub(r"([a-z])([A-Z])", r"\1 \2", words)
        words = re.sub(r"\b(v?\d+|glb|gltf|final|rig(ged)?|anim(ation|ated)?)\b", " ", words, flags=re.I)
        words = " ".join(re.sub(r"[^A-Za-z ]+", " ", words).split()).lower()
        if words and words not in GENERIC_NAMES and len(words) <= 40:
            return f"the {words}"
    return "the object"


def _adverb(rng: random.Random, speed: str) -> str:
    word = rng.choice(SPEED_ADVERBS.get(speed, [""]))
    return f" {word}" if word else ""


def _amount(extent: float) -> str:
    return "slightly" if extent < 0.05 else "noticeably" if extent < 0.2 else "a lot"


def _rigid(summary: MotionSummary, s: str, rng: random.Random) -> str:
    adverb = _adverb(rng, summary.speed)
    if summary.rotation_degrees:
        axis = rng.choice(AXIS_PHRASES[summary.rotation_axis])
        degrees = int(round(summary.rotation_degrees / 5.0) * 5)
        if summary.pattern in ("periodic", "back-and-forth"):
            text = rng.choice([f"{s} rocks back and forth about {axis}", f"{s} swings to and fro about {axis}",
                               f"{s} sways repeatedly around {axis}, turning about {degrees} degrees each way"])
        elif summary.pattern == "there-and-back":
            text = rng.choice([f"{s} turns about {degrees} degrees around {axis} and then turns back",
                               f"{s} rotates around {axis} and returns to where it started"])
        else:
            spin = "makes a full turn" if degrees >= 330 else f"turns about {degrees} degrees"
            text = rng.choice([f"{s} spins{adverb} around {axis}", f"{s} rotates{adverb} in place about {axis}",
                               f"{s} {spin} around {axis} as a rigid whole"])
        if summary.translation:
            text += rng.choice([f" while moving {summary.direction}", f" as it travels {summary.direction}"])
        return text + "."
    direction = summary.direction or "sideways"
    if summary.pattern in ("periodic", "back-and-forth"):
        verb = "bobs up and down" if direction in ("up", "down") else "slides back and forth"
        return rng.choice([f"{s} {verb}{adverb} without changing shape.", f"{s} {verb} repeatedly as a rigid body."])
    if summary.pattern == "there-and-back":
        return rng.choice([f"{s} moves {direction} and comes back.", f"{s} shifts {direction}, then returns."])
    return rng.choice([f"{s} moves {direction}{adverb}, keeping its shape.", f"{s} glides {direction}{adverb}.",
                       f"{s} travels {direction} as a rigid whole."])


def _scaling(summary: MotionSummary, s: str, rng: random.Random) -> str:
    if summary.pattern in ("periodic", "back-and-forth"):
        return rng.choice([f"{s} pulses, rhythmically growing and shrinking.",
                           f"{s} swells and shrinks{_adverb(rng, summary.speed)} like a beating heart.",
                           f"{s} expands and contracts repeatedly, keeping its shape."])
    if summary.pattern == "there-and-back":
        return rng.choice([f"{s} swells up and then shrinks back.", f"{s} grows in size and returns to normal."])
    return rng.choice([f"{s} grows or shrinks{_adverb(rng, summary.speed)} while keeping its shape.",
                       f"{s} changes size uniformly."])


COUNT_WORDS = {2: "two", 3: "three", 4: "four"}


def _where(location: str, count: int, fraction: float, rng: random.Random) -> str:
    place = {"central": "middle", "front": "front", "back": "back"}.get(location, location)
    noun = rng.choice(["part", "limb"] if fraction < 0.35 else ["part", "section"])
    if count > 1:
        count = COUNT_WORDS.get(count, str(count))
        return rng.choice([f"its {count} {place} {noun}s", f"the {count} {noun}s on its {place} side"
                           if place in ("left", "right", "front", "back") else f"its {place} {noun}s"])
    return rng.choice([f"its {place} {noun}", f"the {noun} on its {place} side"
                       if place in ("left", "right", "front", "back") else f"its {place} {noun}"])


def _part_phrase(part: PartMotion, count: int, rng: random.Random) -> str:
    where = _where(part.location, count, part.fraction, rng)
    plural = count > 1
    verb = (lambda singular, many: many if plural else singular)
    repeated = part.pattern in ("periodic", "back-and-forth")
    if part.motion == "swing":
        if repeated:
            options = [f"{where} {verb('swings', 'swing')} back and forth about a joint",
                       f"{where} {verb('sways', 'sway')} to and fro"]
            if part.location.startswith("upper"):
                options += [f"{where} {verb('waves', 'wave')} to and fro",
                            f"{where} {verb('rotates', 'rotate')} back and forth like a waving arm"]
            elif part.location.startswith("lower"):
                options += [f"{where} {verb('swings', 'swing')} back and forth like a walking leg",
                            f"{where} {verb('steps', 'step')} back and forth"]
            return rng.choice(options)
        if part.pattern == "one-way" and part.degrees >= 90:
            turns = part.degrees / 360.0
            amount = f"about {turns:.1f} turns" if turns >= 1.5 else "round"
            return rng.choice([f"{where} {verb('spins', 'spin')} {amount}",
                               f"{where} {verb('turns', 'turn')} like a wheel",
                               f"{where} {verb('rotates', 'rotate')} continuously"])
        if part.pattern == "there-and-back":
            return rng.choice([f"{where} {verb('rises', 'rise')} on a joint and {verb('returns', 'return')}",
                               f"{where} {verb('swings', 'swing')} out and back"])
        return rng.choice([f"{where} {verb('rotates', 'rotate')} about a joint",
                           f"{where} {verb('swings', 'swing')} about {int(round(part.degrees))} degrees"])
    if part.motion == "slide":
        if repeated:
            return rng.choice([f"{where} {verb('pumps', 'pump')} back and forth",
                               f"{where} {verb('slides', 'slide')} to and fro"])
        return rng.choice([f"{where} {verb('slides', 'slide')} along", f"{where} {verb('shifts', 'shift')} position"])
    return rng.choice([f"{where} {verb('bends and flexes', 'bend and flex')}", f"{where} {verb('deforms', 'deform')}",
                       f"{where} {verb('wobbles', 'wobble')}"])


def _articulated(summary: MotionSummary, s: str, rng: random.Random) -> str:
    grouped: dict[tuple, list[PartMotion]] = {}
    for part in summary.parts:
        grouped.setdefault((part.location, part.motion, part.pattern), []).append(part)
    phrases = [_part_phrase(parts[0], len(parts), rng) for parts in grouped.values()]
    joined = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    if summary.body_moves:
        moving = f"moves {summary.direction}" if summary.direction else "moves as a whole"
        return rng.choice([f"{s} {moving} while {joined}.", f"As {s} {moving}, {joined}."])
    return rng.choice([f"{s} keeps its body still while {joined}.", f"While the rest of {s} stays still, {joined}.",
                       f"{s} stands in place; {joined}."])


def _pulsing(summary: MotionSummary, s: str, rng: random.Random) -> str:
    repeated = summary.pattern in ("periodic", "back-and-forth")
    how = "rhythmically" if repeated else "once"
    text = rng.choice([f"{s} pulses, its surface swelling and shrinking {how}",
                       f"{s} breathes in and out, bulging and contracting {how}",
                       f"{s} swells and deflates {how}, changing shape as it does"])
    return text + _body_motion(summary, rng) + "."


def _body_motion(summary: MotionSummary, rng: random.Random) -> str:
    if not summary.body_moves:
        return ""
    if summary.direction in ("up", "down"):
        return rng.choice([" while bouncing up and down", " as it hops"])
    if summary.direction:
        return rng.choice([f" while moving {summary.direction}", f" as it drifts {summary.direction}"])
    return rng.choice([" while tilting and turning", " as it wobbles about"])


def _deforming(summary: MotionSummary, s: str, rng: random.Random) -> str:
    if summary.parts:
        return _articulated(summary, s, rng)
    repeated = summary.pattern in ("periodic", "back-and-forth")
    how = "repeatedly" if repeated else "smoothly"
    text = rng.choice([f"{s} deforms {how}, its whole surface bending {_amount(summary.extent)}",
                       f"{s} changes shape {how} as its surface flexes", f"{s} morphs {how}",
                       f"{s} squashes and stretches {how}" if summary.scale_change > 0.08 else f"{s} warps {how}"])
    return text + _body_motion(summary, rng) + "."


def _tempo(summary: MotionSummary, rng: random.Random) -> str:
    if summary.period_seconds and rng.random() < 0.5:
        return rng.choice([f" The motion repeats about every {summary.period_seconds:.1f} seconds.",
                           f" It is a looping motion with a period of about {summary.period_seconds:.1f} s."])
    return ""


def describe(summary: MotionSummary, asset: dict | None, clip_id: str, caption_index: int = 0) -> str:
    """One caption for a clip; different `caption_index` values give different phrasings of the same facts."""
    rng = caption_rng(clip_id, caption_index)
    s = subject(asset)
    if summary.kind == "static":
        text = rng.choice([f"{s} stays almost still.", f"{s} barely moves.", f"{s} holds its pose."])
    elif summary.kind == "rigid":
        text = _rigid(summary, s, rng)
    elif summary.kind == "scaling":
        text = _scaling(summary, s, rng)
    elif summary.kind == "pulsing":
        text = _pulsing(summary, s, rng)
    elif summary.kind == "articulated":
        text = _articulated(summary, s, rng)
    else:
        text = _deforming(summary, s, rng)
    text = text[0].upper() + text[1:] + _tempo(summary, rng)
    tags = [str(t) for t in ((asset or {}).get("tags") or []) if str(t).strip()][:4]
    if tags and rng.random() < 0.3:
        text += f" ({', '.join(tags)})"
    return text


def distinct_captions(summary: MotionSummary, asset: dict | None, clip_id: str, count: int) -> list[str]:
    """Captions 0..count-1 of a clip, each phrased differently from the earlier ones where the phrasings allow."""
    texts: list[str] = []
    for index in range(count):
        for attempt in range(12):
            text = describe(summary, asset, clip_id, index + 1000 * attempt)
            if text not in texts:
                break
        texts.append(text)
    return texts
