"""Every numeric option of every job spec (dataset and training) has a checked range: the test walks every config
dataclass a spec reaches, so a new numeric field without a range in pipeline/ranges.py fails here; out-of-range
values (negative, zero where it makes no sense, absurdly large, NaN, infinite) are UserErrors naming the key; job and
run names are plain names."""

from __future__ import annotations

import dataclasses
import math
import types
import typing

import pytest

from pipeline.config import SOURCE_TYPES, _stage_classes, parse_job, run_config_from_dict
from pipeline.errors import UserError
from pipeline.ranges import range_of


def numeric(hint) -> bool:
    """A type hint that holds numbers: int, float, their optionals, lists and tuples of them."""
    if hint in (int, float):
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType, list, tuple):
        return any(numeric(a) for a in typing.get_args(hint) if a is not Ellipsis)
    return False


def integral(hint) -> bool:
    return hint is int or any(integral(a) for a in typing.get_args(hint) if a is not Ellipsis) and not any(
        a is float for a in typing.get_args(hint))


def dataclass_fields(cls):
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def required_keys(cls) -> dict:
    """A value for each field of `cls` without a default (every such source field is a string or a list of them)."""
    hints = typing.get_type_hints(cls)
    return {f.name: ["x"] if typing.get_origin(hints[f.name]) is list else "x" for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def dataset_places():
    """(where in a job spec, its dataclass, a function making a spec with {field: value} there)."""
    base = {"name": "t", "sources": [{"kind": "generated"}]}
    places = []
    for kind, cls in SOURCE_TYPES.items():
        required = required_keys(cls)
        places.append((f"sources[0] ({kind})", cls,
                       lambda v, kind=kind, req=required: {**base, "sources": [{"kind": kind, **req, **v}]}))
    from pipeline.config import JobSpec

    hints = typing.get_type_hints(JobSpec)  # every section typed with a config dataclass, and the stages' own
    sections = {f.name: hints[f.name] for f in dataclasses.fields(JobSpec) if dataclasses.is_dataclass(hints[f.name])}
    sections.update(_stage_classes())
    assert {"harvest", "run"} <= set(sections)
    for section, cls in sections.items():
        places.append((section, cls, lambda v, section=section: {**base, section: v}))
        for name, hint in dataclass_fields(cls):  # nested config dataclasses (caption.filters)
            if dataclasses.is_dataclass(hint):
                places.append((f"{section}.{name}", hint, lambda v, s=section, n=name: {**base, s: {n: v}}))
    return places


def training_places():
    from stages.train.configs import ModelPreset, RunConfig

    base = {"model": "vae", "preset": "tiny"}
    places = [("training job", RunConfig, lambda v: {**base, **v})]
    for part, hint in typing.get_type_hints(ModelPreset).items():
        if dataclasses.is_dataclass(hint):
            places.append((f"overrides.{part}", hint, lambda v, part=part: {**base, "overrides": {part: v}}))
    return places


def parse(spec):
    return (run_config_from_dict(spec) if "model" in spec else parse_job(spec))


PLACES = dataset_places() + training_places()
NUMERIC = [(where, cls, make, name, hint) for where, cls, make in PLACES for name, hint in dataclass_fields(cls)
           if numeric(hint)]


def test_the_walk_reaches_every_config_dataclass():
    names = {cls.__name__ for _, cls, _ in PLACES}
    assert {"ExecutionConfig", "HarvestConfig", "Limits", "ResampleConfig", "CaptionConfig", "CaptionFilters",
            "ShardConfig", "SplitConfig", "GeneratedSource", "ObjaverseSource", "ObjaverseXLSource", "Dt4dSource",
            "AmassSource", "BlenderSource", "RunConfig", "VAEConfig", "FlowConfig", "OptimConfig", "TextConfig"} <= names
    assert len(NUMERIC) > 100


def test_every_range_names_a_field_the_walk_reaches():
    """No range outlives its option (a renamed field would otherwise keep a dead entry and lose its check)."""
    from pipeline.ranges import RANGES

    fields = {}
    for _, cls, _ in PLACES:
        fields.setdefault(cls.__qualname__, set()).update(name for name, _ in dataclass_fields(cls))
    stale = {f"{cls}.{name}" for cls, ranges in RANGES.items() for name in ranges if name not in fields.get(cls, ())}
    assert not stale


@pytest.mark.parametrize("where, cls, make, name, hint", NUMERIC, ids=[f"{w}.{n}" for w, _, _, n, _ in NUMERIC])
def test_every_numeric_option_has_a_checked_range(where, cls, make, name, hint):
    allowed = range_of(cls, name)
    assert allowed is not None, f"{cls.__qualname__}.{name}: add its range to pipeline/ranges.py"
    as_list = typing.get_origin(hint) in (list, tuple) or any(
        typing.get_origin(a) in (list, tuple) for a in typing.get_args(hint))
    length = len(typing.get_args(hint)) if typing.get_origin(hint) is tuple and Ellipsis not in typing.get_args(
        hint) else None
    whole = integral(hint)

    def spec(value):
        values = [value] * (length or 1) if as_list else value
        return make({name: values})

    below = allowed.low if allowed.low_open else allowed.low - 1
    bad = [below, allowed.high * 10 + 1]
    if not whole:
        bad += [math.nan, math.inf]
    if allowed.low >= 0:
        bad.append(-1)
    for value in bad:
        value = int(value) if whole and math.isfinite(value) else value
        with pytest.raises(UserError, match=rf"\b{name}\b.*(out of range|expected)"):
            parse(spec(value))
    inside = allowed.high if whole else min(allowed.high, max(allowed.low, 0) + 0.5)
    try:  # a value inside the range is never refused for this key (other checks may still name other keys)
        parse(spec(int(inside) if whole else float(inside)))
    except UserError as exc:
        assert f".{name}: " not in str(exc) or "out of range" not in str(exc), exc


@pytest.mark.parametrize("value, message", [
    ({"run": {"unit_size": -1}}, r"run\.unit_size: -1 is out of range; it must be >= 1"),
    ({"run": {"unit_size": 0}}, r"run\.unit_size: 0 is out of range"),
    ({"run": {"workers": -1}}, r"run\.workers: -1 is out of range"),
    ({"run": {"item_timeout_s": -1}}, r"run\.item_timeout_s: -1\.0 is out of range; it must be > 0"),
    ({"run": {"item_timeout_s": 0}}, r"run\.item_timeout_s: 0\.0 is out of range"),
    ({"run": {"stall_timeout_s": 0}}, r"run\.stall_timeout_s"),
    ({"sources": [{"kind": "generated", "count": -5}]}, r"sources\[0\]\.count: -5 is out of range"),
    ({"resample": {"frames": [16, 0]}}, r"resample\.frames: 0 is out of range"),
    ({"harvest": {"fetch_threads": 0}}, r"harvest\.fetch_threads: 0 is out of range"),
    ({"harvest": {"retries": -1}}, r"harvest\.retries"),
])
def test_the_issue_examples_are_errors_naming_the_key(value, message):
    with pytest.raises(UserError, match=message):
        parse_job({"name": "t", "sources": [{"kind": "generated"}], **value})


@pytest.mark.parametrize("name", ["/etc", "../x", "a/b", "..", ".hidden", "", "x" * 101, "white space", "é", None, 7])
def test_names_are_plain_names(name):
    with pytest.raises(UserError, match="name: .* not a plain name"):
        parse_job({"name": name, "sources": [{"kind": "generated"}]})
    with pytest.raises(UserError, match=r"name: .*(not a plain name|expected str)"):
        run_config_from_dict({"model": "vae", "name": name})


def test_plain_names_and_in_range_values_are_accepted():
    job = parse_job({"name": "demo-2.v1_x", "sources": [{"kind": "generated", "count": 0}],
                     "run": {"unit_size": 1, "workers": None, "max_retries": 0}})
    assert (job.name, job.run.unit_size, job.sources[0].count) == ("demo-2.v1_x", 1, 0)
    assert run_config_from_dict({"model": "vae", "name": "run.1", "fail_at_step": -1}).name == "run.1"
