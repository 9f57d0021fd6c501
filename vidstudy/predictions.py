"""The predictions store: every member's probabilities for every view, saved once.

``vidstudy predict RUN_DIR`` runs each member's best checkpoint over each test-time
view of the run's own val and test files (those ``RUN_DIR/data.json`` records) and
writes ``RUN_DIR/predictions/{split}.npz``:

``probs``, ``logits``   float32 ``[member, view, video, class]``
``labels``              int64 ``[video]``
``video_ids``           ``[video]`` strings (``"{split}-{index}"`` when the file has none)
``subcategories``       ``[video]`` strings, when the feature file has them
``view_names``, ``member_names``, ``class_names``
``fingerprint``         JSON (:mod:`vidstudy.fingerprint`): the content of each member's
                        best checkpoint and of the feature file, the views and their seed

``vidstudy predict RUN_DIR OTHER_DATA`` applies the ensemble to another folder's test
file: its store is ``RUN_DIR/other_data/{folder}-{digest}/test.npz``, beside the
run's own, which it never replaces. Validation predictions (everything that is
selected or fitted) always come from the run's own validation file.

Everything downstream (votes, TTA combinations, stacking, calibration, metrics)
reads the store through :func:`load_predictions` and never runs a network. A store
that does not match the run is refused; :func:`ensure_predictions` rebuilds a
missing store, or one whose inputs changed, keeping the views it holds unless
other views are asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .atomic import write_npz
from .errors import VidstudyError
from .features import FeatureFile, feature_file_name
from .fingerprint import difference, file_digest, fingerprint, same_content
from .profiling import timed
from .runs import DATA_FILE, member_checkpoints, read_data_record
from .tta import view_names as default_views

STORE_DIR = "predictions"
OTHER_DATA_DIR = "other_data"
EVAL_SPLITS = ("val", "test")
_ARRAYS = {"probs", "logits", "labels", "view_names", "member_names", "class_names", "fingerprint"}


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


def run_split_file(run_dir, split: str) -> Path:
    """The run's own ``split`` file (recorded in ``RUN_DIR/data.json``), checked to be unchanged."""
    record = read_data_record(run_dir)
    where = Path(run_dir) / DATA_FILE
    if split not in record["files"]:
        raise VidstudyError(f"{where}: records no {split} file (there was none beside the validation file); "
                            f"pass a DATA_DIR holding {feature_file_name(split)}.")
    identity = record["files"][split]
    path = Path(identity["path"])
    if not path.is_file():
        raise VidstudyError(f"{path}: the run's {split} file no longer exists; pass DATA_DIR to predict on another folder.")
    if not same_content(identity, path):
        raise VidstudyError(f"{path}: the run's {split} file changed since the run was trained; "
                            f"pass DATA_DIR to predict on other data, or train the run again.")
    return path


def store_dir(run_dir, data_dir=None) -> Path:
    """Where the test predictions on ``data_dir`` live: the run's own store unless its test file is another."""
    run_dir = Path(run_dir)
    if data_dir is None:
        return run_dir / STORE_DIR
    test = Path(data_dir) / feature_file_name("test")
    if not test.is_file():
        raise VidstudyError(f"{test}: feature file does not exist.")
    own = read_data_record(run_dir)["files"].get("test")
    if own is not None and same_content(own, test):
        return run_dir / STORE_DIR
    return run_dir / OTHER_DATA_DIR / f"{Path(data_dir).resolve().name}-{file_digest(test)[:10]}"


def split_target(run_dir, split: str, data_dir=None) -> tuple[Path, Path]:
    """``(store folder, feature file)`` of ``split`` (the run's own unless ``data_dir`` holds another test file).

    Validation is always the run's own.
    """
    folder = store_dir(run_dir, data_dir if split == "test" else None)
    if folder == Path(run_dir) / STORE_DIR:
        return folder, run_split_file(run_dir, split)
    return folder, Path(data_dir) / feature_file_name(split)


def store_path(run_dir, split: str, data_dir=None) -> Path:
    """The store file of ``split``: ``RUN_DIR/predictions/{split}.npz``, or the one on ``data_dir``'s test file."""
    if data_dir is None:
        return Path(run_dir) / STORE_DIR / f"{split}.npz"
    return split_target(run_dir, split, data_dir)[0] / f"{split}.npz"


def store_fingerprint(run_dir, data_file: Path, views: Sequence[str], seed: int) -> dict:
    """The inputs of one split's store: each member's checkpoint and the feature file (by content), views, seed."""
    checkpoints = member_checkpoints(run_dir)
    return fingerprint({**dict(checkpoints), "data": data_file}, members=[name for name, _ in checkpoints],
                       views=list(views), view_seed=seed)


