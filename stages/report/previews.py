"""Animated GIF previews of the gallery's clips, rendered by stages.render in parallel worker processes and cached
by clip content: a preview's file name is a hash of the clip's content hash and the render settings, so an
unchanged clip is never rendered twice and a changed one never shows a stale image."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from stages.storage import TEMP_PREFIX
from stages.report.queries import ClipArrays

PREVIEW_VERSION = 1  # bump when the look of a preview changes for the same settings
PREVIEW_NAME = re.compile(r"[0-9a-f]{32}\.gif")
DEFAULT_FPS = 10.0
MAX_PREVIEW_FRAMES = 64  # longer clips are previewed on every k-th frame


@dataclass(frozen=True)
class PreviewSettings:
    size: int = 256  # side of the 2x2 grid of views, in pixels
    views: int = 4
    renderer: str = "numpy"  # the NumPy rasteriser gives the same bytes on every machine; "auto" may use EGL


@dataclass(frozen=True)
class PreviewJob:
    name: str  # file name in the previews folder
    clip: ClipArrays
    fps: float


@dataclass(frozen=True)
class PreviewRun:
    names: dict[str, str]  # clip id -> preview file name (every card's, cached or new)
    rendered: int  # previews rendered this time
    cached: int  # clips whose preview was already there
    failed: dict[str, str]  # clip id -> why its preview could not be rendered


def preview_name(content_hash: str, clip_id: str, fps: float | None, settings: PreviewSettings) -> str:
    """The cache key of a clip's preview: its content hash (its id when it has none) and every render setting."""
    key = [PREVIEW_VERSION, content_hash or f"clip:{clip_id}", settings.size, settings.views, settings.renderer,
           float(fps or DEFAULT_FPS)]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32] + ".gif"


def render_preview(job: PreviewJob, folder: str, settings: PreviewSettings) -> tuple[str, str | None]:
    """Render one preview into `folder` (atomically); (clip id, None) or (clip id, error message)."""
    import numpy as np

    from stages.render import render_clip, write_frames

    clip = job.clip
    frames, vertices_count = clip.shape
    try:
        vertices = np.frombuffer(clip.vertices, dtype="<f4").reshape(frames, vertices_count, 3)
        faces = np.frombuffer(clip.faces, dtype="<i4").reshape(clip.faces_count, 3)
        step = max(1, -(-frames // MAX_PREVIEW_FRAMES))
        images = render_clip(vertices[::step], faces, size=settings.size, views=settings.views, renderer=settings.renderer)
        path = Path(folder) / job.name
        temporary = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{job.name}")  # ends in .gif: write_frames' format
        try:
            write_frames(images, temporary, job.fps / step)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except (ValueError, RuntimeError, OSError) as exc:
        return clip.clip_id, f"{type(exc).__name__}: {exc}"
    return clip.clip_id, None


def render_previews(
    cards: list[dict],
    folder: Path,
    read_arrays: Callable[[list[str]], Iterable[ClipArrays]],
    settings: PreviewSettings = PreviewSettings(),
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> PreviewRun:
    """Make sure every card (dict with clip_id, content_hash, fps) has its preview in `folder`; render the missing
    ones (arrays from `read_arrays(clip ids)`) on up to `workers` processes, and remove previews no card uses.
    `on_progress(done, to_render)` is called before the first and after each rendered preview."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {c["clip_id"]: preview_name(c.get("content_hash") or "", c["clip_id"], c.get("fps"), settings) for c in cards}
    fps = {c["clip_id"]: float(c.get("fps") or DEFAULT_FPS) for c in cards}
    missing: dict[str, str] = {}  # preview name -> the one clip rendered for it
    for clip_id, name in names.items():
        if not (folder / name).is_file():
            missing.setdefault(name, clip_id)
    wanted = set(missing.values())

    def jobs() -> Iterator[PreviewJob]:
        for clip in read_arrays(sorted(wanted)):
            if clip.clip_id in wanted:  # once per clip id, even if the table holds it twice
                wanted.discard(clip.clip_id)
                yield PreviewJob(names[clip.clip_id], clip, fps[clip.clip_id])

    done = 0

    def finished() -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(done, len(missing))

    if missing and on_progress:
        on_progress(0, len(missing))
    errors = dict(_run(jobs(), str(folder), settings, min(workers, len(missing)), finished))  # rendered clip id -> error
    why = {name: errors.get(clip_id) or "its arrays were not found in the clips table"
           for name, clip_id in missing.items() if clip_id in errors or not (folder / name).is_file()}
    failed = {clip_id: why[name] for clip_id, name in names.items() if name in why}
    _prune(folder, set(names.values()))
    return PreviewRun(names, len(missing) - len(why), len(set(names.values())) - len(missing), failed)


def _run(jobs: Iterator[PreviewJob], folder: str, settings: PreviewSettings, workers: int,
         finished: Callable[[], None]) -> Iterator[tuple[str, str]]:
    """Render every job; yields (clip id, error) for the failures. At most 2 x workers jobs hold arrays at once."""
    if workers <= 1:
        for job in jobs:
            clip_id, error = render_preview(job, folder, settings)
            finished()
            if error:
                yield clip_id, error
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: set[Future] = set()
        for job in jobs:
            pending.add(pool.submit(render_preview, job, folder, settings))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from _collect(done, finished)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from _collect(done, finished)


def _collect(done: set[Future], finished: Callable[[], None]) -> Iterator[tuple[str, str]]:
    for future in done:
        clip_id, error = future.result()
        finished()
        if error:
            yield clip_id, error


def _prune(folder: Path, keep: set[str]) -> None:
    """Remove the previews (and temp files of killed runs) that no card of this report uses."""
    for path in folder.iterdir():
        if path.is_file() and path.name not in keep and (PREVIEW_NAME.fullmatch(path.name) or path.name.startswith(TEMP_PREFIX)):
            path.unlink(missing_ok=True)
