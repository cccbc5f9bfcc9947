"""JSON from untrusted files: parsed with a nesting bound, never raising RecursionError, NaN and Infinity refused.

glTF documents nest a few levels (asset extras and XMP packets a few more); 100,000 nested brackets make the
C parser raise RecursionError and deep documents break any recursive walk later, so both are one ValueError.
"""

from __future__ import annotations

import json

MAX_DEPTH = 128


class JsonTooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed."""


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


def depth_over(value: object, limit: int) -> bool:
    """Whether arrays/objects in `value` nest deeper than `limit` (iterative: no recursion on deep values)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH, max_items: int | None = None) -> object:
    """json.loads for untrusted text: ValueError (JsonTooDeep when nested deeper than `max_depth`) for anything
    it cannot return safely; UnicodeDecodeError is a ValueError too. `max_items` bounds the values (counted as
    separators, before parsing): "[0.0,0.0,...]" takes ~8x its size in Python objects."""
    if max_items is not None:
        separators = raw.count(b"," if isinstance(raw, bytes) else ",") + raw.count(b":" if isinstance(raw, bytes)
                                                                                   else ":")
        if separators > max_items:
            raise ValueError(f"JSON holds more than {max_items} values")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise JsonTooDeep(f"JSON nests deeper than {max_depth} levels") from None
    if isinstance(value, (dict, list)) and depth_over(value, max_depth):
        raise JsonTooDeep(f"JSON nests deeper than {max_depth} levels")
    return value
