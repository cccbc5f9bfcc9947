"""`ResampleConfig`: every knob of the resample stage, with defaults and validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

METRICS = ("hausdorff", "chamfer")


@dataclass
class ResampleConfig:
    """How evaluated animations become fixed-shape clips. Distances are relative to the frame-0 bbox diagonal."""

    vertices: int | str = 4096  # N per clip, or "native" (welded source topology, capped by max_native_vertices)
    frames: list[int] = field(default_factory=lambda: [16])  # window lengths T (one clip set per length)
    fps: float = 10.0  # target frame rate; frames are evaluated exactly at f / fps
    stride: int | None = None  # window start step in frames; None = the window length (no overlap)
    max_clips_per_animation: int | None = None  # per animation and window length; evenly spaced windows
    max_native_vertices: int = 50_000  # "native" meshes above this are decimated to it
    weld_tolerance: float = 1e-6  # merge vertices whose whole trajectories agree within this
    loop_tolerance: float = 1e-3  # first and last pose within this = a looping animation
    min_part_vertices: int = 8  # each connected part keeps at least min(this, its size) vertices (a box: all)
    # filters (None disables one)
    min_displacement: float | None = 1e-3  # "static": max displacement from frame 0 below this
    max_displacement: float | None = 10.0  # "exploding": max displacement above this (NaN/inf always rejected)
    max_resample_error: float | None = 0.05  # "resample-error": surface error above this
    min_source_vertices: int | None = 3  # "too-few-vertices": welded source vertex count below this
    max_source_vertices: int | None = 2_000_000  # "too-many-vertices": source vertex count above this
    dedup: bool = True  # "duplicate": drop later clips (by clip id) of the asset with an equal content hash
    content_quantum: float = 1e-3  # content hash grid in normalised units ([-1, 1] at frame 0)
    # quality measurement
    error_metric: str = "hausdorff"  # hausdorff (max) or chamfer (mean) symmetric surface distance
    quality_frames: int = 4  # frames per window where the error is measured, evenly spaced with first and last (0: all)
    quality_samples: int = 1024  # area-weighted surface samples (plus as many vertices) per mesh for the error
    seed: int = 0  # seeds the surface sampling
    max_evaluate_bytes: int = 1 << 30  # windows of one animation are evaluated in groups below this size

    def validate(self) -> "ResampleConfig":
        """Raise ValueError naming the bad field; return self so it chains."""
        if self.vertices != "native":
            if isinstance(self.vertices, bool) or not isinstance(self.vertices, int) or self.vertices < 3:
                raise ValueError(f"resample.vertices must be an integer >= 3 or 'native', not {self.vertices!r}")
        if not isinstance(self.frames, (list, tuple)) or not self.frames:
            raise ValueError(f"resample.frames must be a non-empty list of window lengths, not {self.frames!r}")
        for length in self.frames:
            if isinstance(length, bool) or not isinstance(length, int) or length < 1:
                raise ValueError(f"resample.frames entries must be integers >= 1, not {length!r}")
        if len(set(self.frames)) != len(self.frames):
            raise ValueError(f"resample.frames has repeated lengths: {list(self.frames)}")
        if not isinstance(self.fps, (int, float)) or isinstance(self.fps, bool) or not 0 < self.fps <= 1000:
            raise ValueError(f"resample.fps must be a number in (0, 1000], not {self.fps!r}")
        _positive_int_or_none("stride", self.stride)
        _positive_int_or_none("max_clips_per_animation", self.max_clips_per_animation)
        _positive_int_or_none("min_source_vertices", self.min_source_vertices)
        _positive_int_or_none("max_source_vertices", self.max_source_vertices)
        for name in ("max_native_vertices", "min_part_vertices", "quality_samples", "max_evaluate_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"resample.{name} must be an integer >= 1, not {getattr(self, name)!r}")
        if self.max_native_vertices < 3:
            raise ValueError(f"resample.max_native_vertices must be >= 3, not {self.max_native_vertices}")
        for name in ("weld_tolerance", "loop_tolerance"):
            _non_negative(name, getattr(self, name))
        for name in ("min_displacement", "max_displacement", "max_resample_error"):
            if getattr(self, name) is not None:
                _non_negative(name, getattr(self, name))
        if not isinstance(self.dedup, bool):
            raise ValueError(f"resample.dedup must be true or false, not {self.dedup!r}")
        _non_negative("content_quantum", self.content_quantum)
        if self.content_quantum <= 0:
            raise ValueError(f"resample.content_quantum must be > 0, not {self.content_quantum!r}")
        if self.error_metric not in METRICS:
            raise ValueError(f"resample.error_metric must be one of {METRICS}, not {self.error_metric!r}")
        if isinstance(self.quality_frames, bool) or not isinstance(self.quality_frames, int) or self.quality_frames < 0:
            raise ValueError(f"resample.quality_frames must be an integer >= 0, not {self.quality_frames!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"resample.seed must be an integer, not {self.seed!r}")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "ResampleConfig":
        """Build from a job spec's `resample:` section; unknown keys are an error (catches typos)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"resample: unknown option(s) {unknown}; known: {sorted(known)}")
        values = dict(values)
        if isinstance(values.get("frames"), int):
            values["frames"] = [values["frames"]]
        return cls(**values).validate()

    def to_dict(self) -> dict:
        return asdict(self)


def _positive_int_or_none(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"resample.{name} must be an integer >= 1 or null, not {value!r}")


def _non_negative(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"resample.{name} must be a number >= 0, not {value!r}")
