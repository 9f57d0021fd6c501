"""Linear probes on fixed video-level features: the floor every model must beat.

``mean`` is a logistic regression on time-averaged features (it cannot see frame
order). ``temporal`` adds order-dependent statistics (mean absolute difference of
consecutive frames and lag-1 autocorrelation) to show how much the order of frames
carries; shuffling frames in time destroys what it adds.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .errors import ParameterError, VidstudyError
from .features import FeatureFile

PROBES = ("mean", "temporal")


def video_statistics(ff: FeatureFile, kind: str = "mean", shuffle_seed: int | None = None) -> np.ndarray:
    """Video-level features ``[N, F]`` for a probe; ``shuffle_seed`` permutes frames in time first."""
    if kind not in PROBES:
        raise ParameterError(f"probe must be one of {', '.join(PROBES)}, got {kind!r}.")
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    rows = []
    for i in range(len(ff)):
        x = ff.frames(i).astype(np.float64)
        if rng is not None:
            x = x[rng.permutation(x.shape[0])]
        parts = [x.mean(axis=0)]
        if kind == "temporal":
            if x.shape[0] > 1:
                d = np.abs(np.diff(x, axis=0)).mean(axis=0)
                c = x - x.mean(axis=0)
                ac = (c[1:] * c[:-1]).mean(axis=0) / (c.var(axis=0) + 1e-8)
            else:
                d = ac = np.zeros(x.shape[1])
            parts += [d, ac]
        rows.append(np.concatenate(parts))
    return np.stack(rows)


def fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """The probe's classifier (standardised features, L2 logistic regression, C=0.1) fitted and applied."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    return clf.fit(train_x, train_y).predict(test_x)


def run_probe(train: FeatureFile, test: FeatureFile, kind: str = "mean", shuffle_seed: int | None = None) -> dict:
    """Fit the probe on ``train``, score it on ``test``: accuracy, macro-F1, per-class F1, and the test predictions."""
    if len(np.unique(train.labels)) < 2:
        raise VidstudyError(f"{train.path}: the probe needs training videos of at least two classes, "
                            f"this file has {len(train)} video(s) of {len(np.unique(train.labels))} class.")
    pred = fit_predict(video_statistics(train, kind, shuffle_seed), train.labels, video_statistics(test, kind, shuffle_seed))
    per_class = f1_score(test.labels, pred, average=None, labels=range(test.num_classes))
    return {
        "probe": kind,
        "accuracy": float(np.mean(pred == test.labels)),
        "macro_f1": float(per_class.mean()),
        "per_class_f1": dict(zip(test.class_names, map(float, per_class))),
        "predictions": pred.astype(int).tolist(),
    }
