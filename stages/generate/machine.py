"""Rigid multi-part machines: a node hierarchy of meshes (one reused by several nodes) moved by TRS channels."""

from __future__ import annotations

import numpy as np

from stages.generate.glb import GltfDocument, round_floats
from stages.generate.keyframes import AnimationWriter, axis_angle, key_times, smoothstep
from stages.generate.plan import AssetPlan, Timing
from stages.generate.shapes import Shape, box, cylinder, icosphere, merge, translation_matrix, vertex_normals

MAX_KEY_ANGLE = np.pi / 4  # LINEAR rotation keys closer than this keep slerp on the intended path


def add_mesh(doc: GltfDocument, name: str, shape: Shape) -> int:
    primitive = doc.triangles(shape.positions, shape.faces, vertex_normals(shape.positions, shape.faces))
    return doc.add("meshes", {"name": name, "primitives": [primitive]})


def wheel_shape(radius: float, width: float, segments: int) -> Shape:
    """A wheel turning about +Z: a cylinder with a spoke bar so its rotation is visible."""
    tyre = cylinder(radius, width, segments)
    tyre = Shape(tyre.positions[:, [0, 2, 1]] * [1, 1, -1], tyre.faces[:, ::-1])  # axis Y -> Z, winding kept
    spoke = box([radius * 1.6, radius * 0.25, width * 1.3])
    return merge([tyre, spoke])


def fan_shape(radius: float, blades: int, segments: int) -> Shape:
    """A hub with `blades` flat blades in the YZ plane, spinning about +X."""
    hub = cylinder(radius * 0.15, radius * 0.2, segments)
    hub = Shape(hub.positions[:, [1, 0, 2]] * [1, 1, -1], hub.faces[:, ::-1])
    parts = [hub]
    for k in range(blades):
        angle = 2 * np.pi * k / blades
        blade = box([radius * 0.05, radius * 0.9, radius * 0.25]).transformed(translation_matrix([0, radius * 0.55, 0]))
        rotation = np.eye(4)
        rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        parts.append(blade.transformed(rotation))
    return merge(parts)


