"""Classification metrics and collapse detection."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

COLLAPSE_F1 = 0.05  # a class whose F1 stays under this is lost
COLLAPSE_SHARE = 0.95  # predictions this concentrated on one class mean collapse


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """Accuracy, weighted F1, macro F1 and per-class F1 (fractions in [0, 1])."""
    labels = list(range(num_classes))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "acc": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "f1_macro": float(per_class.mean()),
        "per_class_f1": [float(v) for v in per_class],
    }


def detect_collapse(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                    min_f1: float = COLLAPSE_F1, max_share: float = COLLAPSE_SHARE) -> dict:
    """Flag a collapsed classifier.

    It is collapsed when some class's F1 is under ``min_f1`` (that class is lost)
    or when at least ``max_share`` of the predictions fall on one class (every
    other class is lost). Returns ``{"collapsed": bool, "lost_classes": [ids],
    "dominant_class": id or None, "dominant_share": float}``.
    """
    y_pred = np.asarray(y_pred)
    per_class = f1_score(y_true, y_pred, labels=list(range(num_classes)), average=None, zero_division=0)
    present = set(np.unique(y_true).tolist())
    lost = {c for c in range(num_classes) if c in present and per_class[c] < min_f1}
    shares = np.bincount(y_pred, minlength=num_classes) / max(len(y_pred), 1)
    dominant = int(np.argmax(shares))
    if shares[dominant] >= max_share:
        lost |= {c for c in present if c != dominant}
    else:
        dominant = None
    return {
        "collapsed": bool(lost),
        "lost_classes": sorted(int(c) for c in lost),
        "dominant_class": dominant,
        "dominant_share": float(shares.max()),
    }
