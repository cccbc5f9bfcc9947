"""DeformingThings4D .anime: exact frames at native N, resampled otherwise, hostile headers refused before allocating,
and the `dt4d` source's harvest rows."""

from __future__ import annotations

import struct
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.config import HarvestConfig
from stages.evaluate import BadData, LimitExceeded, Limits, MalformedAsset
from stages.formats import load_scene, load_scene_bytes
from stages.formats.anime import dt4d_package, read_anime, write_anime
from stages.generate.sources import synthetic_anime
from stages.resample import ResampleConfig, clips_from_scene

HARVEST = HarvestConfig(max_asset_bytes=1 << 30, max_side_file_bytes=1 << 20, fetch_threads=2)


def file_frames(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The frames an .anime file defines (first frame + float32 offsets), decoded here independently."""
    nf, nv, nt = struct.unpack_from("<3i", data)
    first = np.frombuffer(data, "<f4", nv * 3, 12).reshape(nv, 3)
    faces = np.frombuffer(data, "<i4", nt * 3, 12 + 12 * nv).reshape(nt, 3)
    offsets = np.frombuffer(data, "<f4", (nf - 1) * nv * 3, 12 + 12 * nv + 12 * nt).reshape(nf - 1, nv, 3)
    return np.concatenate([first[None], first[None] + offsets]), faces


@pytest.fixture(scope="module")
def anime():
    data = write_anime(*synthetic_anime(seed=3, frames=40))
    return (*file_frames(data), data)


@pytest.mark.parametrize("fps, step", [(30.0, 1), (15.0, 2)])
def test_native_clips_are_exactly_the_files_frames(anime, fps, step):
    frames, faces, data = anime
    scene = load_scene_bytes(dt4d_package(data, 30.0), "dt4d", "seq.dt4d")
    config = ResampleConfig(vertices="native", frames=[8], fps=fps, dedup=False)
    clips, errors = clips_from_scene(scene, "seq", config)
    assert clips and not errors
    for clip in clips:
        expected = frames[clip.first_frame * step : (clip.last_frame + 1) * step : step]
        assert np.array_equal(clip.vertices, expected)  # bit for bit, every vertex in file order
        assert np.array_equal(clip.faces, faces)
    assert len(clips) == len(frames[::step]) // 8


@pytest.mark.parametrize("vertices, method", [(400, "decimate"), (1000, "subdivide")])
def test_other_vertex_counts_are_resampled(anime, vertices, method):
    scene = load_scene_bytes(dt4d_package(anime[2], 30.0), "dt4d", "seq.dt4d")
    clips, errors = clips_from_scene(scene, "seq", ResampleConfig(vertices=vertices, frames=[16], fps=30.0))
    assert clips and not errors and all(c.vertices.shape == (16, vertices, 3) for c in clips)
    assert all(c.extra["method"] == method and c.resample_error <= 0.05 for c in clips)


def test_a_decimation_that_leaves_the_surface_is_a_gate_row(anime):
    """642 curved vertices down to 200: the faces leave the evaluated surface by more than the 2% gate."""
    scene = load_scene_bytes(dt4d_package(anime[2], 30.0), "dt4d", "seq.dt4d")
    clips, errors = clips_from_scene(scene, "seq", ResampleConfig(vertices=200, frames=[16], fps=30.0))
    assert not clips and errors and {e["error_type"] for e in errors} == {"face-error"}


def test_times_between_frames_blend_the_neighbours(anime):
    frames, _, data = anime
    scene = read_anime(data, 30.0)
    assert scene.animations[0].duration == pytest.approx(39 / 30)
    half = scene.evaluate(0, np.array([2.5 / 30]))[0]
    np.testing.assert_allclose(half, (frames[2] + frames[3]) / 2, atol=1e-6)
    assert np.array_equal(scene.evaluate(None, np.array([1.0]))[0], frames[0])


def header(nf: int, nv: int, nt: int) -> bytes:
    return struct.pack("<3i", nf, nv, nt)


@pytest.mark.parametrize("data, error, words", [
    (b"\x01\x00", MalformedAsset, "too short"),
    (header(2**31 - 1, 2**31 - 1, 1) + bytes(64), MalformedAsset, "but the file has"),  # lying counts
    (header(0, 3, 1) + bytes(48), MalformedAsset, "not valid"),
    (header(1, -3, 1) + bytes(48), MalformedAsset, "not valid"),
    (header(2, 3, 1) + bytes(12 * 3 + 12), MalformedAsset, "but the file has"),  # truncated offsets
    (header(1, 3, 1) + np.zeros(9, "<f4").tobytes() + np.array([0, 1, 7], "<i4").tobytes(), BadData, "face"),
    (header(1, 3, 1) + np.full(9, np.nan, "<f4").tobytes() + np.array([0, 1, 2], "<i4").tobytes(), BadData, "NaN"),
])
def test_hostile_headers_and_values_are_typed_errors(data, error, words):
    with pytest.raises(error, match=words):
        read_anime(data, 30.0, "evil.anime")


def test_counts_over_the_caps_are_refused_before_allocating():
    frames = 5000
    data = header(frames, 4, 0) + bytes(12 * 4 * frames)  # consistent, 240 KB, but 5000 frames
    tracemalloc.start()
    with pytest.raises(LimitExceeded, match="frame cap"):
        read_anime(data, 30.0, "long.anime", Limits(max_frames=1000))
    with pytest.raises(LimitExceeded, match="vertices"):
        read_anime(data, 30.0, "wide.anime", Limits(max_vertices=3))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 1024  # nothing the size of the file's frames was allocated


def test_a_tampered_package_is_refused(anime):
    package = bytearray(dt4d_package(anime[2], 30.0))
    position = package.find(anime[2][100:140])
    package[position] ^= 0xFF
    with pytest.raises((BadData, MalformedAsset), match="CRC|sha256"):
        load_scene_bytes(bytes(package), "dt4d", "x.dt4d")


def test_dt4d_source_lists_packages_and_reports_missing_paths(tmp_path, anime):
    from stages.harvest import dt4d

    (tmp_path / "bear3EP_Agression").mkdir()
    (tmp_path / "bear3EP_Agression" / "bear3EP_Agression.anime").write_bytes(anime[2])
    (tmp_path / "notes.txt").write_text("not an animation")
    source = SimpleNamespace(kind="dt4d", paths=[str(tmp_path), "missing/*.anime"], fps=24.0,
                             license="LicenseRef-DeformingThings4D", attribution="DT4D")
    items, problems = dt4d.list_items(source, HARVEST, str(tmp_path))
    assert [i.name for i in items] == ["bear3EP_Agression"] and items[0].tags == ("bear", "agression")
    assert items[0].license == "LicenseRef-DeformingThings4D"
    data, fmt = items[0].fetch()
    assert fmt == "dt4d" and load_scene_bytes(data, fmt).fps == 24.0
    assert [p[:2] for p in problems] == [("missing/*.anime", "not-found")]


def test_the_commands_loader_reads_anime_files(tmp_path, anime):
    path = tmp_path / "seq.anime"
    path.write_bytes(anime[2])
    scene = load_scene(path, fps=25.0)
    assert scene.summary()["frames"] == 40 and scene.fps == 25.0


def test_a_package_whose_bytes_do_not_match_their_sha256_is_refused(anime):
    from stages.formats.npz import write_npz

    package = write_npz({"anime": np.frombuffer(anime[2], np.uint8), "fps": np.array(30.0),
                         "source_sha256": np.array("0" * 64)})
    with pytest.raises(BadData, match="sha256"):
        load_scene_bytes(package, "dt4d", "x.dt4d")


def test_inspect_formats_a_frame_scene_like_a_gltf_scene(anime):
    from pipeline.commands.inspect import format_summary

    text = format_summary(load_scene_bytes(dt4d_package(anime[2], 30.0), "dt4d", "seq.dt4d").summary())
    assert "642 vertices, 1280 faces" in text and "[0] dt4d: 1.300 s" in text
