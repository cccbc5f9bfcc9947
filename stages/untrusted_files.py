"""Untrusted local files: open only regular files inside a root, read them bounded, list folders with bounds.

    data = read_regular(path, cap, root=folder, timeout_s=60)   # bytes, or UntrustedFileError(kind, what, detail)
    listing = list_tree(folder, max_entries=1_000_000)           # files, refused entries, truncated?

Every path is resolved; a target outside `root` (a symlink to /etc/passwd, `up -> ..`) is refused unless the caller
follows links. FIFOs, sockets and devices are never read: the type is checked before opening (so devices are not
even opened), the open is non-blocking and does not follow a final symlink, and the opened descriptor is checked
again with fstat (swapping the file in between does not help). Inside a root the path is opened one component at
a time without following symlinks, so a folder swapped for a link after the check cannot redirect the open. A
regular file with more hard links than the caller knows of is refused too (its other name may be outside).
Reads stop at `cap + 1` bytes whatever stat says, and at a deadline between chunks.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CHUNK = 8 * 1024 * 1024
FileId = tuple[int, int]  # (st_dev, st_ino)


class UntrustedFileError(Exception):
    """A file that is not read: `kind` (outside-root, not-a-regular-file, limit, ...), `what` names the file (as
    printable text), `detail` says why; str() is "<what>: <detail>"."""

    def __init__(self, kind: str, what: str, detail: str):
        super().__init__(f"{what}: {detail}")
        self.kind, self.what, self.detail = kind, what, detail


def shown(path: str | bytes) -> str:
    """`path` as printable UTF-8 text: undecodable bytes become backslash escapes (\\xff), so tables can hold it."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def inside(path: str, root: str) -> bool:
    """Whether resolved `path` is `root` or lies below it (both absolute and resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _os_error(exc: OSError, what: str) -> UntrustedFileError:
    if exc.errno == errno.ENOENT:
        return UntrustedFileError("not-found", what, "no such file (or a dangling symlink)")
    if exc.errno == errno.ELOOP:
        return UntrustedFileError("symlink-loop", what, "symlinks loop or changed while opening; not read")
    if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
        return UntrustedFileError("not-a-regular-file", what, "not a regular file; not read")
    if exc.errno == errno.ENOTDIR:
        return UntrustedFileError("changed", what, "a folder on its path changed while opening; not read")
    return UntrustedFileError("io", what, f"cannot read: {exc.strerror or type(exc).__name__}")


def _resolve(path: str, what: str) -> str:
    try:
        return os.path.realpath(path, strict=True)
    except OSError as exc:
        raise _os_error(exc, what) from None


def _open_beneath(root: str, relative: str) -> int:
    """Open `relative` below directory `root` one component at a time, following no symlink on the way."""
    parts = [p for p in relative.split(os.sep) if p]
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
            os.close(directory)
            directory = child
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
        return os.open(parts[-1], flags, dir_fd=directory) if parts else os.dup(directory)
    finally:
        os.close(directory)


def open_regular(path: str, *, root: str | None = None, follow_links: bool = False,
                 known_links: Mapping[FileId, int] | None = None, what: str | None = None) -> int:
    """A read-only descriptor of the regular file `path` resolves to, inside `root` unless `follow_links`.

    `known_links` counts the names of a file the caller has seen (a listing); more hard links than that are
    refused unless `follow_links` (another name may be outside the root)."""
    what = what or shown(path)
    target = _resolve(path, what)
    real_root = os.path.realpath(root) if root is not None else None
    if real_root is not None and not follow_links and not inside(target, real_root):
        raise UntrustedFileError("outside-root", what, f"resolves outside its folder {shown(real_root)} (a symlink "
                                                       "leading out of it); not read")
    try:
        before = os.stat(target)
    except OSError as exc:
        raise _os_error(exc, what) from None
    if not stat.S_ISREG(before.st_mode):
        raise UntrustedFileError("not-a-regular-file", what, f"is {file_type(before.st_mode)}, not a regular "
                                                       "file; not opened")
    try:
        if real_root is not None and not follow_links:
            fd = _open_beneath(real_root, os.path.relpath(target, real_root))
        else:
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error(exc, what) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise UntrustedFileError("not-a-regular-file", what, f"is {file_type(opened.st_mode)}, not a "
                                                           "regular file; not read")
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            raise UntrustedFileError("changed", what, "was replaced while opening; not read")
        allowed = (known_links or {}).get((opened.st_dev, opened.st_ino), 1)
        if not follow_links and opened.st_nlink > allowed:
            raise UntrustedFileError("hard-link", what, f"has {opened.st_nlink} hard links (other names may be "
                                                        "outside its folder); not read")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, cap: int, *, deadline: float | None = None, what: str = "file", allow_more: bool = False
            ) -> bytes:
    """At most `cap` bytes of an open file: more is a `limit` error (or, with `allow_more`, the first `cap` bytes),
    whatever fstat says; read in chunks up to a deadline."""
    size = max(os.fstat(fd).st_size, 0)
    if size > cap and not allow_more:  # stat is believed when it says too big, never when it says small
        raise UntrustedFileError("limit", what, f"is {size} bytes, larger than the cap of {cap} bytes; not read")
    parts: list[bytes] = []
    total = 0
    want = min(size, cap) + 1  # the first read asks for everything stat promises
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise UntrustedFileError("timeout", what, "reading took longer than the time limit; not read")
        chunk = os.read(fd, min(want, cap + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        if total > cap and allow_more:
            parts[-1] = chunk[: len(chunk) - (total - cap)]
            break
        if total > cap:
            raise UntrustedFileError("limit", what, f"larger than the cap of {cap} bytes; not read")
        want = CHUNK
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_regular(path: str, cap: int, *, root: str | None = None, follow_links: bool = False,
                 timeout_s: float | None = None, known_links: Mapping[FileId, int] | None = None,
                 what: str | None = None, allow_more: bool = False) -> bytes:
    """The bytes of a regular file (see open_regular), at most `cap` of them, within `timeout_s`."""
    what = what or shown(path)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    fd = open_regular(path, root=root, follow_links=follow_links, known_links=known_links, what=what)
    try:
        return read_fd(fd, cap, deadline=deadline, what=what, allow_more=allow_more)
    except OSError as exc:
        raise _os_error(exc, what) from None
    finally:
        os.close(fd)


@dataclass
class Listing:
    """What list_tree found: candidate files (any type but folders), refusals, and whether it stopped early."""

    files: list[str] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, detail)
    entries: int = 0
    truncated: bool = False


def list_tree(top: str, *, max_entries: int, wanted: Callable[[str], bool] = lambda path: True,
              max_depth: int | None = None, follow_links: bool = False, listing: Listing | None = None) -> Listing:
    """Files below folder `top` (sorted walk, no recursion), at most `max_entries` entries looked at in total.

    Folder symlinks are followed only with `follow_links`, and then each real folder is visited once (so
    `up -> ..` loops end); without it, a folder symlink leaving `top` is listed in `refused` as outside-root.
    Files of any type are returned when `wanted(path)`: readers refuse what is not a regular file, one by one."""
    listing = listing or Listing()
    real_top = os.path.realpath(top)
    visited: set[FileId] = set()
    try:
        top_stat = os.stat(real_top)
        visited.add((top_stat.st_dev, top_stat.st_ino))
    except OSError as exc:
        listing.refused.append((top, *_listing_error(exc, top)))
        return listing
    stack: list[tuple[str, int]] = [(top, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            listing.refused.append((folder, *_listing_error(exc, folder)))
            continue
        subfolders = []
        for entry in entries:
            listing.entries += 1
            if listing.entries > max_entries:
                listing.truncated = True
                return listing
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_link, is_dir = False, False
            if not is_dir:
                if wanted(entry.path):
                    listing.files.append(entry.path)
                continue
            if max_depth is not None and depth + 1 > max_depth:
                continue
            if is_link and not follow_links:
                if not inside(os.path.realpath(entry.path), real_top):
                    listing.refused.append((entry.path, "outside-root", f"a folder symlink leading outside "
                                                                        f"{shown(real_top)}; not listed"))
                continue  # a link inside the folder: its files are listed under their real path
            try:
                info = os.stat(entry.path)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in visited:  # each real folder once: `up -> ..` loops end
                visited.add((info.st_dev, info.st_ino))
                subfolders.append(entry.path)
        stack.extend((path, depth + 1) for path in reversed(subfolders))  # popped in name order
    return listing


def _listing_error(exc: OSError, path: str) -> tuple[str, str]:
    error = _os_error(exc, shown(path))
    return error.kind, error.detail.replace("cannot read", "cannot list")


def file_ids(paths: list[str]) -> dict[FileId, int]:
    """How many of `paths` name each regular file (hard links among them), for open_regular's known_links."""
    counts: dict[FileId, int] = {}
    for path in paths:
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            key = (info.st_dev, info.st_ino)
            counts[key] = counts.get(key, 0) + 1
    return counts
