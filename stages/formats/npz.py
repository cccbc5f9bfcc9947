"""NumPy .npz archives from untrusted bytes, read with caps checked before allocating; written byte-for-byte
deterministically.

`np.load` trusts the zip's sizes and each member's header; this reader checks the member count, every member's
declared shape x dtype against a byte cap, reads at most that many bytes, and never unpickles (object dtypes are
refused). The writer fixes every zip timestamp so the same arrays give the same bytes.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from numpy.lib import format as npy_format

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class NpzError(ValueError):
    """An archive that cannot be read within the caps; `kind` is "limit" or "malformed"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def read_npz(data: bytes, max_members: int, max_array_bytes: int, max_total_bytes: int,
             wanted: set[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays of the archive (only `wanted` names when given), every size checked before it is read."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise NpzError("malformed", f"not a .npz (zip) archive: {exc}") from None
    if len(members) > max_members:
        raise NpzError("limit", f"{len(members)} archive members, over the cap of {max_members}")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for member in members:
        if not member.filename.endswith(".npy"):
            continue
        name = member.filename[:-4]
        if wanted is not None and name not in wanted:
            continue
        if name in arrays:
            raise NpzError("malformed", f"member {name!r} appears twice")
        try:
            with archive.open(member) as stream:
                shape, fortran, dtype = _header(stream)
                size = _nbytes(shape, dtype)
                if size > max_array_bytes or total + size > max_total_bytes:
                    raise NpzError("limit", f"array {name!r} {shape} {dtype} needs {size} bytes, over the caps "
                                            f"({max_array_bytes} per array, {max_total_bytes} in all)")
                raw = stream.read(size)
        except NpzError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise NpzError("malformed", f"member {name!r}: {exc}") from None
        if len(raw) != size:
            raise NpzError("malformed", f"member {name!r} is truncated ({len(raw)} of {size} bytes)")
        total += size
        array = np.frombuffer(raw, dtype=dtype)
        arrays[name] = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    return arrays


def _header(stream) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(stream, max_header_size=10_000)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = npy_format.read_array_header_2_0(stream, max_header_size=10_000)
    else:
        raise ValueError(f"unknown .npy version {version}")
    if dtype.hasobject:
        raise ValueError("object arrays (pickles) are refused")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"bad shape {shape}")
    return tuple(shape), bool(fortran), dtype


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    size = dtype.itemsize
    for n in shape:
        size *= n
    return size


def write_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz of `arrays` (sorted by name) whose bytes depend only on the arrays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            npy_format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()
