"""Caption clips: model-free `motion` captions, or a vision-language model on rendered frames
(`transformers` on GPU/CPU, `vllm` on GPUs), with a content-hash cache and output filters."""

from stages.caption.captioner import Captioner, make_captioner
from stages.caption.config import BACKENDS, CaptionConfig, CaptionFilters

__all__ = ["BACKENDS", "CaptionConfig", "CaptionFilters", "Captioner", "make_captioner"]
