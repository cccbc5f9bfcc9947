"""Seeded mutations of valid assets: loading and evaluating either works or raises one typed AssetError."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from glb import pack_glb, split_glb
from stages.evaluate import AssetError, load_asset_bytes
from paths import ASSETS

ODD_VALUES = [None, -1, 0, 1, 2**31, 2**40, 1.5, "x", [], {}, [1, 2], True, 1e308, 99999]


def json_paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node[:4]) if isinstance(node, list) else ()
    for key, value in items:
        yield from json_paths(value, prefix + (key,))


def mutate(gltf: dict, rng: random.Random) -> dict:
    gltf = json.loads(json.dumps(gltf))
    paths = [p for p in json_paths(gltf) if p]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        target = gltf
        try:
            for key in path[:-1]:
                target = target[key]
            value = rng.choice(ODD_VALUES)
            if value is None and isinstance(target, dict):
                target.pop(path[-1], None)
            else:
                target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return gltf


@pytest.mark.parametrize("asset", ["BoxAnimated.glb", "RiggedSimple.glb", "AnimatedMorphCube.glb"])
def test_mutated_assets_fail_only_with_asset_errors(asset: str):
    gltf, rest = split_glb((ASSETS / asset).read_bytes())
    rng = random.Random(asset)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(120):
        data = pack_glb(mutate(gltf, rng), rest)
        if rng.random() < 0.2:  # and some flipped bytes anywhere
            flipped = bytearray(data)
            for _ in range(4):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            data = bytes(flipped)
        try:
            scene = load_asset_bytes(data, name="mutant.glb")
            for info in scene.animations:
                assert np.isfinite(scene.evaluate(info.index, np.linspace(0, info.duration, 3))).all()
            scene.summary()
            outcomes["ok"] += 1
        except AssetError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("mutant.glb: ")
            outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"], outcomes
