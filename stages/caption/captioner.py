"""The caption stage: a callable class (Ray actor-pool friendly; the model is loaded once in `__init__`) mapping
clips to `captions` rows and `errors` rows, through the cache and the output filters."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

from schemas.sample import Clip
from schemas.tables import error_row
from stages.caption.backend import CaptionRequest, Generated
from stages.caption.cache import CaptionCache, cache_key
from stages.caption.config import CaptionConfig
from stages.caption.filters import clean_caption, rejection

STAGE = "caption"


def clip_content_hash(clip: Clip) -> str:
    """The clip's content hash, or a sha256 of its arrays when the clip carries none."""
    if clip.content_hash:
        return clip.content_hash
    digest = hashlib.sha256(np.ascontiguousarray(clip.vertices, dtype="<f4").tobytes())
    digest.update(np.ascontiguousarray(clip.faces, dtype="<i4").tobytes())
    return digest.hexdigest()


def load_backend(config: CaptionConfig):
    """The backend object for `config.backend` (imports its heavy packages only now)."""
    if config.backend == "motion":
        from stages.caption.motion_backend import MotionBackend

        return MotionBackend(config)
    if config.backend == "transformers":
        from stages.caption.transformers_backend import TransformersBackend

        return TransformersBackend(config)
    from stages.caption.vllm_backend import VLLMBackend

    return VLLMBackend(config)


class Captioner:
    """`captioner(clips, assets) -> (caption rows, error rows)`; `counts` accumulates seen/ok/skipped/failed/cached."""

    def __init__(self, config: CaptionConfig) -> None:
        self.config = config
        self.backend = load_backend(config)
        self.cache = CaptionCache(config.cache_dir) if config.cache_dir else None
        self.prompt_hash = config.prompt_hash()
        self.counts: Counter = Counter()
        self.tokens: Counter = Counter()

    def __call__(self, clips: list[Clip], assets: dict[str, dict] | None = None) -> tuple[list[dict], list[dict]]:
        assets = assets or {}
        rows: list[dict] = []
        errors: list[dict] = []
        pending: list[tuple[CaptionRequest, str, str]] = []
        for clip in clips:
            content_hash = clip_content_hash(clip)
            for index in range(self.config.captions_per_clip):
                self.counts["seen"] += 1
                key = cache_key(content_hash, self.config.backend, self.config.model_id, self.config.model_revision,
                                self.prompt_hash, index)
                cached = self.cache.get(key) if self.cache else None
                if cached is not None:
                    self.counts["cached"] += 1
                    self._finish(clip, content_hash, index, Generated(cached["text"], float(cached.get("seconds", 0))),
                                 rows, errors)
                else:
                    pending.append((CaptionRequest(clip, assets.get(clip.asset_id) or {}, index), content_hash, key))
        for start in range(0, len(pending), self.config.batch_size):
            batch = pending[start : start + self.config.batch_size]
            for (request, content_hash, key), generated in zip(batch, self._generate(batch, errors)):
                if generated is None:
                    continue
                self.tokens["prompt"] += generated.prompt_tokens
                self.tokens["output"] += generated.output_tokens
                if self.cache:
                    self.cache.put(key, {"text": generated.text, "seconds": round(generated.seconds, 4),
                                         "clip_id": request.clip.clip_id, "model": self.config.model_id,
                                         "backend": self.config.backend})
                self._finish(request.clip, content_hash, request.caption_index, generated, rows, errors)
        rows.sort(key=lambda r: (r["clip_id"], r["caption_index"]))
        errors.sort(key=lambda r: r["unit_id"])
        return rows, errors

    def _generate(self, batch, errors: list[dict]) -> list[Generated | None]:
        """Generate a batch; if it fails, retry one by one so that one bad clip only fails itself."""
        try:
            return self.backend.generate([request for request, _, _ in batch])
        except Exception as exc:  # noqa: BLE001 - a bad clip becomes an error row, never a crashed job
            if len(batch) > 1:
                return [self._generate([item], errors)[0] for item in batch]
            request = batch[0][0]
            self.counts["failed"] += 1
            errors.append(error_row(STAGE, f"{request.clip.clip_id}#{request.caption_index}", type(exc).__name__,
                                    f"{self.config.backend} captioning failed: {exc}", source=request.clip.asset_id))
            return [None]

    def _finish(self, clip: Clip, content_hash: str, index: int, generated: Generated, rows, errors) -> None:
        text = clean_caption(generated.text)
        rejected = rejection(text, self.config.filters)
        if rejected:
            self.counts["skipped"] += 1
            name, message = rejected
            errors.append(error_row(STAGE, f"{clip.clip_id}#{index}", name, message, source=clip.asset_id,
                                    status="skipped"))
            return
        self.counts["ok"] += 1
        rows.append({
            "clip_id": clip.clip_id,
            "content_hash": content_hash,
            "caption_index": int(index),
            "text": text,
            "backend": self.config.backend,
            "model": self.config.model_id,
            "revision": self.config.model_revision,
            "prompt_hash": self.prompt_hash,
            "cpu_stand_in": bool(getattr(self.backend, "cpu_stand_in", False)),
            "seconds": float(generated.seconds),
        })


def make_captioner(config: CaptionConfig) -> Captioner:
    """The captioner for `config` (loads the model now)."""
    return Captioner(config)
