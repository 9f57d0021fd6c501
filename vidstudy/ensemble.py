"""Combining stored member probabilities: votes, TTA, member selection, class-conditional TTA.

All functions are array code over the predictions store (``probs [M, V, N, C]``
or one view's ``[M, N, C]``); none runs a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .metrics import detect_collapse


def soft_vote(member_probs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Mean (or weighted mean) of the members' probabilities: ``[M, N, C] -> [N, C]``."""
    if weights is None:
        return member_probs.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (member_probs.shape[0],) or np.any(w < 0) or w.sum() <= 0:
        raise ParameterError(f"weights must be {member_probs.shape[0]} non-negative numbers with a positive sum, "
                             f"got {w.tolist()}.")
    return np.tensordot(w / w.sum(), member_probs, axes=1)


def weighted_vote(member_probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Soft vote with one weight per member."""
    return soft_vote(member_probs, weights)


def hard_vote(member_probs: np.ndarray) -> np.ndarray:
    """Majority of the members' argmax, ``[N]``; ties go to the tied class with the highest soft vote."""
    m, n, c = member_probs.shape
    votes = np.zeros((n, c))
    np.add.at(votes, (np.repeat(np.arange(n)[None], m, 0), member_probs.argmax(-1)), 1)
    tied = votes == votes.max(axis=1, keepdims=True)
    return np.where(tied, soft_vote(member_probs), -np.inf).argmax(axis=1)


def member_tta(probs: np.ndarray, views: list[int] | None = None) -> np.ndarray:
    """Each member's TTA prediction, the mean over its views: ``[M, V, N, C] -> [M, N, C]``."""
    return (probs if views is None else probs[:, views]).mean(axis=1)


def tta_ensemble(probs: np.ndarray, views: list[int] | None = None) -> np.ndarray:
    """The original's ensemble + TTA: mean over each member's views, then over members."""
    return soft_vote(member_tta(probs, views))


def collapse_flags(member_probs: np.ndarray, labels: np.ndarray) -> list[dict]:
    """:func:`~vidstudy.metrics.detect_collapse` for each member's predictions."""
    return [detect_collapse(labels, p.argmax(-1), p.shape[-1]) for p in member_probs]


def select_members(val_member_probs: np.ndarray, val_labels: np.ndarray) -> list[int]:
    """Members kept by the validation-only rule: drop those flagged as collapsed on val.

    If every member is flagged, all are kept (there is nothing better to fall back on).
    """
    keep = [i for i, f in enumerate(collapse_flags(val_member_probs, val_labels)) if not f["collapsed"]]
    return keep or list(range(val_member_probs.shape[0]))


def leave_one_out(member_probs: np.ndarray) -> list[np.ndarray]:
    """The soft vote without each member in turn (entry ``i`` leaves member ``i`` out)."""
    m = member_probs.shape[0]
    if m < 2:
        return []
    return [soft_vote(np.delete(member_probs, i, axis=0)) for i in range(m)]


@dataclass
class ClassConditionalTTA:
    """Spend TTA views only where the original view is unsure.

    The ensemble's original-view prediction gives a class ``c`` and a confidence
    ``q``. If ``q >= thresholds[c]`` the original view alone decides; otherwise the
    video gets the mean over all stored views. Thresholds are fit on validation.
    """

    thresholds: np.ndarray
    view_cost: float = 0.005

    def apply(self, probs: np.ndarray, original_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``probs [M, V, N, C]`` -> ``(combined [N, C], views spent per video [N])``."""
        base = soft_vote(probs[:, original_index])
        full = tta_ensemble(probs)
        pred, conf = base.argmax(1), base.max(1)
        use_tta = conf < self.thresholds[pred]
        views = np.where(use_tta, probs.shape[1], 1)
        return np.where(use_tta[:, None], full, base), views


def fit_class_conditional_tta(val_probs: np.ndarray, val_labels: np.ndarray, original_index: int = 0,
                              view_cost: float = 0.005) -> ClassConditionalTTA:
    """Choose, per predicted class, the confidence threshold below which TTA is used.

    Videos predicted as class ``c`` are affected only by ``thresholds[c]``, so each
    class is fit on its own: the threshold maximises (correct videos) minus
    ``view_cost`` times (extra views spent), over thresholds between "never TTA"
    (0) and "always TTA" (above 1). Ties go to fewer views.
    """
    base = soft_vote(val_probs[:, original_index])
    full = tta_ensemble(val_probs)
    v = val_probs.shape[1]
    pred, conf = base.argmax(1), base.max(1)
    right_base, right_full = base.argmax(1) == val_labels, full.argmax(1) == val_labels
    thresholds = np.zeros(base.shape[1])
    for c in range(base.shape[1]):
        idx = np.flatnonzero(pred == c)
        candidates = np.unique(np.concatenate([[0.0], conf[idx], [1.01]]))
        best = None
        for t in candidates:
            tta = conf[idx] < t
            score = np.sum(np.where(tta, right_full[idx], right_base[idx])) - view_cost * (v - 1) * tta.sum()
            if best is None or score > best[0] + 1e-12:
                best = (score, t)
        thresholds[c] = best[1]
    return ClassConditionalTTA(thresholds=thresholds, view_cost=view_cost)
