"""Every model family's bare training and inference throughput, at its CPU size and at its published size.

    .venv/bin/python benchmarks/model_throughput.py                        # CPU, both sizes (about 4 minutes)
    .venv/bin/python benchmarks/model_throughput.py --sizes cpu --batches 8
    python benchmarks/model_throughput.py --device cuda --precision bf16 --batches 20

Each family of :mod:`vidstudy.models` at its ``cpu`` size on the default data's shape (T=56, D=256) and at its
``published`` size on YouTube-8M's frame-level shape (T=300, D=1024), with the ``cpu`` preset's recipe (batch 32):
random inputs, a forward pass at the precision asked, focal loss, backward, gradient clipping and an AdamW step
(the bare model of ``train_throughput.py``), then eval forwards; the median of ``--repeats`` timings of
``--batches`` batches after one warm-up. Prints parameters and videos/s per family and size.
"""

from __future__ import annotations

import argparse
import platform

import torch
from train_throughput import bare_config

from vidstudy.config import build
from vidstudy.device import allow_tf32, resolve_device
from vidstudy.models import list_models

SIZES = {"cpu": (56, 256), "published": (300, 1024)}  # (T, D): the default data; YouTube-8M's frame features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--sizes", default="cpu,published")
    parser.add_argument("--families", default=",".join(list_models()))
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    allow_tf32(device)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {device}, {args.precision}")
    print("| family | size | shape | parameters | train videos/s | inference videos/s |")
    print("|---|---|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        t, d = SIZES[size]
        for arch in args.families.split(","):
            cfg = build("paper" if size == "published" else "cpu", overrides=[f"model.arch={arch}", "train.batch_size=32"])
            r = bare_config(cfg, t, d, device, args.precision, args.repeats, args.batches)
            print(f"| {arch} | {size} | T={t}, D={d} | {r['params'] / 1e6:.2f} M | {r['train']:.0f} | {r['infer']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
