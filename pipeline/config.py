"""The one job parser: dataset job specs and training job specs (YAML) -> validated dataclasses.

`build(cls, mapping)` checks every key and value type against the dataclass's type hints (unknown keys and wrong
types are errors that name the key), then calls the dataclass's own `validate()`, which checks values only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import UserError
from pipeline.ranges import check_range
from stages.splits import SplitConfig

MiB = 1024 * 1024


from pipeline.sources import SOURCE_KINDS, SOURCE_TYPES



@dataclass(frozen=True)
class HarvestConfig:
    """Fetching: caps, timeouts and retries (retries only for transient I/O errors)."""

    max_asset_bytes: int = 256 * MiB  # larger files are harvest errors (kind "limit")
    max_side_file_bytes: int = 256 * MiB  # one .bin/.png next to a .gltf
    timeout_s: float = 60.0  # per network request
    retries: int = 3  # attempts after the first, for transient I/O errors only
    backoff_s: float = 1.0  # first retry delay; doubles each attempt
    fetch_threads: int = 8  # concurrent fetches of URL / object-store sources
    max_listed_entries: int = 1_000_000  # folder entries looked at while listing one source; more is an error row
    max_redirects: int = 5  # HTTP redirects followed per URL (each hop's address is checked)
    transfer_timeout_s: float = 900.0  # one whole download (all hops and the body), against slow-drip servers


STAGES = ("harvest", "evaluate", "resample", "caption", "shard")  # the dataset stages, in order


@dataclass(frozen=True)
class ExecutionConfig:
    """How a dataset job executes (the job spec's `run:` section): Ray resources, units of work, time limits."""

    unit_size: int = 16  # assets per committed unit of work
    workers: int | None = None  # concurrent evaluate+resample tasks; default: CPUs of the cluster
    num_cpus: int | None = None  # local Ray only; default os.cpu_count()
    object_store_mb: int | None = None  # local Ray only; default 512 on machines with <= 4 CPUs
    address: str | None = None  # Ray cluster address; --address and RAY_ADDRESS take precedence
    item_timeout_s: float = 300.0  # one asset's evaluate+resample; killed and recorded as failed after this
    stall_timeout_s: float = 1800.0  # abort (resumable) when nothing finishes for this long
    max_retries: int = 1  # re-runs of an asset whose worker died (system error), never for bad assets
    memory_base_mb: int = 256  # Ray `memory` resource per asset task: base + factor * asset bytes
    memory_per_byte: float = 40.0
    memory_max_mb: int = 16384
    caption_actors: int = 1  # captioner actor pool size
    caption_num_cpus: float = 0.5
    caption_num_gpus: float = 0.0
    record_timings: bool = False  # keep captions.seconds (wall time); off writes 0.0 so re-runs are byte-identical


@dataclass(frozen=True)
class JobSpec:
    """A whole job: sources plus the configuration of every stage."""

    name: str
    sources: list[Any]
    harvest: HarvestConfig
    evaluate: Any  # stages.evaluate.Limits
    resample: Any  # stages.resample.ResampleConfig
    caption: Any  # stages.caption.CaptionConfig
    shard: Any  # stages.shard.ShardConfig
    run: ExecutionConfig
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)  # in the resample hash: clips carry splits
    base_dir: str = "."  # folder that relative paths in the spec are resolved against (the job file's)

    def stage_configs(self) -> dict[str, Any]:
        return {stage: getattr(self, stage) for stage in STAGES}


def _stage_classes() -> dict[str, type]:
    """The stages' own config dataclasses (imported lazily: the stages import numpy and friends)."""
    from stages.caption import CaptionConfig
    from stages.evaluate import Limits
    from stages.resample import ResampleConfig
    from stages.shard import ShardConfig

    return {"evaluate": Limits, "resample": ResampleConfig, "caption": CaptionConfig, "shard": ShardConfig}


TOP_LEVEL_KEYS = ("name", "sources", *STAGES, "split", "run")


def read_yaml(path: str | Path, example: str) -> Any:
    """A YAML file's content; a missing or malformed file is a UserError naming an example to start from."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"job spec {path} not found; pass a YAML file such as {example}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def load_job(path: str | Path) -> JobSpec:
    """Read and validate a dataset job spec YAML file."""
    path = Path(path)
    return parse_job(read_yaml(path, "jobs/demo.yaml"), base_dir=path.resolve().parent, where=str(path))


def parse_job(data: Any, base_dir: str | Path = ".", where: str = "job spec") -> JobSpec:
    """Validate a job spec already parsed from YAML."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: the job spec must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    name = check_plain_name(data.get("name", Path(str(where)).stem), f"{where}: name")
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise UserError(f"{where}: sources: expected a non-empty list of sources (each with a kind: "
                        f"{', '.join(SOURCE_KINDS)})")
    parsed_sources = [parse_source(s, f"{where}: sources[{i}]") for i, s in enumerate(sources)]
    classes = _stage_classes()
    sections = {}
    for key, cls in (("harvest", HarvestConfig), ("run", ExecutionConfig), ("split", SplitConfig), *classes.items()):
        sections[key] = build(cls, data.get(key) or {}, f"{where}: {key}")
    return JobSpec(name=name, sources=parsed_sources, base_dir=str(base_dir), **sections)


