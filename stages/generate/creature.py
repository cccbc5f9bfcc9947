"""Skinned articulated creatures: capsule body parts bound smoothly to a joint hierarchy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stages.generate.glb import ARRAY_BUFFER, GltfDocument, round_floats
from stages.generate.keyframes import AnimationWriter, axis_angle, key_times, quat_multiply, smoothstep
from stages.generate.plan import AssetPlan, Timing
from stages.generate.shapes import Shape, capsule, merge, vertex_normals

Z_AXIS, X_AXIS, Y_AXIS = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)


@dataclass
class Rig:
    """Joints with rest positions in armature space (rest rotations are identity)."""

    names: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)

    def joint(self, name: str, parent: int, position) -> int:
        self.names.append(name)
        self.parents.append(parent)
        self.positions.append(np.asarray(position, float))
        return len(self.names) - 1

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class BodyPart:
    """A capsule bound to a joint chain: `chain[0]` below axial `anchors[0]`, then each next joint."""

    shape: Shape
    chain: list[int]
    anchors: list[float]
    blend: float


def chain_weights(part: BodyPart, joint_count: int) -> np.ndarray:
    """Dense skin weights [V, joints]: smoothstep hand-over from joint to joint along the capsule axis."""
    weights = np.zeros((len(part.shape.positions), joint_count))
    weights[:, part.chain[0]] = 1.0
    for joint, anchor in zip(part.chain[1:], part.anchors):
        handover = smoothstep((part.shape.axial - (anchor - part.blend)) / (2 * part.blend))[:, None]
        weights *= 1.0 - handover
        weights[:, joint] += handover[:, 0]
    return weights


def top_four(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """JOINTS_0 / WEIGHTS_0 from dense weights: the four largest influences, renormalised."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :4]
    chosen = np.take_along_axis(weights, order, axis=1)
    chosen /= chosen.sum(axis=1, keepdims=True)
    order[chosen == 0] = 0  # unused influence slots point at joint 0 (validator: no zero-weight joints)
    joints = order.astype(np.uint8 if weights.shape[1] < 256 else np.uint16)
    return joints, chosen.astype(np.float32)


def add_tail(rig: Rig, parts: list[BodyPart], root: int, start, end, radius: float, plan: AssetPlan) -> list[int]:
    """A tapered three-joint tail from `start` to `end`, bound to `root` at its base; returns its joints."""
    tail: list[int] = []
    for k in range(3):
        tail.append(rig.joint(f"tail{k}", tail[-1] if tail else root, start + (end - start) * k / 3))
    parts.append(BodyPart(capsule(start, end, radius, radius * 0.25, plan.segments(14), plan.segments(10),
                                  plan.segments(3)), [root] + tail, [0.0, 1 / 3, 2 / 3], 0.12))
    return tail


