"""The recipe study: the original training recipe against this project's, side by side.

Every recipe trains the same architecture code at the same size, on the same data
and seeds; only the recipe differs. The size is the ``study`` scale (the ``cpu``
preset's architecture at half width, for two CPU cores) or the ``paper`` scale (the
original's model, for a GPU: the scale at which the original recipe collapses):

``original``       unmasked attention and pooling, warm restarts stepped every batch,
                   sampler *and* focal alpha rebalancing, early stopping on val accuracy
``improved``       this project's default: masked, warm-up + cosine per epoch, the sampler
                   only, early stopping on val macro-F1
ablations          the original with one change each: ``+masking``, ``+schedule``,
                   ``+single rebalancer``

The learning rate, weight decay, batch size and early-stopping monitor also differ
between ``original`` and ``improved`` and are not ablated one at a time: they are
bundled, and :func:`bundled_differences` lists every difference with the recipe that
isolates it, so the chapter states the bundle from the configs themselves.

The collapse attempt (:func:`collapse_attempt_config`) gives the original's failure its
best chance on two cores: the original recipe and the paper model's depth (four BiLSTM
layers, twelve heads, its head) at a quarter of its width, on a small training subset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import read_json
from ..config import RunConfig, build
from ..errors import ParameterError
from ..features import FeatureFile, write_feature_file
from ..fingerprint import difference, fingerprint
from ..metrics import classification_metrics
from ..predictions import build_predictions, is_current, load_predictions
from ..profiling import timed
from ..runs import member_dir, read_config, read_summary
from ..sampling import stratified_split
from ..train import Ensemble, train_ensembles

ORIGINAL = ["model.masked=false", "train.schedule=warm_restarts", "train.balance=both", "train.monitor=val_acc",
            "train.lr=1e-3", "train.weight_decay=5e-4", "train.batch_size=48"]
RECIPES: dict[str, list[str]] = {
    "original": ORIGINAL,
    "improved": [],
    "original + masking": [o for o in ORIGINAL if not o.startswith("model.masked")],
    "original + schedule": [o for o in ORIGINAL if not o.startswith("train.schedule")],
    "original + single rebalancer": [o for o in ORIGINAL if not o.startswith("train.balance")] + ["train.balance=sampler"],
}
# The study's model: the cpu preset's architecture at half width, so that every recipe's seeds fit two CPU cores;
# at the paper scale, the original's model (the paper preset's architecture).
SCALES: dict[str, list[str]] = {
    "study": ["model.hidden_dim=32", "model.num_heads=2", "model.head_dims=32"],
    "paper": ["model.hidden_dim=768", "model.num_lstm_layers=4", "model.num_heads=12", "model.dropout=0.4",
              "model.head_dims=768,512,256"],
}


# The collapse attempt: the paper preset (the original's model and recipe) with the original's unmasked
# attention, its LSTM width quartered so that a few seeds fit the CPU budget.
COLLAPSE_ATTEMPT = ["model.hidden_dim=192", "model.masked=false"]


def recipe_config(name: str, seeds: int, epochs: int, seed_base: int = 42, scale: str = "study") -> RunConfig:
    """The config of recipe ``name``: the model of ``scale`` (``study`` or ``paper``), then the recipe's overrides."""
    if scale not in SCALES:
        raise ParameterError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}.")
    return build("cpu", members=seeds, epochs=epochs, seed_base=seed_base,
                 overrides=SCALES[scale] + [f"train.patience={epochs}"] + RECIPES[name])


def collapse_attempt_config(seeds: int, epochs: int, seed_base: int = 42) -> RunConfig:
    """The config of the collapse attempt (see the module docstring)."""
    return build("paper", members=seeds, epochs=epochs, seed_base=seed_base,
                 overrides=COLLAPSE_ATTEMPT + [f"train.patience={epochs}"])


def _flat(config: RunConfig) -> dict:
    return pd.json_normalize(config.to_dict(), sep=".").iloc[0].to_dict()


