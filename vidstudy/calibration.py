"""Calibration: expected calibration error, reliability-diagram data, temperature scaling."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

DEFAULT_BINS = 15


def _bins(probs: np.ndarray, labels: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    conf = probs.max(1)
    right = (probs.argmax(1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, bins) / counts
        acc = np.bincount(which, right, bins) / counts
    return edges, mean_conf, acc, counts


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> dict:
    """Per equal-width confidence bin: mean confidence, accuracy (None for an empty bin) and count."""
    edges, mean_conf, acc, counts = _bins(probs, labels, bins)
    plain = lambda a: [None if np.isnan(x) else float(x) for x in a]  # noqa: E731
    return {"edges": edges.tolist(), "confidence": plain(mean_conf), "accuracy": plain(acc), "counts": counts.tolist()}


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error with ``bins`` equal-width bins: sum of ``|acc - conf|`` weighted by bin share."""
    _, mean_conf, acc, counts = _bins(probs, labels, bins)
    return float(np.sum(counts / counts.sum() * np.nan_to_num(np.abs(acc - mean_conf))))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation NLL (searched over log T in [-3, 3])."""
    res = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))), bounds=(-3.0, 3.0), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def probs_as_logits(probs: np.ndarray) -> np.ndarray:
    """Log-probabilities, used as logits for combined predictions (e.g. an ensemble's mean)."""
    return np.log(np.clip(probs, 1e-12, None))


def calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Combined probabilities (a vote's mean) scaled by ``temperature``: ``softmax(log p / T)``."""
    return softmax(probs_as_logits(probs), temperature)


def fit_confidence_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """The lowest confidence ``t`` at which the predictions with confidence at least ``t`` are right at least
    ``target`` of the time (fitted on validation: the most predictions called confident at that accuracy); ``None``
    when no ``t`` reaches ``target``."""
    conf, right = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    if not 0 < target <= 1 or conf.shape != right.shape or conf.ndim != 1:
        raise ValueError(f"confidence and correct must be two [N] arrays and 0 < target <= 1, got {conf.shape}, "
                         f"{right.shape} and {target}.")
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    last = np.r_[conf[1:] != conf[:-1], True]  # the end of each run of equal confidences: a threshold takes it whole
    accuracy = np.cumsum(right) / np.arange(1, len(right) + 1)
    ok = np.flatnonzero(last & (accuracy >= target))
    return float(conf[ok[-1]]) if ok.size else None


def coverage_accuracy(confidence: np.ndarray, correct: np.ndarray, threshold: float | None) -> dict:
    """The share of predictions at or above ``threshold`` (``None``: none) and their accuracy (``None`` when none)."""
    conf, right = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    kept = np.zeros(len(conf), bool) if threshold is None else conf >= threshold
    return {"coverage": float(kept.mean()) if len(conf) else 0.0,
            "accuracy": float(right[kept].mean()) if kept.any() else None, "count": int(kept.sum())}
