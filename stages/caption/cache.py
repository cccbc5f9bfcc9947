"""Caption cache: one small JSON file per (clip content hash, backend, model, revision, prompt hash, caption index),
written atomically (temp file + rename), so re-runs and model changes only compute what is missing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from stages.storage import write_bytes_atomically


def cache_key(content_hash: str, backend: str, model: str, revision: str, prompt_hash: str, caption_index: int) -> str:
    parts = [content_hash, backend, model, revision, prompt_hash, str(int(caption_index))]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class CaptionCache:
    """Raw model outputs by cache key under `root` (filters are applied after reading, so they can change)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None  # a missing or torn entry is recomputed
        return entry if isinstance(entry, dict) and isinstance(entry.get("text"), str) else None

    def put(self, key: str, entry: dict) -> None:
        path = self._path(key)
        data = json.dumps(entry, sort_keys=True, ensure_ascii=False).encode("utf-8")
        write_bytes_atomically(path, data, durable=False)
