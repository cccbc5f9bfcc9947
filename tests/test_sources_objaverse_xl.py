"""Objaverse-XL offline: the package's own annotation reader on parquet files laid out as its cache, a stand-in for
its network download that returns local files, then DyMesh's filters (source, type, licence, checksum, animations)."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest

from paths import ASSETS

HARVEST = SimpleNamespace(max_asset_bytes=1 << 30, max_side_file_bytes=1 << 20, fetch_threads=2, timeout_s=5.0,
                          retries=1, backoff_s=0.0)


def xl_source(folder, **extra):
    values = dict(kind="objaverse-xl", download_dir=str(folder), sources=["github", "thingiverse"],
                  file_types=["glb", "fbx", "obj"], licenses=None, min_animations=1, limit=None, download_processes=1)
    return SimpleNamespace(**dict(values, **extra))


@pytest.fixture
def xl_cache(tmp_path, monkeypatch):
    """Annotation parquet files where the package looks for them, and files the fake download returns."""
    import pandas as pd
    from objaverse import xl

    files = tmp_path / "files"
    files.mkdir()
    contents = {
        "fox.glb": (ASSETS / "Fox.glb").read_bytes(),  # 3 animations
        "box.glb": (ASSETS / "Box.glb").read_bytes(),  # none
        "walk.fbx": b"Kaydara FBX Binary  \x00" + b"AnimationCurve" + bytes(32),
        "chair.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
        "changed.glb": (ASSETS / "BoxAnimated.glb").read_bytes(),
    }
    for name, data in contents.items():
        (files / name).write_bytes(data)
    base = "https://github.com/org/repo/blob/abc123/"
    rows = [
        {"fileIdentifier": base + name, "source": "github", "license": "MIT", "fileType": name.rsplit(".", 1)[1],
         "sha256": hashlib.sha256(data).hexdigest() if name != "changed.glb" else "0" * 64,
         "metadata": json.dumps({"repo_owner": "org", "repo": "repo"})}
        for name, data in contents.items()
    ]
    rows.append({"fileIdentifier": "https://www.thingiverse.com/thing:1/file:2", "source": "thingiverse",
                 "license": "CC-BY-NC", "fileType": "stl", "sha256": "1" * 64, "metadata": "{}"})
    rows.append({"fileIdentifier": base + "gone.glb", "source": "github", "license": "Apache-2.0", "fileType": "glb",
                 "sha256": "2" * 64, "metadata": "{}"})
    frame = pd.DataFrame(rows)
    for source in ("github", "thingiverse"):
        (tmp_path / source).mkdir()
        frame[frame["source"] == source].to_parquet(tmp_path / source / f"{source}.parquet")
    calls = []

    def download_objects(objects, download_dir, processes, save_repo_format=None, **kwargs):
        calls.append((sorted(objects["fileIdentifier"]), download_dir, save_repo_format))
        return {i: str(files / i.rsplit("/", 1)[1]) for i in objects["fileIdentifier"] if not i.endswith("gone.glb")}

    monkeypatch.setattr(xl, "download_objects", download_objects)
    return tmp_path, calls


def outcome(item):
    try:
        data, fmt = item.fetch()
        return fmt
    except Exception as exc:  # noqa: BLE001 - FetchError: the harvest's row
        return f"{getattr(exc, 'status', 'failed')}:{exc.kind}"


def test_xl_filters_by_type_then_by_checksum_and_animations(xl_cache):
    from stages.harvest import objaverse_xl

    folder, calls = xl_cache
    items, problems = objaverse_xl.list_items(xl_source(folder), HARVEST, ".")
    names = [i.uri.rsplit("/", 1)[1] for i in items]
    assert names == ["box.glb", "chair.obj", "changed.glb", "fox.glb", "gone.glb", "walk.fbx"]  # no .stl
    results = dict(zip(names, map(outcome, items)))
    assert results == {"box.glb": "skipped:few-animations", "chair.obj": "skipped:few-animations",
                       "changed.glb": "failed:checksum", "fox.glb": "glb", "gone.glb": "failed:not-found",
                       "walk.fbx": "fbx"}
    assert len(calls) == 1 and calls[0][2] == "files"  # one batch, files kept per object
    fox = items[names.index("fox.glb")]
    assert fox.license == "MIT" and fox.name == "fox" and fox.attribution.startswith("org/repo: https://github.com")


def test_xl_licence_limit_and_min_animations(xl_cache):
    from stages.harvest import objaverse_xl

    folder, _ = xl_cache
    items, _ = objaverse_xl.list_items(xl_source(folder, licenses=["MIT"], file_types=["glb"], limit=2,
                                                 min_animations=2), HARVEST, ".")
    assert [i.uri.rsplit("/", 1)[1] for i in items] == ["box.glb", "changed.glb"]
    items, _ = objaverse_xl.list_items(xl_source(folder, file_types=["glb"], min_animations=4), HARVEST, ".")
    fox = [i for i in items if i.uri.endswith("fox.glb")][0]
    assert outcome(fox) == "skipped:few-animations"


def test_xl_harvest_rows_account_for_every_file(xl_cache, tmp_path):
    from stages.harvest import BlobStore, harvest_source

    folder, _ = xl_cache
    rows, errors = harvest_source(xl_source(folder), HARVEST, ".", BlobStore(tmp_path / "out"))
    assert len(rows) + len(errors) == 6
    assert sorted((e["status"], e["error_type"]) for e in errors) == [
        ("failed", "checksum"), ("failed", "not-found"), ("skipped", "few-animations"), ("skipped", "few-animations")]
    assert {r["file_format"] for r in rows} == {"glb", "fbx"} and all(r["source_kind"] == "objaverse-xl" for r in rows)


def test_unreadable_annotations_are_one_row(tmp_path):
    from stages.harvest import objaverse_xl

    (tmp_path / "github").mkdir()
    (tmp_path / "github" / "github.parquet").write_bytes(b"not parquet")
    items, problems = objaverse_xl.list_items(xl_source(tmp_path, sources=["github"]), HARVEST, ".")
    assert not items and [p[1] for p in problems] == ["objaverse-xl-metadata"]
