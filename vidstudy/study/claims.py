"""The study's claims as tests: each one a measured difference with its CI, judged after Holm's adjustment.

One evaluated run (its ``results.json`` and predictions store, :func:`vidstudy.evaluate.evaluate_run`) and its
data folder (for the probes) give the six rows of ``CLAIMS`` (:func:`measure_claims`); so do the held-out sources
of every leave-sources-out fold, pooled (:func:`fold_inputs`, then :func:`judge`). A claim **holds** when its
difference lies on the claimed side with a Holm-adjusted bootstrap p-value under ``ALPHA``, is **contradicted**
when it lies significantly on the other side, and is **not resolved** otherwise (the CI spans no difference). The
bootstrap resamples sources within each class when the test videos record them. The same rows for the simulated
and the real data, side by side, say which of the study's findings carry over; :func:`source_power` says how many
sources per class a claim would need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import calibration as cal
from ..errors import VidstudyError
from ..features import class_index, load_splits
from ..metrics import bootstrap_statistic, f1_from_counts, holm, macro_f1, paired_comparison, source_draws
from ..predictions import load_predictions
from ..probe import run_probe
from ..results import read_results
from .crosssource import POWER_SOURCES

ALPHA = 0.05


@dataclass(frozen=True)
class Claim:
    key: str
    claim: str
    measure: str
    direction: int  # +1: the claim says the difference is above 0; -1: below


CLAIMS = (
    Claim("animation_hardest", "Animation is the hardest class",
          "Animation's F1 minus the lowest F1 among the other classes (soft vote)", -1),
    Claim("beats_mean_probe", "The temporal model beats the mean-feature probe",
          "macro-F1: soft vote minus the mean-feature probe", +1),
    Claim("beats_temporal_probe", "The temporal model beats the temporal probe",
          "macro-F1: soft vote minus the temporal probe", +1),
    Claim("tta_helps", "The original's TTA helps", "macro-F1: four-view TTA minus the soft vote", +1),
    Claim("stacking_helps", "Stacking helps", "macro-F1: stacking minus the soft vote", +1),
    Claim("members_miscalibrated", "Members need recalibrating",
          "members' mean ECE minus their mean ECE after a temperature fit on val", +1),
)


def verdict(point: float, p_adjusted: float, direction: int) -> str:
    """``holds``, ``contradicted`` or ``not resolved`` (see the module docstring)."""
    if p_adjusted >= ALPHA or point == 0:
        return "not resolved"
    return "holds" if np.sign(point) == direction else "contradicted"


def _animation_gap(labels: np.ndarray, pred: np.ndarray, animation: int, num_classes: int):
    others = [c for c in range(num_classes) if c != animation]

    def gap(rows):
        f1 = f1_from_counts(labels[rows][None], pred[rows][None], num_classes)[0]
        return 100 * (f1[animation] - f1[others].min())
    return gap


def _ece_reduction(before: np.ndarray, after: np.ndarray, labels: np.ndarray):
    """Members' mean ECE (points) before minus after their temperatures, over ``rows``."""
    def reduction(rows):
        return 100 * float(np.mean([cal.ece(b[rows], labels[rows]) - cal.ece(a[rows], labels[rows])
                                    for b, a in zip(before, after)]))
    return reduction


def _part(run, train_file, test_file, rows=None) -> dict:
    """What one evaluated run contributes to the claims, on the test videos ``rows`` (default all): labels, the
    soft vote, TTA and stacking predictions, the two probes (fitted on ``train_file``), the members' probabilities
    before and after their temperatures (original view), and each video's source (``None`` when not recorded)."""
    run = Path(run)
    results = read_results(run / "results.json")
    test = load_predictions(run, "test")
    rows = np.arange(len(test.labels)) if rows is None else np.asarray(rows)
    methods = {k: np.asarray(results["methods"][k]["test_predictions"])[rows] for k in ("soft_vote", "ensemble_tta", "stacking")}
    probes = {kind: np.asarray(run_probe(train_file, test_file, kind)["predictions"])[rows] for kind in ("mean", "temporal")}
    o = test.view_names.index("original")
    temperatures = [results["calibration"][m]["temperature"] for m in test.member_names]
    return {"names": results["class_names"], "y": test.labels[rows], **methods, **probes,
            "before": test.probs[:, o][:, rows],
            "after": np.stack([cal.softmax(lg, t) for lg, t in zip(test.logits[:, o], temperatures)])[:, rows],
            "groups": None if test_file.sources is None else np.asarray(test_file.sources)[rows]}


