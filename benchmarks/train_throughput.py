"""Training and prediction throughput: the bare model against the package's own end-to-end paths, on a device.

    .venv/bin/python benchmarks/train_throughput.py                       # CPU: the bare-model table
    .venv/bin/python benchmarks/train_throughput.py --end-to-end --presets cpu --shape default
    python benchmarks/train_throughput.py --device cuda --precision bf16 --end-to-end --presets paper --shape paper

Bare model: random inputs of each shape (lengths drawn like the simulation: 60 % full, the rest
uniform), the preset's batch size, a forward pass at the precision asked, focal loss, backward,
gradient clipping and an AdamW step; one warm-up batch, then the median of ``repeats`` timings of
``batches`` batches (the device synchronised around each timing).

``--end-to-end`` then simulates data of ``--shape`` (or reads ``--data``) and trains one member with
:func:`vidstudy.train.train_single_model` for ``--epochs`` epochs on the same device, batch and
precision: data feeding, per-epoch validation, metrics, history and checkpoints included (plots off,
as in the book). It prints the end-to-end videos/s, its ratio to the bare model's, and the share of
the wall time that validation and checkpointing (with the history files) take. Then prediction:
``--members`` copies of the model over 5 views of val + test with
:func:`vidstudy.tta.predict_members`, in member x view x video sequences per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vidstudy.config import apply_overrides, preset
from vidstudy.device import allow_tf32, autocast, resolve_device
from vidstudy.losses import FocalLoss
from vidstudy.models import build_model, count_parameters

SHAPES = {"default": (64, 256), "paper": (73, 1280)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(batch_size: int, t: int, d: int, gen: torch.Generator, device: torch.device):
    lengths = torch.where(torch.rand(batch_size, generator=gen) < 0.6, torch.tensor(t),
                          torch.randint(8, t + 1, (batch_size,), generator=gen))
    x = torch.rand(batch_size, t, d, generator=gen) * (torch.arange(t)[None, :, None] < lengths[:, None, None])
    return x.to(device), lengths.to(device), torch.randint(0, 4, (batch_size,), generator=gen).to(device)


def bare(preset_name: str, shape: str, device: torch.device, precision: str, repeats: int, batches: int) -> dict:
    """Videos/s of the bare model (train step and eval forward) on random inputs already on ``device``."""
    t, d = SHAPES[shape]
    return {"preset": preset_name, "shape": f"{shape} (T={t}, D={d})",
            **bare_config(preset(preset_name), t, d, device, precision, repeats, batches)}


def bare_config(cfg, t: int, d: int, device: torch.device, precision: str, repeats: int, batches: int) -> dict:
    """``params``, ``batch`` and the videos/s of ``train`` steps and ``infer`` forwards of the model of ``cfg`` on
    random ``[batch, t, d]`` inputs already on ``device``."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg.model, d, 4).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = FocalLoss()
    bs = cfg.train.batch_size
    data = [_batch(bs, t, d, gen, device) for _ in range(batches + 1)]

    def train_pass(items):
        model.train()
        for x, lengths, y in items:
            with autocast(device, precision):
                logits = model(x, lengths)
            loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()

    @torch.no_grad()
    def eval_pass(items):
        model.eval()
        for x, lengths, _ in items:
            with autocast(device, precision):
                model(x, lengths)

    out = {"params": count_parameters(model), "batch": bs}
    for name, fn in (("train", train_pass), ("infer", eval_pass)):
        fn(data[:1])
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            fn(data[1:])
            _sync(device)
            times.append(time.perf_counter() - t0)
        out[name] = bs * batches / statistics.median(times)
    return out


