"""Local files, folders (recursive) and glob patterns (.glb/.gltf matches); .gltf side files are packed in.

Only regular files inside each root are read (a folder, a pattern's leading folders, a named file's folder):
see stages.untrusted_files. Listing is a bounded walk (harvest.max_listed_entries) that follows folder symlinks
only with `follow_symlinks: true`, visiting each real folder once.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
from collections.abc import Callable
from pathlib import Path

from stages.harvest.item import ASSET_SUFFIXES, FetchError, Item, format_of
from stages.harvest.pack import pack_gltf
from stages.untrusted_files import (FileId, Listing, UntrustedFileError, file_ids, list_tree, read_regular,
                                    shown)


def resolve(path: str, base_dir: str) -> tuple[str, str]:
    """(absolute path or pattern, path as written): relative to the job file's folder when it (or a pattern's
    leading folders) exists there, else to the cwd. Patterns are never expanded here (see list_files)."""
    expanded = os.path.expanduser(path)
    if os.path.isabs(expanded):
        return expanded, path
    candidates = [os.path.normpath(os.path.join(base, expanded)) for base in (base_dir, os.getcwd())]
    for candidate in candidates:
        if os.path.lexists(static_root(candidate) if glob.has_magic(candidate) else candidate):
            return candidate, path
    return candidates[0], path


def static_root(pattern: str) -> str:
    """The leading folders of a glob pattern that contain no wildcard."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts):
        if glob.has_magic(part):
            return os.sep.join(parts[:index]) or ("/" if pattern.startswith(os.sep) else ".")
    return os.path.dirname(pattern)


def _component_matches(pattern: str, name: str) -> bool:
    """fnmatch on one path component; like glob, wildcards do not match a leading dot."""
    return (pattern.startswith(".") or not name.startswith(".")) and fnmatch.fnmatchcase(name, pattern)


def glob_matcher(relative_pattern: str) -> tuple[Callable[[str], bool], int | None]:
    """(test of a path relative to the pattern's static root, folder depth to walk or None for `**`)."""
    parts = tuple(p for p in relative_pattern.split(os.sep) if p)

    def matches(relative_path: str) -> bool:
        names = tuple(relative_path.split(os.sep))

        @functools.cache
        def match(p: int, n: int) -> bool:  # parts[p:] against names[n:], in O(parts x names)
            if p == len(parts):
                return n == len(names)
            if parts[p] == "**":  # zero or more folders that are not hidden
                return match(p + 1, n) or (n < len(names) and not names[n].startswith(".") and match(p, n + 1))
            return n < len(names) and _component_matches(parts[p], names[n]) and match(p + 1, n + 1)

        return match(0, 0)

    return matches, (None if "**" in parts else max(len(parts) - 1, 0))


def _written(path: str, top: str, top_written: str) -> str:
    """A listed path as the user wrote its root: `in/a.glb` for `in`, `a.glb` for a pattern like `*.glb`."""
    below = os.path.relpath(path, top)
    return below if top_written in ("", ".") else os.path.join(top_written, below)


