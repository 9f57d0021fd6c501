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

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_path
from .errors import VidstudyError

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
    return ckpt


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a member's network from its best checkpoint (eval mode, on ``device``) and return it with the
    checkpoint."""
    from .config import RunConfig
    from .models import build_model

    ckpt = load(path)
    model = build_model(RunConfig.from_dict(ckpt["config"], where=str(path)).model, ckpt["feature_dim"], ckpt["num_classes"])
    try:
        model.load_state_dict(ckpt["model_state"])
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise VidstudyError(f"{path}: its weights do not fit the model its config describes ({first[:200]}).") from None
    return model.to(device).eval(), ckpt
