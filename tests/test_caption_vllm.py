"""vLLM backend: request building and output parsing without vLLM or a GPU; the real run only where both exist."""

from __future__ import annotations

import base64
import io
import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from stages.caption import CaptionConfig
from stages.caption.frames import frame_indices, png_data_url
from stages.caption.vllm_backend import chat_request, engine_arguments, parse_outputs, sampling_arguments
from synthetic_clips import waving_arm

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


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_missing_vllm_says_how_to_install():
    from stages.caption import make_captioner

    with pytest.raises(RuntimeError, match=r"pip install 'dymesh\[gpu\]'"):
        make_captioner(CaptionConfig(backend="vllm"))


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM, reason="needs vllm and a CUDA GPU (pip install 'dymesh[gpu]')")
def test_vllm_captions_a_clip_on_gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from stages.caption import make_captioner

    config = CaptionConfig(backend="vllm", model="Qwen/Qwen2.5-VL-3B-Instruct", max_model_len=4096, image_size=336)
    rows, errors = make_captioner(config)([waving_arm()], {})
    assert len(rows) + len(errors) == 1
