"""The manual's job-spec and training-spec references are checked against the config dataclasses: every option is
documented where the manual says it is, every documented option exists, and the reference tables' defaults are the
code's."""

from __future__ import annotations

import dataclasses
import re

import pytest

from paths import REPO
from pipeline.config import ExecutionConfig, HarvestConfig
from pipeline.sources import SOURCE_TYPES
from stages.caption import CaptionConfig
from stages.evaluate import Limits
from stages.resample import ResampleConfig
from stages.shard import ShardConfig
from stages.splits import SplitConfig
from stages.train.configs import RunConfig

ROW = re.compile(r"^\|\s*(`[^|]*`)\s*\|\s*([^|]*?)\s*\|", re.M)
# section of a spec -> (its dataclass, the document that describes it, whether that document's reference table
# must give every option's default)
SECTIONS = {
    "harvest": (HarvestConfig, "docs/jobs.md", True),
    "run": (ExecutionConfig, "docs/jobs.md", True),
    "split": (SplitConfig, "docs/jobs.md", False),
    "evaluate": (Limits, "docs/evaluate.md", False),
    "resample": (ResampleConfig, "docs/resample.md", False),
    "caption": (CaptionConfig, "docs/caption.md", False),
    "shard": (ShardConfig, "docs/shards.md", False),
    "training": (RunConfig, "docs/training.md", True),
}


def section_table(document: str, heading: str) -> dict[str, str]:
    """`key` -> default cell of the reference table that follows a line starting with `heading`."""
    lines = (REPO / document).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    rows = {}
    for names, default in ROW.findall("\n".join(lines[first:end])):
        keys = re.findall(r"`([^`]+)`", names)
        values = [v.strip() for v in default.split(" / " if " / " in default else ", ")] if len(keys) > 1 else [default]
        for i, key in enumerate(keys):
            rows[key] = values[i] if len(values) == len(keys) else default
    return rows


def spelled(value) -> set[str]:
    """Ways a reference table may write a default."""
    if value is None:
        return {"null", "—", "-"}
    if isinstance(value, bool):
        return {str(value).lower()}
    if isinstance(value, (int, float)):
        forms = {str(value), f"{value:,}", repr(float(value)) if isinstance(value, float) else str(value)}
        if isinstance(value, float) and value.is_integer():
            forms.add(str(int(value)))
        return forms
    return {str(value), f"`{value}`"}


def fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_option_is_documented(section):
    cls, document, _ = SECTIONS[section]
    text = (REPO / document).read_text(encoding="utf-8")
    missing = [f.name for f in fields(cls) if f"`{f.name}`" not in text and f"{f.name}:" not in text]
    assert not missing, f"{document} does not document {section} option(s) {missing} of {cls.__name__}"


@pytest.mark.parametrize("section,heading", [("harvest", "`harvest:`"), ("run", "`run:`")])
def test_job_reference_tables_list_real_options_with_the_code_defaults(section, heading):
    cls, document, _ = SECTIONS[section]
    table = section_table(document, heading)
    names = {f.name: f for f in fields(cls)}
    assert set(table) == set(names), f"{document} {heading} table keys differ: extra {set(table) - set(names)}, " \
                                     f"missing {set(names) - set(table)}"
    for name, cell in table.items():
        default = names[name].default
        assert any(cell == form or cell.startswith(form + " ") for form in spelled(default)), \
            f"{document}: {section}.{name} default is {default!r}, the table says {cell!r}"


def test_training_reference_table_lists_real_options_with_the_code_defaults():
    table = section_table("docs/training.md", "## Job spec")
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else None for f in fields(RunConfig)}
    assert set(table) <= set(defaults), f"docs/training.md documents unknown keys {set(table) - set(defaults)}"
    for name, cell in table.items():
        if cell.startswith(("run folder", "—")) or defaults[name] is None:
            continue
        assert any(cell == form or cell.startswith(form + " ") for form in spelled(defaults[name])), \
            f"docs/training.md: {name} default is {defaults[name]!r}, the table says {cell!r}"


def test_every_source_kind_and_its_keys_are_documented():
    text = (REPO / "docs" / "jobs.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w-]+)` \|.*$", text, re.M)}
    for kind, cls in SOURCE_TYPES.items():
        assert kind in rows, f"docs/jobs.md has no row for source kind {kind!r}"
        missing = [f.name for f in fields(cls) if f.name != "kind" and f"`{f.name}`" not in rows[kind]]
        assert not missing, f"docs/jobs.md: source {kind!r} row does not name {missing}"
