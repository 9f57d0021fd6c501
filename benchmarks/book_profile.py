"""The cold book, profiled: wall time per chapter and, inside each, data building, training, prediction and
evaluation (the rest is the kernel, figures, tables and the study's own arithmetic), then jupyter-book.

    .venv/bin/python benchmarks/book_profile.py                      # the default book, cold (about 15-25 minutes)
    .venv/bin/python benchmarks/book_profile.py --smoke              # the smoke book (about 2 minutes)
    .venv/bin/python benchmarks/book_profile.py --out profile.md --keep /tmp/book-root

Cold means what a new clone's ``make book`` does: the checkout's book sources are copied into an empty folder
(``--keep DIR``, else a temporary one, removed afterwards), so nothing is reused: the default data is simulated,
every run trained, every store predicted, the real clips rendered and extracted. The package steps time themselves
(:mod:`vidstudy.profiling`) when ``VIDSTUDY_PROFILE`` names a file, which this script sets. It prints the machine,
the table and the total, and writes the table to ``--out`` (Markdown).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from vidstudy import profiling
from vidstudy.atomic import write_text
from vidstudy.study.book import build_book, copy_sources, toc_chapters

REPO = Path(__file__).resolve().parents[1]  # the checkout whose book is profiled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="the smoke book (tiny data and runs)")
    ap.add_argument("--params", type=Path, help="a YAML file of chapter parameters, as vidstudy book --params")
    ap.add_argument("--keep", type=Path, help="build in this (new or empty) folder and keep it")
    ap.add_argument("--out", type=Path, help="write the table here (Markdown)")
    args = ap.parse_args()
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        ap.error(f"--keep {args.keep}: must be a new or empty folder (the build is cold)")
    root = args.keep or Path(tempfile.mkdtemp(prefix="book-profile-"))
    root.mkdir(parents=True, exist_ok=True)
    copy_sources(root, REPO)
    log = root / "profile.jsonl"
    os.environ[profiling.PROFILE_ENV] = str(log)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), Python {platform.python_version()}; building in {root}")
    t0 = time.perf_counter()
    try:
        build_book(args.params.resolve() if args.params else None, smoke=args.smoke, root=root)
        wall = time.perf_counter() - t0
        table = profiling.format_table(profiling.profile_table(profiling.read_profile(log), toc_chapters(root)))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(table)
    print(f"cold build: {wall:.1f} s ({wall / 60:.1f} min) wall, {time.strftime('%Y-%m-%d')}")
    if args.out is not None:
        write_text(args.out, table + "\n")


if __name__ == "__main__":
    main()