def bundled_differences(seeds: int = 1, epochs: int = 1) -> pd.DataFrame:
    """Every config key where ``original`` and ``improved`` differ, with both values and the single-change
    recipe that isolates it (or "bundled: not ablated")."""
    original, improved = _flat(recipe_config("original", seeds, epochs)), _flat(recipe_config("improved", seeds, epochs))
    isolates = {}
    for name in RECIPES:
        if name.startswith("original +"):
            changed = _flat(recipe_config(name, seeds, epochs))
            for key in original:
                if changed[key] != original[key]:
                    isolates.setdefault(key, []).append(name)
    rows = [{"setting": key, "original": str(original[key]), "improved": str(improved[key]),
             "isolated by": ", ".join(isolates.get(key, [])) or "bundled: not ablated"}
            for key in original if original[key] != improved[key]]
    return pd.DataFrame(rows).set_index("setting")


@timed("data")
def training_subset(train: FeatureFile, out_dir: Path, size: int, seed: int = 0) -> FeatureFile:
    """A subcategory-stratified subset of the training file, to keep the study cheap.

    ``OUT_DIR/train_subset.h5`` (``OUT_DIR`` is created) records the fingerprint of its source file's content,
    ``size`` and ``seed``; it is reused only when all three are the same, else written again.
    """
    if size >= len(train):
        return train
    path = Path(out_dir) / "train_subset.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    wanted = fingerprint({"source": train.path}, size=size, seed=seed)
    if path.exists() and difference(FeatureFile(path).subset, wanted) is None:
        return FeatureFile(path)
    _, keep = stratified_split(train.labels, train.subcategories, val_fraction=size / len(train), seed=seed)
    x = train.padded()[keep]
    write_feature_file(path, x, train.labels[keep], train.num_frames[keep], train.category_mapping,
                       multi_scale=train.multi_scale, provenance={"subset": wanted},
                       subcategories=None if train.subcategories is None else [train.subcategories[i] for i in keep],
                       video_ids=None if train.video_ids is None else [train.video_ids[i] for i in keep])
    return FeatureFile(path)


def run_study(study_dir, files: dict[str, FeatureFile], size: "StudySize", seed_base: int = 42, device: str = "auto",
              executor=None, recipes=tuple(RECIPES)) -> tuple[dict[str, Path], Path]:
    """Train (or reuse) every recipe at ``size`` on its training subset and the collapse attempt on its own, then store
    each recipe's test predictions (original view; the test file is the one beside ``files["val"]``). Returns
    ``({recipe: run folder}, the collapse attempt's run folder)``.

    All their members go to ``executor`` as one batch, the collapse attempt's (the longest) first, so that side by
    side no slot idles while another finishes a run. The collapse attempt's question is answered on validation
    (collapse is judged there), so it stores no test predictions.
    """
    study_dir, val = Path(study_dir), files["val"]
    train = training_subset(files["train"], study_dir, size.train_videos)
    runs = {name: study_dir / name.replace(" ", "_").replace("+", "plus") for name in recipes}
    attempt = study_dir / "collapse_attempt"
    subset = training_subset(files["train"], study_dir / "collapse_attempt_subset", size.attempt_videos)
    train_ensembles([Ensemble(collapse_attempt_config(size.attempt_seeds, size.attempt_epochs, seed_base), subset, val,
                              attempt)]
                    + [Ensemble(recipe_config(name, size.seeds, size.epochs, seed_base, size.scale), train, val, run)
                       for name, run in runs.items()],
                    resume=True, plots=False, quiet=True, device=device, executor=executor)
    for run in runs.values():
        if not is_current(run, "test", ["original"]):
            build_predictions(run, views=["original"], splits=("test",), device=device)
    return runs, attempt


@dataclass(frozen=True)
class StudySize:
    """How much the chapter trains: the model ``scale`` (:data:`SCALES`), ``seeds`` members per recipe of ``epochs``
    epochs on a ``train_videos``-video training subset, and the collapse attempt's seeds, epochs and videos."""

    scale: str
    seeds: int
    epochs: int
    train_videos: int
    attempt_seeds: int = 3
    attempt_epochs: int = 4
    attempt_videos: int = 400


#: The chapter's sizes: ``study`` on two CPU cores, ``paper`` at the original's model size (the GPU book), ``smoke``
#: for the tests' tiny book.
SIZES: dict[str, StudySize] = {
    "study": StudySize("study", seeds=6, epochs=8, train_videos=1000),
    "paper": StudySize("paper", seeds=2, epochs=4, train_videos=1311),
    "smoke": StudySize("study", seeds=2, epochs=2, train_videos=1000, attempt_seeds=1, attempt_epochs=1),
}


