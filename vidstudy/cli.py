"""The ``vidstudy`` command.

Problems a user can cause (a bad file, a bad parameter) end in one line on stderr,
``vidstudy: error: ...``, and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from .errors import VidstudyError


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def format_summary(s: dict) -> str:
    """Text of ``vidstudy inspect`` from :meth:`FeatureFile.summary`."""
    nf = s["num_frames"]
    origin = []
    ext = s.get("extraction")
    smp = ext.get("sampling") if isinstance(ext, dict) else None
    if isinstance(smp, dict) and {"clips", "num_frames", "frame_size"} <= set(smp):
        how = "uniformly" if smp["clips"] == 1 else f"in {smp['clips']} clips"
        origin = [f"extracted by  {ext.get('backbone', 'an unnamed backbone')}, up to {smp['num_frames']} frames {how} "
                  f"at {smp['frame_size']}x{smp['frame_size']}"]
    elif ext:
        origin = [f"extracted by  {ext.get('backbone', 'an unnamed backbone') if isinstance(ext, dict) else ext} "
                  f"(no sampling recorded)"]
    lines = [
        f"file          {s['path']}",
        f"videos (N)    {s['num_videos']}",
        f"frames (T)    {s['max_frames']}",
        f"features (D)  {s['feature_dim']}",
        f"dtype         {s['dtype']}" + (f" (quantized: read as q * {s['quantization']['scale']:.6g} + "
                                             f"{s['quantization']['offset']:.6g})" if s["quantization"] else ""),
        f"size on disk  {_human_bytes(s['size_on_disk_bytes'])}",
        f"multi_scale   {s['multi_scale']}",
        *origin,
        f"num_frames    min {nf['min']}  median {nf['median']:g}  max {nf['max']}",
        "videos per class",
    ]
    width = max(len(c) for c in s["videos_per_class"])
    for name, count in s["videos_per_class"].items():
        lines.append(f"  {name:<{width}}  {count}")
    if s["videos_per_subcategory"]:
        lines.append("videos per subcategory")
        for cls, subs in s["videos_per_subcategory"].items():
            lines.append(f"  {cls}: " + ", ".join(f"{k} {v}" for k, v in subs.items()))
    return "\n".join(lines)


# --- the sub-commands: each one's arguments beside its handler ---------------------------------------------------


def _simulate_args(s) -> None:
    s.add_argument("out_dir", type=Path)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--shape", choices=("default", "paper", "smoke"), default="default",
                   help="default: CPU-sized; paper: T=73, D=1280, 2622/737/412 videos; smoke: tiny")


def _cmd_simulate(args) -> None:
    from .simulate import simulate

    t0 = time.perf_counter()
    paths = simulate(args.out_dir, seed=args.seed, shape=args.shape)
    for split, path in paths.items():
        print(f"{split:<5}  {path}  {_human_bytes(path.stat().st_size)}")
    print(f"simulated shape={args.shape} seed={args.seed} in {time.perf_counter() - t0:.1f} s")


def _inspect_args(i) -> None:
    i.add_argument("file", type=Path)
    i.add_argument("--json", action="store_true", help="print the summary as JSON")


def _cmd_inspect(args) -> None:
    from .features import FeatureFile

    summary = FeatureFile(args.file).summary()
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))


def _probe_args(pr) -> None:
    pr.add_argument("data_dir", type=Path)
    pr.add_argument("--kind", choices=("mean", "temporal"), default="mean")


def _cmd_probe(args) -> None:
    from .features import load_splits
    from .probe import run_probe

    files = load_splits(args.data_dir)
    for split in ("val", "test"):
        r = run_probe(files["train"], files[split], args.kind)
        per = "  ".join(f"{k} {v:.3f}" for k, v in r["per_class_f1"].items())
        print(f"{args.kind} probe on {split}: accuracy {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}  "
              f"per-class F1: {per}")


def _models_args(m) -> None:
    m.add_argument("--feature-dim", type=int, default=256, help="D to count parameters at (default 256, the default data's)")


def _cmd_models(args) -> None:
    import dataclasses

    import torch

    from .errors import ParameterError
    from .models import build_model, count_parameters, family, list_models

    if args.feature_dim < 1:
        raise ParameterError(f"--feature-dim must be at least 1, got {args.feature_dim}.")
    for arch in list_models():
        fam = family(arch)
        print(f"{arch}: {fam.summary}")
        for size in ("cpu", "published"):
            cfg = fam.sized(size)
            with torch.device("meta"):  # counted without allocating the weights
                n = count_parameters(build_model(cfg, args.feature_dim, 4))
            fields = ", ".join(f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg)[1:])
            print(f"  {size:<9} {n / 1e6:8.2f} M parameters at D={args.feature_dim}  {fields}")


def _train_args(t) -> None:
    t.add_argument("data_dir", type=Path)
    t.add_argument("run_dir", type=Path)
    t.add_argument("--preset", default="cpu", help="cpu (default, small, CPU) or paper (the original's model and recipe)")
    t.add_argument("--members", type=int, help="number of members (seeds seed_base .. seed_base + N - 1)")
    t.add_argument("--epochs", type=int, help="maximum epochs per member")
    t.add_argument("--seed-base", type=int, help="seed of member 0 (default 42)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run; finished members are skipped")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train.lr=3e-4 or model.hidden_dim=128 (repeatable)")
    t.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    t.add_argument("--no-plots", action="store_true", help="skip the live training plots (faster)")
    t.add_argument("--plots-per-epoch", action="store_true", help="keep plots/epoch_NNN.png for every epoch")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                   help="write the resume checkpoint every N epochs and after the last (default 1)")
    _device_option(t, "training")
    _ray_option(t, "the members run side by side as Ray tasks")
    t.add_argument("--cpus-per-member", type=int, default=1, metavar="N",
                   help="with --ray: CPUs (torch threads) each member's task declares (default 1)")
    t.add_argument("--gpus-per-member", type=float, default=0.0, metavar="G",
                   help="with --ray: GPUs each member's task declares, a fraction shares one (default 0)")


def _cmd_train(args) -> None:
    from .config import build
    from .executor import from_options
    from .features import load_splits
    from .train import train_ensemble

    device, executor = _device(args), from_options(args.ray, args.cpus_per_member, args.gpus_per_member)
    config = build(args.preset, members=args.members, epochs=args.epochs, seed_base=args.seed_base,
                   workers=args.workers, overrides=args.set)
    files = load_splits(args.data_dir, ("train", "val"))
    t0 = time.perf_counter()
    summaries = train_ensemble(config, files["train"], files["val"], args.run_dir, resume=args.resume,
                               plots=not args.no_plots, plots_per_epoch=args.plots_per_epoch, quiet=args.quiet,
                               device=device, checkpoint_every=args.checkpoint_every, executor=executor)
    for s in summaries:
        flag = f"  COLLAPSED on {', '.join(s['lost_class_names'])}" if s["collapsed"] else ""
        print(f"{s['member']}  seed {s['seed']}  best epoch {s['best_epoch']}/{s['epochs_run']}  "
              f"val acc {s['best_metrics']['val_acc']:.4f}  val macro-F1 {s['best_metrics']['val_macro_f1']:.4f}  "
              f"{s['wall_time_s']:.1f} s{flag}")
    print(f"trained {len(summaries)} members into {args.run_dir} in {time.perf_counter() - t0:.1f} s")


def _store_args(p, data_help: str) -> None:
    """The arguments ``predict`` and ``evaluate`` share: the run, another data folder, the views."""
    p.add_argument("run_dir", type=Path)
    p.add_argument("data_dir", type=Path, nargs="?", help=data_help)
    p.add_argument("--subsequences", type=int, help="random-subsequence views (default: those the store holds, else 1)")


def _predict_args(pd_) -> None:
    _store_args(pd_, "another folder whose test file to predict (default: the run's own val and test files)")
    pd_.add_argument("--force", action="store_true", help="rebuild even when the store is current")
    _device_option(pd_, "the members")


def _cmd_predict(args) -> None:
    from .predictions import ensure_predictions, store_path
    from .tta import view_names

    views = view_names(args.subsequences) if args.subsequences is not None else None
    t0 = time.perf_counter()
    store, rebuilt = ensure_predictions(args.run_dir, views, data_dir=args.data_dir, force=args.force,
                                        device=_device(args))
    paths = {s: store_path(args.run_dir, s, args.data_dir) for s in store}
    names = store["test"].view_names
    if not rebuilt:
        print(f"predictions {paths['val']} and {paths['test']} are current; nothing to do (--force rebuilds)")
        return
    for split, path in paths.items():
        print(f"{split:<5} {path}")
    print(f"predicted {len(names)} views ({', '.join(names)}) in {time.perf_counter() - t0:.1f} s")


def _evaluate_args(ev) -> None:
    _store_args(ev, "evaluate on another folder's test file (default: the run's own); validation stays the run's own")
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    _device_option(ev, "the members when the store is rebuilt")


def _cmd_evaluate(args) -> None:
    from .evaluate import evaluate_run, format_report

    results = evaluate_run(args.run_dir, args.data_dir, n_boot=args.bootstrap, subsequences=args.subsequences,
                           device=_device(args))
    print(format_report(results))
    out = Path(results["results_dir"])
    print(f"wrote {out / 'results.json'} and {out / 'configuration_analysis.json'} "
          f"(recombination {results['recombination_seconds']:.2f} s, no network run)")


def _extract_args(ex) -> None:
    ex.add_argument("video_dir", type=Path)
    ex.add_argument("out_dir", type=Path)
    ex.add_argument("--frames", type=int, default=64, help="frames per video, spread uniformly (default 64)")
    ex.add_argument("--clips", type=int, choices=(1, 3), default=1,
                    help="3: take the frames from three clips centred at 20/50/80%% of the video")
    ex.add_argument("--clip-width", type=float, default=0.2, help="length of each clip as a fraction of the video")
    ex.add_argument("--no-multiscale", action="store_true", help="store the frame features as they are")
    ex.add_argument("--splits", nargs="+", help="split folders to extract (default: all)")
    ex.add_argument("--backbone", metavar="NAME|MODULE:FACTORY",
                    help="efficientnet-lite0 (the default) or a function taking device= and returning a backbone")
    _device_option(ex, "the backbone")
    ex.add_argument("--batch-size", type=int, default=32, help="frames per backbone batch (default 32)")
    ex.add_argument("--workers", type=int, default=0, help="processes decoding videos in parallel (default 0)")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    _ray_option(ex, "decoding runs as Ray tasks and the backbone in a pool of Ray actors")


def _cmd_extract(args) -> None:
    from .executor import from_options
    from .extraction.extract import extract
    from .extraction.video import Sampling

    sampling = Sampling(num_frames=args.frames, clips=args.clips, clip_width=args.clip_width)
    executor = from_options(args.ray, workers=args.workers)
    device = str(_device(args))  # under --ray, left as asked: Lite0 is built on each actor's own device
    backbone = None
    if args.backbone is not None:  # a given backbone is built here, on a device this machine has
        from .device import resolve_device
        from .extraction.backbone import backbone_from_spec

        backbone = backbone_from_spec(args.backbone, resolve_device(args.device))
    t0 = time.perf_counter()
    report = extract(args.video_dir, args.out_dir, backbone=backbone,
                     device=device, sampling=sampling, multiscale=not args.no_multiscale, splits=args.splits or None,
                     batch_size=args.batch_size, progress=not args.quiet, executor=executor)
    for split, r in report["splits"].items():
        state = "up to date" if r.get("up_to_date") else f"{r['frames_extracted']} frames in {r['seconds']:.1f} s"
        print(f"{split}: {r['videos_written']} of {r['videos_found']} videos -> {r['file']} ({state}; "
              f"{len(r['skipped'])} skipped)")
    print(f"report: {args.out_dir / 'extract_report.json'} ({time.perf_counter() - t0:.1f} s)")


def _classify_args(cl) -> None:
    cl.add_argument("run_dir", type=Path)
    cl.add_argument("paths", nargs="+", metavar="PATH",
                    help="video files, folders (searched recursively for .mp4, .avi, .mkv, .webm) or @list.txt")
    cl.add_argument("--top-k", type=int, default=2, help="categories shown per video, most probable first (default 2)")
    cl.add_argument("--window", type=float, metavar="SECONDS", help="also classify each window of SECONDS (a timeline)")
    cl.add_argument("--json", metavar="OUT", help="write JSON Lines, one video a line, to OUT (- for standard output)")
    cl.add_argument("--csv", metavar="OUT", help="write CSV, one row per video (and per window), to OUT")
    cl.add_argument("--backbone", metavar="NAME|MODULE:FACTORY",
                    help="classify with this backbone instead of the one the run's features were made by")
    _device_option(cl, "the backbone and the members")
    cl.add_argument("--batch-size", type=int, default=32, help="frames per backbone batch (default 32)")
    cl.add_argument("--workers", type=int, default=0, help="processes decoding videos in parallel (default 0)")
    cl.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_classify(args) -> int:
    from tqdm import tqdm

    from .inference.classify import EXIT_NONE, Classifier, exit_status, video_paths
    from .inference.output import Outputs, table_lines

    videos = video_paths(args.paths)  # a path that is not there is refused before anything is loaded
    clf = Classifier(args.run_dir, backbone=args.backbone, device=args.device, batch_size=args.batch_size,
                     top_k=args.top_k, window_s=args.window, workers=args.workers)
    table = sys.stderr if args.json == "-" else sys.stdout  # standard output is the JSON's when it is asked for
    if clf.note:
        print(f"vidstudy: note: {clf.note}.", file=sys.stderr)
    print(clf.describe(), file=table)
    results, t0 = [], time.perf_counter()
    with Outputs(args.json, args.csv, clf.run.class_names, args.top_k, sys.stdout) as out, \
            tqdm(total=len(videos), unit="video", desc="classify", disable=True if args.quiet or len(videos) < 2 else None,
                 file=sys.stderr, dynamic_ncols=True, leave=False) as bar:
        for result in clf.stream(videos):
            results.append(result)
            out.write(result)
            if not result.ok:
                tqdm.write(f"vidstudy: warning: {result.path}: not classified, {result.error}.", file=sys.stderr)
            elif args.json != "-":
                for line in table_lines(result):
                    tqdm.write(line, file=table)
            bar.update(1)
    seconds = time.perf_counter() - t0
    done = sum(r.ok for r in results)
    written = " and ".join(p for p in (args.json, args.csv) if p not in (None, "-"))
    print(f"classified {done} of {len(results)} videos in {seconds:.1f} s ({len(results) / seconds:.2f} videos/s)"
          + (f"; results in {written}" if written else ""), file=table)
    status = exit_status(results)
    if status == EXIT_NONE:
        raise VidstudyError(f"none of the {len(results)} videos could be classified (the reasons are above).")
    return status


def _realclips_args(rc) -> None:
    rc.add_argument("out_dir", type=Path)
    rc.add_argument("--seed", type=int, default=0, help="clip seeds and the source-disjoint split (default 0)")
    rc.add_argument("--frames", type=int, default=12, help="frames per clip through the CNN (default 12)")
    rc.add_argument("--scale", type=float, default=1.0, help="fraction of each source's clips (default 1: 406 clips)")
    rc.add_argument("--workers", type=int, default=None, help="processes rendering clips side by side (default: one "
                                                               "per CPU; 0 renders here; the same files either way)")
    rc.add_argument("--quiet", action="store_true", help="no progress bars")
    _device_option(rc, "the CNN")


def _cmd_realclips(args) -> None:
    from .executor import max_workers
    from .extraction import realclips

    settings = realclips.Settings(seed=args.seed, scale=args.scale)
    t0 = time.perf_counter()
    report = realclips.build(args.out_dir, settings, frames=args.frames, device=str(_device(args)),
                             progress=not args.quiet,
                             workers=max_workers() if args.workers is None else args.workers)
    for split, r in report["splits"].items():
        print(f"{split}: {r['videos_written']} clips -> {r['file']}")
    print(f"built in {time.perf_counter() - t0:.1f} s; clips and sources.json in {args.out_dir / 'videos'}")


def _import_args(im) -> None:
    im.add_argument("inputs", nargs="+", type=Path, metavar="TFRECORD_OR_DIR",
                    help="YouTube-8M frame-level files (train*, validate*) or folders holding them")
    im.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    im.add_argument("--vocabulary", default="2018", metavar="2018|2017|FILE.csv",
                    help="the vocabulary the records' label ids are in (default 2018)")
    im.add_argument("--mapping", type=Path, metavar="FILE.json",
                    help="vocabulary ids -> the four classes (default: the one shipped for the vocabulary)")
    im.add_argument("--features", default="rgb", choices=("rgb", "rgb+audio"), help="per-frame features (default rgb)")
    im.add_argument("--val-fraction", type=float, default=0.5,
                    help="share of each class of the validate* records that goes to val, the rest to test (default 0.5)")
    im.add_argument("--seed", type=int, default=0, help="seed of the val/test hash split (default 0)")
    im.add_argument("--max-videos", type=int, default=None, metavar="N",
                    help="keep at most the first N kept videos of each file (a quick look at a large set)")
    im.add_argument("--skip-damaged", action="store_true",
                    help="skip damaged records (counted in the report) instead of stopping at the first")
    im.add_argument("--quiet", action="store_true", help="no progress bar")
    _ray_option(im, "one task per TFRecord file")


def _cmd_import(args) -> None:
    from .executor import from_options
    from .yt8m.importer import REPORT_NAME, Settings, import_yt8m

    settings = Settings(features=args.features, val_fraction=args.val_fraction, seed=args.seed,
                        max_videos=args.max_videos, skip_damaged=args.skip_damaged)
    report = import_yt8m(args.inputs, args.out_dir, vocabulary=args.vocabulary, mapping=args.mapping,
                         settings=settings, executor=from_options(args.ray) if args.ray else None,
                         progress=not args.quiet)
    state = "up to date, nothing imported" if report.get("up_to_date") else f"{report['seconds']:.1f} s"
    for split, per_class in report["splits"].items():
        print(f"{split}: {sum(per_class.values())} videos ({', '.join(f'{c} {n}' for c, n in per_class.items())})")
    dropped = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in report["dropped_per_reason"].items())
    print(f"{report['records_read']} records read from {len(report['files'])} files; dropped: {dropped}; "
          f"{report['damaged']} damaged skipped ({state}); report: {args.out_dir / REPORT_NAME}")


def _book_args(bk) -> None:
    bk.add_argument("--params", type=Path, help="YAML file of chapter parameters")
    bk.add_argument("--data", type=Path, help="feature folder (default: the simulated default data)")
    bk.add_argument("--smoke", action="store_true", help="tiny data and runs (for tests)")


def _cmd_book(args) -> None:
    from .study.book import build_book

    t0 = time.perf_counter()
    build_book(args.params, args.data, smoke=args.smoke)
    print(f"book built in {time.perf_counter() - t0:.1f} s")


#: ``name: (help, arguments, handler)`` of every sub-command, in the order ``--help`` lists them.
COMMANDS = {
    "simulate": ("write the simulated train/val/test feature files", _simulate_args, _cmd_simulate),
    "inspect": ("validate a feature file and print a summary", _inspect_args, _cmd_inspect),
    "probe": ("logistic-regression probe on video-level features (the floor to beat)", _probe_args, _cmd_probe),
    "models": ("list the model families (--set model.arch=NAME), their fields and sizes", _models_args, _cmd_models),
    "train": ("train the seed ensemble on DATA_DIR's train/val files into RUN_DIR", _train_args, _cmd_train),
    "predict": ("run every member over every TTA view of val and test into RUN_DIR/predictions", _predict_args,
                _cmd_predict),
    "evaluate": ("votes, TTA, stacking, calibration and CIs from the store; writes results.json", _evaluate_args,
                 _cmd_evaluate),
    "extract": ("turn VIDEO_DIR/{split}/{Category}/{Subcategory}/videos into feature files", _extract_args,
                _cmd_extract),
    "classify": ("classify video files with a trained run: top categories, member agreement, confidence, "
                 "a timeline with --window (exit status 0: all classified, 3: some, 1: none)", _classify_args,
                 _cmd_classify),
    "import-yt8m": ("YouTube-8M frame-level TFRecords (train*, validate*) -> the study's train/val/test feature "
                    "files, by a mapping of its labels to the four classes", _import_args, _cmd_import),
    "realclips": ("a dataset of real video frames (Atari games, real footage and photographs, screens of real "
                  "documents and data, animation) in the study's four classes, as feature files", _realclips_args,
                  _cmd_realclips),
    "book": ("execute the chapters with papermill and build the HTML book", _book_args, _cmd_book),
}


# --- shared options ------------------------------------------------------------------------------------------


def _device(args):
    """The ``--device`` asked for, checked against this machine (one line naming ``--device`` if not there); with
    ``--ray`` it is left as asked, for each task to resolve where it runs."""
    from .device import resolve_device

    return args.device if getattr(args, "ray", None) else resolve_device(args.device)


def _device_option(parser, what: str) -> None:
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help=f"where {what} run(s): auto (a CUDA GPU when there is one, default), cpu, cuda or cuda:N")


def _ray_option(parser, what: str) -> None:
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help=f"run on a Ray cluster: {what}; ADDRESS as `ray start --head` prints it, or none for a "
                             f"cluster started on this machine (needs the ray extra)")


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other user error (``--help`` still prints usage)."""

    def error(self, message: str):
        print(f"vidstudy: error: {self.prog}: {message} (see {self.prog} --help).", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="vidstudy", description="Video category classification from per-frame CNN features.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (help_, arguments, handler) in COMMANDS.items():
        command = sub.add_parser(name, help=help_)
        arguments(command)
        command.set_defaults(func=handler)
    return p


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"vidstudy: warning: {message}\n"


#: What to do after an interrupt, per sub-command (every file is written atomically, so none is left half-written).
RESUME_HINTS = {
    "train": "finished epochs are kept: run the same command with --resume to continue",
    "extract": "finished videos are kept: run the same command again to continue",
    "realclips": "finished clips and videos are kept: run the same command again to continue",
    "import-yt8m": "finished files are kept: run the same command again to continue",
    "book": "finished chapters are kept: run the same command again to continue",
}


def _interrupted(signum, frame):
    """SIGINT and SIGTERM: a ``KeyboardInterrupt`` where the command is, but not inside a finaliser (a weakref
    callback or ``__del__``, run when an object is freed), where Python would print and ignore it: the signal is then
    delivered again a moment later."""
    if _in_finaliser(frame):
        import threading

        threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
        return
    raise KeyboardInterrupt


def _in_finaliser(frame) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename.endswith("weakref.py"):
            return True
        frame = frame.f_back
    return False


def main(argv: list[str] | None = None) -> int:
    """Run one ``vidstudy`` command; returns its exit status (0, 1 for a user error, 130 when interrupted by
    SIGINT or SIGTERM, or the status a command's handler returns: ``classify``'s 3 when some videos failed)."""
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:  # a SIGTERM ends a command as Ctrl-C does
        previous = {s: signal.signal(s, _interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to handle
        previous = {}
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        hint = RESUME_HINTS.get(args.command, "nothing was left half-written; run the same command again")
        print(f"{chr(10) if sys.stderr.isatty() else ''}vidstudy: interrupted; {hint}.", file=sys.stderr)
        return 130
    except VidstudyError as exc:
        print(f"vidstudy: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"vidstudy: error: {where}{exc.strerror or exc}.", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