@timed("prediction")
def build_predictions(run_dir, data_dir=None, views: Sequence[str] | None = None, splits: Sequence[str] = EVAL_SPLITS,
                      seed: int = 0, batch_size: int = 64, device: str = "auto") -> dict[str, Path]:
    """Run every member over every view of ``splits`` on ``device`` and write their stores (atomically).

    ``data_dir`` (default: the run's own files) only changes where the test split comes from.
    Every split is checked and predicted before any store is written, so a failure leaves the
    stores as they were. The members run at the run's ``train.precision``.
    """
    from .checkpoint import load_model
    from .device import resolve_device
    from .runs import read_config
    from .tta import predict_members

    device = resolve_device(device, "device")
    views = list(views or default_views())
    checkpoints = member_checkpoints(run_dir)
    precision = read_config(run_dir).train.precision
    targets = {s: split_target(run_dir, s, data_dir) for s in splits}
    files = {s: FeatureFile(f) for s, (_, f) in targets.items()}
    models = [(name, *load_model(path, device)) for name, path in checkpoints]
    for split, data in files.items():
        for name, _, ckpt in models:
            if ckpt["category_mapping"] != data.category_mapping or ckpt["feature_dim"] != data.feature_dim:
                raise VidstudyError(f"{data.path}: categories or feature dimension differ from those member {name} "
                                    f"was trained on.")
    stores = {}
    for split, data in files.items():
        probs, logits = predict_members([model for _, model, _ in models], data, views, batch_size, seed, device, precision)
        if not np.all(np.isfinite(logits)):
            raise VidstudyError(f"{data.path}: the members' outputs are not finite on this file (its features are far "
                                f"outside the range the members were trained on); nothing was written.")
        arrays = {
            "probs": probs.astype(np.float32),
            "logits": logits.astype(np.float32),
            "labels": data.labels,
            "video_ids": np.array(data.video_ids or [f"{split}-{i}" for i in range(len(data))]),
            "view_names": np.array(views),
            "member_names": np.array([name for name, _, _ in models]),
            "class_names": np.array(data.class_names),
            "fingerprint": np.array(json.dumps(store_fingerprint(run_dir, data.path, views, seed))),
        }
        if data.subcategories is not None:
            arrays["subcategories"] = np.array(data.subcategories)
        stores[split] = arrays
    out = {}
    for split, arrays in stores.items():
        path = targets[split][0] / f"{split}.npz"
        write_npz(path, arrays)
        out[split] = path
    return out


def _read_store(path: Path) -> dict:
    """The arrays of a store file, checked for shape and completeness (one error naming the file otherwise)."""
    if not path.exists():
        raise VidstudyError(f"{path}: no stored predictions; run vidstudy predict first.")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:  # a damaged zip raises zipfile.BadZipFile, zlib.error, EOFError, ValueError ...
        raise VidstudyError(f"{path}: not a readable predictions store ({type(exc).__name__}: {exc}).") from None
    missing = _ARRAYS - set(d)
    if missing:
        raise VidstudyError(f"{path}: predictions store lacks {', '.join(sorted(missing))}.")
    try:
        members, stored_views = [str(x) for x in d["member_names"].tolist()], [str(x) for x in d["view_names"].tolist()]
        d["fingerprint"] = json.loads(str(d["fingerprint"]))
        ok = (d["probs"].ndim == 4 and d["logits"].shape == d["probs"].shape and d["probs"].shape == (
            len(members), len(stored_views), len(d["labels"]), len(d["class_names"])) and d["labels"].ndim == 1)
    except (TypeError, ValueError) as exc:
        raise VidstudyError(f"{path}: predictions store has a malformed entry ({exc}).") from None
    if not ok:
        raise VidstudyError(f"{path}: predictions store has probs of shape {d['probs'].shape}, which does not match its "
                            f"{len(members)} members, {len(stored_views)} views, {len(d['labels'])} videos and "
                            f"{len(d['class_names'])} classes.")
    problem = _content_problem(d)
    if problem:
        raise VidstudyError(f"{path}: predictions store {problem}.")
    d["member_names"], d["view_names"] = members, stored_views
    return d


def _content_problem(d: dict) -> str | None:
    """What is wrong with a store's values once its shapes fit (``None``: nothing)."""
    probs, n, classes = d["probs"], len(d["labels"]), len(d["class_names"])
    if not (np.issubdtype(probs.dtype, np.floating) and np.issubdtype(d["logits"].dtype, np.floating)):
        return "holds probs or logits that are not floating-point numbers"
    if not (np.all(np.isfinite(probs)) and np.all(np.isfinite(d["logits"]))):
        return "holds NaN or infinite probabilities or logits"
    if probs.size and (probs.min() < 0 or probs.max() > 1 + 1e-4):
        return "holds probabilities outside [0, 1]"
    labels = d["labels"]
    if not np.issubdtype(labels.dtype, np.integer) or (n and (labels.min() < 0 or labels.max() >= classes)):
        return f"holds labels outside 0..{classes - 1}"
    names = [str(x) for x in d["class_names"].tolist()]
    if len(set(names)) != classes or not all(names):
        return "holds class names that are empty or repeated"
    for key in ("video_ids", "subcategories"):
        if key in d and (d[key].ndim != 1 or len(d[key]) != n):
            return f"holds {len(d[key]) if d[key].ndim == 1 else d[key].shape} {key} for {n} videos"
    return None


