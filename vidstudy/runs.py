"""Where a run's artifacts live: the run folder's layout and its record files, read and checked.

``RUN_DIR/config.json`` (the resolved config), ``RUN_DIR/data.json`` (the identity of the
split files), ``RUN_DIR/members/ensemble_model_{i}/`` (a member; its checkpoints'
layout is :mod:`vidstudy.checkpoint`'s) with ``summary.json`` once it is finished.
"""

from __future__ import annotations

import os
from pathlib import Path

from .atomic import read_json
from .checkpoint import best_path
from .config import RunConfig
from .errors import ParameterError, VidstudyError
from .fingerprint import fingerprint, input_key

MEMBERS_DIR = "members"


def member_name(index: int) -> str:
    """The original study's member name."""
    return f"ensemble_model_{index}"


def member_dir(run_dir: str | os.PathLike, index: int) -> Path:
    """``RUN_DIR/members/ensemble_model_{index}``."""
    return Path(run_dir) / MEMBERS_DIR / member_name(index)


CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
SUMMARY_FILE = "summary.json"


def read_config(run_dir: str | os.PathLike):
    """The run's resolved config (``RUN_DIR/config.json``), checked."""
    path = Path(run_dir) / CONFIG_FILE
    config = RunConfig.from_dict(read_json(path, "the run's config"), where=str(path))
    try:
        return config.validate()
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from None


def read_data_record(run_dir: str | os.PathLike) -> dict:
    """``RUN_DIR/data.json``: the fingerprint of the split files the run used (train, val and, when there was one, test)."""
    path = Path(run_dir) / DATA_FILE
    record = read_json(path, "the identity of the split files the run used")
    files = record.get("files")
    if not isinstance(files, dict) or not {"train", "val"} <= set(files) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and f["path"] and isinstance(f.get("size"), int)
            and not isinstance(f.get("size"), bool) and isinstance(f.get("sha256"), str) for f in files.values()):
        raise VidstudyError(f"{path}: does not record the run's split files (expected 'files' with train and val, each "
                            f"with path, size and sha256; a run trained by an older vidstudy must be trained again).")
    return record


def read_summary(member: str | os.PathLike) -> dict:
    """A finished member's ``summary.json``, checked: its keys and their types."""
    path = Path(member) / SUMMARY_FILE
    summary = read_json(path, "a finished member's summary",
                        required=("member", "seed", "best_epoch", "epochs_run", "best_metrics", "wall_time_s", "collapsed",
                                  "lost_class_names"))
    metrics = summary["best_metrics"]
    types = {"member": (str,), "seed": (int,), "best_epoch": (int,), "epochs_run": (int,), "wall_time_s": (int, float),
             "collapsed": (bool,), "lost_class_names": (list,), "best_metrics": (dict,)}
    wrong = [k for k, t in types.items() if not isinstance(summary[k], t) or (t != (bool,) and isinstance(summary[k], bool))]
    if not wrong and not all(isinstance(metrics.get(k), (int, float)) and not isinstance(metrics.get(k), bool)
                             for k in ("val_acc", "val_macro_f1")):
        wrong = ["best_metrics (val_acc and val_macro_f1 as numbers)"]
    if wrong:
        raise VidstudyError(f"{path}: {', '.join(wrong)} of the wrong type (a finished member's summary); remove it to "
                            f"finish the member again with vidstudy train --resume.")
    return summary


def member_checkpoints(run_dir: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(member name, best checkpoint)`` of exactly the members the run's config names, in order.

    Member folders beyond ``config.members`` (left by a larger run) are ignored.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise VidstudyError(f"{run_dir}: not a run folder (no {CONFIG_FILE}); run vidstudy train first.")
    out = []
    for i in range(read_config(run_dir).members):
        best = best_path(member_dir(run_dir, i))
        if not best.is_file():
            raise VidstudyError(f"{best}: missing, but the run's config names {member_name(i)}; "
                                f"finish the run with vidstudy train --resume.")
        out.append((member_name(i), best))
    return out


def checkpoints_key(run_dir: str | os.PathLike) -> str:
    """The identity of the run's members: the content of each one's best checkpoint, in order."""
    return input_key(fingerprint(dict(member_checkpoints(run_dir))))
