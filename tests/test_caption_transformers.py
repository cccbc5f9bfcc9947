"""The transformers backend end to end on a tiny randomly initialised vision-language model built offline in the
test session (conftest's `tiny_vlm`: stages.caption.tiny_vlm, LLaVA architecture, BPE tokenizer trained on the
spot, built once per session). No downloads."""

from __future__ import annotations

from synthetic_clips import rotating_box, waving_arm


def _config(model: str, **overrides):
    from stages.caption import CaptionConfig, CaptionFilters

    # random weights emit random tokens: accept any non-empty text so that every request yields a row
    options = dict(backend="transformers", model=model, device="cpu", image_size=56, frames=2, max_new_tokens=6,
                   renderer="numpy",
                   filters=CaptionFilters(min_chars=1, refusal_patterns=(), max_repeated_ngram_ratio=1.0))
    options.update(overrides)
    return CaptionConfig(**options)


def test_transformers_backend_end_to_end_on_a_tiny_random_vlm(tiny_vlm):
    from stages.caption import make_captioner

    captioner = make_captioner(_config(tiny_vlm, captions_per_clip=2))
    clips = [waving_arm(frames=4), rotating_box(frames=4)]
    rows, errors = captioner(clips, {})
    assert captioner.counts["seen"] == 4 == captioner.counts["ok"] + captioner.counts["skipped"]
    assert captioner.tokens["output"] > 0 and captioner.tokens["prompt"] > 4 * 8, "images expand into tokens"
    assert {r["backend"] for r in rows} == {"transformers"} and {r["model"] for r in rows} == {tiny_vlm}
    assert all(isinstance(r["text"], str) and r["text"] for r in rows)
    greedy = [r["text"] for r in rows if r["caption_index"] == 0]
    again, _ = make_captioner(_config(tiny_vlm))(clips, {})
    assert [r["text"] for r in again] == greedy, "greedy decoding is reproducible"


def test_transformers_backend_caches(tiny_vlm, tmp_path):
    from stages.caption import make_captioner

    first = make_captioner(_config(tiny_vlm, cache_dir=str(tmp_path)))
    rows, _ = first([waving_arm(frames=3)], {})
    second = make_captioner(_config(tiny_vlm, cache_dir=str(tmp_path)))
    again, _ = second([waving_arm(frames=3)], {})
    assert second.counts["cached"] == 1 and [r["text"] for r in again] == [r["text"] for r in rows]
