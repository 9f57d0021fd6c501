"""The Animation anomaly: why averaging probabilities tolerates a collapsed member, and when not.

Array code over stored probabilities (``[M, N, C]`` for one view).
"""

from __future__ import annotations

import numpy as np

from ..ensemble import soft_vote


def mean_class_probability(member_probs: np.ndarray, labels: np.ndarray, cls: int) -> dict:
    """Each member's and the soft vote's mean probability of ``cls`` on the videos of ``cls``."""
    sel = labels == cls
    return {"members": member_probs[:, sel, cls].mean(axis=1).tolist(),
            "ensemble": float(soft_vote(member_probs)[sel, cls].mean())}


def _renormalise(p: np.ndarray) -> np.ndarray:
    return p / p.sum(-1, keepdims=True)


def suppress_class(member_probs: np.ndarray, member: int, cls: int, factor: float = 0.01) -> np.ndarray:
    """A copy where ``member`` has collapsed on ``cls``: its probability of ``cls`` is scaled by
    ``factor`` and renormalised (it almost never predicts ``cls`` and is unsure elsewhere)."""
    out = member_probs.copy()
    out[member, :, cls] *= factor
    out[member] = _renormalise(out[member])
    return out


def confidently_wrong(member_probs: np.ndarray, member: int, cls: int, wrong: int, confidence: float = 0.97) -> np.ndarray:
    """A copy where ``member`` sends every video it would call ``cls`` to ``wrong`` with ``confidence``."""
    out = member_probs.copy()
    hit = out[member].argmax(-1) == cls
    c = out.shape[-1]
    out[member, hit] = (1 - confidence) / (c - 1)
    out[member, hit, wrong] = confidence
    return out


def unconfident(member_probs: np.ndarray, member: int, cls: int) -> np.ndarray:
    """A copy where ``member`` gives a uniform distribution to every video it would call ``cls``."""
    out = member_probs.copy()
    hit = out[member].argmax(-1) == cls
    out[member, hit] = 1.0 / out.shape[-1]
    return out
