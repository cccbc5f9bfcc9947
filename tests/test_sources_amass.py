"""AMASS motions posed with a SMPL-family body model: vertices match `smplx` within 1e-5 on the same inputs; no
pickles anywhere; body-model and motion problems are typed errors and harvest rows."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.config import HarvestConfig
from stages.evaluate import MalformedAsset
from stages.formats import load_scene, load_scene_bytes
from stages.formats.body_model import BodyModelError, body_model_from_bytes, load_body_model, pose_vertices
from stages.formats.npz import NpzError, read_npz, write_npz
from stages.generate.sources import synthetic_body_model, synthetic_motion

HARVEST = HarvestConfig(max_asset_bytes=1 << 30, max_side_file_bytes=1 << 20, fetch_threads=2)
FRAMES = 24


@pytest.fixture(scope="module")
def body_model_file(tmp_path_factory):
    """SMPL-H layout (52 joints), 300 shape components so smplx uses all 16 AMASS betas too."""
    path = tmp_path_factory.mktemp("models") / "SMPLH_NEUTRAL.npz"
    path.write_bytes(write_npz(synthetic_body_model(seed=5, shape_components=300)))
    return path


def smplx_vertices(model_path, motion) -> np.ndarray:
    """The reference: smplx's SMPL-H layer in float64 on the same poses, betas and translations."""
    import smplx
    import torch

    count = len(motion["poses"])
    layer = smplx.create(str(model_path), model_type="smplh", gender="neutral", ext="npz", use_pca=False,
                         flat_hand_mean=True, num_betas=len(motion["betas"]), batch_size=count, dtype=torch.float64,
                         vertex_ids={k: 0 for k in ("nose", "reye", "leye", "rear", "lear")},
                         use_feet_keypoints=False, use_hands=False)
    poses = torch.tensor(motion["poses"], dtype=torch.float64)
    output = layer(betas=torch.tensor(motion["betas"])[None].repeat(count, 1), global_orient=poses[:, :3],
                   body_pose=poses[:, 3:66], left_hand_pose=poses[:, 66:111], right_hand_pose=poses[:, 111:156],
                   transl=torch.tensor(motion["trans"]))
    return output.vertices.detach().numpy()


def test_posed_vertices_match_smplx(body_model_file, tmp_path):
    motion = synthetic_motion(seed=9, frames=FRAMES, fps=60.0)
    path = tmp_path / "walk_poses.npz"
    path.write_bytes(write_npz(motion))
    scene = load_scene(path, body_model=str(body_model_file))  # the whole path: file -> package -> FrameScene
    ours = scene.evaluate(0, np.arange(FRAMES) / 60.0)
    reference = smplx_vertices(body_model_file, motion)
    assert np.abs(ours - reference).max() < 1e-5
    assert np.abs(reference[1:] - reference[:1]).max() > 0.05  # the motion moves, so the match means something
    assert scene.faces.shape == (1280, 3) and scene.animations[0].duration == pytest.approx((FRAMES - 1) / 60)


def test_betas_beyond_the_models_shape_space_are_ignored():
    arrays = synthetic_body_model(seed=1, shape_components=10)
    model = body_model_from_bytes(write_npz(arrays), "m")
    motion = synthetic_motion(seed=2, frames=3, betas=16)
    sixteen = pose_vertices(model, motion["betas"], motion["poses"], motion["trans"])
    ten = pose_vertices(model, motion["betas"][:10], motion["poses"], motion["trans"])
    assert np.array_equal(sixteen, ten)


def pickled_npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_pickles_are_never_loaded(tmp_path):
    evil = pickled_npz(poses=np.zeros((2, 156)), trans=np.zeros((2, 3)), betas=np.zeros(16),
                       gender=np.array([{"os": "system"}], dtype=object), mocap_framerate=np.array(60.0))
    with pytest.raises(NpzError, match="pickle"):
        read_npz(evil, 16, 1 << 20, 1 << 20)
    pkl = tmp_path / "SMPLH_MALE.pkl"
    pkl.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(BodyModelError, match="pickles and are refused"):
        load_body_model(str(pkl))


def test_npz_sizes_are_checked_before_reading():
    import zipfile

    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (99999999, 156)})
    member.write(bytes(64))  # says 125 GB, holds 64 bytes
    lying = io.BytesIO()
    with zipfile.ZipFile(lying, "w") as archive:
        archive.writestr("poses.npy", member.getvalue())
    lying = lying.getvalue()
    with pytest.raises(NpzError, match="over the caps"):
        read_npz(lying, 16, 1 << 20, 1 << 20)
    with pytest.raises(NpzError, match="not a .npz"):
        read_npz(b"PK\x03\x04garbage", 16, 1 << 20, 1 << 20)


