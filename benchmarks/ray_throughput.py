"""Ray against the local path, in the same run: members per hour and extraction frames per second.

    .venv/bin/python benchmarks/ray_throughput.py                      # both parts, a local 2-CPU cluster
    .venv/bin/python benchmarks/ray_throughput.py --part train --members 4 --epochs 3
    python benchmarks/ray_throughput.py --part extract --ray HEAD:6379 --clips 200

Training (``--part train``): for the ``cpu`` preset and for the recipe study's model (chapter 7: the preset at
half width on a 1,000-video subset), ``--members`` members on the default simulated data, first here one after
another (torch at its default thread count), then as Ray tasks of one CPU each, side by side. Each is timed from
the call to the last summary; the cluster's start is timed apart. Members per hour = members / wall hours.

Extraction (``--part extract``): ``--clips`` clips of ``vidstudy realclips`` (a scaled-down tree, 12 frames each)
through EfficientNet-Lite0, here (decoding in this process, ``--workers`` decoding processes) and through Ray
(decoding tasks, backbone actors), into fresh folders each time; frames per second = frames through the CNN /
wall seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def _train(args, tmp: Path) -> None:
    from vidstudy.config import build
    from vidstudy.features import load_splits
    from vidstudy.simulate import simulate
    from vidstudy.study.recipes import recipe_config, training_subset
    from vidstudy.train import train_ensemble

    simulate(tmp / "data", seed=0, shape="default")
    files = load_splits(tmp / "data", ("train", "val"))
    subset = training_subset(files["train"], tmp / "subset", 1000)
    models = {"cpu preset": (build("cpu", members=args.members, epochs=args.epochs), files["train"]),
              "recipe study model": (recipe_config("improved", args.members, args.epochs), subset)}
    from vidstudy.executor import RayExecutor

    ray = RayExecutor(args.ray)
    t0 = time.perf_counter()
    ray.connect()
    print(f"Ray cluster ({args.ray}) joined in {time.perf_counter() - t0:.1f} s")
    for name, (config, train) in models.items():
        rows = {}
        for how, kwargs in (("here, one after another", {}), ("Ray, side by side", {"executor": ray})):
            out = tmp / f"{name}-{len(rows)}".replace(" ", "_")
            t0 = time.perf_counter()
            train_ensemble(config, train, files["val"], out, plots=False, quiet=True, device="cpu" if not kwargs else "auto",
                           **kwargs)
            rows[how] = time.perf_counter() - t0
        for how, seconds in rows.items():
            print(f"{name:20s} {how:24s} {args.members} members x {args.epochs} epochs: {seconds:7.1f} s "
                  f"= {args.members / seconds * 3600:6.0f} members/hour")
        print(f"{name:20s} speed-up through Ray: {rows['here, one after another'] / rows['Ray, side by side']:.2f}x")


def _extract(args, tmp: Path) -> None:
    from vidstudy.executor import RayExecutor
    from vidstudy.extraction.extract import extract
    from vidstudy.extraction.realclips import SOURCES, Settings, render_tree
    from vidstudy.extraction.video import Sampling

    per_source = sum(s.clips for s in SOURCES)
    render_tree(tmp / "videos", Settings(scale=args.clips / per_source), progress=False)
    for how, kwargs in (("here", {"workers": args.workers}), ("Ray", {"executor": RayExecutor(args.ray)})):
        out = tmp / f"features-{how}"
        t0 = time.perf_counter()
        report = extract(tmp / "videos", out, sampling=Sampling(num_frames=12), progress=False, **kwargs)
        seconds = time.perf_counter() - t0
        frames = sum(r["frames_extracted"] for r in report["splits"].values())
        print(f"extract {how:5s}: {frames} frames in {seconds:6.1f} s = {frames / seconds:6.1f} frames/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("train", "extract", "both"), default="both")
    ap.add_argument("--ray", default="local", help="cluster address, or local (default)")
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--clips", type=int, default=60, help="clips rendered for the extraction part")
    ap.add_argument("--workers", type=int, default=1, help="decoding processes of the local extraction")
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("train", "both"):
            _train(args, Path(tmp))
        if args.part in ("extract", "both"):
            _extract(args, Path(tmp))


if __name__ == "__main__":
    main()
