"""Caption stage configuration (the job spec's `caption:` section; pipeline.config parses it, `validate` checks values)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

BACKENDS = ("vllm", "transformers", "motion")  # best first: also the shard stage's default preference order
MOTION_MODEL = "motion-heuristic"
MOTION_REVISION = "1"  # bump when the motion captioner's analysis or phrasing changes
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_PROMPT = (
    "These images are frames of a short 3D animation of one object, in time order; each frame shows the object "
    "from four fixed viewpoints in a 2x2 grid. Describe in one or two sentences how the object moves: which parts "
    "move, in what direction, how far and how fast, and whether the motion repeats. Name the object if you can. "
    "Do not describe colours, the background or the camera."
)


@dataclass
class CaptionFilters:
    """Rejection rules for model outputs; a rejected caption becomes a "skipped" error row named by the rule."""

    min_chars: int = 8  # shorter (after cleaning) -> "empty"
    max_chars: int = 600  # longer -> "too-long"
    refusal_patterns: tuple[str, ...] = (
        r"\bI'?\s?a?m sorry\b", r"\bI cannot\b", r"\bI can'?t\b", r"\bI am unable\b", r"\bI'm unable\b",
        r"\bas an AI\b", r"\bunable to (?:see|view|determine|describe)\b",
    )
    ngram: int = 3
    max_repeated_ngram_ratio: float = 0.5  # share of repeated word n-grams above which -> "repetitive"


@dataclass
class CaptionConfig:
    """How clips are captioned. `backend`: motion (model-free), transformers (HF, GPU or CPU), vllm (GPUs)."""

    backend: str = "motion"
    model: str = DEFAULT_MODEL  # ignored by the motion backend (its model is "motion-heuristic")
    revision: str = "main"
    prompt: str = DEFAULT_PROMPT
    max_new_tokens: int = 96
    captions_per_clip: int = 1
    temperature: float = 0.0  # 0 = greedy for caption 0; later captions sample at max(temperature, 0.7)
    top_p: float = 0.9
    seed: int = 0
    image_size: int = 448  # side of each rendered frame (a grid of `views` views)
    views: int = 4
    frames: int = 4  # frames sampled evenly from each clip and shown to the model
    renderer: str = "auto"  # auto | numpy | egl
    tensor_parallel_size: int = 1
    num_gpus: int = 1  # GPUs per caption actor (vllm: usually = tensor_parallel_size)
    batch_size: int = 16  # clips per model call
    max_model_len: int = 8192  # vllm
    gpu_memory_utilization: float = 0.9  # vllm
    dtype: str = "auto"  # transformers / vllm dtype
    device: str = "auto"  # transformers: auto | cpu | cuda
    cache_dir: str = ""  # empty = no cache
    filters: CaptionFilters = field(default_factory=CaptionFilters)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> CaptionConfig:
        """Value checks (keys and types are the job parser's)."""
        if self.backend not in BACKENDS:
            raise ValueError(f"caption backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("max_new_tokens", "captions_per_clip", "image_size", "frames", "tensor_parallel_size",
                     "batch_size", "max_model_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"caption.{name} must be at least 1, got {getattr(self, name)!r}")
        if not 1 <= self.views <= 4:
            raise ValueError(f"caption.views must be between 1 and 4, got {self.views}")
        if self.temperature < 0:
            raise ValueError(f"caption.temperature must be >= 0, got {self.temperature}")
        return self

    @property
    def model_id(self) -> str:
        return MOTION_MODEL if self.backend == "motion" else self.model

    @property
    def model_revision(self) -> str:
        return MOTION_REVISION if self.backend == "motion" else self.revision

    def prompt_hash(self) -> str:
        """Hash of everything the model sees besides the clip: prompt text and render settings (motion: its version)."""
        if self.backend == "motion":
            seen = {"motion": MOTION_REVISION}
        else:
            seen = {"prompt": self.prompt, "image_size": self.image_size, "views": self.views, "frames": self.frames,
                    "max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
                    "seed": self.seed}
        return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)
