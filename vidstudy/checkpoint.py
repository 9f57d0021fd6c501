"""A member's checkpoints: the layout of ``best.pt`` and ``last.pt``, writing them atomically, loading them.

Both hold tensors and plain values only, so ``torch.load(path, weights_only=True)``
opens them and no pickle is ever executed.

``best.pt``   the best epoch's weights and what is needed to use them:
              ``model_state``, ``config`` (:meth:`RunConfig.to_dict`), ``seed``, ``epoch``
              (1-based), ``feature_dim``, ``num_classes``, ``class_names``,
              ``category_mapping``, ``metrics`` (``val_acc``, ``val_f1``, ``val_macro_f1``,
              ``val_per_class_f1``, ``val_loss``) and ``collapse`` (:func:`vidstudy.metrics.detect_collapse`)
``last.pt``   everything needed to resume after the last finished epoch:
              ``model_state``, ``optimizer_state``, ``scheduler_state``, ``config``, ``seed``,
              ``epoch``, ``history``, ``best_score``, ``best_epoch``, ``bad_epochs``, ``wall_time_s``

Tensors are written from the CPU and read onto the CPU (``map_location``), so a member
trained on a GPU predicts on a machine without one, and back; :func:`load_model` then
moves the network to the device asked for.

A file that cannot be read, or lacks a key of its layout, is one
:class:`~vidstudy.errors.VidstudyError` naming it.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_path
from .config import RunConfig
from .errors import ParameterError, VidstudyError
from .models import build_model

BEST, LAST = "best.pt", "last.pt"
BEST_KEYS = ("model_state", "config", "seed", "epoch", "feature_dim", "num_classes", "class_names", "category_mapping",
             "metrics", "collapse")
LAST_KEYS = ("model_state", "optimizer_state", "scheduler_state", "config", "seed", "epoch", "history", "best_score",
             "best_epoch", "bad_epochs", "wall_time_s")


def best_path(member: str | os.PathLike) -> Path:
    """A member folder's best checkpoint."""
    return Path(member) / BEST


def last_path(member: str | os.PathLike) -> Path:
    """A member folder's resume checkpoint."""
    return Path(member) / LAST


def save(path: str | os.PathLike, keys: tuple[str, ...], **fields) -> Path:
    """Write a checkpoint with exactly ``keys`` atomically (temporary file, then rename)."""
    if set(fields) != set(keys):
        raise ValueError(f"a {Path(path).name} checkpoint holds {sorted(keys)}, got {sorted(fields)}")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: the archive's inner folder is then
        torch.save(_on_cpu(fields), fh)                     # a fixed name, not the temporary file's, so same bytes
    return Path(path)


