"""`dymesh caption CLIPS --backend motion|transformers|vllm`: caption clip .npz files (try backends, prompts)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "caption",
        help="caption clips (.npz from `dymesh resample`) with the motion, transformers or vllm backend",
        description="Caption every clip .npz in CLIPS (a file or a folder). Prints one line per caption and "
        "writes caption rows (schemas.tables.CAPTIONS) and error rows as JSON lines with --out.",
    )
    parser.add_argument("clips", type=Path, help="a clip .npz, or a folder of them (with clips.jsonl metadata)")
    parser.add_argument("--backend", default="motion", choices=("motion", "transformers", "vllm"),
                        help="motion: model-free, any CPU (default); transformers: HF model on GPU/CPU; vllm: GPUs")
    parser.add_argument("--model", default=None,
                        help="HF model id or local folder (default Qwen/Qwen2.5-VL-7B-Instruct)")
    parser.add_argument("--revision", default="main", help="model revision (default main)")
    parser.add_argument("--prompt", default=None, help="prompt text (default: the built-in motion prompt)")
    parser.add_argument("--captions-per-clip", type=int, default=1, help="captions per clip (default 1)")
    parser.add_argument("--max-new-tokens", type=int, default=96, help="(default 96)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy for caption 0 (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="(default 0)")
    parser.add_argument("--image-size", type=int, default=448, help="side of each rendered frame (default 448)")
    parser.add_argument("--frames", type=int, default=4, help="frames shown to the model per clip (default 4)")
    parser.add_argument("--views", type=int, default=4, help="views per frame, 1-4 (default 4)")
    parser.add_argument("--renderer", default="auto", choices=("auto", "numpy", "egl"), help="(default auto)")
    parser.add_argument("--device", default="auto", help="transformers: auto | cpu | cuda (default auto)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per model call (default 16)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model (default 1)")
    parser.add_argument("--cache", default="", metavar="DIR", help="caption cache folder (default: none)")
    parser.add_argument("--name", default="", help="asset name used by the motion backend (default: none)")
    parser.add_argument("--tags", default="", help="comma-separated asset tags for the motion backend")
    parser.add_argument("--out", type=Path, default=None, help="write caption and error rows to this .jsonl")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from schemas.sample import Clip
    from stages.caption import CaptionConfig, make_captioner
    from stages.render.clip_file import read_clip_file

    files = sorted(args.clips.glob("*.npz")) if args.clips.is_dir() else [args.clips]
    if not files or not files[0].is_file():
        raise UserError(f"{args.clips}: no clip .npz files there; make some with `dymesh resample ASSET --out DIR`")
    options = {
        "backend": args.backend, "revision": args.revision, "captions_per_clip": args.captions_per_clip,
        "max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "seed": args.seed,
        "image_size": args.image_size, "frames": args.frames, "views": args.views, "renderer": args.renderer,
        "device": args.device, "batch_size": args.batch_size, "tensor_parallel_size": args.tensor_parallel_size,
        "num_gpus": args.tensor_parallel_size, "cache_dir": args.cache,
    }
    if args.model:
        options["model"] = args.model
    if args.prompt:
        options["prompt"] = args.prompt
    try:
        config = CaptionConfig(**options)
    except ValueError as exc:
        raise UserError(f"{exc}; see dymesh caption --help") from exc
    try:
        captioner = make_captioner(config)
    except (RuntimeError, OSError) as exc:
        raise UserError(str(exc)) from exc
    asset = {"name": args.name, "tags": [t.strip() for t in args.tags.split(",") if t.strip()]}
    rows, errors = [], []
    unreadable = 0
    start = time.perf_counter()
    for done, path in enumerate(files, 1):
        try:
            vertices, faces, meta = read_clip_file(path)
        except ValueError as exc:
            from schemas.tables import error_row

            errors.append(error_row("caption", path.stem, "bad-clip-file", str(exc), source=str(path)))
            unreadable += 1
            continue
        clip = Clip(
            clip_id=str(meta.get("clip_id") or path.stem), asset_id=str(meta.get("asset_id") or path.stem),
            animation=int(meta.get("animation", 0)), animation_name=str(meta.get("animation_name", "")),
            fps=float(meta.get("fps") or 10.0), first_frame=int(meta.get("first_frame", 0)),
            last_frame=int(meta.get("last_frame", len(vertices) - 1)), vertices=vertices, faces=faces,
            center=tuple(meta.get("center") or (0.0, 0.0, 0.0)), scale=float(meta.get("scale") or 1.0),
            source_vertices=int(meta.get("source_vertices", vertices.shape[1])),
            source_faces=int(meta.get("source_faces", len(faces))), content_hash=str(meta.get("content_hash") or ""),
        )
        new_rows, new_errors = captioner([clip], {clip.asset_id: asset})
        rows += new_rows
        errors += new_errors
        for row in new_rows:
            print(f"{row['clip_id']}#{row['caption_index']}: {row['text']}")
        rate = done / (time.perf_counter() - start)
        print(f"\r{done}/{len(files)} clips, {rate:.2f} clips/s, ETA {(len(files) - done) / rate:.0f} s",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for row in errors:
        print(f"  {row['status']} {row['unit_id']}: {row['error_type']}: {row['message']}", file=sys.stderr)
    counts = captioner.counts
    print(f"{len(files)} clip file(s): {counts['ok']} caption(s), {counts['skipped']} skipped, "
          f"{counts['failed'] + unreadable} failed, "
          f"{counts['cached']} from cache; backend {config.backend}, model {config.model_id}", file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({"table": "captions", **row}, sort_keys=True) + "\n")
            for row in errors:
                handle.write(json.dumps({"table": "errors", **row}, sort_keys=True) + "\n")
    return 0
