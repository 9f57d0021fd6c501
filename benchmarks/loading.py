"""Loading throughput: videos/s through the DataLoader, from RAM against the lazy HDF5 path.

    .venv/bin/python benchmarks/loading.py [DATA_DIR] [--repeats 3]

The in-memory path reads the file once into RAM (files under the memory budget).
The lazy path is what a file larger than the budget gets: ``memory_budget=0``
forces it on the same file, so both read identical bytes. Each pass draws every
training video once in shuffled order through ``make_loader`` (batch 64, no
augmentation); the median of ``repeats`` passes is printed, with the time to open
(validate) the file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from vidstudy.data import VideoDataset, make_loader
from vidstudy.features import FeatureFile, feature_file_name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default="data/default-seed0", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    path = args.data_dir / feature_file_name("train")
    print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB on disk), {os.cpu_count()} cores, workers={args.workers}")
    print(f"{'path':<10} {'open (s)':>9} {'videos/s (median)':>18}")
    for label, budget in (("in-memory", 2**40), ("lazy", 0)):
        t0 = time.perf_counter()
        ff = FeatureFile(path, memory_budget=budget)
        opened = time.perf_counter() - t0
        rates = []
        for r in range(args.repeats):
            loader = make_loader(VideoDataset(ff), 64, shuffle=True, num_workers=args.workers, seed=r)
            t0 = time.perf_counter()
            n = sum(len(b.labels) for b in loader)
            rates.append(n / (time.perf_counter() - t0))
        print(f"{label:<10} {opened:>9.2f} {statistics.median(rates):>18.0f}")


if __name__ == "__main__":
    main()
