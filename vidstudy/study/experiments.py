"""The improvement experiments of the seed page, each against one baseline on the same test videos.

The baseline is the soft vote of the main run's members on the original view.
Each experiment yields test predictions; :func:`compare` reports its per-class F1
and the paired bootstrap CI and McNemar test of the difference. Training
experiments write runs of their own beside the main run
(``RUN_DIR/experiments/{name}``) and reuse them when they are already finished.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..ensemble import soft_vote, tta_ensemble
from ..features import FeatureFile, class_index
from ..metrics import bootstrap_ci, ci_half_width, holm, paired_comparison, per_class_table
from ..predictions import Predictions, ensure_predictions, run_split_file
from ..runs import read_config
from ..train import train_ensemble
from ..tta import BASE_VIEWS


def _run_variant(run_dir: Path, name: str, config: RunConfig, train: FeatureFile, val: FeatureFile,
                 views: list[str], init_from: Path | None = None, device: str = "auto",
                 executor=None) -> tuple[Predictions, float]:
    """Train (or reuse) a variant run on ``device`` and return its test predictions and training seconds."""
    out = Path(run_dir) / "experiments" / name
    views = list(views)
    # resume=True trains what is missing and reuses finished members of the same config.
    summaries = train_ensemble(config, train, val, out, resume=True, plots=False, quiet=True, init_from=init_from,
                               test_file=run_split_file(run_dir, "test"), device=device, executor=executor)
    store, _ = ensure_predictions(out, views, device=device)
    return store["test"], sum(s["wall_time_s"] for s in summaries)


ANIMATION_BOOST = 3.0  # experiment (a): the Animation class weight's multiplier
TARGET_HALF_WIDTH = 1.0  # points: the paired CI half-width the default test split is sized for
FORMER_TEST_SIZE = 300  # test videos of the default data before it was sized for that target


def animation_finetune(run_dir, train: FeatureFile, val: FeatureFile, views=("original",), boost: float = ANIMATION_BOOST,
                       epochs: int = 3, lr: float = 3e-4, device: str = "auto", executor=None):
    """(a) Fine-tune every member from its best checkpoint with the Animation class weight times ``boost``;
    predictions are stored for ``views``."""
    cfg = read_config(run_dir)
    animation = class_index(train.class_names, "Animation")
    boost_vec = tuple(boost if c == animation else 1.0 for c in range(train.num_classes))
    cfg.train = dataclasses.replace(cfg.train, epochs=epochs, lr=lr, warmup_epochs=0, patience=epochs, class_boost=boost_vec)
    return _run_variant(Path(run_dir), "animation_finetune", cfg, train, val, views, init_from=Path(run_dir), device=device,
                        executor=executor)


def subcategory_sampling(run_dir, train: FeatureFile, val: FeatureFile, views=("original",), device: str = "auto",
                         executor=None):
    """(b) Retrain the ensemble with subcategory-balanced sampling within each class (same seeds)."""
    cfg = read_config(run_dir)
    cfg.train = dataclasses.replace(cfg.train, sampling="subcategory")
    return _run_variant(Path(run_dir), "subcategory_sampling", cfg, train, val, views, device=device, executor=executor)


def animation_subsequence_tta(test: Predictions, animation: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(c) The original four views for every video, plus the random-subsequence views for videos
    with Animation among their two most likely classes. Returns ``(probs [N, C], views per video)``."""
    base_idx = [test.view_names.index(v) for v in BASE_VIEWS]
    all_idx = list(range(len(test.view_names)))
    base = tta_ensemble(test.probs, base_idx)
    extra = tta_ensemble(test.probs, all_idx)
    top2 = np.argsort(-base, axis=1)[:, :2]
    use = np.any(top2 == animation, axis=1)
    return np.where(use[:, None], extra, base), np.where(use, len(all_idx), len(base_idx))


def compare(name: str, description: str, labels: np.ndarray, baseline_pred: np.ndarray, pred: np.ndarray,
            class_names: list[str], cost: str, n_boot: int = 1000, seed: int = 0) -> dict:
    """One experiment against the baseline on the same videos."""
    c = len(class_names)
    return {"name": name, "description": description, "cost": cost, "predictions": np.asarray(pred),
            "table": per_class_table(labels, pred, class_names), "ci": bootstrap_ci(labels, pred, c, n_boot, seed),
            "vs_baseline": paired_comparison(labels, baseline_pred, pred, c, n_boot, seed)}


def adjust_for_multiplicity(experiments: list[dict], labels: np.ndarray, baseline_pred: np.ndarray, num_classes: int,
                            alpha: float = 0.05, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Holm-adjust the family of comparisons against the baseline (both paired tests), in place.

    Each comparison gains ``vs_baseline["holm"]``: the adjusted macro-F1 bootstrap and
    McNemar p-values, whether the macro-F1 change survives at ``alpha``, and the
    simultaneous (Bonferroni, level ``1 - alpha / m``) CI of the macro-F1 change, which
    excludes zero whenever Holm's first step rejects.
    """
    m = len(experiments)
    f1 = holm([e["vs_baseline"]["macro_f1_p_value"] for e in experiments])
    mcnemar = holm([e["vs_baseline"]["mcnemar"]["p_value"] for e in experiments])
    for e, p_f1, p_mc in zip(experiments, f1, mcnemar):
        wide = paired_comparison(labels, baseline_pred, e["predictions"], num_classes, n_boot, seed, level=1 - alpha / m)
        e["vs_baseline"]["holm"] = {"macro_f1_p_value": p_f1, "mcnemar_p_value": p_mc, "survives": p_f1 < alpha,
                                    "alpha": alpha, "family": m, "simultaneous_ci": wide["macro_f1_diff"]}
    return experiments


def power(experiments: list[dict], labels: np.ndarray, baseline_pred: np.ndarray, num_classes: int,
          sizes=(FORMER_TEST_SIZE, 600, 1200, 2400), n_boot: int = 1000, seed: int = 0) -> dict:
    """CI half-width (points) of each comparison's macro-F1 change for test splits of each size in ``sizes``
    and of this one (the last column), estimated by resampling these test videos."""
    sizes = sorted({*sizes, len(labels)})
    return {"sizes": sizes, "this_size": len(labels),
            "half_widths": {e["name"]: [ci_half_width(labels, baseline_pred, e["predictions"], num_classes, n, n_boot, seed)
                                        for n in sizes] for e in experiments}}


def baseline_predictions(test: Predictions) -> np.ndarray:
    """The experiments' common baseline: soft vote of all members, original view."""
    return soft_vote(test.view("original")).argmax(1)
