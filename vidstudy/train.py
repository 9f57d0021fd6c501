"""Training: one member (``train_single_model``) and a seed ensemble (``train_ensemble``; several runs' members
as one batch of jobs: ``train_ensembles``).

A member ``ensemble_model_{i}`` is trained with seed ``seed_base + i`` and writes
``RUN_DIR/members/ensemble_model_{i}/``:

best and last checkpoints  the best epoch's weights and everything needed to resume
                          (their layout: :mod:`vidstudy.checkpoint`)
``history.json``          per-epoch metrics (fractions in [0, 1]; LR at the epoch's last batch)
``training_metrics.csv``  the original's columns, then extra columns
``summary.json``          best epoch (1-based), best metrics, epochs run, early stop, wall time,
                          collapse flags, the device it ran on; written last, so its presence marks a
                          finished member

Training runs on the ``device`` asked for (:func:`vidstudy.device.resolve_device`), at
``train.precision``; batches reach it as :mod:`vidstudy.feeding` decides. Within an
epoch nothing waits for the device: losses and predictions are gathered there and
read back once, at the epoch's end (where a non-finite loss is also caught).

Every random stream (``random``, ``numpy``, ``torch``, the sampler, the loader and
its workers, augmentation) is reseeded at the start of each epoch from
``(seed, epoch)``. An interrupted run resumed from its last checkpoint therefore continues
exactly as if it had not stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .atomic import write_json, write_text
from .config import RunConfig
from .data import AugmentConfig, VideoDataset, longest_first
from .device import allow_tf32, autocast, inference_attention, resolve_device
from .errors import ParameterError, VidstudyError
from .executor import LocalExecutor
from .features import FeatureFile, feature_file_name
from .feeding import Feed
from .fingerprint import difference, fingerprint
from .losses import FocalLoss
from .metrics import classification_metrics, detect_collapse
from .models import build_model
from .profiling import timed
from .runs import CONFIG_FILE, DATA_FILE, MEMBERS_DIR, SUMMARY_FILE, member_dir, read_config, read_data_record, read_summary
from .sampling import class_weights, subcategory_sample_weights, weighted_sampler

HISTORY_KEYS = ("train_loss", "train_acc", "train_f1", "val_loss", "val_acc", "val_f1", "val_macro_f1",
                "val_per_class_f1", "learning_rates", "epoch_times", "collapsed_classes")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of every random stream in ``epoch`` (0-based) of a member trained with ``seed``."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def lr_at_epoch(cfg, epoch: int) -> float:
    """``warmup_cosine``: linear warm-up over ``warmup_epochs``, then cosine decay to ``min_lr``."""
    if epoch < cfg.warmup_epochs:
        return cfg.lr * (epoch + 1) / cfg.warmup_epochs
    span = max(1, cfg.epochs - cfg.warmup_epochs)
    progress = (epoch - cfg.warmup_epochs) / span
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def predict(model: nn.Module, batches, precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[N, C]`` (float32) and labels ``[N]`` of a model over batches on its device (eval mode)."""
    model.eval()
    logits, labels = [], []
    for batch in batches:
        with autocast(batch.features.device, precision), inference_attention(batch.features.device):
            logits.append(model(batch.features, batch.lengths).float())
        labels.append(batch.labels)
    return torch.cat(logits).cpu().numpy(), torch.cat(labels).cpu().numpy()


def _history_csv(history: dict, num_classes: int) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", "train_loss", "train_acc", "train_f1", "val_loss", "val_acc", "val_f1",
                     *[f"class_{c}_f1" for c in range(num_classes)], "learning_rates",
                     "val_macro_f1", "epoch_time_s", "collapsed_classes"])
    for e in range(len(history["train_loss"])):
        writer.writerow([e + 1, *(f"{history[k][e]:.6f}" for k in ("train_loss", "train_acc", "train_f1", "val_loss",
                                                                    "val_acc", "val_f1")),
                         *(f"{v:.6f}" for v in history["val_per_class_f1"][e]), f"{history['learning_rates'][e]:.8g}",
                         f"{history['val_macro_f1'][e]:.6f}", f"{history['epoch_times'][e]:.3f}",
                         " ".join(map(str, history["collapsed_classes"][e]))])
    return buf.getvalue()