def stored_views(run_dir, split: str = "val", data_dir=None) -> list[str] | None:
    """The views the store of ``split`` holds, or ``None`` when there is none (a damaged store is an error)."""
    path = store_path(run_dir, split, data_dir)
    return _read_store(path)["view_names"] if path.exists() else None


def load_predictions(run_dir, split: str, *, views: Sequence[str] | None = None, check_fresh: bool = True,
                     data_dir=None) -> Predictions:
    """Open the store of ``split`` (the run's own, or the one on ``data_dir``), refusing one that does not match the run."""
    folder, data_file = split_target(run_dir, split, data_dir) if check_fresh or data_dir is not None else (
        Path(run_dir) / STORE_DIR, None)
    path = folder / f"{split}.npz"
    d = _read_store(path)
    members, stored = d["member_names"], d["view_names"]
    run_members = [name for name, _ in member_checkpoints(run_dir)]
    if members != run_members:
        raise VidstudyError(f"{path}: holds members {members} but the run has {run_members}; "
                            f"run vidstudy predict {run_dir} again.")
    lacking = [x for x in (views or []) if x not in stored]
    if lacking:
        raise VidstudyError(f"{path}: lacks views {', '.join(lacking)}; run vidstudy predict {run_dir} with them.")
    if check_fresh:
        saved = d["fingerprint"]
        seed = saved.get("values", {}).get("view_seed", 0) if isinstance(saved, dict) else 0
        changed = difference(saved, store_fingerprint(run_dir, data_file, stored, seed))
        if changed:
            raise VidstudyError(f"{path}: is stale ({changed}); run vidstudy predict {run_dir} again.")
    n = len(d["labels"])
    return Predictions(
        split=split, probs=d["probs"], logits=d["logits"], labels=d["labels"].astype(np.int64),
        video_ids=d["video_ids"].tolist() if "video_ids" in d else [f"{split}-{i}" for i in range(n)],
        subcategories=d["subcategories"].tolist() if "subcategories" in d else None,
        view_names=stored, member_names=members, class_names=d["class_names"].tolist(),
    )


def is_current(run_dir, split: str, views: Sequence[str], seed: int = 0, data_dir=None) -> bool:
    """Whether the store of ``split`` was made from the run's members, the feature file and the views as they are now.

    A missing store is not current; a damaged one is an error naming it.
    """
    folder, data_file = split_target(run_dir, split, data_dir)
    path = folder / f"{split}.npz"
    if not path.exists():
        return False
    try:
        saved = _read_store(path)["fingerprint"]
    except VidstudyError as exc:
        raise VidstudyError(f"{exc} Rebuild it with vidstudy predict {run_dir} --force.") from None
    return difference(saved, store_fingerprint(run_dir, data_file, views, seed)) is None


def ensure_predictions(run_dir, views: Sequence[str] | None = None, seed: int = 0, *, data_dir=None,
                       force: bool = False, device: str = "auto") -> tuple[dict[str, Predictions], bool]:
    """Load the val and test stores, first rebuilding (on ``device``) those that are missing or whose inputs changed.

    ``views`` defaults to the views the validation (else the test) store already holds, so
    that evaluating never swaps the views another command chose; else the default views.
    A damaged store is an error naming it, unless ``force`` rebuilds every store.
    Returns ``({split: Predictions}, rebuilt)``.
    """
    for split in EVAL_SPLITS:
        split_target(run_dir, split, data_dir)  # a missing run record or feature file is named as such, first
    for split in EVAL_SPLITS if views is None else ():
        try:
            views = stored_views(run_dir, split, data_dir)
        except VidstudyError as exc:
            if not force:
                raise VidstudyError(f"{exc} Rebuild it with vidstudy predict {run_dir} --force.") from None
        if views:
            break
    views = list(views or default_views())
    stale = [s for s in EVAL_SPLITS if force or not is_current(run_dir, s, views, seed, data_dir)]
    if stale:
        build_predictions(run_dir, data_dir, views, splits=stale, seed=seed, device=device)
    return {s: load_predictions(run_dir, s, views=views, data_dir=data_dir) for s in EVAL_SPLITS}, bool(stale)
