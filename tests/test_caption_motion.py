"""The model-free motion captioner tells a waving arm, a rigid rotation and a pulsing blob apart."""

from __future__ import annotations

import numpy as np
import pytest

from generated_clips import generated_clip
from stages.caption import CaptionConfig, make_captioner
from stages.caption.motion import analyse_motion, motion_pattern
from stages.caption.phrasing import describe, subject
from synthetic_clips import pulsing_sphere, rotating_box, waving_arm


def _summary(clip):
    return analyse_motion(clip.vertices, clip.faces, clip.fps)


def test_synthetic_waving_arm():
    summary = _summary(waving_arm())
    assert summary.kind == "articulated"
    assert [p.motion for p in summary.parts] == ["swing"]
    assert summary.parts[0].location == "upper right" and summary.parts[0].fraction < 0.5
    assert summary.pattern == "periodic" and summary.period_seconds == pytest.approx(1.0, abs=0.15)
    assert summary.parts[0].degrees == pytest.approx(50, abs=8)


def test_synthetic_rigid_rotation():
    summary = _summary(rotating_box())
    assert summary.kind == "rigid" and summary.pattern == "one-way"
    assert summary.rotation_axis == "vertical" and summary.rotation_degrees == pytest.approx(180, abs=5)
    assert summary.translation == 0.0, "turning about an off-centre pivot is not a translation"


def test_synthetic_pulsing_sphere():
    summary = _summary(pulsing_sphere())
    assert summary.kind == "scaling" and summary.pattern == "periodic"
    assert summary.period_seconds == pytest.approx(0.8, abs=0.15)
    assert summary.scale_change == pytest.approx(0.4, abs=0.05)


def test_synthetic_captions_say_different_things():
    texts = {name: describe(_summary(c), {}, c.clip_id).lower()
             for name, c in [("arm", waving_arm()), ("box", rotating_box()), ("sphere", pulsing_sphere())]}
    assert any(w in texts["arm"] for w in ("wave", "swing", "back and forth", "to and fro"))
    assert any(w in texts["box"] for w in ("spin", "rotat", "turn")) and "vertical" in texts["box"]
    assert any(w in texts["sphere"] for w in ("puls", "swell", "expand", "grow"))
    assert len(set(texts.values())) == 3


def test_generated_creature_wave_is_an_articulated_swing():
    clip, extras = generated_clip("creature", "wave")
    summary = _summary(clip)
    assert summary.kind == "articulated"
    assert summary.parts and summary.parts[0].motion == "swing"
    assert summary.pattern in ("periodic", "back-and-forth")
    assert sum(p.fraction for p in summary.parts) < 0.3, "only a limb moves"


def test_generated_machine_run_spins_rigid_parts():
    clip, _ = generated_clip("machine", "run")
    summary = _summary(clip)
    spinning = [p for p in summary.parts if p.motion == "swing" and p.pattern == "one-way" and p.degrees >= 90]
    assert spinning, f"wheels spin: {summary.parts}"
    text = describe(summary, {"name": "machine"}, clip.clip_id).lower()
    assert any(w in text for w in ("spin", "rotate", "turn"))


def test_generated_blob_pulse_is_pulsing():
    clip, extras = generated_clip("blob", "pulse", without="twist")
    summary = _summary(clip)
    assert summary.kind in ("pulsing", "scaling"), summary
    assert summary.pattern in ("periodic", "back-and-forth")
    text = describe(summary, extras, clip.clip_id).lower()
    assert any(w in text for w in ("puls", "swell", "breathe", "expand"))
    assert "blob" in text, "the asset's name is used"


def test_three_generated_kinds_get_three_different_kinds_of_summary():
    creature = _summary(generated_clip("creature", "wave")[0])
    blob = _summary(generated_clip("blob", "pulse", without="twist")[0])
    machine = _summary(generated_clip("machine", "run")[0])
    assert (creature.kind, blob.kind) == ("articulated", "pulsing")
    assert creature.parts[0].pattern != "one-way"  # a wave goes back and forth ...
    assert any(p.motion == "swing" and p.pattern == "one-way" for p in machine.parts)  # ... a wheel spins on
    twisting = _summary(generated_clip("blob", "pulse")[0])  # seed 0 twists: not a swelling
    assert twisting.kind == "deforming"


def test_static_clip():
    clip = rotating_box()
    still = np.repeat(clip.vertices[:1], 8, axis=0)
    summary = analyse_motion(still, clip.faces, 10.0)
    assert summary.kind == "static"
    still_phrases = {"The robot stays almost still.", "The robot barely moves.", "The robot holds its pose."}
    captions = {describe(summary, {"name": "robot"}, f"clip-{i}") for i in range(12)}
    assert captions <= still_phrases and len(captions) > 1, captions  # only "no motion" phrasings, varied


def test_motion_pattern():
    t = np.arange(16)
    assert motion_pattern(np.sin(2 * np.pi * t / 8), 10.0) == ("periodic", pytest.approx(0.8))
    assert motion_pattern(t.astype(float), 10.0) == ("one-way", None)
    assert motion_pattern(np.sin(np.pi * t / 15), 10.0)[0] == "there-and-back"
    assert motion_pattern(np.zeros(16), 10.0) == ("none", None)


def test_subject_from_name_and_tags():
    assert subject({"name": "Robot_Arm_v2.glb"}) == "the robot arm"
    assert subject({"name": "", "tags": ["dragon"]}) == "the dragon"
    assert subject({"name": "mesh"}) == "the object"
    assert subject(None) == "the object"


def test_motion_backend_rows_are_labelled_deterministic_and_varied():
    config = CaptionConfig(backend="motion", captions_per_clip=3)
    clips = [waving_arm(), rotating_box()]
    rows, errors = make_captioner(config)(clips, {"waving-arm": {"name": "robot", "tags": ["toy"]}})
    again, _ = make_captioner(config)(clips, {"waving-arm": {"name": "robot", "tags": ["toy"]}})
    assert not errors and len(rows) == 6
    assert [r["text"] for r in rows] == [r["text"] for r in again]
    assert {r["backend"] for r in rows} == {"motion"} and {r["model"] for r in rows} == {"motion-heuristic"}
    assert all(r["cpu_stand_in"] is True for r in rows), "model-free captions are labelled as the CPU stand-in"
    arm = [r["text"] for r in rows if r["clip_id"].startswith("waving-arm")]
    assert len(set(arm)) == 3, "several captions per clip are phrased differently"
    sphere = [r["text"] for r in make_captioner(config)([pulsing_sphere()], {})[0]]
    assert len(set(sphere)) == 3
    assert all("robot" in t for t in arm)
