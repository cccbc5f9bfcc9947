"""One bad document is one error row: JSON nested 100,000 deep in harvest (packing, metadata) and in the
evaluator's container parsing, non-UTF-8 file names, and error messages that never echo file contents; plus the
metadata reader (licence from asset.extras, asset.copyright and KHR_xmp_json_ld; name, kind, tags), bounded."""

from __future__ import annotations

import json
import os
import resource

import pyarrow as pa
import pytest

from paths import ASSETS
from glb import pack_glb
from hostile_files import DEEP, deep_gltf, good_asset  # noqa: F401
from pipeline.config import HarvestConfig
from pipeline.sources import LocalSource
from schemas.tables import ERRORS
from stages.evaluate import LimitExceeded, MalformedAsset, load_asset, load_asset_bytes
from schemas.tables import PROVENANCE
from stages.harvest import BlobStore, harvest_source
from stages.harvest.metadata import MAX_TAGS, metadata_of, read_metadata
from stages.harvest.pack import pack_gltf, read_json_document
from stages.untrusted_json import JsonTooDeep, loads

pytestmark = pytest.mark.timeout(60)


def test_json_depth_bound_is_exact_and_constants_are_refused():
    from stages.untrusted_json import MAX_DEPTH

    nested = lambda depth: "[" * depth + "]" * depth  # noqa: E731
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))  # exactly the bound: read
    assert loads('{"a": ' + nested(MAX_DEPTH - 1) + "}") == {"a": json.loads(nested(MAX_DEPTH - 1))}
    for text in (nested(MAX_DEPTH + 1), '{"a": ' + nested(MAX_DEPTH) + "}"):
        with pytest.raises(JsonTooDeep, match=f"deeper than {MAX_DEPTH} levels"):
            loads(text)
    assert loads(nested(3), max_depth=3) == [[[]]]
    with pytest.raises(JsonTooDeep):
        loads(nested(4), max_depth=3)
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError, match="not valid JSON"):
            loads(f"[{constant}]")


@pytest.mark.parametrize("depth", [200, 5_000, DEEP])
def test_deep_json_is_refused_everywhere_without_recursion_errors(tmp_path, depth):
    text = deep_gltf(depth)
    with pytest.raises(JsonTooDeep):
        loads(text)
    assert pack_gltf(text, lambda name: pytest.fail("no side file to read")) == (text, "gltf")
    assert read_json_document(text) is None and read_metadata(text).name == ""
    for data, name in ((text, "deep.gltf"), (_deep_glb(depth), "d.glb")):
        with pytest.raises(LimitExceeded, match="nests deeper"):
            load_asset_bytes(data, name=name)
    (tmp_path / "deep.gltf").write_bytes(text)
    with pytest.raises(LimitExceeded):
        load_asset(tmp_path / "deep.gltf")


def _deep_glb(depth: int) -> bytes:
    return pack_glb(deep_gltf(depth))


def test_harvest_keeps_one_deep_file_as_one_input_and_goes_on(tmp_path, good_asset):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "deep.gltf").write_bytes(deep_gltf())
    (tmp_path / "in" / "good.glb").write_bytes(good_asset.read_bytes())
    rows, errors = harvest_source(LocalSource(paths=["in"]), HarvestConfig(), str(tmp_path), BlobStore(tmp_path))
    assert errors == [] and sorted(r["uri"] for r in rows) == ["in/deep.gltf", "in/good.glb"]


def test_non_utf8_names_are_stored_escaped_and_tables_can_be_written(tmp_path, good_asset):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9-\xff.glb")).write_bytes(good_asset.read_bytes())
    (folder / os.fsdecode(b"\x80broken.glb")).write_bytes(b"")
    (folder / os.fsdecode(b"sub-\xfe")).mkdir()
    (folder / os.fsdecode(b"sub-\xfe") / os.fsdecode(b"x\xc3(.gltf")).write_bytes(deep_gltf(10))
    rows, errors = harvest_source(LocalSource(paths=["in"]), HarvestConfig(), str(tmp_path), BlobStore(tmp_path))
    assert sorted(r["uri"] for r in rows) == ["in/caf\\xe9-\\xff.glb", "in/sub-\\xfe/x\\xc3(.gltf"]
    assert [e["unit_id"] for e in errors] == ["in/\\x80broken.glb"]
    assert rows[0]["name"] == "caf\\xe9-\\xff"
    for table, schema in ((rows, PROVENANCE), (errors, ERRORS)):
        pa.Table.from_pylist(table, schema=schema).to_pandas()  # encodable: no UnicodeEncodeError