def _on_cpu(value):
    """``value`` with every tensor on the CPU (a CPU tensor is kept as it is)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value


def save_best(member: str | os.PathLike, **fields) -> Path:
    return save(best_path(member), BEST_KEYS, **fields)


def save_last(member: str | os.PathLike, **fields) -> Path:
    return save(last_path(member), LAST_KEYS, **fields)


def load(path: str | os.PathLike, keys: tuple[str, ...] = BEST_KEYS) -> dict:
    """Open a checkpoint on the CPU (``weights_only``), checking that it holds ``keys``."""
    path = Path(path)
    if not path.is_file():
        raise VidstudyError(f"{path}: checkpoint does not exist.")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, empty, foreign or hostile files raise many kinds of errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VidstudyError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first[:200]}).") from None
    if not isinstance(ckpt, dict):
        raise VidstudyError(f"{path}: not a vidstudy checkpoint (it holds a {type(ckpt).__name__}, not a dict).")
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise VidstudyError(f"{path}: not a vidstudy checkpoint (it lacks {', '.join(missing)}).")
    problem = _common_problem(ckpt) or (_best_problem(ckpt) if keys == BEST_KEYS else _last_problem(ckpt))
    if problem:
        raise VidstudyError(f"{path}: not a usable checkpoint ({problem}).")
    return ckpt


MAX_FEATURE_DIM, MAX_CLASSES = 1 << 20, 10_000


def _int(value, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _common_problem(ckpt: dict) -> str | None:
    """What is wrong with the keys both layouts share (``None``: nothing); the embedded config is checked in full
    before any network is built from it."""
    try:
        RunConfig.from_dict(ckpt["config"], where="its config").validate()
    except ParameterError as exc:
        return f"its config: {str(exc).rstrip('.')}"
    state = ckpt["model_state"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "model_state must map parameter names to tensors"
    if not _int(ckpt["seed"]):
        return f"seed must be a non-negative integer, got {ckpt['seed']!r}"
    return None


def _best_problem(ckpt: dict) -> str | None:
    """What is wrong with a best checkpoint's own keys (``None``: nothing)."""
    n, names, metrics, collapse = ckpt["num_classes"], ckpt["class_names"], ckpt["metrics"], ckpt["collapse"]
    checks = [
        (_int(ckpt["epoch"], 1), f"epoch must be an integer of at least 1, got {ckpt['epoch']!r}"),
        (_int(ckpt["feature_dim"], 1) and ckpt["feature_dim"] <= MAX_FEATURE_DIM,
         f"feature_dim must be an integer in [1, {MAX_FEATURE_DIM}], got {ckpt['feature_dim']!r}"),
        (_int(n, 2) and n <= MAX_CLASSES, f"num_classes must be an integer in [2, {MAX_CLASSES}], got {n!r}"),
    ]
    for ok, message in checks:
        if not ok:
            return message
    if not (isinstance(names, list) and len(names) == n and all(isinstance(x, str) for x in names)):
        return f"class_names must be {n} names"
    mapping = ckpt["category_mapping"]
    if not (isinstance(mapping, dict) and sorted(mapping.values()) == list(range(n))):
        return f"category_mapping must map {n} names one-to-one onto 0..{n - 1}"
    per_class = metrics.get("val_per_class_f1") if isinstance(metrics, dict) else None
    if not (isinstance(metrics, dict) and all(_number(metrics.get(k)) for k in ("val_acc", "val_f1", "val_macro_f1", "val_loss"))
            and isinstance(per_class, list) and len(per_class) == n and all(_number(v) for v in per_class)):
        return f"metrics must hold val_acc, val_f1, val_macro_f1, val_loss and {n} val_per_class_f1 numbers"
    lost = collapse.get("lost_classes") if isinstance(collapse, dict) else None
    if not (isinstance(collapse, dict) and isinstance(collapse.get("collapsed"), bool) and isinstance(lost, list)
            and all(_int(c) and c < n for c in lost) and _number(collapse.get("dominant_share"))
            and (collapse.get("dominant_class") is None or _int(collapse.get("dominant_class")))):
        return "collapse must hold collapsed, lost_classes, dominant_class and dominant_share"
    return None


def _last_problem(ckpt: dict) -> str | None:
    """What is wrong with a resume checkpoint's own keys (``None``: nothing)."""
    epoch, history, optimizer = ckpt["epoch"], ckpt["history"], ckpt["optimizer_state"]
    if not _int(epoch, 1):
        return f"epoch must be an integer of at least 1, got {epoch!r}"
    if not (isinstance(history, dict) and history and all(isinstance(v, list) and len(v) == epoch for v in history.values())):
        return f"history must hold one entry per finished epoch ({epoch})"
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        return "optimizer_state is not an optimiser's state"
    if not (ckpt["scheduler_state"] is None or isinstance(ckpt["scheduler_state"], dict)):
        return "scheduler_state must be a scheduler's state or None"
    best_score = ckpt["best_score"]
    if not (isinstance(best_score, (int, float)) and not isinstance(best_score, bool) and not math.isnan(best_score)):
        return f"best_score must be a number, got {best_score!r}"
    if not (_int(ckpt["best_epoch"], -1) and _int(ckpt["bad_epochs"]) and _number(ckpt["wall_time_s"])):
        return "best_epoch, bad_epochs and wall_time_s must be numbers"
    return None


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a member's network from its best checkpoint (eval mode, on ``device``) and return it with the
    checkpoint."""
    ckpt = load(path)
    model = build_model(RunConfig.from_dict(ckpt["config"], where=str(path)).model, ckpt["feature_dim"], ckpt["num_classes"])
    try:
        model.load_state_dict(ckpt["model_state"])
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise VidstudyError(f"{path}: its weights do not fit the model its config describes ({first[:200]}).") from None
    return model.to(device).eval(), ckpt