@pytest.mark.parametrize("change, words", [
    ({"v_template": np.zeros((5, 2))}, "v_template must be"),
    ({"posedirs": np.zeros((642, 3, 10))}, "posedirs must be"),
    ({"kintree_table": np.stack([np.array([0, 2, 0] + [0] * 49), np.arange(52)])}, "parents must come before"),
    ({"f": np.array([[0, 1, 9999]])}, "face indices"),
])
def test_bad_body_models_are_refused(change, words):
    arrays = dict(synthetic_body_model(seed=0, shape_components=4), **change)
    with pytest.raises(BodyModelError, match=words):
        body_model_from_bytes(write_npz(arrays), "bad.npz")


def amass_source(tmp_path, body_model):
    return SimpleNamespace(kind="amass", paths=[str(tmp_path / "motions")], body_model=str(body_model),
                           license="LicenseRef-AMASS", attribution="AMASS")


def test_amass_source_packages_motions_and_rows_the_bad_ones(tmp_path, body_model_file):
    from stages.harvest import amass

    folder = tmp_path / "motions" / "CMU" / "01"
    folder.mkdir(parents=True)
    (folder / "01_01_poses.npz").write_bytes(write_npz(synthetic_motion(seed=1, frames=8)))
    (folder / "01_02_poses.npz").write_bytes(write_npz(synthetic_motion(seed=2, frames=8, joints=55)))  # SMPL-X
    (folder / "01_03_poses.npz").write_bytes(write_npz(dict(synthetic_motion(seed=3, frames=8), gender=np.array("x"))))
    (folder / "shape.npz").write_bytes(write_npz({"betas": np.zeros(16), "gender": np.array("male")}))  # not a motion
    items, problems = amass.list_items(amass_source(tmp_path, body_model_file.parent), HARVEST, str(tmp_path))
    assert [i.name for i in items] == ["01_01_poses", "01_02_poses", "01_03_poses"] and not problems
    outcomes = []
    for item in items:
        try:
            data, fmt = item.fetch()
            outcomes.append(fmt)
        except Exception as exc:  # noqa: BLE001 - FetchError is what the harvest turns into rows
            outcomes.append(f"{exc.kind}: {exc}")
    assert outcomes[0] == "amass"
    assert outcomes[1].startswith("malformed") and "52 joints" in outcomes[1]
    assert outcomes[2].startswith("bad-data") and "gender" in outcomes[2]
    scene = load_scene_bytes(items[0].fetch()[0], "amass", "m.amass")
    assert scene.num_vertices == 642 and scene.summary()["gender"] == "neutral"


def test_a_body_model_changed_after_harvest_is_an_error(tmp_path):
    from stages.harvest import amass

    model = tmp_path / "neutral" / "model.npz"
    model.parent.mkdir()
    model.write_bytes(write_npz(synthetic_body_model(seed=0, shape_components=4)))
    (tmp_path / "motions").mkdir()
    (tmp_path / "motions" / "a_poses.npz").write_bytes(write_npz(synthetic_motion(seed=1, frames=4)))
    items, _ = amass.list_items(amass_source(tmp_path, tmp_path), HARVEST, str(tmp_path))
    package, _ = items[0].fetch()
    model.write_bytes(write_npz(synthetic_body_model(seed=1, shape_components=4)))
    with pytest.raises(MalformedAsset, match="changed since harvest"):
        load_scene_bytes(package, "amass", "a.amass")


def test_missing_gender_model_and_missing_body_model_are_clear(tmp_path):
    from stages.harvest import amass

    (tmp_path / "motions").mkdir()
    (tmp_path / "motions" / "a_poses.npz").write_bytes(write_npz(synthetic_motion(seed=1, frames=4, gender="female")))
    items, _ = amass.list_items(amass_source(tmp_path, tmp_path), HARVEST, str(tmp_path))
    with pytest.raises(Exception, match="no body model for gender 'female'"):
        items[0].fetch()
    with pytest.raises(MalformedAsset, match="needs a body model|body model"):
        load_scene(tmp_path / "motions" / "a_poses.npz", body_model=str(tmp_path / "nope.npz"))