def parse_source(data: Any, where: str):
    if not isinstance(data, dict) or "kind" not in data:
        raise UserError(f"{where}: expected a mapping with a kind ({', '.join(SOURCE_KINDS)})")
    kind = data["kind"]
    if kind not in SOURCE_TYPES:
        raise UserError(f"{where}: kind: unknown source kind {kind!r}; allowed: {', '.join(SOURCE_KINDS)}")
    return build(SOURCE_TYPES[kind], data, where)


def load_training_job(path: str | Path, **changes) -> Any:
    """A training job spec (YAML mapping of stages.train.configs.RunConfig fields) with `changes` applied (None
    values ignored)."""
    spec = read_yaml(path, "jobs/train-vae.yaml")
    if spec is not None and not isinstance(spec, dict):
        raise UserError(f"{path}: a training job spec is a YAML mapping of options")
    spec = dict(spec or {})
    spec.update({k: v for k, v in changes.items() if v is not None})
    return run_config_from_dict(spec, where=str(path))


def check_training_shards(run: Any) -> str:
    """The tar folder a training run will read (stages.shard.layout.resolve_shards), or a UserError saying what to
    do, before any training process starts."""
    from stages.shard.layout import resolve_shards

    if not run.shards:
        raise UserError("set shards: a job output folder (out/demo), a shard folder or synthetic:<clips> (--shards)")
    try:
        return resolve_shards(run.shards)
    except FileNotFoundError as exc:
        raise UserError(f"shards: {exc}") from None


def run_config_from_dict(spec: Any, where: str = "training job") -> Any:
    """A validated stages.train.configs.RunConfig; the preset overrides are type-checked part by part."""
    from stages.train.configs import ModelPreset, RunConfig

    overrides = spec.get("overrides") if isinstance(spec, dict) else None
    if isinstance(overrides, dict):
        parts = {name: hint for name, hint in typing.get_type_hints(ModelPreset).items() if dataclasses.is_dataclass(hint)}
        for part, values in overrides.items():
            if part not in parts:
                raise UserError(f"{where}: overrides: unknown part {part!r}; allowed: {', '.join(parts)}")
            build(parts[part], values, f"{where}: overrides.{part}")
    run = build(RunConfig, spec, where)
    check_plain_name(run.name, f"{where}: name")
    return run


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_plain_name(name: Any, where: str) -> str:
    """A job or run name: it names a folder (out/<name>, <storage_path>/<name>), so no `/`, no `..`, no absolute
    path: letters, digits, `.`, `_`, `-`, starting with a letter or digit, at most 100 characters."""
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise UserError(f"{where}: {name!r} is not a plain name (letters, digits, '.', '_' and '-', starting with a "
                        "letter or digit, at most 100 characters): it names the output folder")
    return name


def build(cls: type, data: Any, where: str):
    """Make dataclass `cls` from a mapping, checking every key and value type."""
    if dataclasses.is_dataclass(data) and isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{where}: missing required key {f.name!r}")
            continue
        kwargs[f.name] = convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        try:
            check_range(cls, f.name, kwargs[f.name], f"{where}.{f.name}")
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:
        value = cls(**kwargs)
        return value.validate() if callable(getattr(value, "validate", None)) else value
    except (TypeError, ValueError) as exc:  # the stage's own __post_init__ / validate() checks
        raise UserError(f"{where}: {exc}") from None


def convert(hint: Any, value: Any, where: str):
    """Check `value` against a type hint (dataclasses, lists, tuples, dicts, unions, literals, scalars)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return convert(option, value, where)
            except UserError:
                continue
        raise UserError(f"{where}: expected {_describe(hint)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
        raise UserError(f"{where}: expected null, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise UserError(f"{where}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise UserError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or hint is tuple) else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {convert(kt, k, where): convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value
    raise UserError(f"{where}: expected {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def as_plain(value: Any) -> Any:
    """A JSON-able form of a config value (dataclasses as dicts, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): as_plain(v) for k, v in sorted(value.items())}
    return value


def config_hash(stage: str, config: Any, upstream: str = "") -> str:
    """Short hash of a stage's config and its upstream hash: names the stage's output partitions."""
    text = json.dumps({"stage": stage, "config": as_plain(config), "upstream": upstream}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
