"""Morph-target blobs: a lumpy sphere with 2-4 shape keys whose weights are animated."""

from __future__ import annotations

import numpy as np

from stages.generate.glb import ARRAY_BUFFER, GltfDocument
from stages.generate.keyframes import AnimationWriter, axis_angle, key_times
from stages.generate.plan import AssetPlan, Timing
from stages.generate.shapes import icosphere, uv_sphere, vertex_normals


def random_direction(rng: np.random.Generator) -> np.ndarray:
    direction = rng.normal(size=3)
    return direction / np.linalg.norm(direction)


def morph_targets(rng: np.random.Generator, positions: np.ndarray, normals: np.ndarray, size: float) -> dict:
    """Candidate displacement fields [V, 3], by name."""
    bulge_direction = random_direction(rng)
    twist = rng.uniform(0.5, 1.2) / size
    angle = twist * positions[:, 1]
    twisted = positions.copy()
    twisted[:, 0] = np.cos(angle) * positions[:, 0] - np.sin(angle) * positions[:, 2]
    twisted[:, 2] = np.sin(angle) * positions[:, 0] + np.cos(angle) * positions[:, 2]
    ripples = rng.integers(3, 7)
    return {
        "breathe": positions * rng.uniform(0.1, 0.25),
        "squash": positions * np.array([0.3, -0.4, 0.3]) * rng.uniform(0.6, 1.0),
        "bulge": normals * (size * rng.uniform(0.3, 0.6) * np.exp(-(1 - normals @ bulge_direction) / 0.15))[:, None],
        "twist": twisted - positions,
        "ripple": normals * (0.06 * size * np.sin(ripples * positions[:, 1] / size))[:, None],
    }


def build_blob(doc: GltfDocument, rng: np.random.Generator, plan: AssetPlan) -> dict:
    """Add one morph-target blob (root node, mesh node, animations); return its description."""
    if rng.random() < 0.5:
        base_subdivisions = int(rng.integers(3, 5))
        shape = icosphere(int(np.clip(base_subdivisions + round(np.log(plan.detail) / np.log(4)), 1, 7)))
        tessellation = "icosphere"
    else:
        segments = plan.segments(int(rng.integers(20, 48)))
        shape = uv_sphere(segments, max(4, segments // 2))
        tessellation = "uv-sphere"
    size = float(rng.uniform(0.4, 1.2))
    unit = shape.positions
    radius = np.ones(len(unit))
    for _ in range(int(rng.integers(2, 6))):
        radius += rng.uniform(-0.12, 0.25) * np.exp(-(1 - unit @ random_direction(rng)) / rng.uniform(0.1, 0.5))
    positions = unit * radius[:, None] * rng.uniform(0.75, 1.25, size=3) * size
    normals = vertex_normals(positions, shape.faces)

    candidates = morph_targets(rng, positions, normals, size)
    names = [str(n) for n in rng.choice(list(candidates), size=int(rng.integers(2, 5)), replace=False)]
    defaults = [round(float(rng.uniform(0.0, 0.3)), 3) if rng.random() < 0.4 else 0.0 for _ in names]
    primitive = doc.triangles(positions, shape.faces, normals)
    primitive["targets"] = [{"POSITION": doc.accessor(candidates[n].astype(np.float32), ARRAY_BUFFER, bounds=True)}
                            for n in names]
    mesh = doc.add("meshes", {"name": "blob", "primitives": [primitive], "weights": defaults,
                              "extras": {"targetNames": names}})
    first = len(doc.json.get("nodes", []))
    rest_height = size * 1.3
    root = doc.node(name="blob_root", translation=[0.0, round(rest_height, 6), 0.0], children=[first + 1])
    tilt = axis_angle(random_direction(rng), [rng.uniform(-0.5, 0.5)])[0]
    body = doc.node(name="blob", mesh=mesh, rotation=[float(v) for v in tilt])
    doc.add("scenes", {"name": "blob", "nodes": [root]})

    motions = ["pulse"] + [str(m) for m in rng.choice(["wobble", "hop"], size=plan.animations - 1, replace=False)]
    described = []
    for k, motion_name in enumerate(motions):
        timing = Timing.draw(rng, looping=bool(rng.random() < 0.6))
        interpolation = plan.interpolation_of(k)
        w = timing.omega
        amplitude = rng.uniform(-0.6, 1.0, size=len(names))
        multiple = rng.integers(1, 3, size=len(names))
        phase = rng.choice([0.0, np.pi], size=len(names))
        base = np.array(defaults)

        def weights(t, amplitude=amplitude, multiple=multiple, phase=phase, base=base, w=w):
            t = np.asarray(t)[:, None]
            return base + amplitude * (0.5 - 0.5 * np.cos(multiple * w * t + phase))

        writer = AnimationWriter(doc, motion_name)
        writer.channel(body, "weights", weights, interpolation, key_times(timing.duration, interpolation))
        what = {"pulse": "pulses through its shape keys (" + ", ".join(names) + ")"}.get(motion_name, "")
        if motion_name == "wobble":
            axis, swing = random_direction(rng), rng.uniform(0.2, 0.6)
            writer.channel(root, "rotation", lambda t, a=axis, s=swing, w=w: axis_angle(a, s * np.sin(w * t)),
                           interpolation, key_times(timing.duration, interpolation))
            what = "wobbles about an axis while morphing"
        elif motion_name == "hop":
            height = rng.uniform(0.3, 0.8) * size
            writer.channel(root, "translation",
                           lambda t, h=height, w=w: np.outer(rest_height + h * np.abs(np.sin(w * t / 2)), [0, 1, 0]),
                           interpolation, key_times(timing.duration, interpolation, max_step=1 / 20))
            what = "hops up and down while morphing"
        info = {"name": motion_name, "motion": f"{'an' if tessellation[0] in 'aeiou' else 'a'} {tessellation} blob "
                                               f"that {what}", "looping": timing.looping,
                "interpolation": interpolation, "duration": timing.duration}
        writer.finish(info)
        described.append(info)
    return {"name": "morphing blob", "tags": ["blob", "morph-targets", tessellation] + names,
            "animations": described, "vertices": int(len(positions))}
