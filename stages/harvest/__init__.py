"""Harvest: list every source, fetch bytes into the content-addressed blob store, one provenance row per input.

    rows, errors = harvest_source(source, config, base_dir, store)

Rows follow schemas.tables.PROVENANCE (one per fetched input; the same asset id may appear under several uris);
the runner groups them into `assets` rows. Errors are `schemas.tables.error_row`s of stage "harvest".
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from schemas.tables import error_row
from stages.harvest.blob_store import BlobStore, content_id
from stages.harvest.item import FetchError, Item, TransientError
from stages.harvest.metadata import read_metadata

__all__ = ["BlobStore", "content_id", "harvest_source", "list_source", "FetchError", "Item"]


def list_source(source, config, base_dir: str) -> tuple[list[Item], list[tuple[str, str, str]]]:
    """Items of one source (sorted by uri) and (uri, error type, message) for what could not be listed."""
    from stages.harvest import (amass, blender_files, dt4d, generated, local, objaverse_source, objaverse_xl,
                                objectstore, url_list)

    modules = {"local": local, "url-list": url_list, "objectstore": objectstore, "objaverse": objaverse_source,
               "generated": generated, "dt4d": dt4d, "amass": amass, "blender": blender_files,
               "objaverse-xl": objaverse_xl}
    items, problems = modules[source.kind].list_items(source, config, base_dir)
    return sorted(items, key=lambda item: item.uri), problems


def _fetch(item: Item):
    try:
        return item.fetch()
    except FetchError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - anything else a reader raises is still one failed input
        detail = " ".join(str(exc).split())[:200]
        return FetchError(type(exc).__name__, f"{item.uri}: {type(exc).__name__}: {detail}")


def harvest_source(source, config, base_dir: str, store: BlobStore, progress=None,
                   previous: dict[str, tuple[list[dict], list[dict]]] | None = None) -> tuple[list[dict], list[dict]]:
    """Fetch every item of one source into `store`; returns (provenance rows, error rows), both sorted by uri.
    `previous`: uri -> (rows, error rows) an earlier run gave for it, kept as they are instead of fetching again."""
    items, problems = list_source(source, config, base_dir)
    errors = [error_row("harvest", uri, kind, message, source=uri) for uri, kind, message in problems]
    kept = [previous[item.uri] for item in items if item.uri in (previous or {})]
    items = [item for item in items if item.uri not in (previous or {})]
    if progress is not None:
        progress.total = len(items)
    rows = []
    with ThreadPoolExecutor(max_workers=max(1, config.fetch_threads)) as pool:
        for item, result in zip(items, pool.map(_fetch, items)):
            if progress is not None:
                progress.update(1)
            if isinstance(result, FetchError):
                errors.append(error_row("harvest", item.uri, result.kind, str(result), source=item.uri,
                                        attempt=result.attempts, status=getattr(result, "status", "failed"),
                                        transient=isinstance(result, TransientError)))
                continue
            data, fmt = result
            if not data:
                errors.append(error_row("harvest", item.uri, "empty", f"{item.uri}: empty file (0 bytes)",
                                        source=item.uri))
                continue
            asset_id, blob = store.put(data, fmt)
            meta = read_metadata(data)  # what the file says; what the source says (item) comes first
            rows.append({"asset_id": asset_id, "source_kind": item.kind, "uri": item.uri, "name": item.name or meta.name,
                         "license": item.license or meta.license, "attribution": item.attribution or meta.attribution,
                         "tags": list(item.tags or meta.tags), "file_bytes": len(data), "file_format": fmt,
                         "blob_path": blob})
    rows += [row for old_rows, _ in kept for row in old_rows]
    errors += [row for _, old_errors in kept for row in old_errors]
    return sorted(rows, key=lambda r: r["uri"]), sorted(errors, key=lambda e: e["unit_id"])
