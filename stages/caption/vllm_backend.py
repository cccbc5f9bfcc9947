"""The `vllm` backend: batched offline inference with any vLLM multimodal chat model (`LLM.chat`).

Request building and output parsing are pure functions (tested without vLLM or a GPU); only `VLLMBackend`
imports vllm, when it is constructed inside the caption actor.
"""

from __future__ import annotations

import time

from stages.caption.backend import CaptionRequest, Generated, sampling_temperature
from stages.caption.config import CaptionConfig
from stages.caption.frames import png_data_url

INSTALL_HINT = "the vllm caption backend needs vLLM on a CUDA machine: pip install 'dymesh[gpu]'"


def engine_arguments(config: CaptionConfig) -> dict:
    """Keyword arguments of `vllm.LLM(...)` for this config."""
    return {
        "model": config.model,
        "revision": config.revision,
        "tensor_parallel_size": int(config.tensor_parallel_size),
        "max_model_len": int(config.max_model_len),
        "gpu_memory_utilization": float(config.gpu_memory_utilization),
        "dtype": config.dtype,
        "seed": int(config.seed),
        "limit_mm_per_prompt": {"image": int(config.frames)},
        "max_num_seqs": max(1, int(config.batch_size)),
    }


def chat_request(prompt: str, image_urls: list[str]) -> list[dict]:
    """OpenAI-style chat messages: images (base64 data URLs, in time order) then the prompt text."""
    content = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


def sampling_arguments(config: CaptionConfig, clip_id: str, caption_index: int) -> dict:
    """Keyword arguments of `vllm.SamplingParams(...)` for one caption (per-request seed: reproducible)."""
    import hashlib

    temperature = sampling_temperature(config.temperature, caption_index)
    seed = int.from_bytes(hashlib.sha256(f"{config.seed}:{clip_id}:{caption_index}".encode()).digest()[:4], "little")
    arguments = {"max_tokens": int(config.max_new_tokens), "temperature": temperature, "seed": seed}
    if temperature > 0:
        arguments["top_p"] = float(config.top_p)
    return arguments


def parse_outputs(outputs: list, seconds_each: float) -> list[Generated]:
    """`RequestOutput`s (in request order) -> Generated (first completion's text, prompt and output token counts)."""
    parsed = []
    for output in outputs:
        completions = getattr(output, "outputs", None) or []
        if not completions:
            parsed.append(Generated("", seconds_each, len(getattr(output, "prompt_token_ids", None) or []), 0))
            continue
        first = completions[0]
        parsed.append(Generated(
            text=str(getattr(first, "text", "") or ""),
            seconds=seconds_each,
            prompt_tokens=len(getattr(output, "prompt_token_ids", None) or []),
            output_tokens=len(getattr(first, "token_ids", None) or []),
        ))
    return parsed


class VLLMBackend:
    """Holds one `vllm.LLM` (tensor-parallel over `tensor_parallel_size` GPUs); one `chat` call per batch."""

    def __init__(self, config: CaptionConfig) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise RuntimeError(INSTALL_HINT) from exc
        self.config = config
        self.vllm = vllm
        self.llm = vllm.LLM(**engine_arguments(config))
        self.cpu_stand_in = False

    def generate(self, requests: list[CaptionRequest]) -> list[Generated]:
        from stages.caption.frames import clip_images

        start = time.perf_counter()
        urls: dict[str, list[str]] = {}
        for request in requests:
            if request.clip.clip_id not in urls:
                urls[request.clip.clip_id] = [png_data_url(i) for i in clip_images(request.clip, self.config)]
        conversations = [chat_request(self.config.prompt, urls[r.clip.clip_id]) for r in requests]
        params = [self.vllm.SamplingParams(**sampling_arguments(self.config, r.clip.clip_id, r.caption_index))
                  for r in requests]
        outputs = self.llm.chat(conversations, sampling_params=params, use_tqdm=False)
        return parse_outputs(outputs, (time.perf_counter() - start) / max(1, len(requests)))