def study_size(preset: str, smoke: bool) -> StudySize:
    """The size the chapter runs at for the book's ``preset`` and ``smoke`` parameters."""
    return SIZES["smoke" if smoke else "paper" if preset == "paper" else "study"]


def collapse_verdict(attempt_rows: pd.DataFrame) -> str:
    """What the collapse attempt showed, from its :func:`member_rows`: no member entered the collapsed state, some
    entered it but left it by their best checkpoint, or some were still collapsed there (the original's failure)."""
    entered, stayed = int((attempt_rows["epochs collapsed"] > 0).sum()), int(attempt_rows["collapsed"].sum())
    if entered == 0:
        return "it did not reproduce the collapsed state at all"
    if stayed == 0:
        return "it reproduced the collapsed state during training, but not the failure to leave it"
    return f"it reproduced the failure: {stayed} member(s) were still collapsed at their best checkpoint"


def epochs_collapsed(history: dict) -> int:
    """Epochs at whose end the member was collapsed on val (some class lost; see :func:`~vidstudy.metrics.detect_collapse`)."""
    return sum(1 for lost in history["collapsed_classes"] if lost)


def time_to_fraction(history: dict, fraction: float = 0.95) -> float:
    """Seconds of training until val macro-F1 first reaches ``fraction`` of its final best."""
    f1 = np.asarray(history["val_macro_f1"])
    target = fraction * f1.max()
    first = int(np.argmax(f1 >= target))
    return float(np.sum(history["epoch_times"][: first + 1]))


def member_rows(runs: dict[str, Path], test_split: bool = True) -> pd.DataFrame:
    """One row per recipe and seed: collapse flag, val (and with ``test_split``, test) macro-F1, epochs, wall time,
    time to 95 %."""
    rows = []
    for name, run in runs.items():
        test = load_predictions(run, "test", check_fresh=False) if test_split else None
        for i in range(read_config(run).members):
            s = read_summary(member_dir(run, i))
            history = read_json(member_dir(run, i) / "history.json", "a member's training history")
            rows.append({"recipe": name, "seed": s["seed"], "collapsed": s["collapsed"],
                         "lost classes": ", ".join(s["lost_class_names"]),
                         "val macro-F1": s["best_metrics"]["val_macro_f1"],
                         **({"test macro-F1": classification_metrics(test.labels, test.view("original")[i].argmax(1),
                                                                     test.num_classes)["f1_macro"]} if test is not None else {}),
                         "epochs": s["epochs_run"], "epochs collapsed": epochs_collapsed(history),
                         "best epoch": s["best_epoch"], "wall time (s)": s["wall_time_s"],
                         "time to 95% (s)": time_to_fraction(history)})
    return pd.DataFrame(rows)


def recipe_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per recipe: collapse rate, macro-F1 mean/std/min (val and test, %), epochs, wall time, time to 95 %."""
    g = rows.groupby("recipe", sort=False)
    table = pd.DataFrame({
        "members": g.size(),
        "collapse rate": g["collapsed"].mean(),
        "val macro-F1 mean": 100 * g["val macro-F1"].mean(), "val std": 100 * g["val macro-F1"].std(),
        "val min": 100 * g["val macro-F1"].min(),
        "test macro-F1 mean": 100 * g["test macro-F1"].mean(), "test std": 100 * g["test macro-F1"].std(),
        "test min": 100 * g["test macro-F1"].min(),
        "epochs (mean)": g["epochs"].mean(), "epochs collapsed (mean)": g["epochs collapsed"].mean(),
        "wall time per member (s)": g["wall time (s)"].mean(),
        "time to 95% (s)": g["time to 95% (s)"].mean(),
    })
    return table.round(3)


def histories(runs: dict[str, Path]) -> dict[str, list[list[float]]]:
    """Val macro-F1 per epoch for every seed of each recipe."""
    out = {}
    for name, run in runs.items():
        out[name] = [read_json(member_dir(run, i) / "history.json", "a member's training history",
                               required=("val_macro_f1",))["val_macro_f1"] for i in range(read_config(run).members)]
    return out
