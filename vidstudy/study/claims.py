"""The study's claims as tests: each one a measured difference with its CI, judged after Holm's adjustment.

One evaluated run (its ``results.json`` and predictions store, :func:`vidstudy.evaluate.evaluate_run`) and its
data folder (for the probes) give the six rows of ``CLAIMS``. A claim **holds** when its difference lies on
the claimed side with a Holm-adjusted bootstrap p-value under ``ALPHA``, is **contradicted** when it lies
significantly on the other side, and is **not resolved** otherwise (the CI spans no difference). The same rows
for the simulated and the real data, side by side, say which of the study's findings carry over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import calibration as cal
from ..features import class_index, load_splits
from ..metrics import bootstrap_statistic, f1_from_counts, holm, paired_comparison
from ..predictions import load_predictions
from ..probe import run_probe
from ..results import read_results

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


def _ece_reduction(probs: np.ndarray, logits: np.ndarray, temperatures: list[float], labels: np.ndarray):
    after = [cal.softmax(lg, t) for lg, t in zip(logits, temperatures)]

    def reduction(rows):
        return 100 * float(np.mean([cal.ece(b[rows], labels[rows]) - cal.ece(a[rows], labels[rows])
                                    for b, a in zip(probs, after)]))
    return reduction


def measure_claims(run, data_dir, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """The rows of ``CLAIMS`` for one evaluated run on the test split of ``data_dir``: ``key``, ``claim``,
    ``measure``, ``ci`` ``[point, low, high]`` (points), ``p_value``, ``p_holm`` and ``verdict``."""
    run = Path(run)
    results = read_results(run / "results.json")
    test = load_predictions(run, "test")
    names, y, c = results["class_names"], test.labels, len(results["class_names"])
    methods = {k: np.asarray(v["test_predictions"]) for k, v in results["methods"].items()}
    soft = methods["soft_vote"]
    files = load_splits(data_dir, ("train", "test"))
    probes = {kind: np.asarray(run_probe(files["train"], files["test"], kind)["predictions"]) for kind in ("mean", "temporal")}
    o = test.view_names.index("original")

    def paired(a, b):
        r = paired_comparison(y, a, b, c, n_boot, seed)
        return {"ci": r["macro_f1_diff"], "p_value": r["macro_f1_p_value"]}

    measured = {
        "animation_hardest": bootstrap_statistic(_animation_gap(y, soft, class_index(names, "Animation"), c), len(y),
                                                 n_boot, seed),
        "beats_mean_probe": paired(probes["mean"], soft),
        "beats_temporal_probe": paired(probes["temporal"], soft),
        "tta_helps": paired(soft, methods["ensemble_tta"]),
        "stacking_helps": paired(soft, methods["stacking"]),
        "members_miscalibrated": bootstrap_statistic(_ece_reduction(
            test.probs[:, o], test.logits[:, o], [results["calibration"][m]["temperature"] for m in test.member_names], y),
            len(y), n_boot, seed),
    }
    adjusted = holm([measured[k.key]["p_value"] for k in CLAIMS])
    return [{"key": k.key, "claim": k.claim, "measure": k.measure, **measured[k.key], "p_holm": p,
             "verdict": verdict(measured[k.key]["ci"][0], p, k.direction)} for k, p in zip(CLAIMS, adjusted)]


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
