"""Object-store harvesting against a local S3 server (moto on 127.0.0.1): prefixes, .gltf side files, URL lists
with s3:// lines, caps, and a missing bucket; plus a local folder through the same pyarrow.fs code path."""

from __future__ import annotations

import pytest

from paths import ASSETS
from s3_server import local_s3
from pipeline.config import HarvestConfig
from pipeline.sources import ObjectStoreSource, UrlListSource
from stages.harvest import BlobStore, harvest_source
from stages.harvest.pack import read_json_document

FAST = HarvestConfig(retries=0, backoff_s=0.0, timeout_s=5.0)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server with bucket `assets`: two GLBs (one twice) and a .gltf with its .bin side file."""
    import boto3

    with local_s3("assets") as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        fox = (ASSETS / "Fox.glb").read_bytes()
        for key, body in {
            "animated/fox.glb": fox,
            "animated/deeper/fox-again.glb": fox,
            "animated/box.glb": (ASSETS / "BoxAnimated.glb").read_bytes(),
            "animated/skin/SimpleSkin.gltf": (ASSETS / "SimpleSkin" / "SimpleSkin.gltf").read_bytes(),
            **{f"animated/skin/{n}": (ASSETS / "SimpleSkin" / n).read_bytes()
               for n in ("skinGeometry.bin", "skinningData.bin", "inverseBindMatrices.bin", "skinAnimation.bin")},
            "animated/readme.txt": b"not an asset",
            "other/box.glb": (ASSETS / "Box.glb").read_bytes(),
        }.items():
            client.put_object(Bucket="assets", Key=key, Body=body)
        yield endpoint


def test_prefix_lists_fetches_packs_and_deduplicates(s3, tmp_path):
    source = ObjectStoreSource(uri="s3://assets/animated", endpoint=s3, region="us-east-1")
    rows, errors = harvest_source(source, FAST, str(tmp_path), BlobStore(tmp_path))
    assert errors == []
    assert [r["uri"] for r in rows] == [
        "s3://assets/animated/box.glb", "s3://assets/animated/deeper/fox-again.glb", "s3://assets/animated/fox.glb",
        "s3://assets/animated/skin/SimpleSkin.gltf"]
    assert rows[1]["asset_id"] == rows[2]["asset_id"]  # same bytes under two keys: one asset
    assert rows[1]["file_bytes"] == (ASSETS / "Fox.glb").stat().st_size
    skin = rows[3]
    assert skin["file_format"] == "glb"  # side files read from the same prefix and packed
    document = read_json_document((tmp_path / skin["blob_path"]).read_bytes())
    assert len(document["buffers"]) == 1 and "uri" not in document["buffers"][0]


def test_caps_and_missing_prefix_are_error_rows(s3, tmp_path):
    capped = ObjectStoreSource(uri="s3://assets/animated", endpoint=s3, region="us-east-1")
    rows, errors = harvest_source(capped, HarvestConfig(max_asset_bytes=20_000, retries=0), str(tmp_path),
                                  BlobStore(tmp_path))
    assert sorted(e["unit_id"].rsplit("/", 1)[1] for e in errors if e["error_type"] == "limit") == [
        "fox-again.glb", "fox.glb"]
    assert {r["uri"].rsplit("/", 1)[1] for r in rows} == {"box.glb", "SimpleSkin.gltf"}
    missing = ObjectStoreSource(uri="s3://assets/nothing-here", endpoint=s3, region="us-east-1")
    rows, errors = harvest_source(missing, FAST, str(tmp_path), BlobStore(tmp_path))
    assert rows == [] and [e["error_type"] for e in errors] == ["not-found"]


def test_url_list_with_s3_lines(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)  # pyarrow's S3 client honours the standard endpoint variable
    (tmp_path / "urls.txt").write_text("s3://assets/other/box.glb\ns3://assets/other/gone.glb\n")
    rows, errors = harvest_source(UrlListSource(path="urls.txt"), FAST, str(tmp_path), BlobStore(tmp_path))
    assert [r["uri"] for r in rows] == ["s3://assets/other/box.glb"]
    assert [(e["unit_id"], e["error_type"]) for e in errors] == [("s3://assets/other/gone.glb", "not-found")]


def test_local_folder_through_the_same_code_path(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.glb").write_bytes((ASSETS / "BoxAnimated.glb").read_bytes())
    rows, errors = harvest_source(ObjectStoreSource(uri="in"), FAST, str(tmp_path), BlobStore(tmp_path / "out"))
    assert errors == [] and [r["uri"] for r in rows] == ["in/a.glb"]
