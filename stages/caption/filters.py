"""Clean a model's caption and reject empty, refused, over-long or repetitive ones (with the rule's name)."""

from __future__ import annotations

import re
from collections import Counter

from stages.caption.config import CaptionFilters


def clean_caption(text: str) -> str:
    """Strip whitespace, surrounding quotes and a leading "Caption:"-style label; collapse runs of whitespace."""
    text = " ".join(str(text).split())
    text = re.sub(r"^(?:caption|description|answer)\s*:\s*", "", text, flags=re.I)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def repeated_ngram_ratio(text: str, n: int) -> float:
    """Share of word n-grams that are repeats of an earlier n-gram (0 = no repetition)."""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 4:
        return 0.0
    counts = Counter(grams)
    return sum(c - 1 for c in counts.values()) / len(grams)


def rejection(text: str, filters: CaptionFilters) -> tuple[str, str] | None:
    """(rule name, message) if the cleaned caption is rejected, else None."""
    if len(text) < filters.min_chars:
        return "empty", f"caption has {len(text)} characters (minimum {filters.min_chars}): {text!r}"
    for pattern in filters.refusal_patterns:
        if re.search(pattern, text, flags=re.I):
            return "refused", f"caption looks like a refusal (matches {pattern!r}): {text[:120]!r}"
    if len(text) > filters.max_chars:
        return "too-long", f"caption has {len(text)} characters (maximum {filters.max_chars})"
    ratio = repeated_ngram_ratio(text, filters.ngram)
    if ratio > filters.max_repeated_ngram_ratio:
        limit = filters.max_repeated_ngram_ratio
        return "repetitive", f"{ratio:.0%} of word {filters.ngram}-grams repeat (maximum {limit:.0%})"
    return None
