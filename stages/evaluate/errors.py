"""Typed, one-line errors for assets that cannot be evaluated."""

from __future__ import annotations


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class AssetError(Exception):
    """An asset that cannot be evaluated; `str()` is one line: `<file>: <kind>: <what>`."""

    kind = "malformed"

    def __init__(self, file: str, detail: str):
        self.file = _one_line(file, 200)
        self.detail = _one_line(detail)
        super().__init__(f"{self.file}: {self.kind}: {self.detail}")


class MalformedAsset(AssetError):
    """Not a readable glTF 2.0 document (bad container, JSON, indices, layout)."""

    kind = "malformed"


class UnsupportedAsset(AssetError):
    """Valid but outside what we evaluate (glTF 1.0, compressed geometry, unknown required extension)."""

    kind = "unsupported"


class UnsafeAsset(AssetError):
    """Refers to something outside the asset folder (absolute path, `..`, URL scheme)."""

    kind = "unsafe"


class LimitExceeded(AssetError):
    """Over a configured cap (bytes, counts, frames); checked before allocating."""

    kind = "limit"


class BadData(AssetError):
    """Readable but numerically unusable (NaN/inf, out-of-range indices, decreasing key times)."""

    kind = "bad-data"
