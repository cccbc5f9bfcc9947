"""Checkpoints as folders of files on local disk or object storage (pyarrow.fs), loaded without pickle.

A checkpoint folder `checkpoint_<step:08d>/` holds `meta.json` (kind, step, configs), `state.pt` (model, optimiser,
scheduler, step; tensors and plain containers only, read with `torch.load(weights_only=True)`), one
`rank_<r>.pt` per training process (data position and RNG states) and `COMPLETE`, written last.
"""

from __future__ import annotations

import io
import json
import os
import re

import torch

from stages.storage import filesystem, join

CHECKPOINT_PATTERN = re.compile(r"^checkpoint_(\d{8})$")
COMPLETE = "COMPLETE"
MAX_CHECKPOINT_FILE_BYTES = 8 << 30


def tensor_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def tensor_object(data: bytes):
    """Inverse of `tensor_bytes`, refusing anything but tensors and plain containers (no arbitrary pickle)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def write_files(uri: str, files: dict[str, bytes]) -> None:
    """Write each named file into folder `uri` (sorted, so a partial write is always a prefix)."""
    fs, path = filesystem(uri)
    fs.create_dir(path, recursive=True)
    for name in sorted(files):
        with fs.open_output_stream(f"{path}/{name}") as out:
            out.write(files[name])


def read_files(uri: str) -> dict[str, bytes]:
    """Every file of checkpoint folder `uri` by name (size-capped)."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    files = {}
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        if info.size is not None and info.size > MAX_CHECKPOINT_FILE_BYTES:
            raise ValueError(f"checkpoint file {info.path} is {info.size} bytes, over the cap")
        with fs.open_input_stream(info.path) as stream:
            files[os.path.basename(info.path)] = stream.read()
    return files


def completed_checkpoints(run_uri: str) -> list[tuple[int, str]]:
    """(step, uri) of every complete checkpoint folder directly under `run_uri`, oldest first."""
    import pyarrow.fs as pafs

    fs, path = filesystem(run_uri)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        return []
    found = []
    for entry in fs.get_file_info(pafs.FileSelector(path, recursive=False)):
        match = CHECKPOINT_PATTERN.match(os.path.basename(entry.path))
        if match and entry.type == pafs.FileType.Directory:
            if fs.get_file_info(f"{entry.path}/{COMPLETE}").type == pafs.FileType.File:
                found.append((int(match.group(1)), join(run_uri, os.path.basename(entry.path))))
    return sorted(found)


def resolve_checkpoint(uri: str) -> str:
    """A checkpoint folder itself, or the latest complete checkpoint of a run folder."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    if fs.get_file_info(f"{path}/{COMPLETE}").type == pafs.FileType.File:
        return uri
    found = completed_checkpoints(uri)
    if not found:
        raise FileNotFoundError(f"no complete checkpoint at {uri}: give a checkpoint_XXXXXXXX folder or its run folder")
    return found[-1][1]


def remove_old(run_uri: str, keep: int) -> None:
    """Delete all but the newest `keep` complete checkpoints."""
    if keep <= 0:
        return
    fs, _ = filesystem(run_uri)
    for _, uri in completed_checkpoints(run_uri)[:-keep]:
        fs.delete_dir(filesystem(uri)[1])


def load_checkpoint(uri: str) -> tuple[dict, dict]:
    """(meta, state) of a checkpoint folder or of a run folder's latest checkpoint."""
    files = read_files(resolve_checkpoint(uri))
    return json.loads(files["meta.json"]), tensor_object(files["state.pt"])
