"""`vidstudy import-yt8m` throughput on generated shards: records/s, MB/s, and where the time goes.

    .venv/bin/python benchmarks/import_throughput.py [--files 4] [--videos 250] [--ray]

1. Shards: ``--files`` TFRecord files (half ``train*``, half ``validate*``) of ``--videos`` frame-level records each,
   written by :func:`vidstudy.study.youtube8m.write_shards`: 120 to 300 frames a video (uniform; YouTube-8M's cap is
   300), random uint8 rgb (1,024 bytes a frame) and audio (128), label sets of which most map to one class of the
   shipped 2018 mapping and some to several or none.
2. The import (``rgb``), cold, here: records/s and MB/s of input; the same with ``--ray`` (a local cluster).
3. Where the time goes, timed on the same files: the framing and both CRCs alone (``read_records``), then protobuf's
   parse of each record, then :func:`~vidstudy.yt8m.example.decode_video` (the parse and the per-frame checks and
   join), then each file's part (``import_file``: all of that and the writing), hashing the inputs (the import's
   reuse key), and the rest of the import: merging the parts into the split files.

Disk: the split files' bytes per 1,000 kept videos.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vidstudy.fingerprint import file_identity, fingerprint, forget
from vidstudy.study.youtube8m import write_shards
from vidstudy.yt8m.example import decode_video, sequence_example_class
from vidstudy.yt8m.importer import Settings, import_file, import_yt8m, input_files
from vidstudy.yt8m.tfrecord import read_records
from vidstudy.yt8m.vocabulary import load_mapping


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--videos", type=int, default=250, help="records per file")
    ap.add_argument("--ray", action="store_true", help="also import on a local Ray cluster")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = write_shards(Path(tmp) / "in", args.files, args.videos)
        size = sum(p.stat().st_size for p in paths)
        records = args.files * args.videos
        print(f"shards: {args.files} files, {records} records, {size / 1e6:.0f} MB (written in "
              f"{time.perf_counter() - t0:.0f} s)")
        report = {}
        forget()  # the import hashes its inputs as it would in a fresh process
        wall = timed(lambda: report.update(import_yt8m(paths, Path(tmp) / "out", progress=False)))
        kept = sum(report["kept_per_class"].values())
        out = sum(f.stat().st_size for f in (Path(tmp) / "out").glob("*.h5"))
        print(f"import here: {wall:.1f} s, {records / wall:.0f} records/s, {size / 1e6 / wall:.0f} MB/s of input; "
              f"{kept} videos kept; split files {out / 1e6:.0f} MB = {out / kept * 1000 / 1e9:.2f} GB per 1,000 "
              f"kept videos (mean {report_frames(Path(tmp) / 'out'):.0f} frames)")
        framing = timed(lambda: [None for p in paths for _ in read_records(p)])
        message = sequence_example_class()
        parse = timed(lambda: [message.FromString(d) for p in paths for _, d in read_records(p)])
        decode = timed(lambda: [decode_video(d, p, i) for p in paths for i, d in read_records(p)])
        forget()
        hashing = timed(lambda: fingerprint({f"input{k}": p for k, p in enumerate(paths)}))
        mapping, settings = load_mapping("2018"), Settings()
        parts = timed(lambda: [import_file(p, r, file_identity(p), mapping, settings, Path(tmp) / "parts" / f"{p.name}.h5")
                               for p, r in input_files(paths)])
        share = {"framing and CRCs": framing, "protobuf's parse": parse - framing,
                 "the per-frame checks and join": decode - parse, "writing the parts": parts - decode,
                 "hashing the inputs (the reuse key)": hashing, "merging into the split files": wall - parts - hashing}
        print(f"  of the import's {wall:.1f} s: " + ", ".join(f"{k} {100 * v / wall:.0f} %" for k, v in share.items()))
        if args.ray:
            from vidstudy.executor import from_options, shutdown

            executor = from_options("local")
            try:
                ray_wall = timed(lambda: import_yt8m(paths, Path(tmp) / "out-ray", executor=executor, progress=False))
            finally:
                shutdown()
            same = all((Path(tmp) / "out" / n).read_bytes() == (Path(tmp) / "out-ray" / n).read_bytes()
                       for n in ("train_features_multiscale.h5", "val_features_multiscale.h5",
                                 "test_features_multiscale.h5"))
            print(f"import on a local Ray cluster: {ray_wall:.1f} s (cluster start included), "
                  f"{records / ray_wall:.0f} records/s, {size / 1e6 / ray_wall:.0f} MB/s; split files "
                  f"{'byte for byte the same' if same else 'DIFFERENT'}")


def report_frames(out: Path) -> float:
    from vidstudy.features import load_splits

    files = load_splits(out)
    return float(np.mean(np.concatenate([f.num_frames for f in files.values()])))


if __name__ == "__main__":
    main()