def _inputs(parts: list[dict]) -> dict:
    """The parts' videos as one test set: labels ``y``, each video's source ``groups`` (``None`` unless every part
    records them), the paired prediction sets ``pairs`` ``{key: (a, b)}`` of the macro-F1 claims, and every claim's
    ``statistics`` ``{key: statistic(rows)}`` in points."""
    cat = {k: np.concatenate([p[k] for p in parts], axis=1 if k in ("before", "after") else 0)
           for k in ("y", "soft_vote", "ensemble_tta", "stacking", "mean", "temporal", "before", "after")}
    names, y = parts[0]["names"], cat["y"]
    c = len(names)
    groups = None if any(p["groups"] is None for p in parts) else np.concatenate([p["groups"] for p in parts])
    soft = cat["soft_vote"]
    pairs = {"beats_mean_probe": (cat["mean"], soft), "beats_temporal_probe": (cat["temporal"], soft),
             "tta_helps": (soft, cat["ensemble_tta"]), "stacking_helps": (soft, cat["stacking"])}

    def difference(a, b):
        return lambda rows: 100 * (macro_f1(y[rows], b[rows], c) - macro_f1(y[rows], a[rows], c))

    statistics = {"animation_hardest": _animation_gap(y, soft, class_index(names, "Animation"), c),
                  **{k: difference(a, b) for k, (a, b) in pairs.items()},
                  "members_miscalibrated": _ece_reduction(cat["before"], cat["after"], y)}
    return {"y": y, "num_classes": c, "groups": groups, "pairs": pairs, "statistics": statistics}


def _run_inputs(run, data_dir) -> dict:
    files = load_splits(data_dir, ("train", "test"))
    return _inputs([_part(run, files["train"], files["test"])])


def fold_inputs(folds: list[dict]) -> dict:
    """The held-out videos of every leave-sources-out fold (:func:`vidstudy.study.crosssource.run_folds`) as one test
    set: each source's videos as predicted by the fold that held it out."""
    return _inputs([_part(f["run"], f["files"]["train"], f["files"]["test"], np.flatnonzero(f["held"])) for f in folds])


def judge(inputs: dict, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """The rows of ``CLAIMS`` on one test set (:func:`fold_inputs`, or one run's): ``key``, ``claim``, ``measure``,
    ``ci`` ``[point, low, high]`` (points), ``p_value``, ``p_holm`` and ``verdict``. The bootstrap resamples test
    videos, or their sources (within each class) when the test set records them."""
    y, groups = inputs["y"], inputs["groups"]
    measured = {}
    for k in CLAIMS:
        if k.key in inputs["pairs"]:
            r = paired_comparison(y, *inputs["pairs"][k.key], inputs["num_classes"], n_boot, seed, groups=groups)
            measured[k.key] = {"ci": r["macro_f1_diff"], "p_value": r["macro_f1_p_value"]}
        else:
            measured[k.key] = bootstrap_statistic(inputs["statistics"][k.key], len(y), n_boot, seed, labels=y, groups=groups)
    adjusted = holm([measured[k.key]["p_value"] for k in CLAIMS])
    return [{"key": k.key, "claim": k.claim, "measure": k.measure, **measured[k.key], "p_holm": p,
             "verdict": verdict(measured[k.key]["ci"][0], p, k.direction)} for k, p in zip(CLAIMS, adjusted)]


def measure_claims(run, data_dir, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """:func:`judge` on one evaluated run (its ``results.json`` and predictions store) and the test split of
    ``data_dir`` (the probes are fitted on its train split)."""
    return judge(_run_inputs(run, data_dir), n_boot, seed)


def source_power(inputs: dict, sizes=POWER_SOURCES, n_boot: int = 500, seed: int = 0) -> list[dict]:
    """How many sources per class each claim needs: the half-width (points) of its CI at level
    ``1 - ALPHA / len(CLAIMS)`` (Holm's strictest step) on test sets of ``m`` sources per class drawn like these
    (:func:`vidstudy.metrics.source_draws`), for ``m`` in ``sizes``, and ``sources_needed``: the smallest ``m`` whose
    half-width is under the measured difference (``None``: none of them). The test set must record sources."""
    y, groups = inputs["y"], inputs["groups"]
    if groups is None:
        raise VidstudyError("the power analysis counts sources, and these test videos record none.")
    level = 1 - ALPHA / len(CLAIMS)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = []
    for k in CLAIMS:
        statistic = inputs["statistics"][k.key]
        point = float(statistic(np.arange(len(y))))
        widths = []
        for m in sizes:
            samples = [statistic(rows) for rows in source_draws(y, groups, n_boot, np.random.default_rng([seed, m]), m)]
            lo, hi = np.percentile(samples, q)
            widths.append(float((hi - lo) / 2))
        needed = next((m for m, w in zip(sizes, widths) if w < abs(point)), None)
        out.append({"key": k.key, "claim": k.claim, "difference": point, "sizes": list(sizes), "half_widths": widths,
                    "sources_needed": needed})
    return out


def side_by_side(by_data: dict[str, list[dict]]):
    """``{dataset label: rows of measure_claims}`` -> one table row per claim: each dataset's difference with its CI,
    Holm-adjusted p-value and verdict."""
    import pandas as pd

    table = {}
    for label, rows in by_data.items():
        for r in rows:
            d, lo, hi = r["ci"]
            table.setdefault(r["claim"], {"measure": r["measure"]}).update(
                {(f"{label}: difference [95 % CI]"): f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]",
                 f"{label}: p (Holm)": f"{r['p_holm']:.3f}", f"{label}: verdict": r["verdict"]})
    return pd.DataFrame(table).T
