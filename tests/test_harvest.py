"""Harvest without Ray and without the network: local files, .gltf packing, content addressing, URL lists served
from 127.0.0.1, and Objaverse through a temp cache in the package's real layout (its own code runs)."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import urllib.error
from pathlib import Path

import pytest

from paths import ASSETS
from pipeline.config import HarvestConfig
from pipeline.sources import LocalSource, ObjaverseSource, UrlListSource
from stages.harvest import BlobStore, content_id, harvest_source
from stages.harvest.pack import pack_gltf, read_json_document
from stages.evaluate import load_asset, load_asset_bytes

FAST = HarvestConfig(retries=1, backoff_s=0.0, timeout_s=5.0)


def run(source, tmp_path, config=FAST, base_dir=None):
    return harvest_source(source, config, str(base_dir or tmp_path), BlobStore(tmp_path / "out"))


# ---- local files and packing ---------------------------------------------------------------------------------

def test_gltf_with_side_files_is_packed_into_one_glb_that_evaluates_the_same(tmp_path):
    rows, errors = run(LocalSource(paths=[str(ASSETS / "SimpleSkin" / "SimpleSkin.gltf")]), tmp_path)
    assert errors == [] and len(rows) == 1
    row = rows[0]
    assert row["file_format"] == "glb" and row["blob_path"].endswith(".glb")
    data = (tmp_path / "out" / row["blob_path"]).read_bytes()
    assert content_id(data) == row["asset_id"] and data[:4] == b"glTF"
    import numpy as np

    packed, original = load_asset_bytes(data, name="x.glb"), load_asset(ASSETS / "SimpleSkin" / "SimpleSkin.gltf")
    times = np.linspace(0.0, original.animations[0].duration, 5)
    assert np.array_equal(packed.evaluate(0, times), original.evaluate(0, times))


def test_unsafe_uris_are_left_for_the_evaluator_and_never_read(tmp_path):
    for name in ("path_traversal.gltf", "absolute_path.gltf", "network_uri.gltf", "file_uri.gltf"):
        text = (ASSETS / "broken" / name).read_bytes()
        reads = []
        data, fmt = pack_gltf(text, lambda n: reads.append(n))
        assert (data, fmt, reads) == (text, "gltf", []), name


def test_folders_and_globs_with_content_addressing(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    box = (ASSETS / "BoxAnimated.glb").read_bytes()
    (folder / "a.glb").write_bytes(box)
    (folder / "sub" / "copy.glb").write_bytes(box)  # same bytes, second provenance
    (folder / "sub" / "other.glb").write_bytes((ASSETS / "Box.glb").read_bytes())
    (folder / "notes.txt").write_text("not an asset")
    rows, errors = run(LocalSource(paths=["in", "in/sub/*.glb", "missing/*.glb"]), tmp_path)
    assert [r["uri"] for r in rows] == ["in/a.glb", "in/sub/copy.glb", "in/sub/other.glb"]
    assert rows[0]["asset_id"] == rows[1]["asset_id"] != rows[2]["asset_id"]
    assert len(list((tmp_path / "out" / "blobs").rglob("*.glb"))) == 2
    assert [(e["unit_id"], e["error_type"]) for e in errors] == [("missing/*.glb", "not-found")]


def test_size_cap_and_empty_files_are_error_rows(tmp_path):
    box = (ASSETS / "Box.glb").read_bytes()
    (tmp_path / "exact.glb").write_bytes(box)  # exactly the cap: read
    (tmp_path / "over.glb").write_bytes(box + b"\0" * 4)  # one word over it: refused
    (tmp_path / "big.glb").write_bytes(b"glTF" + b"\0" * 5000)
    (tmp_path / "empty.glb").write_bytes(b"")
    rows, errors = run(LocalSource(paths=["exact.glb", "over.glb", "big.glb", "empty.glb"]), tmp_path,
                       HarvestConfig(max_asset_bytes=len(box)))
    assert [(Path(r["uri"]).name, r["file_bytes"]) for r in rows] == [("exact.glb", len(box))]
    assert sorted((e["unit_id"], e["error_type"], e["status"]) for e in errors) == [
        ("big.glb", "limit", "failed"), ("empty.glb", "empty", "failed"), ("over.glb", "limit", "failed")]


def test_packed_json_keeps_extras(tmp_path):
    rows, _ = run(LocalSource(paths=[str(ASSETS / "AnimatedCube" / "AnimatedCube.gltf")]), tmp_path)
    document = read_json_document((tmp_path / "out" / rows[0]["blob_path"]).read_bytes())
    assert len(document["buffers"]) == 1 and "uri" not in document["buffers"][0]
    assert all("bufferView" in image for image in document["images"])  # PNG side files inlined too


# ---- URL lists (HTTP on 127.0.0.1 only) ------------------------------------------------------------------------

@pytest.fixture()
def http_server(tmp_path):
    box = (ASSETS / "Box.glb").read_bytes()
    files = {"/fox.glb": (ASSETS / "Fox.glb").read_bytes(), "/box.glb": box, "/box-and-a-word.glb": box + bytes(4)}
    calls = {"flaky": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/flaky.glb":
                calls["flaky"] += 1
                if calls["flaky"] == 1:
                    self.send_error(503)
                    return
                body = files["/box.glb"]
            elif self.path.removeprefix("/no-length") in files:
                body = files[self.path.removeprefix("/no-length")]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            if not self.path.startswith("/no-length/"):  # without it the body ends when the connection closes
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()


def test_url_list_with_retries_caps_and_404(tmp_path, http_server):
    base, calls = http_server
    (tmp_path / "urls.txt").write_text(f"# assets\n{base}/fox.glb\n{base}/missing.glb\n{base}/flaky.glb\n"
                                       f"{base}/box.glb  # same bytes as flaky\nftp://x/y.glb\n")
    local = UrlListSource(path="urls.txt", allow_private_networks=True)  # the test server is on 127.0.0.1
    rows, errors = run(local, tmp_path)
    assert sorted(r["uri"].rsplit("/", 1)[1] for r in rows) == ["box.glb", "flaky.glb", "fox.glb"]
    assert calls["flaky"] == 2  # a 503 is transient: retried once
    by_name = {r["uri"].rsplit("/", 1)[1]: r for r in rows}
    assert by_name["box.glb"]["asset_id"] == by_name["flaky.glb"]["asset_id"]
    assert sorted(e["error_type"] for e in errors) == ["http", "unsupported"]
    capped, capped_errors = run(local, tmp_path, HarvestConfig(max_asset_bytes=2000,
                                                                                    retries=0))
    assert "fox.glb" not in {r["uri"].rsplit("/", 1)[1] for r in capped}
    assert any(e["error_type"] == "limit" and e["unit_id"].endswith("fox.glb") for e in capped_errors)


def test_a_download_without_a_length_is_capped_while_it_streams(tmp_path, http_server):
    base, _ = http_server
    cap = (ASSETS / "Box.glb").stat().st_size
    (tmp_path / "urls.txt").write_text(f"{base}/no-length/box.glb\n{base}/no-length/box-and-a-word.glb\n")
    rows, errors = run(UrlListSource(path="urls.txt", allow_private_networks=True), tmp_path,
                       HarvestConfig(max_asset_bytes=cap, retries=0))
    assert [(r["uri"].rsplit("/", 1)[1], r["file_bytes"]) for r in rows] == [("box.glb", cap)]  # exactly the cap
    assert [(e["unit_id"].rsplit("/", 1)[1], e["error_type"]) for e in errors] == [("box-and-a-word.glb", "limit")]


# ---- Objaverse through a local cache -----------------------------------------------------------------------------

def build_objaverse_cache(root: Path, assets: dict[str, dict], downloaded: set[str]) -> None:
    """The package's layout: object-paths.json.gz, metadata/000-XXX.json.gz (all 160), glbs/000-XXX/<uid>.glb."""
    from stages.generate import generate_asset

    versioned = root / "hf-objaverse-v1"
    (versioned / "metadata").mkdir(parents=True)
    paths, shards = {}, {}
    for i, uid in enumerate(sorted(assets)):
        folder = f"000-{i % 3:03d}"
        paths[uid] = f"glbs/{folder}/{uid}.glb"
        shards.setdefault(folder, {})[uid] = assets[uid]
        if uid in downloaded:
            (versioned / "glbs" / folder).mkdir(parents=True, exist_ok=True)
            generate_asset(("creature", "blob", "machine")[i % 3], i, versioned / paths[uid])
    with gzip.open(versioned / "object-paths.json.gz", "wt") as handle:
        json.dump(paths, handle)
    for i in range(160):
        folder = f"{i // 1000:03d}-{i % 1000:03d}"
        with gzip.open(versioned / "metadata" / f"{folder}.json.gz", "wt") as handle:
            json.dump(shards.get(folder, {}), handle)


