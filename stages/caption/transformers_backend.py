"""The `transformers` backend: a Hugging Face vision-language chat model (AutoModelForImageTextToText) on GPU or CPU."""

from __future__ import annotations

import time

from stages.caption.backend import CaptionRequest, Generated, sampling_temperature
from stages.caption.config import CaptionConfig
from stages.caption.frames import clip_images


def chat_messages(prompt: str, image_count: int) -> list[dict]:
    """One user turn: the images (in time order) followed by the prompt."""
    content = [{"type": "image"} for _ in range(image_count)] + [{"type": "text", "text": prompt}]
    return [{"role": "user", "content": content}]


class TransformersBackend:
    """Loads the processor and model once (in the actor), then captions batches of requests."""

    def __init__(self, config: CaptionConfig) -> None:
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as exc:
            raise RuntimeError("the transformers backend needs torch and transformers (pip install -e .)") from exc
        self.config = config
        self.torch = torch
        device = config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32, "float32": torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.dtype)
        if dtype is None:
            raise ValueError(f"caption.dtype must be auto, float32, bfloat16 or float16, got {config.dtype!r}")
        self.processor = AutoProcessor.from_pretrained(config.model, revision=config.revision)
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # decoder-only generation pads on the left
        self.model = AutoModelForImageTextToText.from_pretrained(config.model, revision=config.revision, dtype=dtype)
        self.model.to(device).eval()
        self.cpu_stand_in = False

    def generate(self, requests: list[CaptionRequest]) -> list[Generated]:
        """Greedy requests in one batch, sampled ones in another (seeded), results in request order."""
        from PIL import Image

        images: dict[str, list] = {}
        for request in requests:
            if request.clip.clip_id not in images:
                images[request.clip.clip_id] = [Image.fromarray(i) for i in clip_images(request.clip, self.config)]
        results: list[Generated | None] = [None] * len(requests)
        groups: dict[float, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(sampling_temperature(self.config.temperature, request.caption_index), []).append(i)
        for temperature, members in sorted(groups.items()):
            batch = [requests[i] for i in members]
            for i, generated in zip(members, self._generate_batch(batch, images, temperature)):
                results[i] = generated
        return results  # type: ignore[return-value]

    def _generate_batch(self, batch: list[CaptionRequest], images: dict, temperature: float) -> list[Generated]:
        torch = self.torch
        start = time.perf_counter()
        texts, batch_images = [], []
        for request in batch:
            frames = images[request.clip.clip_id]
            texts.append(self.processor.apply_chat_template(
                chat_messages(self.config.prompt, len(frames)), add_generation_prompt=True, tokenize=False))
            batch_images.append(frames)
        inputs = self.processor(text=texts, images=batch_images, return_tensors="pt", padding=True).to(self.device)
        options = {"max_new_tokens": self.config.max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            options.update(temperature=temperature, top_p=self.config.top_p)
            torch.manual_seed(self.config.seed + 1000 * batch[0].caption_index)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.inference_mode():
            output = self.model.generate(**inputs, pad_token_id=pad, **options)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        decoded = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        seconds = (time.perf_counter() - start) / len(batch)
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        output_tokens = (new_tokens != pad).sum(dim=1).tolist()
        return [Generated(text, seconds, int(p), int(o)) for text, p, o in zip(decoded, prompt_tokens, output_tokens)]