def quadruped(rng: np.random.Generator, plan: AssetPlan) -> tuple[Rig, list[BodyPart], dict]:
    rig, parts = Rig(), []
    seg = plan.segments(14)
    length, radius = rng.uniform(0.8, 1.5), rng.uniform(0.16, 0.28)
    leg_length, leg_radius = rng.uniform(0.35, 0.7), rng.uniform(0.045, 0.08)
    neck_length, head_radius = rng.uniform(0.15, 0.35), rng.uniform(0.11, 0.2)
    height = leg_length + 0.3 * radius
    root = rig.joint("hips", -1, [0, height, 0])
    chest = rig.joint("chest", root, [0.3 * length, height, 0])
    neck_base = np.array([0.5 * length, height + 0.3 * radius, 0])
    neck_angle = rng.uniform(0.4, 1.0)
    head_base = neck_base + neck_length * np.array([np.cos(neck_angle), np.sin(neck_angle), 0])
    neck = rig.joint("neck", chest, neck_base)
    head = rig.joint("head", neck, head_base)
    parts.append(BodyPart(capsule([-0.5 * length, height, 0], [0.5 * length, height, 0], radius, radius * 0.9,
                                  seg * 2, plan.segments(12), plan.segments(5)), [root, chest], [0.65], 0.15))
    parts.append(BodyPart(capsule(neck_base, head_base, radius * 0.5, radius * 0.4, seg, plan.segments(5),
                                  plan.segments(3)), [chest, neck, head], [0.0, 1.0], 0.2))
    snout = head_base + head_radius * np.array([1.4, -0.3, 0])
    parts.append(BodyPart(capsule(head_base, snout, head_radius, head_radius * 0.6, seg, plan.segments(4),
                                  plan.segments(5)), [neck, head], [-0.5], 0.3))
    legs = {}
    width = radius * rng.uniform(0.5, 0.75)
    for side, z in (("left", width), ("right", -width)):
        for end, x, parent in (("front", 0.35 * length, chest), ("rear", -0.35 * length, root)):
            top = np.array([x, height - 0.3 * radius, z])
            upper = rig.joint(f"{end}_{side}_upper", parent, top)
            lower = rig.joint(f"{end}_{side}_lower", upper, top - [0, leg_length / 2, 0])
            legs[(end, side)] = (upper, lower)
            foot = top - [0, leg_length - leg_radius, 0]
            parts.append(BodyPart(capsule(top, foot, leg_radius * 1.2, leg_radius * 0.8, seg, plan.segments(8),
                                          plan.segments(3)), [parent, upper, lower], [0.0, 0.5], 0.1))
    tail = []
    if rng.random() < 0.8:
        tail_length = rng.uniform(0.3, 0.8)
        lift = rng.uniform(0.1, 0.6)
        start = np.array([-0.5 * length, height + 0.2 * radius, 0])
        direction = np.array([-np.cos(lift), np.sin(lift), 0])
        tail = add_tail(rig, parts, root, start, start + direction * tail_length, radius * 0.3, plan)
    limbs = {"legs": legs, "arm": legs[("front", "left")], "tail": tail, "neck": neck, "head": head, "root": root,
             "gait": {("front", "left"): 0.0, ("rear", "right"): 0.0, ("front", "right"): np.pi,
                      ("rear", "left"): np.pi}, "arms": {}}
    return rig, parts, limbs


def biped(rng: np.random.Generator, plan: AssetPlan) -> tuple[Rig, list[BodyPart], dict]:
    rig, parts = Rig(), []
    seg = plan.segments(14)
    torso_length, radius = rng.uniform(0.5, 0.9), rng.uniform(0.15, 0.25)
    leg_length, leg_radius = rng.uniform(0.5, 0.9), rng.uniform(0.05, 0.09)
    arm_length, arm_radius = rng.uniform(0.4, 0.7), rng.uniform(0.035, 0.06)
    head_radius = rng.uniform(0.12, 0.2)
    hips = np.array([0, leg_length + 0.2 * radius, 0])
    shoulders = hips + [0, torso_length, 0]
    root = rig.joint("hips", -1, hips)
    chest = rig.joint("chest", root, hips + [0, 0.6 * torso_length, 0])
    neck = rig.joint("neck", chest, shoulders)
    head = rig.joint("head", neck, shoulders + [0, 0.1, 0])
    parts.append(BodyPart(capsule(hips, shoulders, radius, radius * rng.uniform(0.9, 1.2), seg * 2,
                                  plan.segments(12), plan.segments(5)), [root, chest], [0.6], 0.15))
    parts.append(BodyPart(capsule(shoulders + [0, 0.1 + head_radius, 0], shoulders + [0.05, 0.1 + 2 * head_radius, 0],
                                  head_radius, head_radius * 0.9, seg, plan.segments(3), plan.segments(6)),
                          [neck, head], [-1.0], 0.5))
    legs, arms = {}, {}
    spread = rng.uniform(0.25, 0.6)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        top = hips + [0, -0.1 * radius, sign * radius * 0.6]
        upper = rig.joint(f"{side}_leg_upper", root, top)
        lower = rig.joint(f"{side}_leg_lower", upper, top - [0, leg_length / 2, 0])
        legs[("leg", side)] = (upper, lower)
        parts.append(BodyPart(capsule(top, top - [0, leg_length - leg_radius, 0], leg_radius * 1.2, leg_radius * 0.8,
                                      seg, plan.segments(8), plan.segments(3)), [root, upper, lower], [0.0, 0.5], 0.1))
        shoulder = shoulders + [0, -0.05, sign * (radius + arm_radius)]
        hand = shoulder + arm_length * np.array([0, -np.cos(spread), sign * np.sin(spread)])
        upper = rig.joint(f"{side}_arm_upper", chest, shoulder)
        lower = rig.joint(f"{side}_arm_lower", upper, (shoulder + hand) / 2)
        arms[side] = (upper, lower)
        parts.append(BodyPart(capsule(shoulder, hand, arm_radius * 1.1, arm_radius * 0.8, seg, plan.segments(8),
                                      plan.segments(3)), [chest, upper, lower], [0.0, 0.5], 0.1))
    tail = []
    if rng.random() < 0.3:
        start = hips + [-radius * 0.8, 0, 0]
        end = start + [-rng.uniform(0.3, 0.6), -0.2, 0]
        tail = add_tail(rig, parts, root, start, end, radius * 0.25, plan)
    limbs = {"legs": legs, "arm": arms["right"], "tail": tail, "neck": neck, "head": head, "root": root,
             "gait": {("leg", "left"): 0.0, ("leg", "right"): np.pi}, "arms": arms}
    return rig, parts, limbs


