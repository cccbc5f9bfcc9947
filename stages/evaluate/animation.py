"""Animations: channels (target node + path) bound to validated sampler key times and outputs.

Spec: glTF 2.0 section 3.11. Clip duration = the largest key time over its channels (three.js AnimationClip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accessors import AccessorReader
from .errors import BadData, LimitExceeded, MalformedAsset
from .gltf_container import Document
from .interpolation import INTERPOLATIONS

PATH_WIDTHS = {"translation": 3, "rotation": 4, "scale": 3}


@dataclass(frozen=True)
class AnimationInfo:
    """What `inspect` shows of one animation (one clip)."""

    index: int
    name: str
    duration: float
    channels: int
    interpolations: tuple[str, ...]


@dataclass
class Channel:
    node: int
    path: str  # translation | rotation | scale | weights
    keys: np.ndarray  # [K] seconds, non-decreasing
    values: np.ndarray  # [K, C], or [K, 3, C] (in-tangent, value, out-tangent) for CUBICSPLINE
    interpolation: str


@dataclass
class ChannelGroup:
    """Channels of one path sharing key times and interpolation, sampled in one call."""

    nodes: np.ndarray  # [m]
    path: str
    keys: np.ndarray  # [K]
    values: np.ndarray  # [K, m, C] or [K, 3, m, C]
    interpolation: str


@dataclass
class Animation:
    info: AnimationInfo
    channels: list[Channel]
    groups: list[ChannelGroup]


def group_channels(channels: list[Channel]) -> list[ChannelGroup]:
    """Batch channels by (key times, interpolation, path); a later channel on the same node/path wins."""
    last = {(c.node, c.path): c for c in channels}
    batches: dict[tuple, list[Channel]] = {}
    for c in last.values():
        key = (c.keys.tobytes(), c.interpolation, c.path) + ((c.node,) if c.path == "weights" else ())
        batches.setdefault(key, []).append(c)
    return [ChannelGroup(np.asarray([c.node for c in batch]), batch[0].path, batch[0].keys,
                         np.stack([c.values for c in batch], axis=-2), batch[0].interpolation)
            for batch in batches.values()]


def read_animations(doc: Document, reader: AccessorReader, morph_counts: dict[int, int]) -> list[Animation]:
    """Every animation, validated; `morph_counts[node]` = morph targets of the node's mesh (weights channels)."""
    animations = doc.array("animations")
    if len(animations) > doc.limits.max_animations:
        raise doc.fail(LimitExceeded, f"{len(animations)} animations, over the {doc.limits.max_animations} cap")
    total = sum(len(a.get("channels", []) or []) for a in animations)
    if total > doc.limits.max_channels:
        raise doc.fail(LimitExceeded, f"{total} animation channels, over the {doc.limits.max_channels} cap")
    return [_animation(doc, reader, morph_counts, k, a) for k, a in enumerate(animations)]


