"""The predictions store: every member's probabilities for every view, saved once.

``vidstudy predict RUN_DIR [DATA_DIR]`` runs each member's best checkpoint over
each test-time view of the val and test splits and writes
``RUN_DIR/predictions/{split}.npz``:

``probs``, ``logits``   float32 ``[member, view, video, class]``
``labels``              int64 ``[video]``
``video_ids``           ``[video]`` strings (``"{split}-{index}"`` when the file has none)
``subcategories``       ``[video]`` strings, when the feature file has them
``view_names``, ``member_names``, ``class_names``
``fingerprint``         JSON: checkpoint and feature-file sizes and modification times,
                        the views and their seed

Everything downstream (votes, TTA combinations, stacking, calibration, metrics)
reads the store through :func:`load_predictions` and never runs a network. A store
that does not match the run is refused; :func:`ensure_predictions` rebuilds a
missing or stale one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import VidstudyError
from .features import FeatureFile, feature_file_name
from .runs import MEMBERS_DIR, atomic_path
from .tta import view_names as default_views

STORE_DIR = "predictions"
EVAL_SPLITS = ("val", "test")


@dataclass
class Predictions:
    """One split's stored predictions."""

    split: str
    probs: np.ndarray  # [M, V, N, C]
    logits: np.ndarray  # [M, V, N, C]
    labels: np.ndarray  # [N]
    video_ids: list[str]
    subcategories: list[str] | None
    view_names: list[str]
    member_names: list[str]
    class_names: list[str]

    def view(self, name: str) -> np.ndarray:
        """Probabilities of one view for every member, ``[M, N, C]``."""
        return self.probs[:, self.view_names.index(name)]

    @property
    def num_classes(self) -> int:
        return self.probs.shape[-1]


def member_checkpoints(run_dir) -> list[tuple[str, Path]]:
    """``(member name, best.pt)`` of every trained member, by index."""
    members = Path(run_dir) / MEMBERS_DIR
    found = [(p.name, p / "best.pt") for p in members.glob("ensemble_model_*") if (p / "best.pt").exists()]
    if not found:
        raise VidstudyError(f"{members}: no trained member (no ensemble_model_*/best.pt); run vidstudy train first.")
    return sorted(found, key=lambda item: int(item[0].rsplit("_", 1)[1]))


def run_data_dir(run_dir) -> Path:
    """The data folder a run was trained on (recorded in ``RUN_DIR/data.json``)."""
    path = Path(run_dir) / "data.json"
    if not path.exists():
        raise VidstudyError(f"{path}: missing, so the run's data folder is unknown; pass DATA_DIR explicitly.")
    return Path(json.loads(path.read_text())["data_dir"])


