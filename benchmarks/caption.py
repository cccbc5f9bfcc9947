"""Caption throughput (clips/s) per backend on this machine: `motion` (model-free), `transformers` on the tiny
random test model (labelled: it measures the code path, not a real model), and, where CUDA and vLLM are present,
`vllm` with a real VLM against vLLM's own `vllm bench throughput` for the same model and lengths."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GPU_MODEL = os.environ.get("DYMESH_BENCH_VLM", "Qwen/Qwen2.5-VL-7B-Instruct")


def generated_clips(count_per_kind: int = 3) -> tuple[list, dict]:
    """16-frame clips of generated creatures, machines and blobs (N=1024), with their assets' names and tags."""
    import pygltflib

    from stages.evaluate import load_asset
    from stages.generate import generate_asset
    from stages.resample import ResampleConfig, clips_from_scene

    clips, assets = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("creature", "machine", "blob"):
            for seed in range(count_per_kind):
                path = generate_asset(kind, seed, Path(folder) / f"{kind}{seed}.glb")
                asset_id = f"{kind}-{seed}"
                assets[asset_id] = pygltflib.GLTF2().load(str(path)).asset.extras or {}
                found, _ = clips_from_scene(load_asset(path), asset_id, ResampleConfig(vertices=1024))
                clips += found
    return clips, assets


def measure(config, clips, assets) -> tuple[float, object]:
    from stages.caption import make_captioner

    captioner = make_captioner(config)
    captioner(clips[:1], assets)  # warm-up: imports, GL context, first-call allocations
    captioner.tokens.clear()
    start = time.perf_counter()
    captioner(clips, assets)
    return time.perf_counter() - start, captioner


def main() -> None:
    from stages.caption import CaptionConfig, CaptionFilters
    from stages.caption.tiny_vlm import TINY_MODEL_LABEL, save_tiny_vlm
    from stages.render import renderer_label

    clips, assets = generated_clips()
    print(f"caption benchmark: {len(clips)} generated clips (16 frames, 1024 vertices), {os.cpu_count()} CPU cores")
    rows = []
    seconds, captioner = measure(CaptionConfig(backend="motion"), clips, assets)
    rows.append(("motion", "motion-heuristic", "-", len(clips) / seconds, "-"))
    with tempfile.TemporaryDirectory() as folder:
        model = save_tiny_vlm(folder)
        accept_all = CaptionFilters(min_chars=1, refusal_patterns=(), max_repeated_ngram_ratio=1.0)
        for renderer in ("numpy", "auto"):
            config = CaptionConfig(backend="transformers", model=model, device="cpu", image_size=448, frames=4,
                                   max_new_tokens=32, batch_size=8, renderer=renderer, filters=accept_all)
            seconds, captioner = measure(config, clips, assets)
            tokens = captioner.tokens["output"] / seconds
            rows.append(("transformers", TINY_MODEL_LABEL, renderer_label(renderer), len(clips) / seconds,
                         f"{tokens:.0f}"))
    print("| backend | model | renderer | clips/s | output tokens/s |")
    print("|---|---|---|---|---|")
    for backend, model, renderer, rate, tokens in rows:
        print(f"| {backend} | {model} | {renderer} | {rate:.2f} | {tokens} |")
    gpu_section(clips, assets)


def gpu_section(clips, assets) -> None:
    import torch

    if not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None:
        why = "no CUDA GPU" if not torch.cuda.is_available() else "vllm not installed (pip install 'dymesh[gpu]')"
        print(f"\nvllm section skipped: {why}")
        return
    from stages.caption import CaptionConfig

    config = CaptionConfig(backend="vllm", model=GPU_MODEL, max_model_len=8192, batch_size=64,
                           tensor_parallel_size=torch.cuda.device_count())
    seconds, captioner = measure(config, clips, assets)
    prompt_len = captioner.tokens["prompt"] // max(1, len(clips))
    output_len = max(1, captioner.tokens["output"] // max(1, len(clips)))
    print(f"\nvllm {GPU_MODEL}: {len(clips) / seconds:.2f} clips/s, "
          f"{captioner.tokens['output'] / seconds:.0f} output tokens/s, "
          f"{(captioner.tokens['prompt'] + captioner.tokens['output']) / seconds:.0f} total tokens/s "
          f"(mean prompt {prompt_len} tokens, output {output_len})")
    if shutil.which("vllm"):
        command = ["vllm", "bench", "throughput", "--model", GPU_MODEL, "--backend", "vllm-chat",
                   "--dataset-name", "random-mm", "--random-input-len", str(max(1, prompt_len - 4 * 256)),
                   "--random-output-len", str(output_len), "--random-range-ratio", "0",
                   "--num-prompts", str(len(clips)), "--random-mm-num-mm-items-range-ratio", "0",
                   "--random-mm-base-items-per-request", "4", "--random-mm-limit-mm-per-prompt",
                   '{"image": 4, "video": 0}', "--random-mm-bucket-config", "{(448, 448, 1): 1.0}",
                   "--tensor-parallel-size", str(config.tensor_parallel_size), "--max-model-len", "8192"]
        print("reference:", " ".join(command))
        subprocess.run(command, check=False)


if __name__ == "__main__":
    main()
