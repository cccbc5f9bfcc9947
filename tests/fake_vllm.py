"""TEST DOUBLE of the `vllm` package (only the part VLLMBackend uses: LLM, LLM.chat, SamplingParams).

Never on the import path by itself: a test puts it in `sys.modules["vllm"]` with monkeypatch, so the real glue
in stages/caption/vllm_backend.py (engine arguments, chat messages, sampling parameters, batching, output
parsing, error rows) runs on CPU. It checks what it is given as vLLM would (unknown keywords are TypeErrors,
messages must be OpenAI-style chat with image_url parts) and answers with a text that restates what it saw, so
a test can tell that each request reached the model intact. It captions nothing.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

ENGINE_KEYWORDS = {"model", "revision", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization", "dtype",
                   "seed", "limit_mm_per_prompt", "max_num_seqs"}
SAMPLING_KEYWORDS = {"max_tokens", "temperature", "seed", "top_p"}


class SamplingParams:
    def __init__(self, **kwargs):
        unknown = set(kwargs) - SAMPLING_KEYWORDS
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword arguments {sorted(unknown)}")
        self.max_tokens = kwargs.get("max_tokens", 16)
        self.temperature = kwargs.get("temperature", 1.0)
        self.seed = kwargs.get("seed")
        self.top_p = kwargs.get("top_p", 1.0)


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)


class LLM:
    """Records every engine and every chat call (class-level, so a test sees the instance the backend made)."""

    instances: list["LLM"] = []
    fail_on_seeds: set[int] = set()  # a batch with a request of such a seed raises, as an OOM would
    empty_on_seeds: set[int] = set()  # such a request gets no completion at all

    def __init__(self, **kwargs):
        unknown = set(kwargs) - ENGINE_KEYWORDS
        if unknown:
            raise TypeError(f"LLM got unexpected keyword arguments {sorted(unknown)}")
        self.engine = kwargs
        self.calls: list[tuple[list, list]] = []
        LLM.instances.append(self)

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        from PIL import Image

        if not isinstance(sampling_params, list) or len(sampling_params) != len(messages):
            raise ValueError("one SamplingParams per conversation expected")
        self.calls.append((messages, sampling_params))
        outputs = []
        for conversation, params in zip(messages, sampling_params):
            [turn] = conversation
            parts = turn["content"]
            images = [p for p in parts if p["type"] == "image_url"]
            [text] = [p["text"] for p in parts if p["type"] == "text"]
            if len(images) > self.engine["limit_mm_per_prompt"]["image"]:
                raise ValueError(f"{len(images)} images is over limit_mm_per_prompt")
            sizes = set()
            for part in images:
                header, data = part["image_url"]["url"].split(",", 1)
                assert header == "data:image/png;base64", header
                sizes.add(Image.open(io.BytesIO(base64.b64decode(data))).size)
            if params.seed in self.fail_on_seeds:
                raise RuntimeError("CUDA out of memory (fake)")
            prompt_tokens = list(range(len(text.split()) + 100 * len(images)))
            if params.seed in self.empty_on_seeds:
                outputs.append(RequestOutput(prompt_tokens, []))
                continue
            answer = (f"Seen {len(images)} frames of {sorted(sizes)} at temperature {params.temperature:g} "
                      f"with seed {params.seed}.")
            outputs.append(RequestOutput(prompt_tokens, [CompletionOutput(answer, list(range(len(answer.split()))))]))
        return outputs
