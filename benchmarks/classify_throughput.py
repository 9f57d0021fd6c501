"""`vidstudy classify` end to end: videos/s, and the share of the time in decoding, the CNN and the members.

    .venv/bin/python benchmarks/classify_throughput.py [--data DIR] [--scale 0.25] [--members 4] [--epochs 3]
                                                       [--batch-size 32] [--workers 0] [--window 2] [--device cpu]

1. A run to classify with: the real-clips dataset (``vidstudy realclips`` at ``--scale``, 12 frames per clip,
   EfficientNet-Lite0) built in ``--data`` (a temporary folder by default; reused when unchanged), a ``--members``
   ensemble trained on it for ``--epochs`` epochs and evaluated (its temperature and confidence threshold).
2. A batch: every test clip of the dataset, classified by ``vidstudy.inference.classify.Classifier`` from its video
   file (the backbone is loaded before the clock starts, as a long batch amortises it). Per video, the classifier
   times its three steps; the shares below are of the batch's wall time, and "other" is the rest (finding the
   files, the windows' bookkeeping, the result objects); with ``--workers`` decoding runs in other processes beside
   the CNN, and the shares are of the steps' summed time.
3. A long video: the first clip of each test source joined into one video, classified whole and in ``--window``-second windows.

Target: decoding and the CNN take at least 80 % of the time (the ensemble is cheap next to the CNN).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from vidstudy.cli import main as vidstudy_main
from vidstudy.extraction import realclips
from vidstudy.extraction.sources import FPS
from vidstudy.inference.classify import Classifier
from vidstudy.study import classifying

STEPS = ("decode_s", "cnn_s", "members_s")


def timed_batch(classifier: Classifier, paths: list[Path]) -> tuple[list, float]:
    t0 = time.perf_counter()
    results = list(classifier.stream(paths))
    return results, time.perf_counter() - t0


def shares_line(results, wall: float, overlapped: bool = False) -> str:
    """The steps' shares of the wall time; ``overlapped`` (decoding in worker processes, beside the CNN): of the
    steps' summed time instead, as the steps then run at the same time."""
    steps = {k: sum(r.timings.get(k, 0.0) for r in results) for k in STEPS}
    whole = sum(steps.values()) if overlapped else wall
    parts = [f"{k[:-2]} {100 * v / whole:.1f} %" for k, v in steps.items()]
    if not overlapped:
        parts.append(f"other {100 * (wall - sum(steps.values())) / wall:.1f} %")
    of = "of the steps' summed time (decoding overlaps the CNN)" if overlapped else "of the wall time"
    return f"shares {of}: " + ", ".join(parts) + f"; decoding + CNN {100 * (steps['decode_s'] + steps['cnn_s']) / whole:.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="the dataset's folder (default: a temporary one)")
    ap.add_argument("--scale", type=float, default=0.25, help="fraction of each source's clips")
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32, help="frames per backbone call")
    ap.add_argument("--workers", type=int, default=0, help="decoding processes")
    ap.add_argument("--window", type=float, default=2.0, help="window of the long video, in seconds")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "realclips"
        t0 = time.perf_counter()
        realclips.build(data, realclips.Settings(scale=args.scale), frames=12, device=args.device, progress=False)
        run = Path(tmp) / "run"
        train = ["train", str(data), str(run), "--members", str(args.members), "--epochs", str(args.epochs),
                 "--quiet", "--no-plots", "--device", args.device]
        if vidstudy_main(train) or vidstudy_main(["evaluate", str(run), "--device", args.device, "--bootstrap", "50"]):
            raise SystemExit("training or evaluating the run failed")
        print(f"run: {args.members} members, {args.epochs} epochs on {data} (built, trained, evaluated in "
              f"{time.perf_counter() - t0:.0f} s)")

        classifier = Classifier(run, device=args.device, batch_size=args.batch_size, workers=args.workers)
        print(classifier.describe())
        clips = sorted((data / "videos" / "test").rglob("*.mp4"))
        results, wall = timed_batch(classifier, clips)
        frames = sum(r.whole.frames_used for r in results if r.ok)
        seconds = sum(r.duration_s for r in results if r.ok)
        print(f"batch: {sum(r.ok for r in results)} of {len(clips)} test clips ({seconds:.0f} s of video, {frames} "
              f"frames) in {wall:.2f} s: {len(clips) / wall:.2f} videos/s, {frames / wall:.1f} frames/s, "
              f"workers={args.workers}")
        print(f"  {shares_line(results, wall, overlapped=args.workers > 0)}")

        joined = Path(tmp) / "joined.mp4"
        classifying.joined_video(joined, [(p, c) for p, c, _ in classifying.held_out_clips(data / "videos")], fps=FPS)
        windowed = Classifier(run, device=args.device, batch_size=args.batch_size, window_s=args.window)
        (long,), wall = timed_batch(windowed, [joined])
        windows = sum(w.frames_used for w in long.windows)
        print(f"long video: {long.duration_s:.0f} s, {len(long.windows)} windows of {args.window:g} s ({windows} frames) "
              f"and the whole ({long.whole.frames_used} frames; a frame both use goes through the backbone once), in "
              f"{wall:.2f} s ({long.duration_s / wall:.1f} s of video per s)")
        print(f"  {shares_line([long], wall)}")


if __name__ == "__main__":
    main()
