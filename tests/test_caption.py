"""Caption stage plumbing: rows follow the CAPTIONS schema, the cache avoids recomputation, filters reject."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from schemas.tables import CAPTIONS, ERRORS
from stages.caption import CaptionConfig, CaptionFilters, make_captioner
from stages.caption.backend import Generated
from stages.caption.cache import CaptionCache, cache_key
from stages.caption.filters import clean_caption, rejection, repeated_ngram_ratio
from synthetic_clips import pulsing_sphere, rotating_box, waving_arm


class ScriptedBackend:
    """Test double standing in for a model: returns given texts and counts calls (never used outside tests)."""

    cpu_stand_in = True

    def __init__(self, texts):
        self.texts, self.calls = list(texts), 0

    def generate(self, requests):
        self.calls += len(requests)
        return [Generated(self.texts.pop(0), 0.01, 10, 5) for _ in requests]


def test_rows_match_the_captions_schema_and_errors_the_errors_schema():
    clips = [waving_arm(), rotating_box()]
    broken = rotating_box()
    broken.clip_id, broken.content_hash = "broken_a0_0000-0015", "hash-broken"
    broken.vertices = np.full_like(broken.vertices, np.nan)
    rows, errors = make_captioner(CaptionConfig())(clips + [broken], {})
    assert len(rows) == 2 and len(errors) == 1
    # from_pylist drops unknown keys and nulls missing ones: the key sets must be the schema's exactly, and the
    # values must survive the typed round trip unchanged
    for produced, schema in ((rows, CAPTIONS), (errors, ERRORS)):
        assert all(set(row) == set(schema.names) for row in produced), [sorted(set(r) ^ set(schema.names))
                                                                         for r in produced]
        back = pa.Table.from_pylist(produced, schema=schema).to_pylist()
        assert back == [{**row, **{k: pytest.approx(v, rel=1e-6) for k, v in row.items() if isinstance(v, float)}}
                        for row in produced]  # float32 columns round to float32
    assert errors[0]["status"] == "failed" and errors[0]["unit_id"] == "broken_a0_0000-0015#0"


def test_cache_means_reruns_never_recompute(tmp_path):
    config = CaptionConfig(backend="motion", cache_dir=str(tmp_path), captions_per_clip=2)
    first = make_captioner(config)
    rows, _ = first([pulsing_sphere()], {})
    second = make_captioner(config)
    second.backend = ScriptedBackend([])  # any call to the model would fail the test
    again, _ = second([pulsing_sphere()], {})
    assert second.backend.calls == 0 and second.counts["cached"] == 2
    assert [r["text"] for r in again] == [r["text"] for r in rows]
    # a different prompt hash or model is a different key
    assert cache_key("h", "vllm", "m", "r", "p1", 0) != cache_key("h", "vllm", "m", "r", "p2", 0)
    assert len(list(tmp_path.rglob("*.json"))) == 2 and not list(tmp_path.rglob(".tmp-*"))


def test_torn_cache_entry_is_recomputed(tmp_path):
    cache = CaptionCache(tmp_path)
    cache.put("ab" + "0" * 62, {"text": "a caption"})
    assert cache.get("ab" + "0" * 62)["text"] == "a caption"
    (tmp_path / "ab" / ("ab" + "0" * 62 + ".json")).write_text("{not json")
    assert cache.get("ab" + "0" * 62) is None


def test_filters_turn_bad_outputs_into_skipped_error_rows():
    texts = ["   ", "I'm sorry, but I cannot help with that.", "word " * 200,
             "the arm waves the arm waves the arm waves the arm waves the arm waves",
             '"The arm swings back and forth."']
    captioner = make_captioner(CaptionConfig(backend="motion", captions_per_clip=5, batch_size=2))
    captioner.backend = ScriptedBackend(texts)
    rows, errors = captioner([waving_arm()], {})
    assert [e["error_type"] for e in sorted(errors, key=lambda e: e["unit_id"])] == [
        "empty", "refused", "too-long", "repetitive"]
    assert all(e["status"] == "skipped" and e["stage"] == "caption" for e in errors)
    assert [r["text"] for r in rows] == ["The arm swings back and forth."]
    assert captioner.counts["seen"] == captioner.counts["ok"] + captioner.counts["skipped"] == 5


def test_a_failing_batch_is_retried_one_by_one():
    class FailsOnBox(ScriptedBackend):
        def generate(self, requests):
            if any(r.clip.clip_id.startswith("rotating") for r in requests):
                raise RuntimeError("out of memory")
            return super().generate(requests)

    captioner = make_captioner(CaptionConfig(batch_size=8))
    captioner.backend = FailsOnBox(["An arm waves to and fro.", "A sphere pulses in a rhythm."])
    rows, errors = captioner([waving_arm(), rotating_box(), pulsing_sphere()], {})
    assert len(rows) == 2 and [e["error_type"] for e in errors] == ["RuntimeError"]
    assert "out of memory" in errors[0]["message"]


def test_filter_helpers():
    assert clean_caption('Caption:  "A cube  spins."') == "A cube spins."
    assert repeated_ngram_ratio("a b c a b c a b c a b c", 3) > 0.5
    assert repeated_ngram_ratio("the creature raises its left arm and waves it slowly", 3) == 0
    assert rejection("A cube spins about its vertical axis.", CaptionFilters()) is None


def test_config_validation_and_prompt_hash():
    with pytest.raises(ValueError, match="backend"):
        CaptionConfig(backend="gpt")
    from pipeline.config import build
    from pipeline.errors import UserError

    with pytest.raises(UserError, match="unknown key 'modle'"):
        build(CaptionConfig, {"modle": "x"}, "caption")
    base = CaptionConfig(backend="vllm")
    assert base.prompt_hash() != CaptionConfig(backend="vllm", prompt="Describe.").prompt_hash()
    assert base.prompt_hash() != CaptionConfig(backend="vllm", image_size=224).prompt_hash()
    assert CaptionConfig().model_id == "motion-heuristic"
    assert build(CaptionConfig, {"filters": {"max_chars": 100}}, "caption").filters.max_chars == 100


def test_caption_command_on_a_clip_folder(tmp_path, capsys):
    import json

    from pipeline.cli import main

    clip = waving_arm()
    np.savez(tmp_path / f"{clip.clip_id}.npz", vertices=clip.vertices, faces=clip.faces)
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    out = tmp_path / "rows.jsonl"
    assert main(["caption", str(tmp_path), "--captions-per-clip", "2", "--name", "robot", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    captions = [r for r in lines if r["table"] == "captions"]
    assert len(captions) == 2 and all("robot" in r["text"] for r in captions)
    assert [r["error_type"] for r in lines if r["table"] == "errors"] == ["bad-clip-file"]
    assert "1 failed" in capsys.readouterr().err


def test_model_free_captions_are_labelled_cpu_stand_in_in_rows_and_sample_json(tmp_path):
    from stages.shard import ShardConfig, read_sample, write_shards

    clip = waving_arm()
    rows, errors = make_captioner(CaptionConfig(backend="motion", captions_per_clip=2))([clip], {})
    assert not errors and [r["cpu_stand_in"] for r in rows] == [True, True]
    samples, shard_errors = write_shards([clip], {clip.clip_id: rows}, {}, str(tmp_path), ShardConfig())
    assert not [e for e in shard_errors if e["status"] == "failed"]
    meta = read_sample(str(tmp_path), samples[0]["key"])["json"]
    assert [(c["backend"], c["cpu_stand_in"]) for c in meta["captions"]] == [("motion", True)] * 2
