"""Content-addressed blob store: blobs/<sha256[:2]>/<sha256>.<ext>, written atomically, never rewritten."""

from __future__ import annotations

import hashlib
from pathlib import Path

from stages.storage import write_bytes_atomically


def content_id(data: bytes) -> str:
    """The asset id: sha256 hex of the (packed) asset bytes."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Stores asset bytes under their sha256; the same bytes from two sources are stored once."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def relative_path(self, asset_id: str, fmt: str) -> str:
        return f"blobs/{asset_id[:2]}/{asset_id}.{fmt}"

    def path(self, relative: str) -> Path:
        return self.root / relative

    def put(self, data: bytes, fmt: str) -> tuple[str, str]:
        """Store `data`; returns (asset_id, path relative to the job output folder)."""
        asset_id = content_id(data)
        relative = self.relative_path(asset_id, fmt)
        path = self.root / relative
        if not path.is_file() or path.stat().st_size != len(data):
            write_bytes_atomically(path, data, durable=False)
        return asset_id, relative

    def get(self, relative: str) -> bytes:
        return (self.root / relative).read_bytes()