def test_error_messages_never_echo_file_contents():
    secret = b"root:x:0:0:root:/root:/bin/bash\n" * 3
    for name in ("p.glb", "p.gltf"):
        with pytest.raises(MalformedAsset) as refused:
            load_asset_bytes(secret, name=name)
        assert "root" not in str(refused.value).replace(name, "")
    with pytest.raises(MalformedAsset) as refused:
        load_asset_bytes(b'{"asset": {"version": "2.0"}, "x": "root:x:0:0' + b"\xff" * 4 + b'"}', name="q.gltf")
    assert "root:x" not in str(refused.value)


# ---- metadata -------------------------------------------------------------------------------------------

def test_generated_assets_state_their_licence_and_tags_in_asset_extras(good_asset):
    meta = read_metadata(good_asset.read_bytes())
    assert meta.license == "CC0-1.0" and meta.kind == "blob" and "generated" in meta.tags and meta.name


def test_copyright_text_names_the_licence_and_is_the_attribution():
    meta = read_metadata((ASSETS / "Fox.glb").read_bytes())
    assert meta.license == "CC-BY-4.0" and "PixelMannen" in meta.attribution


def test_xmp_packet_of_the_asset_gives_title_subject_creator_and_rights():
    document = {
        "asset": {"version": "2.0", "extensions": {"KHR_xmp_json_ld": {"packet": 1}}},
        "extensions": {"KHR_xmp_json_ld": {"packets": [
            {"dc:title": "not this one"},
            {"@context": {"dc": "http://purl.org/dc/elements/1.1/"},
             "dc:title": {"@type": "rdf:Alt", "rdf:_1": {"@language": "en-us", "@value": "Walking robot"}},
             "dc:subject": {"@set": ["robot", "walk"]}, "dc:creator": {"@list": ["Ada", "ada@example.com"]},
             "dc:rights": {"@type": "rdf:Alt",
                           "rdf:_1": {"@value": "https://creativecommons.org/licenses/by-sa/4.0/"}}},
        ]}},
    }
    meta = metadata_of(document)
    assert (meta.name, meta.tags, meta.license, meta.attribution) == ("Walking robot", ("robot", "walk"),
                                                                      "CC-BY-SA-4.0", "Ada")
    document["extensions"]["KHR_xmp_json_ld"]["packets"][1]["xmpRights:UsageTerms"] = "Internal use only"
    assert metadata_of(document).license == "Internal use only"  # stated, not an SPDX id: kept as text


def test_hostile_metadata_is_bounded_printable_and_never_raises():
    hostile = {"asset": {"version": "2.0", "copyright": "\ud800" * 5000, "extras": {
        "name": "a\x00b\ud800\n\tc" + "x" * 10_000, "tags": ["t"] * 10_000 + [{"x": 1}, 5, "\udfff"],
        "license": ["not", "a", "string"], "kind": {"deep": [[[[["x"]]]]]}}},
        "extensions": {"KHR_xmp_json_ld": {"packets": "nope"}}}
    meta = read_metadata(json.dumps(hostile).encode())
    assert len(meta.name) <= 300 and "\\ud800" in meta.name and "\x00" not in meta.name
    assert len(meta.tags) <= MAX_TAGS
    assert meta.kind == "" and len(meta.attribution) <= 300
    row = {"asset_id": "a", "kind": "local", "uri": "u", "name": meta.name, "license": meta.license,
           "attribution": meta.attribution, "tags": list(meta.tags), "bytes": 1, "format": "glb", "blob": "b"}
    pa.Table.from_pylist([row], schema=PROVENANCE)
    for junk in (b"", b"glTF", b"glTF\x02\0\0\0\xff\xff\xff\xff\xff\xff\xff\xffJSON", b"[1,2]", b'{"asset": 5}',
                 deep_gltf(50_000)):
        assert read_metadata(junk) == read_metadata(b"")


def test_harvest_rows_take_the_licence_from_the_file(tmp_path):
    (tmp_path / "Fox.glb").write_bytes((ASSETS / "Fox.glb").read_bytes())
    rows, _ = harvest_source(LocalSource(paths=["Fox.glb"]), HarvestConfig(), str(tmp_path), BlobStore(tmp_path))
    assert rows[0]["license"] == "CC-BY-4.0" and "PixelMannen" in rows[0]["attribution"]


def test_harvest_never_expands_a_huge_json_array_in_the_driver():
    values = b'{"asset":{"version":"2.0"},"buffers":[{"uri":"a.bin","byteLength":4}],"extras":[' + \
        b"0.5," * 1_500_000 + b"0]}"  # 6 MB of text, ~60 MB as Python floats: above harvest's value cap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert pack_gltf(values, lambda name: pytest.fail("not parsed, so no side file is read")) == (values, "gltf")
    assert read_metadata(values) == read_metadata(b"")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 30 * 1024  # KiB
    with pytest.raises(ValueError, match="more than 10 values"):
        loads(b"[" + b"1," * 20 + b"1]", max_items=10)
