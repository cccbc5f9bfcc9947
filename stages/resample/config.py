"""`ResampleConfig`: every knob of the resample stage, with defaults and value checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SHORT_POLICIES = ("skip", "loop", "retime", "hold")


@dataclass
class ResampleConfig:
    """How evaluated animations become fixed-shape clips. Distances are relative to the bbox diagonal of the
    evaluated surface at the window's first frame."""

    vertices: int | str = 4096  # N per clip, or "native" (welded source topology, capped by max_native_vertices)
    frames: list[int] = field(default_factory=lambda: [16])  # window lengths T (one clip set per length)
    fps: float = 10.0  # target frame rate; frames are evaluated exactly at f / fps
    stride: int | None = None  # window start step in frames; None = the window length (no overlap)
    max_clips_per_animation: int | None = None  # per animation and window length; evenly spaced windows
    max_native_vertices: int = 50_000  # "native" meshes above this are decimated to it
    weld_tolerance: float = 1e-6  # merge vertices whose whole trajectories agree within this
    join_tolerance: float = 0.01  # many-part meshes: parts this close in every frame merge when decimated
    # animations shorter than a window: policies tried in order until one gives a window (see stages.resample.short)
    short: list[str] | str = field(default_factory=lambda: ["loop", "retime"])
    loop_tolerance: float = 0.1  # "loop": first/last pose gap at most this fraction of the animation's own motion
    # filters (None disables one)
    min_displacement: float | None = 1e-3  # "static": max displacement from frame 0 below this
    max_displacement: float | None = 10.0  # "exploding": max displacement above this (NaN/inf always rejected)
    max_vertex_error: float | None = 0.01  # "vertex-error": a resampled vertex this far off the evaluated surface
    max_face_error: float | None = 0.02  # "face-error": p99 distance of resampled-surface points to the source
    max_coverage_error: float | None = 0.05  # "coverage-error": p99 distance of source-surface points to the clip
    min_source_vertices: int | None = 3  # "too-few-vertices": welded source vertex count below this
    max_source_vertices: int | None = 2_000_000  # "too-many-vertices": source vertex count above this
    dedup: bool = True  # "duplicate": drop later clips (by clip id) of the asset with an equal content hash
    content_quantum: float = 1e-3  # content hash grid in normalised units ([-1, 1] at frame 0)
    # quality measurement
    quality_samples: int = 1024  # area-weighted samples per surface (resampled faces, source faces) per topology
    seed: int = 0  # seeds the surface sampling
    max_evaluate_bytes: int = 1 << 30  # windows of one animation are evaluated in groups below this size

    def validate(self) -> "ResampleConfig":
        """Check values (types are the job parser's and the dataclass's business); raise ValueError naming the
        field; return self so it chains."""
        if self.vertices != "native" and not (isinstance(self.vertices, int) and self.vertices >= 3):
            raise ValueError(f"resample.vertices must be an integer >= 3 or 'native', not {self.vertices!r}")
        if not self.frames or min(self.frames) < 1:
            raise ValueError(f"resample.frames must be a non-empty list of window lengths >= 1, not {self.frames!r}")
        if len(set(self.frames)) != len(self.frames):
            raise ValueError(f"resample.frames has repeated lengths: {list(self.frames)}")
        if not 0 < self.fps <= 1000:
            raise ValueError(f"resample.fps must be a number in (0, 1000], not {self.fps!r}")
        unknown = [p for p in self.short_policies if p not in SHORT_POLICIES]
        if unknown or not self.short_policies:
            raise ValueError(f"resample.short must name policies from {SHORT_POLICIES}, not {self.short!r}")
        at_least = {"stride": 1, "max_clips_per_animation": 1, "min_source_vertices": 1, "max_source_vertices": 1,
                    "max_native_vertices": 3, "quality_samples": 16, "max_evaluate_bytes": 1}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"resample.{name} must be >= {low}, not {value!r}")
        for name in ("weld_tolerance", "join_tolerance", "loop_tolerance", "min_displacement", "max_displacement", "max_vertex_error",
                     "max_face_error", "max_coverage_error"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"resample.{name} must be >= 0, not {value!r}")
        if not self.content_quantum > 0:
            raise ValueError(f"resample.content_quantum must be > 0, not {self.content_quantum!r}")
        return self

    @property
    def short_policies(self) -> tuple[str, ...]:
        """`short` as a tuple of policy names (a single name is accepted too)."""
        return (self.short,) if isinstance(self.short, str) else tuple(self.short)

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