def annotation(uid, animations, licence, name):
    return {"uid": uid, "name": name, "license": licence, "animationCount": animations,
            "user": {"username": f"user-{uid[:4]}", "displayName": f"Author {uid[:4]}"},
            "tags": [{"name": "robot"}, {"name": "walk"}], "viewerUrl": f"https://sketchfab.com/3d-models/{uid}"}


@pytest.fixture()
def objaverse_cache(tmp_path, monkeypatch):
    assets = {
        "a" * 32: annotation("a" * 32, 2, "by", "Walker"),
        "b" * 32: annotation("b" * 32, 0, "by", "Statue"),  # not animated
        "c" * 32: annotation("c" * 32, 1, "by-nc", "Dancer"),  # licence not allowed below
        "d" * 32: annotation("d" * 32, 1, "cc0", "Flag"),
        "e" * 32: {"uid": "e" * 32, "name": "No fields"},  # annotation without animationCount
        "f" * 32: annotation("f" * 32, 3, "by", "Bird"),  # not in the cache: a download is attempted
    }
    build_objaverse_cache(tmp_path / "objaverse", assets, downloaded={"a" * 32, "b" * 32, "c" * 32, "d" * 32})
    attempts = []

    def offline(url, filename=None, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr("urllib.request.urlretrieve", offline)
    return tmp_path / "objaverse", attempts


def test_objaverse_filters_annotations_and_keeps_attribution(tmp_path, objaverse_cache):
    import objaverse

    cache, attempts = objaverse_cache
    before = objaverse._VERSIONED_PATH
    source = ObjaverseSource(cache_dir=str(cache), licenses=["by", "cc0"], download_processes=1)
    rows, errors = run(source, tmp_path)
    assert objaverse._VERSIONED_PATH == before  # the package is pointed back where it was
    assert [r["uri"] for r in rows] == ["objaverse:" + "a" * 32, "objaverse:" + "d" * 32]
    walker = rows[0]
    assert walker["name"] == "Walker" and walker["license"] == "CC-BY-4.0" and walker["tags"] == ["robot", "walk"]
    assert "Author aaaa" in walker["attribution"] and "sketchfab.com/3d-models/" + "a" * 32 in walker["attribution"]
    assert rows[1]["license"] == "CC0-1.0"
    blob = (tmp_path / "out" / walker["blob_path"]).read_bytes()
    assert content_id(blob) == walker["asset_id"] and blob[:4] == b"glTF"
    # "f" is selected but not in the cache: its download fails (offline), is retried once, and is one error row
    assert [(e["unit_id"], e["error_type"], e["attempt"]) for e in errors] == [("objaverse:" + "f" * 32, "network", 2)]
    assert len(attempts) == 4  # batch attempt + retry, then the uid alone + retry


def test_objaverse_uid_list_and_limit(tmp_path, objaverse_cache):
    cache, _ = objaverse_cache
    source = ObjaverseSource(cache_dir=str(cache), uids=["c" * 32, "a" * 32, "b" * 32, "z" * 32], limit=1)
    rows, errors = run(source, tmp_path)
    assert [r["uri"] for r in rows] == ["objaverse:" + "a" * 32]  # b is static, limit 1 of (a, c)
    assert [(e["unit_id"], e["error_type"]) for e in errors] == [("objaverse:" + "z" * 32, "unknown-uid")]