def build_machine(doc: GltfDocument, rng: np.random.Generator, plan: AssetPlan) -> dict:
    """Add one machine (chassis, wheels sharing one mesh, fan, arm, pistons, light) with animations."""
    segments = plan.segments(int(rng.integers(16, 33)))
    length, width, height = rng.uniform(1.2, 2.2), rng.uniform(0.6, 1.0), rng.uniform(0.25, 0.45)
    wheel_radius, wheel_width = rng.uniform(0.18, 0.35), rng.uniform(0.08, 0.16)
    axles = int(rng.integers(1, 4))
    features = [f for f in ("fan", "arm", "piston", "light") if rng.random() < 0.6] or ["arm"]
    tags = ["machine", "rigid", "node-animation", f"{2 * axles}-wheels"] + features

    nodes_before = len(doc.json.get("nodes", []))
    layout: list[dict] = []  # node fields in creation order; children filled in by index

    def node(parent: int | None, **fields) -> int:
        layout.append({"parent": parent, **fields})
        return len(layout) - 1

    root = node(None, name="machine", translation=[0.0, round(wheel_radius, 6), 0.0],
                rotation=[float(v) for v in axis_angle([0, 1, 0], [rng.uniform(-np.pi, np.pi)])[0]])
    chassis = node(root, name="chassis", mesh=add_mesh(doc, "chassis", box([length, height, width])),
                   translation=[0.0, round(height / 2, 6), 0.0])
    wheel_mesh = add_mesh(doc, "wheel", wheel_shape(wheel_radius, wheel_width, segments))
    wheels = []
    for x in np.linspace(-0.38 * length, 0.38 * length, axles) if axles > 1 else [0.0]:
        for side in (1.0, -1.0):
            wheels.append(node(chassis, name=f"wheel_{len(wheels)}", mesh=wheel_mesh,
                               translation=round_floats([x, -height / 2, side * (width / 2 + wheel_width * 0.6)])))
    fan = arm = light = None
    arm_segments, pistons = [], []
    if "fan" in features:
        tower_height = rng.uniform(0.3, 0.7)
        tilt = rng.uniform(-0.3, 0.3)
        matrix = np.eye(4)
        matrix[:3, :3] = [[np.cos(tilt), -np.sin(tilt), 0], [np.sin(tilt), np.cos(tilt), 0], [0, 0, 1]]
        matrix[:3, 3] = [-0.3 * length, height / 2, 0.0]
        tower_shape = cylinder(0.04, tower_height, 8).transformed(translation_matrix([0, tower_height / 2, 0]))
        tower = node(chassis, name="tower", mesh=add_mesh(doc, "tower", tower_shape),
                     matrix=[float(v) for v in matrix.T.ravel()])
        fan = node(tower, name="fan", mesh=add_mesh(doc, "fan", fan_shape(rng.uniform(0.2, 0.4),
                                                                          int(rng.integers(2, 6)), segments)),
                   translation=[0.0, round(tower_height, 6), 0.0])
    if "arm" in features:
        arm_length = rng.uniform(0.3, 0.6)
        arm_mesh = add_mesh(doc, "arm_segment", box([0.08, arm_length, 0.08]).transformed(
            translation_matrix([0, arm_length / 2, 0])))
        arm = node(chassis, name="arm_base", translation=round_floats([0.25 * length, height / 2, 0]))
        upper = node(arm, name="arm_upper", mesh=arm_mesh, rotation=[0.0, 0.0, 0.0, 1.0])
        lower = node(upper, name="arm_lower", mesh=arm_mesh, translation=[0.0, round(arm_length, 6), 0.0])
        arm_segments = [upper, lower]
    if "piston" in features:
        for k in range(int(rng.integers(1, 3))):
            stroke = rng.uniform(0.1, 0.25)
            sleeve_shape = cylinder(0.06, 0.3, segments).transformed(translation_matrix([0, 0.15, 0]))
            sleeve = node(chassis, name=f"piston_sleeve_{k}", mesh=add_mesh(doc, f"sleeve_{k}", sleeve_shape),
                          translation=round_floats([0.05 * length, height / 2, (k - 0.5) * 0.3 * width]))
            rod_shape = cylinder(0.035, 0.35, segments).transformed(translation_matrix([0, 0.175, 0]))
            rod = node(sleeve, name=f"piston_rod_{k}", mesh=add_mesh(doc, f"rod_{k}", rod_shape),
                       translation=[0.0, 0.05, 0.0])
            pistons.append((rod, stroke))
    if "light" in features:
        light = node(chassis, name="light", mesh=add_mesh(doc, "light", Shape(
            icosphere(1).positions * 0.06, icosphere(1).faces)), translation=round_floats([-0.45 * length, height / 2 + 0.06, 0]))

    for index, fields in enumerate(layout):
        children = [nodes_before + i for i, f in enumerate(layout) if f["parent"] == index]
        doc.node(**{k: v for k, v in fields.items() if k != "parent"}, children=children or None)
    doc.add("scenes", {"name": "machine", "nodes": [nodes_before + root]})

    extra_motions = ["drive"] + (["lift"] if arm is not None or pistons else [])
    motions = ["run"] + [str(m) for m in rng.choice(extra_motions, size=plan.animations - 1, replace=False)]
    described = []
    for k, motion_name in enumerate(motions):
        looping = bool(rng.random() < 0.6) and motion_name != "drive"  # a drive ends elsewhere
        timing = Timing.draw(rng, looping=looping)
        interpolation = plan.interpolation_of(k)
        writer = AnimationWriter(doc, motion_name)
        d, w = timing.duration, timing.omega

        def rotate(target: int, axis, angle, max_rate: float) -> None:
            times = key_times(d, interpolation, max_step=MAX_KEY_ANGLE / max_rate if max_rate > 0 else None)
            writer.channel(nodes_before + target, "rotation", lambda t: axis_angle(axis, angle(t)), interpolation,
                           times)

        if motion_name == "drive":
            distance = rng.uniform(1.0, 3.0) * length
            travel = lambda t: distance * smoothstep(np.asarray(t) / d)  # noqa: E731 - a motion is a function of t
            start = np.array(layout[root]["translation"])
            writer.channel(nodes_before + root, "translation",
                           lambda t: start + np.outer(travel(t), rotate_x(layout[root]["rotation"])), interpolation,
                           key_times(d, interpolation, max_step=1 / 20))
            for wheel in wheels:
                rotate(wheel, [0, 0, 1], lambda t: -travel(t) / wheel_radius, 1.5 * distance / d / wheel_radius)
            what = "drives forward, wheels rolling, and stops"
        elif motion_name == "run":
            # A looping clip turns whole revolutions (the same orientation at both ends), others do not.
            spins = int(rng.integers(1, 4)) + (0.0 if timing.looping else 0.25)
            turn_rate = spins * 2 * np.pi / d
            for wheel in wheels:
                rotate(wheel, [0, 0, 1], lambda t: -turn_rate * np.asarray(t), turn_rate)
            if fan is not None:
                fan_rate = turn_rate * int(rng.integers(2, 5))
                rotate(fan, [1, 0, 0], lambda t: fan_rate * np.asarray(t), fan_rate)
            what = "runs its wheels" + (" and fan" if fan is not None else "")
        else:
            what = "idles in place"
        if arm is not None:
            swivel, lift = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.0)
            ramp = (lambda t: np.sin(np.pi * np.asarray(t) / d) ** 2) if timing.looping else \
                (lambda t: smoothstep(np.asarray(t) / (0.6 * d)))
            rotate(arm, [0, 1, 0], lambda t: swivel * np.sin(w * np.asarray(t)), swivel * w)
            rotate(arm_segments[0], [0, 0, 1], lambda t: lift * ramp(t), 2 * lift / d)
            rotate(arm_segments[1], [0, 0, 1], lambda t: -0.7 * lift * ramp(t) + 0.2 * np.sin(w * np.asarray(t)),
                   2 * lift / d + 0.2 * w)
            what += ", swings its arm"
        for rod, stroke in pistons:
            phase = rng.uniform(0, 2 * np.pi)
            writer.channel(nodes_before + rod, "translation",
                           lambda t, s=stroke, p=phase: np.outer(0.05 + s * (0.5 - 0.5 * np.cos(w * np.asarray(t) + p)),
                                                                 [0, 1, 0]),
                           interpolation, key_times(d, interpolation))
        if pistons:
            what += ", pumps its pistons"
        if light is not None:
            # A blinking light: STEP keys (on/off) whatever the clip's main interpolation.
            blink = key_times(d, "STEP", max_step=timing.period / 4)
            writer.channel(nodes_before + light, "scale",
                           lambda t, step=timing.period / 4: np.outer(
                               np.where(np.floor(np.asarray(t) / step + 1e-6) % 2 == 0, 1.0, 0.4), [1, 1, 1]), "STEP",
                           blink)
            what += ", blinks its light"
        info = {"name": motion_name, "motion": f"a machine that {what}", "looping": timing.looping,
                "interpolation": interpolation, "duration": timing.duration}
        writer.finish(info)
        described.append(info)
    return {"name": f"{2 * axles}-wheeled machine", "tags": tags, "animations": described}


def rotate_x(quaternion) -> np.ndarray:
    """The direction +X rotated by a unit quaternion (x, y, z, w)."""
    x, y, z, w = quaternion
    return np.array([1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w)])