def _write_history(out_dir: Path, history: dict, num_classes: int) -> None:
    write_json(out_dir / "history.json", history)
    write_text(out_dir / "training_metrics.csv", _history_csv(history, num_classes))


@dataclass
class _Member:
    """Everything one member's training uses, built by :func:`_setup`."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    criterion: FocalLoss
    eval_criterion: FocalLoss
    weights: np.ndarray
    sample_weights: np.ndarray | None
    train_feed: Feed
    val_feed: Feed
    device: torch.device
    val_order: list[int] | None = None  # validation's batch order: longest first where the batch cannot matter


@dataclass
class _Progress:
    """Where a member's training stands (what its last checkpoint keeps besides the weights)."""

    history: dict = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    wall_before: float = 0.0


def _setup(config: RunConfig, train_data: FeatureFile, val_data: FeatureFile, seed: int, init_checkpoint,
           device: torch.device, feeding: str | None = None) -> _Member:
    """Model (seeded, or from ``init_checkpoint``) on ``device``, optimiser, schedule, class weights, losses and
    the feeds of both splits."""
    tcfg, num_classes = config.train, train_data.num_classes
    seed_everything(seed)
    model = build_model(config.model, train_data.feature_dim, num_classes)
    if init_checkpoint is not None:
        model.load_state_dict(checkpoint.load(init_checkpoint)["model_state"])
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    scheduler = None
    if tcfg.schedule == "warm_restarts":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=tcfg.restart_t0, T_mult=tcfg.restart_t_mult, eta_min=tcfg.min_lr)
    weights = class_weights(train_data.labels, num_classes, tuple(tcfg.weight_clip))
    if tcfg.class_boost:  # its length is checked by check_inputs
        weights = weights * np.asarray(tcfg.class_boost)
    sample_weights = None
    if tcfg.sampling == "subcategory":  # the file's subcategories are checked by check_inputs
        sample_weights = subcategory_sample_weights(train_data.labels, train_data.subcategories, weights)
    alpha = torch.tensor(weights, dtype=torch.float32, device=device) if tcfg.balance in ("alpha", "both") else None
    return _Member(
        model=model, optimizer=optimizer, scheduler=scheduler,
        criterion=FocalLoss(alpha, gamma=tcfg.focal_gamma, smoothing=tcfg.label_smoothing),
        # Validation loss without alpha, so it is comparable across balance settings.
        eval_criterion=FocalLoss(None, gamma=tcfg.focal_gamma, smoothing=tcfg.label_smoothing),
        weights=weights, sample_weights=sample_weights, device=device,
        train_feed=Feed(VideoDataset(train_data, AugmentConfig() if tcfg.augment else None, seed=seed), device,
                        feeding, num_workers=tcfg.num_workers),
        val_feed=Feed(VideoDataset(val_data), device, feeding, num_workers=tcfg.num_workers),
        # A masked model's logits of a video do not depend on its batch, so validation may pad each batch only to its
        # own longest video; the original's unmasked attention sees the padding, so its batches stay as they are.
        val_order=longest_first(val_data.num_frames).tolist() if getattr(model, "masked", True) else None,
    )


