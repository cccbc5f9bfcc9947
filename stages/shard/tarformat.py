"""Deterministic tar members: mtime 0, owner 0:0 with empty names, mode 0644, PAX format."""

from __future__ import annotations

import tarfile

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10240
ZERO_BLOCK = bytes(BLOCK)


# fixed ustar fields of every member: mode 0644, uid 0, gid 0 (bytes 100-124); mtime 0 (136-148); the magic
MODE_OWNER = b"0000644\x000000000\x000000000\x00"
MTIME = b"00000000000\x00"
MAGIC = b"ustar\x0000"
# checksum of the fixed fields, with the checksum field counted as 8 spaces and type "0"
FIXED_CHECKSUM = sum(MODE_OWNER) + sum(MTIME) + sum(b" " * 8) + ord("0") + sum(MAGIC)


def member_header(name: str, size: int) -> bytes:
    """The header block(s) of one regular file: byte-identical to Python's tarfile in PAX format."""
    encoded = name.encode("utf-8")
    if len(encoded) >= 100 or not name.isascii() or size >= 8**11:
        return pax_header(name, size)
    size_field = b"%011o\x00" % size
    checksum = b"%06o\x00 " % (FIXED_CHECKSUM + sum(encoded) + sum(size_field))
    return b"".join((encoded.ljust(100, b"\0"), MODE_OWNER, size_field, MTIME, checksum, b"0", bytes(100), MAGIC, bytes(247)))


def pax_header(name: str, size: int) -> bytes:
    """Header through tarfile (adds a PAX extended header for long or non-ASCII names, huge sizes)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def padding(size: int) -> bytes:
    """Zero bytes that bring a member's data to a whole block."""
    return b"\0" * (-size % BLOCK)


def end_of_archive(offset: int) -> bytes:
    """Two zero blocks, then zeros up to a whole record (as GNU tar and Python's tarfile write)."""
    end = offset + 2 * BLOCK
    return b"\0" * (2 * BLOCK + (-end % RECORD))


def member_size(name: str, size: int) -> int:
    """Bytes one member takes in the archive, headers included."""
    return len(member_header(name, size)) + size + (-size % BLOCK)


def parse_members(data) -> list[tuple[str, memoryview]]:
    """(name, data view) of the regular files in a tar byte range (one sample's members or a whole shard).

    Plain ustar headers (what the shard writer emits for names under 100 bytes) are parsed here without
    copying member data; anything else (PAX or GNU extensions) goes through Python's tarfile.
    """
    view = memoryview(data).cast("B")
    members, position = [], 0
    while position + BLOCK <= len(view):
        header = bytes(view[position : position + BLOCK])  # 512 bytes: summed and sliced faster than a view
        if header == ZERO_BLOCK:
            break
        if header[156] not in (0x30, 0) or header[124] & 0x80:
            return _tarfile_members(view)
        stored = header[148:156].split(b"\0", 1)[0].strip()
        if int(stored or b"0", 8) != sum(header[:148]) + 256 + sum(header[156:]):
            raise ValueError(f"tar header checksum mismatch at byte {position}: the shard is corrupt (run dymesh verify)")
        name = header[:100].split(b"\0", 1)[0].decode("utf-8")
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix:
            name = f"{prefix.decode('utf-8')}/{name}"
        size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        start = position + BLOCK
        if start + size > len(view):
            raise ValueError(f"tar member {name} runs past the end of the data: the shard is truncated")
        members.append((name, view[start : start + size]))
        position = start + size + (-size % BLOCK)
    return members


def _tarfile_members(view: memoryview) -> list[tuple[str, memoryview]]:
    import io

    members = []
    with tarfile.open(fileobj=io.BytesIO(bytes(view) + b"\0" * (2 * BLOCK)), mode="r:") as tar:
        for info in tar:
            if info.isreg():
                members.append((info.name, memoryview(tar.extractfile(info).read())))
    return members
