"""What deciding reuse costs: fingerprinting a data folder's three split files (SHA-256 of their content).

    .venv/bin/python benchmarks/fingerprint.py DATA_DIR      # e.g. after: vidstudy simulate data-paper --shape paper

Prints the time to fingerprint the three files once (what each new process pays, e.g.
each chapter the book executes), and again in the same process (remembered while the
files' inode, size and time stamps stay the same). Run it after dropping the page cache
(``sync; echo 3 > /proc/sys/vm/drop_caches`` as root) to see the cold-disk figure.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vidstudy import fingerprint as fp
from vidstudy.features import SPLITS, feature_file_name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path)
    args = ap.parse_args()
    files = {s: args.data_dir / feature_file_name(s) for s in SPLITS}
    size = sum(p.stat().st_size for p in files.values()) / 1e6
    for label in ("first time in this process", "again, same process (remembered)"):
        t0 = time.perf_counter()
        fp.fingerprint(files)
        dt = time.perf_counter() - t0
        print(f"{label:<36} {size:7.0f} MB in {dt:6.3f} s ({size / max(dt, 1e-9):8.0f} MB/s)")
    fp.forget()
    t0 = time.perf_counter()
    fp.fingerprint(files)
    dt = time.perf_counter() - t0
    print(f"{'a new process (page cache warm)':<36} {size:7.0f} MB in {dt:6.3f} s ({size / dt:8.0f} MB/s)")


if __name__ == "__main__":
    main()
