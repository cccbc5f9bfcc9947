"""`dymesh caption CLIPS --backend motion|transformers|vllm`: caption clip .npz files (try backends, prompts)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pipeline.cli_options import ConfigDefaultsFormatter, config_option, given_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "caption", formatter_class=ConfigDefaultsFormatter,
        help="caption clips (.npz from `dymesh resample`) with the motion, transformers or vllm backend",
        description="Caption every clip .npz in CLIPS (a file or a folder). Prints one line per caption and "
        "writes caption rows (schemas.tables.CAPTIONS) and error rows as JSON lines with --out.",
    )
    parser.add_argument("clips", type=Path, help="a clip .npz, or a folder of them (with clips.jsonl metadata)")
    caption = "stages.caption.config", "CaptionConfig"
    options = [
        ("--backend", dict(help="motion: model-free, any CPU; transformers: HF model on GPU/CPU; vllm: GPUs "
                                "(default %(default)s)")),
        ("--model", dict(help="HF model id or local folder (default %(default)s)")),
        ("--revision", dict(help="model revision (default %(default)s)")),
        ("--prompt", dict(help="prompt text (default: the built-in motion prompt)")),
        ("--captions-per-clip", dict(type=int, help="captions per clip (default %(default)s)")),
        ("--max-new-tokens", dict(type=int, help="(default %(default)s)")),
        ("--temperature", dict(type=float, help="0 = greedy for caption 0 (default %(default)s)")),
        ("--seed", dict(type=int, help="(default %(default)s)")),
        ("--image-size", dict(type=int, help="side of each rendered frame (default %(default)s)")),
        ("--frames", dict(type=int, help="frames shown to the model per clip (default %(default)s)")),
        ("--views", dict(type=int, help="views per frame, 1-4 (default %(default)s)")),
        ("--renderer", dict(choices=("auto", "numpy", "egl"), help="(default %(default)s)")),
        ("--device", dict(help="transformers: auto | cpu | cuda (default %(default)s)")),
        ("--batch-size", dict(type=int, help="clips per model call (default %(default)s)")),
        ("--tensor-parallel-size", dict(type=int, help="vllm: GPUs per model (default %(default)s)")),
    ]
    fields = [config_option(parser, flag, (*caption, flag[2:].replace("-", "_")), **kwargs).dest
              for flag, kwargs in options]
    fields.append(config_option(parser, "--cache", (*caption, "cache_dir"), metavar="DIR",
                                help="caption cache folder (default: none)").dest)
    parser.add_argument("--name", default="", help="asset name used by the motion backend (default: none)")
    parser.add_argument("--tags", default="", help="comma-separated asset tags for the motion backend")
    parser.add_argument("--out", type=Path, default=None, help="write caption and error rows to this .jsonl")
    parser.set_defaults(func=run, config_fields=tuple(fields))


def run(args: argparse.Namespace) -> int:
    from pipeline.config import build
    from pipeline.errors import UserError
    from schemas.clip_file import clip_from_file
    from stages.caption import CaptionConfig, make_captioner

    files = sorted(args.clips.glob("*.npz")) if args.clips.is_dir() else [args.clips]
    if not files or not files[0].is_file():
        raise UserError(f"{args.clips}: no clip .npz files there; make some with `dymesh resample ASSET --out DIR`")
    options = given_options(args)
    if "tensor_parallel_size" in options:
        options["num_gpus"] = options["tensor_parallel_size"]  # one vllm model per call of this command
    config = build(CaptionConfig, options, "dymesh caption")
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
            clip = clip_from_file(path)
        except ValueError as exc:
            from schemas.tables import error_row

            errors.append(error_row("caption", path.stem, "bad-clip-file", str(exc), source=str(path)))
            unreadable += 1
            continue
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