def _resume(m: _Member, path: Path, config: RunConfig, seed: int) -> _Progress:
    """Load the last checkpoint ``path`` into ``m``, refusing one made with another config or seed."""
    state = checkpoint.load(path, checkpoint.LAST_KEYS)
    then = RunConfig.from_dict(state["config"], where=str(path)).to_dict()  # keys added since are their defaults
    changed = difference(fingerprint(config=then, seed=state["seed"]), fingerprint(config=config.to_dict(), seed=seed))
    if changed:
        raise VidstudyError(f"{path}: was trained with another config or seed ({changed}); it cannot be resumed with this one.")
    try:
        m.model.load_state_dict(state["model_state"])
        m.optimizer.load_state_dict(state["optimizer_state"])
        if m.scheduler is not None:
            m.scheduler.load_state_dict(state["scheduler_state"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise VidstudyError(f"{path}: its weights or optimiser state do not fit this member ({first[:200]}); "
                            f"remove it to train the member afresh.") from None
    if set(state["history"]) != set(HISTORY_KEYS):
        raise VidstudyError(f"{path}: not a usable checkpoint (its history does not hold {', '.join(HISTORY_KEYS)}).")
    return _Progress(history=state["history"], epoch=state["epoch"], best_score=state["best_score"],
                     best_epoch=state["best_epoch"], bad_epochs=state["bad_epochs"], wall_before=state["wall_time_s"])


def _train_epoch(m: _Member, train_data: FeatureFile, tcfg, seed: int, epoch: int) -> dict:
    """One epoch over the (re-seeded) sampler; returns its loss, accuracy, weighted F1 and last learning rate."""
    es = epoch_seed(seed, epoch)
    seed_everything(es)
    sampler = (weighted_sampler(train_data.labels, m.weights, seed=es, sample_weights=m.sample_weights)
               if tcfg.balance in ("sampler", "both") else None)
    batches = m.train_feed.batches(tcfg.batch_size, shuffle=True, sampler=sampler, seed=es)
    if m.scheduler is None:
        for group in m.optimizer.param_groups:
            group["lr"] = lr_at_epoch(tcfg, epoch)
    m.model.train()
    # float64 on the device, summed in the batches' order: the same sum of loss x batch size as in Python floats
    loss_sum = torch.zeros((), dtype=torch.float64, device=m.device)
    y_true, y_pred = [], []
    for batch in batches:
        lr = m.optimizer.param_groups[0]["lr"]
        with autocast(m.device, tcfg.precision):
            logits = m.model(batch.features, batch.lengths)
        loss = m.criterion(logits.float(), batch.labels)
        m.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(m.model.parameters(), tcfg.grad_clip)
        m.optimizer.step()
        if m.scheduler is not None:
            m.scheduler.step()
        loss_sum += loss.detach().double() * len(batch.labels)
        y_true.append(batch.labels)
        y_pred.append(logits.detach().argmax(1))
    total = float(loss_sum)  # the epoch's one wait for the device
    if not math.isfinite(total):
        raise VidstudyError(f"training diverged: the loss became {total} in epoch {epoch + 1}; lower train.lr "
                            f"or check the features (the last finished epoch is kept for --resume).")
    y_true, y_pred = torch.cat(y_true).cpu().numpy(), torch.cat(y_pred).cpu().numpy()
    metrics = classification_metrics(y_true, y_pred, train_data.num_classes)
    return {"train_loss": total / len(y_true), "train_acc": metrics["acc"], "train_f1": metrics["f1_weighted"],
            "learning_rates": lr}


def _validate(m: _Member, num_classes: int, batch_size: int, precision: str) -> tuple[dict, dict]:
    """Validation metrics (``val_*`` history entries) and the collapse check of the model as it is now."""
    val_logits, val_labels = predict(m.model, m.val_feed.batches(batch_size, sampler=m.val_order), precision)
    val_loss = float(m.eval_criterion(torch.from_numpy(val_logits), torch.from_numpy(val_labels)))
    val_pred = val_logits.argmax(1)
    metrics = classification_metrics(val_labels, val_pred, num_classes)
    collapse = detect_collapse(val_labels, val_pred, num_classes)
    return {"val_loss": val_loss, "val_acc": metrics["acc"], "val_f1": metrics["f1_weighted"],
            "val_macro_f1": metrics["f1_macro"], "val_per_class_f1": metrics["per_class_f1"],
            "collapsed_classes": collapse["lost_classes"]}, collapse


def _summary(name: str, seed: int, tcfg, p: _Progress, stopped_early: bool, wall_time: float, best: dict,
             class_names: list[str], device: torch.device) -> dict:
    collapse = best["collapse"]
    return {
        "member": name,
        "seed": seed,
        "device": _device_name(device),
        "torch_threads": torch.get_num_threads(),  # CPU results are reproducible for the same seed and thread count
        "best_epoch": p.best_epoch + 1,
        "epochs_run": len(p.history["train_loss"]),
        "stopped_early": bool(stopped_early),
        "monitor": tcfg.monitor,
        "best_metrics": best["metrics"],
        "wall_time_s": wall_time,
        "collapsed": collapse["collapsed"],
        "lost_classes": collapse["lost_classes"],
        "lost_class_names": [class_names[c] for c in collapse["lost_classes"]],
        "dominant_class": collapse["dominant_class"],
        "dominant_share": collapse["dominant_share"],
    }


def _device_name(device: torch.device) -> str:
    """``cpu``, or ``cuda:N (the GPU's name)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def train_single_model(config: RunConfig, train_data: FeatureFile, val_data: FeatureFile, seed: int, out_dir,
                       *, resume: bool = False, plots: bool = True, plots_per_epoch: bool = False, quiet: bool = False,
                       name: str | None = None, init_checkpoint=None, device: str | torch.device = "auto",
                       feeding: str | None = None, checkpoint_every: int = 1) -> dict:
    """Train one member into ``out_dir`` on ``device``; returns its summary (also written to ``summary.json``).

    ``plots`` draws ``plots/current.png`` after every epoch; ``plots_per_epoch`` also
    keeps ``plots/epoch_NNN.png``. ``init_checkpoint`` starts from another member's
    best checkpoint (fine-tuning) instead of a fresh initialisation. ``feeding`` forces
    a :mod:`vidstudy.feeding` mode (default: chosen from the device and the data's size).
    ``checkpoint_every`` writes the resume checkpoint (weights and optimiser state, about 0.8 GB for the
    paper model) after every that many epochs and after the last one; the best checkpoint is written whenever the
    monitored score improves. On a GPU, where an epoch takes seconds, a larger value keeps checkpointing from
    dominating; an interrupted member then resumes from the last epoch written, exactly as if not interrupted.
    """
    from tqdm import tqdm

    out_dir, device, tcfg = Path(out_dir), resolve_device(device, "device"), config.train
    _check_member(config, train_data, val_data, out_dir, resume, checkpoint_every)
    name = name or out_dir.name
    out_dir.mkdir(parents=True, exist_ok=True)
    allow_tf32(device)
    m = _setup(config, train_data, val_data, seed, init_checkpoint, device, feeding)
    last = checkpoint.last_path(out_dir)
    p = _resume(m, last, config, seed) if resume and last.exists() else _Progress()
    viz = None
    if plots:  # matplotlib is imported only to draw
        from .viz import RealTimeTrainingVisualizer

        viz = RealTimeTrainingVisualizer(out_dir / "plots", train_data.class_names, title=name, per_epoch=plots_per_epoch)
    t_start = time.perf_counter()
    stopped_early = p.bad_epochs >= tcfg.patience
    bar = tqdm(range(p.epoch, tcfg.epochs), desc=name, disable=quiet, leave=False, unit="epoch")
    for epoch in bar:
        if stopped_early:
            break
        t0 = time.perf_counter()
        entry = _train_epoch(m, train_data, tcfg, seed, epoch)
        val, collapse = _validate(m, train_data.num_classes, max(64, tcfg.batch_size), tcfg.precision)
        entry.update(val, epoch_times=time.perf_counter() - t0)
        stopped_early = _record_epoch(m, p, entry, collapse, out_dir, config, seed, train_data, checkpoint_every,
                                      wall=lambda: p.wall_before + time.perf_counter() - t_start)
        if viz is not None:
            viz.update(p.history)
        bar.set_postfix(loss=f"{p.history['train_loss'][-1]:.3f}", val_macro_f1=f"{p.history['val_macro_f1'][-1]:.3f}")
    bar.close()
    best = checkpoint.load(checkpoint.best_path(out_dir))
    summary = _summary(name, seed, tcfg, p, stopped_early, p.wall_before + time.perf_counter() - t_start, best,
                       train_data.class_names, device)
    write_json(out_dir / SUMMARY_FILE, summary)
    return summary


def _check_member(config: RunConfig, train_data: FeatureFile, val_data: FeatureFile, out_dir: Path, resume: bool,
                  checkpoint_every: int) -> None:
    """Refuse, before anything is written, what one member cannot be trained with."""
    config.validate()
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ParameterError(f"checkpoint_every (--checkpoint-every) must be at least 1, got {checkpoint_every}.")
    check_inputs(config, train_data, val_data)
    if checkpoint.last_path(out_dir).exists() and not resume:
        raise VidstudyError(f"{out_dir}: holds a started member; pass resume=True (--resume) to continue it or "
                            f"choose another folder.")


def _record_epoch(m: _Member, p: _Progress, entry: dict, collapse: dict, out_dir: Path, config: RunConfig, seed: int,
                  data: FeatureFile, checkpoint_every: int, wall) -> bool:
    """Add the finished epoch ``p.epoch`` to the history and write what it changed (the best checkpoint when the
    monitored score improved, the history, the resume checkpoint when due); returns whether training stops early."""
    tcfg = config.train
    for key in HISTORY_KEYS:
        p.history[key].append(entry[key])
    score = p.history[tcfg.monitor][-1]
    if score > p.best_score:
        p.best_score, p.best_epoch, p.bad_epochs = score, p.epoch, 0
        metrics = {k: entry[k] for k in ("val_acc", "val_f1", "val_macro_f1", "val_per_class_f1", "val_loss")}
        checkpoint.save_best(out_dir, model_state=m.model.state_dict(), config=config.to_dict(), seed=seed,
                             epoch=p.epoch + 1, feature_dim=data.feature_dim, num_classes=data.num_classes,
                             class_names=data.class_names, category_mapping=data.category_mapping, collapse=collapse,
                             metrics=metrics)
    else:
        p.bad_epochs += 1
    stopped_early = p.bad_epochs >= tcfg.patience
    p.epoch += 1
    _write_history(out_dir, p.history, data.num_classes)
    if p.epoch % checkpoint_every == 0 or stopped_early or p.epoch == tcfg.epochs:
        checkpoint.save_last(out_dir, model_state=m.model.state_dict(), optimizer_state=m.optimizer.state_dict(),
                             scheduler_state=m.scheduler.state_dict() if m.scheduler is not None else None,
                             config=config.to_dict(), seed=seed, epoch=p.epoch, history=p.history,
                             best_score=p.best_score, best_epoch=p.best_epoch, bad_epochs=p.bad_epochs,
                             wall_time_s=wall())
    return stopped_early


def _train_member(config: RunConfig, train, val, seed: int, out_dir, kwargs: dict) -> dict:
    """One member, as an executor's job: ``train`` and ``val`` are open feature files or their paths."""
    train, val = (f if isinstance(f, FeatureFile) else FeatureFile(f) for f in (train, val))
    return train_single_model(config, train, val, seed, out_dir, **kwargs)


@dataclass(frozen=True)
class Ensemble:
    """One run for :func:`train_ensembles`: its config, files, folder, the run it fine-tunes from (``init_from``)
    and the test file it is evaluated on (see :func:`train_ensemble`)."""

    config: RunConfig
    train_data: FeatureFile
    val_data: FeatureFile
    run_dir: Path
    init_from: Path | None = None
    test_file: Path | None = None


def train_ensemble(config: RunConfig, train_data: FeatureFile, val_data: FeatureFile, run_dir, *,
                   num_models: int | None = None, resume: bool = False, plots: bool = True,
                   plots_per_epoch: bool = False, quiet: bool = False, init_from=None, test_file=None,
                   device: str | torch.device = "auto", checkpoint_every: int = 1, executor=None) -> list[dict]:
    """Train ``num_models`` (default ``config.members``) members with seeds ``seed_base + i`` into ``run_dir``,
    on ``device`` (:func:`vidstudy.device.resolve_device`), writing the resume checkpoint every ``checkpoint_every`` epochs
    (see :func:`train_single_model`).

    ``init_from`` names a finished run whose member ``i`` starts member ``i`` here
    (fine-tuning from its best checkpoint). ``test_file`` is the test split the run is
    evaluated on (default: the test file beside the validation file, when there is one).

    ``run_dir/config.json`` (the resolved config) and ``run_dir/data.json`` (the
    identity of the train, val and test files, :mod:`vidstudy.fingerprint`) are
    written before training. With ``resume``, the run continues only when the config
    (apart from ``members``) and the train and val files' content are those it was
    started with; otherwise one error names what differs and nothing in ``run_dir``
    changes. Finished members (with ``summary.json``) are then reused and a started
    one continues from its last checkpoint. The run's members are exactly ``config.members``.

    ``executor`` (:mod:`vidstudy.executor`; default: here, one member after another) runs the members still to
    train; a :class:`~vidstudy.executor.RayExecutor` runs them side by side as Ray tasks, into the same layout,
    ``device`` then being chosen in each task (``auto``: the GPU Ray gave it, if any).
    """
    if num_models is not None:
        config = dataclasses.replace(config, members=num_models)
    run = Ensemble(config, train_data, val_data, Path(run_dir), init_from, test_file)
    return train_ensembles([run], resume=resume, plots=plots, plots_per_epoch=plots_per_epoch, quiet=quiet,
                           device=device, checkpoint_every=checkpoint_every, executor=executor)[0]


@timed("training")
def train_ensembles(runs: Sequence[Ensemble], *, resume: bool = False, plots: bool = True,
                    plots_per_epoch: bool = False, quiet: bool = False, device: str | torch.device = "auto",
                    checkpoint_every: int = 1, executor=None) -> list[list[dict]]:
    """:func:`train_ensemble` for several runs at once: every run is checked before any is written, then the members
    still to train, of all runs, go to ``executor`` as one batch of jobs, in the order of ``runs`` (put the runs whose
    members take longest first, so that side by side no slot idles at the end). Returns each run's summaries."""
    executor = executor if executor is not None else LocalExecutor()
    if executor.shares_memory:  # on a cluster each job resolves the device where it runs
        device = resolve_device(device, "device")
    kwargs = dict(resume=resume, plots=plots, plots_per_epoch=plots_per_epoch, quiet=quiet, device=device,
                  checkpoint_every=checkpoint_every)
    records = []
    for run in runs:
        run.config.validate()
        inits = _init_checkpoints(run.init_from, run.config.members)
        data = fingerprint({"train": run.train_data.path, "val": run.val_data.path, **inits,
                            "test": _test_file(run.test_file, run.val_data)})
        if (Path(run.run_dir) / CONFIG_FILE).exists():
            _check_resumable(Path(run.run_dir), run.config, data, resume)
        check_inputs(run.config, run.train_data, run.val_data)
        records.append((data, inits))
    jobs, finished, created = [], [], []
    for run, (data, inits) in zip(runs, records):
        config, run_dir = run.config, Path(run.run_dir)
        created.append((run_dir, not (run_dir / CONFIG_FILE).exists(), run_dir.exists()))
        write_json(run_dir / CONFIG_FILE, config.to_dict())
        write_json(run_dir / DATA_FILE, data)
        done = {i: read_summary(member_dir(run_dir, i)) for i in range(config.members)
                if resume and (member_dir(run_dir, i) / SUMMARY_FILE).exists()}
        finished.append(done)
        files = (run.train_data, run.val_data) if executor.shares_memory else (run.train_data.path, run.val_data.path)
        jobs += [((len(finished) - 1, i), (config, *files, config.seed_base + i, member_dir(run_dir, i),
                                           {**kwargs, "init_checkpoint": inits.get(f"init_{i}")}))
                 for i in range(config.members) if i not in done]
    try:
        for (r, i), summary in zip([key for key, _ in jobs], executor.map(_train_member, [job for _, job in jobs])):
            finished[r][i] = summary
    except Exception:
        for run_dir, fresh, had_dir in created:
            if fresh:
                _forget_unstarted_run(run_dir, remove_dir=not had_dir)
        raise
    out = []
    for run, done in zip(runs, finished):
        summaries = [done[i] for i in range(run.config.members)]
        write_json(Path(run.run_dir) / "members_summary.json", summaries)
        out.append(summaries)
    return out


def _init_checkpoints(init_from, members: int) -> dict[str, Path]:
    """``{init_i: best checkpoint of member i of init_from}`` (none without ``init_from``), each checked to exist."""
    if init_from is None:
        return {}
    inits = {f"init_{i}": checkpoint.best_path(member_dir(init_from, i)) for i in range(members)}
    for path in inits.values():
        if not path.exists():
            raise VidstudyError(f"{path}: the run to fine-tune from has no such member checkpoint.")
    return inits


def _test_file(test_file, val_data: FeatureFile):
    """The test split a run is evaluated on: ``test_file``, else the test file beside the validation file, if any."""
    beside = Path(val_data.path).parent / feature_file_name("test")
    return test_file if test_file is not None or not beside.is_file() else beside


def _check_resumable(run_dir: Path, config: RunConfig, data: dict, resume: bool) -> None:
    """Refuse to continue the run in ``run_dir`` unless asked to and its config (apart from ``members``) and the files
    training reads are those it was started with; then keep the test file it recorded in ``data``."""
    if not resume:
        raise VidstudyError(f"{run_dir}: already holds a run; pass --resume to continue it or choose another folder.")
    saved, mine = read_config(run_dir).to_dict(), config.to_dict()
    saved.pop("members"), mine.pop("members")
    changed = difference(fingerprint(config=saved), fingerprint(config=mine))
    if changed:
        raise ParameterError(f"{run_dir / CONFIG_FILE}: the run was started with another config ({changed}); "
                             f"resume it with the same parameters or train into another folder.")
    recorded = read_data_record(run_dir)
    # Every file training reads (train, val, the checkpoints a fine-tuning starts from), not the test file.
    # Checkpoints are compared for the members both runs have (members may be added or dropped).
    inits_then = {k for k in recorded["files"] if k.startswith("init_")}
    inits_now = {k for k in data["files"] if k.startswith("init_")}
    unshared = inits_then ^ inits_now if inits_then and inits_now else set()
    changed = difference({"files": {k: v for k, v in recorded["files"].items() if k != "test" and k not in unshared}},
                         {"files": {k: v for k, v in data["files"].items() if k != "test" and k not in unshared}})
    if changed:
        raise VidstudyError(f"{run_dir / DATA_FILE}: the run was trained on other data: {changed}; "
                            f"train into another folder.")
    if "test" in recorded["files"]:
        data["files"]["test"] = recorded["files"]["test"]


def check_inputs(config: RunConfig, train_data: FeatureFile, val_data: FeatureFile) -> None:
    """Refuse, before anything is written, train and val files or a config that cannot train together."""
    if train_data.category_mapping != val_data.category_mapping:
        raise VidstudyError(f"{val_data.path}: its classes {val_data.class_names} are not those of the train file "
                            f"{train_data.path} ({train_data.class_names}).")
    if train_data.feature_dim != val_data.feature_dim:
        raise VidstudyError(f"{val_data.path}: has D={val_data.feature_dim} features per frame, the train file "
                            f"{train_data.path} D={train_data.feature_dim}.")
    boost = config.train.class_boost
    if boost and len(boost) != train_data.num_classes:
        raise ParameterError(f"train.class_boost needs {train_data.num_classes} numbers (one per class), got {len(boost)}.")
    if config.train.sampling == "subcategory" and train_data.subcategories is None:
        raise VidstudyError(f"{train_data.path}: has no 'subcategories' dataset, so train.sampling=subcategory cannot be used.")
    with torch.device("meta"):  # the family's rules that need the feature dimension, without allocating anything
        build_model(config.model, train_data.feature_dim, train_data.num_classes)


def _forget_unstarted_run(run_dir: Path, remove_dir: bool) -> None:
    """After a failure, remove a run this call created when no member has finished an epoch, so the corrected
    command starts afresh; a run with any checkpoint is kept for ``--resume``."""
    members = run_dir / MEMBERS_DIR
    if members.exists() and any(members.rglob("*.pt")):
        return
    shutil.rmtree(members, ignore_errors=True)
    for name in (CONFIG_FILE, DATA_FILE):
        (run_dir / name).unlink(missing_ok=True)
    if remove_dir:
        try:
            run_dir.rmdir()  # only when nothing else is in it
        except OSError:
            pass