def walk(limbs: dict, rig: Rig, timing: Timing, rng: np.random.Generator) -> tuple[list, str]:
    swing, bend = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.8)
    w = timing.omega
    channels = []
    for key, (upper, lower) in limbs["legs"].items():
        phase = limbs["gait"][key]
        channels.append((upper, "rotation", lambda t, p=phase: axis_angle(Z_AXIS, swing * np.sin(w * t + p))))
        channels.append((lower, "rotation",
                         lambda t, p=phase: axis_angle(Z_AXIS, -bend * (0.5 + 0.5 * np.sin(w * t + p + np.pi / 2)))))
    for side, (upper, _) in limbs["arms"].items():
        phase = np.pi if side == "left" else 0.0
        channels.append((upper, "rotation", lambda t, p=phase: axis_angle(Z_AXIS, 0.6 * swing * np.sin(w * t + p))))
    rest = rig.positions[limbs["root"]]
    bob = rng.uniform(0.01, 0.04)
    channels.append((limbs["root"], "translation",
                     lambda t: rest + np.outer(bob * (1 - np.cos(2 * w * t)) / 2, Y_AXIS)))
    return channels, f"walks in place, {timing.duration / timing.period:.2g} strides"


def wave(limbs: dict, rig: Rig, timing: Timing, rng: np.random.Generator) -> tuple[list, str]:
    upper, lower = limbs["arm"]
    side = np.sign(rig.positions[upper][2]) or 1.0
    raise_angle, flap = rng.uniform(1.2, 2.4), rng.uniform(0.3, 0.7)
    d = timing.duration

    def envelope(t):
        rise = smoothstep(t / (0.3 * d))
        return rise * smoothstep((d - t) / (0.3 * d)) if timing.looping else rise

    w = timing.omega
    channels = [
        (upper, "rotation", lambda t: axis_angle(X_AXIS, side * raise_angle * envelope(t))),
        (lower, "rotation", lambda t: axis_angle(X_AXIS, side * flap * envelope(t) * np.sin(w * t))),
    ]
    what = "raises a limb, waves it and lowers it" if timing.looping else "raises a limb and keeps waving"
    return channels, what


def wag(limbs: dict, rig: Rig, timing: Timing, rng: np.random.Generator) -> tuple[list, str]:
    amplitude, lag = rng.uniform(0.3, 0.7), rng.uniform(0.3, 1.0)
    w = timing.omega
    channels = [(joint, "rotation", lambda t, k=k: axis_angle(Y_AXIS, amplitude * np.sin(w * t - k * lag)))
                for k, joint in enumerate(limbs["tail"])]
    return channels, "wags its tail"


def nod(limbs: dict, rig: Rig, timing: Timing, rng: np.random.Generator) -> tuple[list, str]:
    amplitude, turn = rng.uniform(0.2, 0.5), rng.uniform(-0.8, 0.8)
    w = timing.omega
    channels = [(limbs["neck"], "rotation", lambda t: axis_angle(Z_AXIS, -amplitude * np.sin(w * t)))]
    if timing.looping:
        return channels, "nods its head"
    d = timing.duration
    channels.append((limbs["head"], "rotation", lambda t: quat_multiply(
        axis_angle(Y_AXIS, turn * smoothstep(t / d)), axis_angle(Z_AXIS, 0.3 * amplitude * np.sin(w * t)))))
    return channels, "nods while turning its head to one side"


MOTIONS = {"walk": walk, "wave": wave, "wag": wag, "nod": nod}