def _stamp(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def fingerprint(run_dir, data_file: Path, views: Sequence[str], seed: int) -> dict:
    return {
        "members": {name: _stamp(path) for name, path in member_checkpoints(run_dir)},
        "data": _stamp(data_file),
        "views": list(views),
        "view_seed": seed,
    }


def store_path(run_dir, split: str) -> Path:
    return Path(run_dir) / STORE_DIR / f"{split}.npz"


def build_predictions(run_dir, data_dir=None, views: Sequence[str] | None = None, splits: Sequence[str] = EVAL_SPLITS,
                      seed: int = 0, batch_size: int = 64) -> dict[str, Path]:
    """Run every member over every view of ``splits`` and write the store (atomically)."""
    from .train import load_model
    from .tta import predict_views

    views = list(views or default_views())
    checkpoints = member_checkpoints(run_dir)
    data_dir = Path(data_dir) if data_dir is not None else run_data_dir(run_dir)
    files = {s: FeatureFile(data_dir / feature_file_name(s)) for s in splits}
    models = [(name, *load_model(path)) for name, path in checkpoints]
    out = {}
    for split, data in files.items():
        for name, _, ckpt in models:
            if ckpt["category_mapping"] != data.category_mapping or ckpt["feature_dim"] != data.feature_dim:
                raise VidstudyError(f"{data.path}: categories or feature dimension differ from those member {name} was trained on.")
        results = [predict_views(model, data, views, batch_size=batch_size, seed=seed) for _, model, _ in models]
        arrays = {
            "probs": np.stack([r[0] for r in results]).astype(np.float32),
            "logits": np.stack([r[1] for r in results]).astype(np.float32),
            "labels": data.labels,
            "video_ids": np.array(data.video_ids or [f"{split}-{i}" for i in range(len(data))]),
            "view_names": np.array(views),
            "member_names": np.array([name for name, _, _ in models]),
            "class_names": np.array(data.class_names),
            "fingerprint": np.array(json.dumps(fingerprint(run_dir, data.path, views, seed))),
        }
        if data.subcategories is not None:
            arrays["subcategories"] = np.array(data.subcategories)
        path = store_path(run_dir, split)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        out[split] = path
    return out


def load_predictions(run_dir, split: str, *, views: Sequence[str] | None = None, check_fresh: bool = True) -> Predictions:
    """Open ``RUN_DIR/predictions/{split}.npz``, refusing one that does not match the run."""
    path = store_path(run_dir, split)
    if not path.exists():
        raise VidstudyError(f"{path}: no stored predictions; run vidstudy predict {run_dir} first.")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise VidstudyError(f"{path}: not a readable predictions store ({exc}).") from None
    missing = {"probs", "logits", "labels", "view_names", "member_names", "class_names", "fingerprint"} - set(d)
    if missing:
        raise VidstudyError(f"{path}: predictions store lacks {', '.join(sorted(missing))}.")
    members, stored_views = d["member_names"].tolist(), d["view_names"].tolist()
    m, v, n, c = d["probs"].shape if d["probs"].ndim == 4 else (None,) * 4
    if d["probs"].ndim != 4 or d["logits"].shape != d["probs"].shape or (m, v, n, c) != (
            len(members), len(stored_views), len(d["labels"]), len(d["class_names"])):
        raise VidstudyError(f"{path}: predictions store has probs of shape {d['probs'].shape}, which does not match its "
                            f"{len(members)} members, {len(stored_views)} views, {len(d['labels'])} videos and {len(d['class_names'])} classes.")
    run_members = [name for name, _ in member_checkpoints(run_dir)]
    if members != run_members:
        raise VidstudyError(f"{path}: holds members {members} but the run has {run_members}; run vidstudy predict {run_dir} again.")
    lacking = [x for x in (views or []) if x not in stored_views]
    if lacking:
        raise VidstudyError(f"{path}: lacks views {', '.join(lacking)}; run vidstudy predict {run_dir} with them.")
    if check_fresh:
        saved = json.loads(str(d["fingerprint"]))
        now = {name: _stamp(p) for name, p in member_checkpoints(run_dir)}
        if saved["members"] != now:
            raise VidstudyError(f"{path}: is stale (a member's best.pt changed since it was written); run vidstudy predict {run_dir} again.")
    return Predictions(
        split=split, probs=d["probs"], logits=d["logits"], labels=d["labels"].astype(np.int64),
        video_ids=d["video_ids"].tolist() if "video_ids" in d else [f"{split}-{i}" for i in range(n)],
        subcategories=d["subcategories"].tolist() if "subcategories" in d else None,
        view_names=stored_views, member_names=members, class_names=d["class_names"].tolist(),
    )


def is_current(run_dir, split: str, data_dir: Path, views: Sequence[str], seed: int) -> bool:
    """Whether the stored ``split`` matches the run, the data file and the views exactly."""
    path = store_path(run_dir, split)
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            saved = json.loads(str(z["fingerprint"]))
    except (OSError, ValueError, KeyError):
        return False
    return saved == fingerprint(run_dir, data_dir / feature_file_name(split), views, seed)


def ensure_predictions(run_dir, data_dir=None, views: Sequence[str] | None = None, seed: int = 0,
                       force: bool = False) -> tuple[dict[str, Predictions], bool]:
    """Load the store, rebuilding it first when missing, stale or built with other views.

    Returns ``({split: Predictions}, rebuilt)``.
    """
    views = list(views or default_views())
    data_dir = Path(data_dir) if data_dir is not None else run_data_dir(run_dir)
    stale = force or not all(is_current(run_dir, s, data_dir, views, seed) for s in EVAL_SPLITS)
    if stale:
        build_predictions(run_dir, data_dir, views, seed=seed)
    return {s: load_predictions(run_dir, s, views=views) for s in EVAL_SPLITS}, stale