def list_files(paths: list[str], base_dir: str, max_entries: int, follow: bool,
               suffixes: tuple[str, ...] = ASSET_SUFFIXES
               ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """[(absolute file, uri as written, root folder)] sorted by uri, and (uri, kind, message) problems; folders and
    globs yield the files whose names end in `suffixes`."""
    def wanted(path: str) -> bool:
        return path.lower().endswith(suffixes)

    found: dict[str, tuple[str, str]] = {}
    problems: list[tuple[str, str, str]] = []
    listing = Listing()
    for path in paths:
        absolute, written = resolve(path, base_dir)
        before, refused_before = len(listing.files), len(listing.refused)
        if glob.has_magic(absolute):
            top, top_written = static_root(absolute), static_root(written)
            matcher, depth = glob_matcher(os.path.relpath(absolute, top))
            if os.path.isdir(top):
                list_tree(top, max_entries=max_entries, max_depth=depth, follow_links=follow, listing=listing,
                          wanted=lambda p, top=top, matcher=matcher: wanted(p) and matcher(os.path.relpath(p, top)))
            if len(listing.files) == before:
                problems.append((path, "not-found", f"{path}: no {'/'.join(suffixes)} file matches this glob (resolved "
                                                    f"against {base_dir})"))
        elif os.path.isdir(absolute):
            top, top_written = absolute, written
            list_tree(absolute, max_entries=max_entries, follow_links=follow, listing=listing, wanted=wanted)
        elif os.path.lexists(absolute):  # a named file (of any type: the reader refuses what is not regular)
            found.setdefault(absolute, (written, os.path.dirname(absolute) or "."))
            continue
        else:
            problems.append((path, "not-found", f"{path}: no such file, folder or matching glob (resolved "
                                                f"against {base_dir})"))
            continue
        for match in listing.files[before:]:
            found.setdefault(match, (_written(match, top, top_written), top))
        for refused, kind, detail in listing.refused[refused_before:]:
            uri = shown(_written(refused, top, top_written))
            problems.append((uri, kind, f"{uri}: {detail}{FOLLOW_HINT.get(kind, '')}"))
        if listing.truncated:
            problems.append((path, "limit", f"{path}: listing stopped after {max_entries} entries "
                                            "(harvest.max_listed_entries); raise it or split the source"))
            break
    files = sorted(((f, shown(uri), root) for f, (uri, root) in found.items()), key=lambda t: t[1])
    return files, problems


FOLLOW_HINT = {"outside-root": "; set follow_symlinks: true on the source to read links leading out of it",
               "hard-link": "; set follow_symlinks: true on the source to read hard-linked files",
               "limit": " (harvest.max_asset_bytes / max_side_file_bytes)"}


def fetch_error(exc: UntrustedFileError) -> FetchError:
    """The harvest error row for a refused file, with the option that changes the decision."""
    return FetchError(exc.kind, f"{exc}{FOLLOW_HINT.get(exc.kind, '')}")


def folder_reader(folder: str, root: str, config, follow: bool, uri: str):
    """Reads .gltf side files (names relative to `folder`) below `root` with read_regular's rules: None for a
    missing one (the evaluator reports it), FetchError for a refused one or when all side files together pass
    harvest.max_asset_bytes."""
    budget = [config.max_asset_bytes]

    def read(name: str) -> bytes | None:
        try:
            data = read_regular(os.path.join(folder, name), min(config.max_side_file_bytes, budget[0]), root=root,
                                follow_links=follow, timeout_s=config.timeout_s, what=f"{uri}: side file {shown(name)}")
        except UntrustedFileError as exc:
            if exc.kind == "not-found":
                return None
            raise fetch_error(exc) from None
        budget[0] -= len(data)
        return data

    return read


def read_local(path: str, uri: str, root: str, config, follow: bool, known_links: dict[FileId, int]
               ) -> tuple[bytes, str]:
    try:
        data = read_regular(path, config.max_asset_bytes, root=root, follow_links=follow, timeout_s=config.timeout_s,
                            known_links=known_links, what=uri)
    except UntrustedFileError as exc:
        raise fetch_error(exc) from None
    if format_of(path) == "gltf":
        return pack_gltf(data, folder_reader(os.path.dirname(path), root, config, follow, uri))
    return data, "glb"


def list_items(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    """Items of a LocalSource, and (uri, error type, message) for what could not be listed."""
    follow = getattr(source, "follow_symlinks", False)
    files, problems = list_files(source.paths, base_dir, config.max_listed_entries, follow)
    known_links = file_ids([path for path, _, _ in files])
    items = [
        Item(kind="local", uri=uri, name=shown(Path(path).stem),
             fetch=lambda path=path, uri=uri, root=root: read_local(path, uri, root, config, follow, known_links))
        for path, uri, root in files
    ]
    return items, problems
