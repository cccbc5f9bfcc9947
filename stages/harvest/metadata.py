"""What an asset file says about itself: name, kind, tags, licence and attribution, read bounded and robustly.

Sources, first found wins: `asset.extras` (name, kind, tags, license, attribution: DyMesh's generated assets
write them), the KHR_xmp_json_ld packet of the asset (dc:title, dc:subject, dc:creator, and the licence in
cc:license / xmpRights:UsageTerms / dc:rights), and `asset.copyright` (a licence named at its start, such as
"CC-BY 4.0 Model by ...", becomes the SPDX id; the whole text is the attribution). Every string is made
printable (lone surrogates escaped, whitespace collapsed) and cut to a bounded length; nothing here raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stages.harvest.pack import read_json_document

MAX_TEXT = 300
MAX_TAGS = 32
MAX_TAG = 64
MAX_VALUES = 64  # strings collected from one XMP property
LICENSE_KEYS = ("cc:license", "xmpRights:UsageTerms", "dc:rights", "schema:license", "license")

# (pattern over a licence text or URL, SPDX id); first match wins, so specific forms come first
SPDX = [(re.compile(p, re.IGNORECASE), spdx) for p, spdx in (
    (r"\bCC0\b|publicdomain/zero/1\.0|public domain dedication", "CC0-1.0"),
    (r"\bCC[- ]?BY[- ]?NC[- ]?SA\b[- ]?4\.0|licenses/by-nc-sa/4\.0", "CC-BY-NC-SA-4.0"),
    (r"\bCC[- ]?BY[- ]?NC[- ]?ND\b[- ]?4\.0|licenses/by-nc-nd/4\.0", "CC-BY-NC-ND-4.0"),
    (r"\bCC[- ]?BY[- ]?NC\b[- ]?4\.0|licenses/by-nc/4\.0", "CC-BY-NC-4.0"),
    (r"\bCC[- ]?BY[- ]?SA\b[- ]?4\.0|licenses/by-sa/4\.0", "CC-BY-SA-4.0"),
    (r"\bCC[- ]?BY[- ]?ND\b[- ]?4\.0|licenses/by-nd/4\.0", "CC-BY-ND-4.0"),
    (r"\bCC[- ]?BY\b[- ]?4\.0|licenses/by/4\.0", "CC-BY-4.0"),
    (r"\bCC[- ]?BY[- ]?SA\b[- ]?3\.0|licenses/by-sa/3\.0", "CC-BY-SA-3.0"),
    (r"\bCC[- ]?BY\b[- ]?3\.0|licenses/by/3\.0", "CC-BY-3.0"),
    (r"^\s*MIT\b", "MIT"),
    (r"^\s*Apache[- ]?2\.0\b|Apache License,? Version 2\.0", "Apache-2.0"),
)]


@dataclass(frozen=True)
class AssetMetadata:
    """Descriptive fields of one asset ("" / () when the file does not say)."""

    name: str = ""
    kind: str = ""
    tags: tuple[str, ...] = ()
    license: str = ""
    attribution: str = ""


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """A printable, one-line, bounded string ("" for anything that is not a string)."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.encode("utf-8", "backslashreplace").decode("utf-8").split())
    text = "".join(c for c in text if c >= " " and c != "\x7f")  # no control characters (NUL, escapes)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def texts(value: object) -> list[str]:
    """The strings of a JSON-LD value: "x", {"@value": "x"}, {"@list"/"@set": [...]}, rdf:Alt {"rdf:_1": ...}."""
    found: list[str] = []
    stack = [(value, 0)]
    while stack and len(found) < MAX_VALUES:
        current, depth = stack.pop()
        if isinstance(current, str):
            found.append(current)
        elif depth < 4 and isinstance(current, list):
            stack.extend((item, depth + 1) for item in reversed(current[:MAX_VALUES]))
        elif depth < 4 and isinstance(current, dict):
            inner = [current[k] for k in ("@value", "@list", "@set") if k in current]
            inner += [v for k, v in sorted(current.items(), key=lambda kv: str(kv[0]))[:MAX_VALUES]
                      if isinstance(k, str) and k.startswith("rdf:_")]
            stack.extend((item, depth + 1) for item in reversed(inner))
    return found


def spdx(text: str) -> str:
    """The SPDX id a licence text or URL names, or ""."""
    for pattern, identifier in SPDX:
        if pattern.search(text[:MAX_TEXT]):
            return identifier
    return ""


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def xmp_packet(document: dict) -> dict:
    """The KHR_xmp_json_ld packet the `asset` object refers to, or {}."""
    packets = _dict(_dict(document.get("extensions")).get("KHR_xmp_json_ld")).get("packets")
    index = _dict(_dict(_dict(document.get("asset")).get("extensions")).get("KHR_xmp_json_ld")).get("packet")
    if not isinstance(packets, list) or type(index) is not int or not 0 <= index < len(packets):
        return {}
    return _dict(packets[index])


def _first(*candidates: object, limit: int = MAX_TEXT) -> str:
    for candidate in candidates:
        for text in texts(candidate):
            if clean(text, limit):
                return clean(text, limit)
    return ""


def metadata_of(document: dict) -> AssetMetadata:
    """AssetMetadata from a parsed glTF document."""
    asset = _dict(document.get("asset"))
    extras = _dict(asset.get("extras"))
    xmp = xmp_packet(document)
    copyright_text = clean(asset.get("copyright"))
    stated = _first(extras.get("license"), *(xmp.get(key) for key in LICENSE_KEYS))
    license_id = spdx(stated) or stated or spdx(copyright_text)
    tag_values = texts(extras.get("tags")) if "tags" in extras else texts(xmp.get("dc:subject"))
    tags = tuple(dict.fromkeys(t for t in (clean(v, MAX_TAG) for v in tag_values) if t))[:MAX_TAGS]
    return AssetMetadata(
        name=_first(extras.get("name"), xmp.get("dc:title")),
        kind=_first(extras.get("kind"), limit=MAX_TAG),
        tags=tags,
        license=license_id,
        attribution=_first(extras.get("attribution"), copyright_text, xmp.get("dc:creator")),
    )


def read_metadata(data: bytes) -> AssetMetadata:
    """AssetMetadata of GLB or .gltf bytes; empty when the JSON cannot be read (the evaluator reports why)."""
    try:
        document = read_json_document(data)
        return metadata_of(document) if document else AssetMetadata()
    except Exception:  # noqa: BLE001 - metadata is descriptive: a document it cannot read describes nothing
        return AssetMetadata()