class _Timer:
    """Wrap module functions to add up the seconds spent in them."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._undo = []

    def wrap(self, module, name: str, label: str, device: torch.device) -> None:
        real = getattr(module, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                _sync(device)
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(module, name, timed)
        self._undo.append((module, name, real))

    def restore(self) -> None:
        for module, name, real in self._undo:
            setattr(module, name, real)


def end_to_end(preset_name: str, data_dir: Path, device: torch.device, precision: str, epochs: int, members: int,
               out: Path, checkpoint_every: int = 1) -> dict:
    """``train_single_model`` epochs, with the shares of validation and checkpointing; then prediction."""
    from vidstudy import checkpoint, train
    from vidstudy.features import load_splits
    from vidstudy.tta import predict_members, view_names

    files = load_splits(data_dir)
    cfg = apply_overrides(preset(preset_name), [f"train.epochs={epochs}", f"train.patience={epochs}",
                                                f"train.precision={precision}", "members=1"])
    timer = _Timer()
    timer.wrap(train, "_validate", "validation", device)
    for name in ("save_best", "save_last"):
        timer.wrap(checkpoint, name, "checkpoints", device)
    timer.wrap(train, "_write_history", "checkpoints", device)
    try:
        _sync(device)
        t0 = time.perf_counter()
        summary = train.train_single_model(cfg, files["train"], files["val"], 42, out / "member", plots=False, quiet=True,
                                           device=device, checkpoint_every=checkpoint_every)
        _sync(device)
        wall = time.perf_counter() - t0
    finally:
        timer.restore()
    result = {"train_videos": len(files["train"]), "epochs": summary["epochs_run"], "wall": wall,
              "per_epoch": wall / summary["epochs_run"], "videos_per_s": len(files["train"]) * summary["epochs_run"] / wall,
              "shares": {k: v / wall for k, v in timer.seconds.items()}}
    model, _ = checkpoint.load_model(checkpoint.best_path(out / "member"), device)
    models = [model] * members
    views = view_names(1)
    n = len(files["val"]) + len(files["test"])
    predict_members(models, files["val"], views[:1], device=device, precision=precision)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for split in ("val", "test"):
        predict_members(models, files[split], views, device=device, precision=precision)
    _sync(device)
    seconds = time.perf_counter() - t0
    result["predict"] = {"members": members, "views": len(views), "videos": n, "seconds": seconds,
                         "sequences_per_s": members * len(views) * n / seconds}
    return result


def _shape_of(data_dir: Path) -> str:
    """The :data:`SHAPES` entry of a feature folder's train file (``paper`` at T=73, D=1280, else ``default``)."""
    from vidstudy.features import FeatureFile, feature_file_name

    train = FeatureFile(Path(data_dir) / feature_file_name("train"))
    return "paper" if (train.max_frames, train.feature_dim) == SHAPES["paper"] else "default"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--end-to-end", action="store_true", help="also train one member and predict with the package")
    ap.add_argument("--shape", default="default", choices=("default", "paper", "smoke"),
                    help="simulated data for --end-to-end (ignored with --data)")
    ap.add_argument("--data", type=Path, help="feature folder for --end-to-end instead of simulating one")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--members", type=int, default=5, help="members for the prediction timing")
    ap.add_argument("--checkpoint-every", type=int, default=1, help="write last.pt every N epochs (train --checkpoint-every)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    allow_tf32(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}{' (TF32 products)' if device.type == 'cuda' and args.precision == 'fp32' else ''}; "
          f"bare model: median of {args.repeats} x {args.batches} batches")
    print(f"{'preset':<7} {'shape':<22} {'params':>11} {'batch':>5} {'train videos/s':>15} {'infer videos/s':>15}")
    bares = {}
    for p in args.presets.split(","):
        for shape in SHAPES:
            r = bare(p, shape, device, args.precision, args.repeats, args.batches)
            bares[(p, shape)] = r
            print(f"{r['preset']:<7} {r['shape']:<22} {r['params']:>11,} {r['batch']:>5} {r['train']:>15.1f} {r['infer']:>15.1f}")
    if not args.end_to_end:
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from vidstudy.simulate import simulate

            t0 = time.perf_counter()
            simulate(Path(tmp) / "data", seed=0, shape=args.shape)
            data = Path(tmp) / "data"
            print(f"simulated the {args.shape} shape in {time.perf_counter() - t0:.1f} s")
        shape = _shape_of(data)  # the bare model's figure at the data's own shape is the reference
        for p in args.presets.split(","):
            r = end_to_end(p, data, device, args.precision, args.epochs, args.members, Path(tmp) / p, args.checkpoint_every)
            ref = bares[(p, shape)]["train"]
            shares = ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(r["shares"].items()))
            print(f"{p}: train_single_model, {r['epochs']} epochs of {r['train_videos']} videos: {r['per_epoch']:.2f} s per "
                  f"epoch, {r['videos_per_s']:.1f} videos/s end to end = {100 * r['videos_per_s'] / ref:.0f} % of the bare "
                  f"model's {ref:.1f} ({shares} of the wall time)")
            q = r["predict"]
            print(f"{p}: predict {q['members']} members x {q['views']} views over {q['videos']} val+test videos in "
                  f"{q['seconds']:.2f} s ({q['sequences_per_s']:.0f} sequences/s)")


if __name__ == "__main__":
    main()