def build_creature(doc: GltfDocument, rng: np.random.Generator, plan: AssetPlan) -> dict:
    """Add one skinned creature (armature node, joints, skinned mesh, animations); return its description."""
    body_plan = str(rng.choice(["quadruped", "biped"]))
    rig, parts, limbs = (quadruped if body_plan == "quadruped" else biped)(rng, plan)
    scale, heading = float(rng.uniform(0.6, 1.6)), float(rng.uniform(-np.pi, np.pi))
    armature_fields = {"rotation": [float(v) for v in axis_angle(Y_AXIS, [heading])[0]], "scale": [scale] * 3}
    armature = armature_from_node(armature_fields)

    # Geometry: parts in armature space -> bind (world) space; body first, then limbs.
    shape = merge([part.shape for part in parts])
    weights = np.concatenate([chain_weights(part, len(rig.names)) for part in parts])
    world = shape.transformed(armature)
    joints_0, weights_0 = top_four(weights)
    split = len(parts[0].shape.positions)
    face_split = len(parts[0].shape.faces)
    primitives = []
    for vertices, faces in ((slice(0, split), shape.faces[:face_split]),
                            (slice(split, None), shape.faces[face_split:] - split)):
        positions = world.positions[vertices]
        primitive = doc.triangles(positions, faces, vertex_normals(positions, faces))
        primitive["attributes"]["JOINTS_0"] = doc.accessor(joints_0[vertices], ARRAY_BUFFER)
        primitive["attributes"]["WEIGHTS_0"] = doc.accessor(weights_0[vertices], ARRAY_BUFFER)
        primitives.append(primitive)
    mesh = doc.add("meshes", {"name": "creature", "primitives": primitives})

    # Nodes: armature root (heading + size), joints (rest translations), then the skinned mesh node.
    first_joint = len(doc.json.get("nodes", [])) + 1
    children = [[j for j, parent in enumerate(rig.parents) if parent == i] for i in range(len(rig.names))]
    armature_node = doc.node(name="armature", **armature_fields, children=[first_joint])
    for i, name in enumerate(rig.names):
        parent_position = rig.positions[rig.parents[i]] if rig.parents[i] >= 0 else np.zeros(3)
        doc.node(name=name, translation=round_floats(rig.positions[i] - parent_position),
                 children=[first_joint + c for c in children[i]] or None)
    # Inverse bind matrices from the node values as written (rounded), column-major.
    node_world = {}
    for i in range(len(rig.names)):
        local = np.eye(4)
        local[:3, 3] = doc.json["nodes"][first_joint + i]["translation"]
        node_world[i] = (node_world[rig.parents[i]] if rig.parents[i] >= 0 else armature) @ local
    inverse_bind = np.stack([np.linalg.inv(node_world[i]).T for i in range(len(rig.names))]).astype(np.float32)
    skin = doc.add("skins", {"name": "creature", "joints": [first_joint + i for i in range(len(rig.names))],
                             "skeleton": first_joint,
                             "inverseBindMatrices": doc.accessor(inverse_bind.reshape(-1, 16))})
    mesh_node = doc.node(name="creature_mesh", mesh=mesh, skin=skin)
    doc.add("scenes", {"name": "creature", "nodes": [armature_node, mesh_node]})

    available = [m for m in MOTIONS if m != "wag" or limbs["tail"]]
    chosen = [str(m) for m in rng.choice(available, size=plan.animations, replace=False)]
    described = []
    for k, motion_name in enumerate(chosen):
        timing = Timing.draw(rng, looping=bool(rng.random() < 0.6))
        channels, what = MOTIONS[motion_name](limbs, rig, timing, rng)
        interpolation = plan.interpolation_of(k)
        writer = AnimationWriter(doc, motion_name)
        for joint, path, motion in channels:
            # The root bob is keyed twice as densely: channels of one clip need not share keys.
            times = key_times(timing.duration, interpolation, max_step=1 / 30 if path == "translation" else None)
            writer.channel(first_joint + joint, path, motion, interpolation, times)
        info = {"name": motion_name, "motion": f"a {body_plan} that {what}", "looping": timing.looping,
                "interpolation": interpolation, "duration": timing.duration}
        writer.finish(info)
        described.append(info)
    tags = ["creature", body_plan, "skinned", "articulated"] + (["tail"] if limbs["tail"] else [])
    return {"name": f"{body_plan} creature", "tags": tags, "animations": described,
            "joints": len(rig.names), "vertices": int(len(world.positions))}


def armature_from_node(node: dict) -> np.ndarray:
    """The 4x4 local matrix of a node with rotation (x,y,z,w) and scale, as written in the JSON."""
    x, y, z, w = node["rotation"]
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.asarray(node["scale"])[None, :]
    return matrix