def _animation(doc: Document, reader: AccessorReader, morph_counts: dict[int, int], k: int,
               anim: dict) -> Animation:
    where = f"animations[{k}]"
    samplers = anim.get("samplers", [])
    raw_channels = anim.get("channels", [])
    if not isinstance(samplers, list) or not isinstance(raw_channels, list):
        raise doc.fail(MalformedAsset, f"{where}: `samplers` and `channels` must be arrays")
    node_count = len(doc.array("nodes"))
    channels: list[Channel] = []
    sources: list[tuple[str, dict]] = []  # (where, sampler) of each channel, for error messages
    for c, channel in enumerate(raw_channels):
        cwhere = f"{where}.channels[{c}]"
        if not isinstance(channel, dict):
            raise doc.fail(MalformedAsset, f"{cwhere} is not an object")
        s = channel.get("sampler")
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < len(samplers):
            raise doc.fail(MalformedAsset, f"{cwhere}.sampler = {s!r}: no such sampler ({len(samplers)} exist)")
        target = doc.obj(channel, "target", cwhere)
        node = target.get("node")
        path = target.get("path")
        if node is None:
            continue  # targets an extension (e.g. KHR_animation_pointer): not node motion
        if not isinstance(node, int) or isinstance(node, bool) or not 0 <= node < node_count:
            raise doc.fail(MalformedAsset, f"{cwhere}.target.node = {node!r}: no such node ({node_count} exist)")
        if path == "weights":
            width = morph_counts.get(node, 0)
            if width == 0:
                doc.warnings.append(f"{cwhere}: animates weights of nodes[{node}], which has no morph targets; ignored")
                continue
        elif path in PATH_WIDTHS:
            width = PATH_WIDTHS[path]
        else:
            doc.warnings.append(f"{cwhere}: target.path {path!r} is not node motion; ignored")
            continue
        sampler = samplers[s]
        if not isinstance(sampler, dict):
            raise doc.fail(MalformedAsset, f"{where}.samplers[{s}] is not an object")
        channels.append(_channel(doc, reader, f"{where}.samplers[{s}]", sampler, node, path, width))
        sources.append((f"{where}.samplers[{s}]", sampler))
    _check_numbers(doc, channels, sources)
    duration = max((float(ch.keys[-1]) for ch in channels), default=0.0)
    name = anim.get("name")
    info = AnimationInfo(index=k, name=name if isinstance(name, str) else f"#{k}", duration=duration,
                         channels=len(channels),
                         interpolations=tuple(sorted({ch.interpolation for ch in channels})))
    return Animation(info, channels, group_channels(channels))


def _channel(doc: Document, reader: AccessorReader, where: str, sampler: dict, node: int, path: str,
             width: int) -> Channel:
    """One channel with its sampler's keys and values, shapes checked (numbers: _check_numbers, in bulk)."""
    interpolation = sampler.get("interpolation", "LINEAR")
    if interpolation not in INTERPOLATIONS:
        raise doc.fail(MalformedAsset, f"{where}.interpolation {interpolation!r} is not LINEAR/STEP/CUBICSPLINE")
    input_index = doc.index(sampler, "input", "accessors", where)
    output_index = doc.index(sampler, "output", "accessors", where)
    keys = reader.read(input_index)
    if keys.dtype.kind != "f" or keys.shape[1] != 1:
        raise doc.fail(MalformedAsset, f"{where}.input (accessors[{input_index}]) is not a float SCALAR accessor")
    keys = keys[:, 0]
    values = reader.read(output_index)
    per_key = 3 if interpolation == "CUBICSPLINE" else 1
    expected = len(keys) * per_key * width
    if values.size != expected:
        raise doc.fail(MalformedAsset, f"{where}.output (accessors[{output_index}]) has {values.size} numbers; "
                                       f"{len(keys)} keys of {path} need {expected}")
    values = values.astype(np.float64, copy=False).reshape(len(keys), per_key, width)
    if per_key == 1:
        values = values[:, 0]
    return Channel(node, path, keys, values, interpolation)


def _check_numbers(doc: Document, channels: list[Channel], sources: list[tuple[str, dict]]) -> None:
    """All key times finite and non-decreasing, all values finite: one pass over every channel's numbers."""
    if not channels:
        return
    keys = np.concatenate([c.keys for c in channels])
    values_ok = np.isfinite(np.concatenate([c.values.reshape(-1) for c in channels])).all()
    steps = np.diff(keys)
    starts = np.cumsum([len(c.keys) for c in channels])[:-1] - 1  # steps across two channels don't count
    steps[starts] = 0.0
    if np.isfinite(keys).all() and not (steps < 0).any() and values_ok:
        return
    for channel, (where, sampler) in zip(channels, sources):  # name the first offending sampler
        given = f"{where}.input (accessors[{sampler['input']}])"
        made = f"{where}.output (accessors[{sampler['output']}])"
        if not np.isfinite(channel.keys).all():
            raise doc.fail(BadData, f"{given} holds NaN or infinite key times")
        if np.any(np.diff(channel.keys) < 0):
            raise doc.fail(BadData, f"{given} key times decrease")
        if not np.isfinite(channel.values).all():
            raise doc.fail(BadData, f"{made} holds NaN or infinity")
