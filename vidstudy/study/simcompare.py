"""How the simulator's features compare with real CNN features, and its knobs calibrated towards them.

:func:`statistics` measures four properties of a dataset (``STATISTICS``) from its train and test arrays
(``features [N, T, D]``, ``num_frames``, ``labels``). :func:`calibrate` simulates a grid of two of the
simulator's difficulty knobs (``KNOBS``: ``texture_noise`` sets how much a frame differs from the next,
``style_spread`` how far a video lies from its subcategory's prototype, the variation between videos of one kind
that a new source brings) at a reduced size, measures each point, and picks
the one nearest the real data's temporal autocorrelation and probe separability (:func:`distance`). Sparsity
and scale are shown, not fitted: no knob sets them on its own (the backbone's bias does, and it is not a knob).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..features import FeatureFile
from ..metrics import macro_f1
from ..probe import fit_predict
from ..profiling import timed
from ..simulate import shape_config, simulate_split

STATISTICS = {
    "sparsity": "share of exact zeros among the values of valid frames (%)",
    "scale": "root mean square of the values of valid frames",
    "autocorrelation": "lag-1 autocorrelation of a dimension within a video, averaged over dimensions and videos",
    "separability": "macro-F1 (%) of the mean-feature probe, fitted on train and scored on test",
}
FITTED = ("autocorrelation", "separability")
KNOBS = {"texture_noise": (0.1, 0.3, 0.6, 1.0), "style_spread": (0.4, 0.8, 1.2, 1.6)}  # the defaults: 0.1 and 0.4
CALIBRATION_SIZES = {"train": 400, "test": 400}  # videos simulated per grid point (smoke: a quarter)


def arrays(ff: FeatureFile) -> dict:
    """The arrays :func:`statistics` reads, from a feature file."""
    return {"features": ff.padded(), "num_frames": ff.num_frames, "labels": ff.labels}


def _masked_mean(x: np.ndarray, num_frames: np.ndarray) -> np.ndarray:
    mask = (np.arange(x.shape[1])[None, :] < num_frames[:, None])[..., None]
    return (x * mask).sum(1) / num_frames[:, None]


def autocorrelation(x: np.ndarray, num_frames: np.ndarray) -> float:
    """Lag-1 autocorrelation per dimension within each video (of 3 or more frames), averaged over the dimensions
    that vary in that video, then over videos."""
    out = []
    for i in np.flatnonzero(num_frames >= 3):
        f = x[i, : num_frames[i]].astype(np.float64)
        c = f - f.mean(0)
        var = (c**2).mean(0)
        ok = var > 1e-12
        if ok.any():
            out.append(float(((c[1:] * c[:-1]).mean(0)[ok] / var[ok]).mean()))
    return float(np.mean(out))


def statistics(train: dict, test: dict) -> dict:
    """The four ``STATISTICS`` of a dataset (the first three on ``train``)."""
    x, nf = train["features"], train["num_frames"]
    valid = x[np.arange(x.shape[1])[None, :] < nf[:, None]]
    pred = fit_predict(_masked_mean(x, nf), train["labels"], _masked_mean(test["features"], test["num_frames"]))
    classes = int(max(train["labels"].max(), test["labels"].max())) + 1
    return {"sparsity": 100 * float(np.mean(valid == 0)), "scale": float(np.sqrt(np.mean(valid.astype(np.float64) ** 2))),
            "autocorrelation": autocorrelation(x, nf), "separability": 100 * macro_f1(test["labels"], pred, classes)}


def distance(stats: dict, target: dict) -> float:
    """Sum of the relative differences of the ``FITTED`` statistics from ``target``'s."""
    return float(sum(abs(stats[k] - target[k]) / abs(target[k]) for k in FITTED))


def simulated(seed: int = 0, scale: float = 1.0, **knobs) -> tuple[dict, dict]:
    """Train and test arrays of the default simulation with ``knobs`` changed, at the calibration size."""
    n = {k: max(8, int(round(v * scale / 4)) * 4) for k, v in CALIBRATION_SIZES.items()}
    cfg = shape_config("default", split_sizes={**n, "val": 4}, fixed_class_counts={"test": (n["test"] // 4,) * 4,
                                                                                 "val": (1, 1, 1, 1)}, **knobs)
    return simulate_split(cfg, "train", seed), simulate_split(cfg, "test", seed)


@timed("data")
def calibrate(target: dict, seed: int = 0, scale: float = 1.0, grid: dict = KNOBS) -> list[dict]:
    """Every point of ``grid``: its knobs, its :func:`statistics` and its :func:`distance` to ``target``, nearest
    first."""
    rows = []
    for values in itertools.product(*grid.values()):
        knobs = dict(zip(grid, values))
        stats = statistics(*simulated(seed, scale, **knobs))
        rows.append({**knobs, **stats, "distance": distance(stats, target)})
    return sorted(rows, key=lambda r: r["distance"])
