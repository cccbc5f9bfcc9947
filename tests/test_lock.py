"""The install contract, offline: the Python range, pyproject's pins equal the lock's, what Ray Data needs is there.

Whether the lock resolves (wheels only) on each supported Python needs a package index: `make check-lock`
(tools/check_lock.py) runs pip's resolver for 3.11, 3.12 and 3.13; docs/install.md has its last results.
"""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from paths import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK = {canonicalize_name(line.split("==")[0]): line.split("==")[1]
        for line in (REPO / "requirements.lock").read_text().splitlines() if "==" in line and not line.startswith("#")}


def test_python_311_to_313_are_supported():
    supported = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert all(supported.contains(v) for v in ("3.11.0", "3.12.0", "3.13.9"))
    assert not supported.contains("3.10.14")


def test_every_direct_dependency_is_pinned_to_the_locked_version():
    project = PYPROJECT["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    for text in declared:
        requirement = Requirement(text)
        [specifier] = requirement.specifier
        assert specifier.operator == "==", f"{text}: pin an exact version"
        locked = LOCK.get(canonicalize_name(requirement.name))
        assert locked is not None, f"{requirement.name} is in pyproject.toml but not in requirements.lock"
        assert Version(locked).public == Version(specifier.version).public, f"{text} vs lock {locked}"


def test_ray_data_can_resolve_local_part_files():
    """Ray Data's path resolution imports fsspec's HTTPFileSystem even for local files; without aiohttp
    `read_parquet([part files])` fails with "cannot import name 'HTTPFileSystem'"."""
    from fsspec.implementations.http import HTTPFileSystem

    assert HTTPFileSystem.protocol == ("http", "https")
    assert "aiohttp" in LOCK
