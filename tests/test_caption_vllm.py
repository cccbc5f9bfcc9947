"""vLLM backend: the whole VLLMBackend glue on CPU against a test double of vllm (tests/fake_vllm.py); the real
model only on a GPU machine, from a local model folder named by DYMESH_VLLM_MODEL (no download at test time)."""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import fake_vllm
from stages.caption import CaptionConfig, make_captioner
from stages.caption.frames import frame_indices, png_data_url
from stages.caption.vllm_backend import chat_request, engine_arguments, parse_outputs, sampling_arguments
from synthetic_clips import pulsing_sphere, rotating_box, waving_arm

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_engine_arguments_follow_the_config():
    config = CaptionConfig(backend="vllm", model="org/vlm", revision="abc", tensor_parallel_size=2, frames=3)
    arguments = engine_arguments(config)
    assert arguments["model"] == "org/vlm" and arguments["revision"] == "abc"
    assert arguments["tensor_parallel_size"] == 2 and arguments["limit_mm_per_prompt"] == {"image": 3}


def test_chat_request_carries_png_frames_then_the_prompt():
    image = np.zeros((32, 48, 3), np.uint8)
    image[4:8, 4:8] = 255
    url = png_data_url(image)
    messages = chat_request("Describe the motion.", [url, url])
    content = messages[0]["content"]
    assert messages[0]["role"] == "user" and [c["type"] for c in content] == ["image_url", "image_url", "text"]
    assert content[-1]["text"] == "Describe the motion."
    prefix = "data:image/png;base64,"
    decoded = Image.open(io.BytesIO(base64.b64decode(content[0]["image_url"]["url"][len(prefix):])))
    assert decoded.size == (48, 32) and (np.asarray(decoded) == image).all()
    assert png_data_url(image) == url, "deterministic bytes"


def test_sampling_arguments_are_seeded_per_clip_and_caption():
    config = CaptionConfig(backend="vllm", max_new_tokens=50)
    first = sampling_arguments(config, "clip-a", 0)
    assert first["temperature"] == 0.0 and first["max_tokens"] == 50 and "top_p" not in first
    second = sampling_arguments(config, "clip-a", 1)
    assert second["temperature"] >= 0.7 and second["seed"] != first["seed"]
    assert sampling_arguments(config, "clip-a", 1) == second


def test_parse_outputs_reads_text_and_token_counts():
    outputs = [
        SimpleNamespace(prompt_token_ids=[1] * 700,
                        outputs=[SimpleNamespace(text=" An arm waves.", token_ids=[5] * 4)]),
        SimpleNamespace(prompt_token_ids=[1] * 650, outputs=[]),
    ]
    parsed = parse_outputs(outputs, 0.5)
    assert parsed[0].text == " An arm waves." and parsed[0].prompt_tokens == 700 and parsed[0].output_tokens == 4
    assert parsed[1].text == "" and parsed[1].output_tokens == 0 and parsed[1].seconds == 0.5


def test_frame_sampling():
    assert frame_indices(16, 4).tolist() == [0, 5, 10, 15]
    assert frame_indices(2, 4).tolist() == [0, 1]


@pytest.fixture
def fake_engine(monkeypatch):
    """`import vllm` gives the test double; yields its LLM class (instances and calls recorded)."""
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    monkeypatch.setattr(fake_vllm.LLM, "instances", [])
    monkeypatch.setattr(fake_vllm.LLM, "fail_on_seeds", set())
    monkeypatch.setattr(fake_vllm.LLM, "empty_on_seeds", set())
    return fake_vllm.LLM


SMALL = dict(backend="vllm", model="/models/some-vlm", frames=3, image_size=64, renderer="numpy")


def test_vllm_backend_batches_builds_requests_and_parses_outputs(fake_engine):
    config = CaptionConfig(**SMALL, captions_per_clip=2, batch_size=4)
    clips = [waving_arm(), rotating_box(), pulsing_sphere()]
    rows, errors = make_captioner(config)(clips, {})
    [engine] = fake_engine.instances
    assert engine.engine == engine_arguments(config)
    assert [len(messages) for messages, _ in engine.calls] == [4, 2]  # 6 captions in batches of batch_size
    for messages, params in engine.calls:
        for conversation in messages:
            parts = conversation[0]["content"]
            assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"] and parts[-1]["text"] == config.prompt
    assert not errors and len(rows) == 6
    by_key = {(r["clip_id"], r["caption_index"]): r for r in rows}
    for clip in clips:
        for index in range(2):
            expected = sampling_arguments(config, clip.clip_id, index)
            text = by_key[(clip.clip_id, index)]["text"]
            assert text == (f"Seen 3 frames of [(64, 64)] at temperature {expected['temperature']:g} "
                            f"with seed {expected['seed']}."), text  # each answer came from its own request
    assert {(r["backend"], r["model"], r["cpu_stand_in"]) for r in rows} == {("vllm", "/models/some-vlm", False)}


def test_vllm_failures_become_error_rows_for_their_clip_only(fake_engine):
    config = CaptionConfig(**SMALL, batch_size=8)
    clips = [waving_arm(), rotating_box(), pulsing_sphere()]
    fake_engine.fail_on_seeds = {sampling_arguments(config, clips[1].clip_id, 0)["seed"]}
    fake_engine.empty_on_seeds = {sampling_arguments(config, clips[2].clip_id, 0)["seed"]}
    captioner = make_captioner(config)
    rows, errors = captioner(clips, {})
    assert [r["clip_id"] for r in rows] == [clips[0].clip_id]
    kinds = {e["unit_id"]: (e["error_type"], e["status"]) for e in errors}
    assert kinds == {f"{clips[1].clip_id}#0": ("RuntimeError", "failed"), f"{clips[2].clip_id}#0": ("empty", "skipped")}
    assert "out of memory" in next(e["message"] for e in errors if e["status"] == "failed")
    assert captioner.counts["seen"] == 3 and captioner.counts["failed"] == captioner.counts["skipped"] == 1


def test_missing_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees where it is not installed
    with pytest.raises(RuntimeError, match=r"pip install 'dymesh\[gpu\]'"):
        make_captioner(CaptionConfig(backend="vllm"))


def _local_vllm_model() -> str | None:
    folder = os.environ.get("DYMESH_VLLM_MODEL", "")
    return folder if folder and (Path(folder) / "config.json").is_file() else None


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM, reason="needs vllm and a CUDA GPU (pip install 'dymesh[gpu]')")
@pytest.mark.skipif(_local_vllm_model() is None,
                    reason="set DYMESH_VLLM_MODEL to a local vLLM multimodal chat model folder (with config.json); "
                           "tests never download models")
def test_vllm_captions_clips_on_gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    config = CaptionConfig(backend="vllm", model=_local_vllm_model(), max_model_len=4096, image_size=336,
                           captions_per_clip=2)
    rows, errors = make_captioner(config)([waving_arm(), rotating_box()], {})
    assert not errors, errors
    assert len(rows) == 4 and all(len(r["text"].split()) >= 3 for r in rows)
    assert {r["cpu_stand_in"] for r in rows} == {False}
