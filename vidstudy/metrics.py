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


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Per-class precision, recall, F1 (``precision_recall_fscore_support(average=None)``, in %)
    and support, with accuracy, macro F1 and weighted F1 (in %), each labelled."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    m = classification_metrics(y_true, y_pred, len(class_names))
    return {
        "classes": {name: {"precision": 100 * float(p[i]), "recall": 100 * float(r[i]), "f1": 100 * float(f[i]),
                           "support": int(s[i])} for i, name in enumerate(class_names)},
        "accuracy": 100 * m["acc"],
        "macro_f1": 100 * m["f1_macro"],
        "weighted_f1": 100 * m["f1_weighted"],
    }


def f1_from_counts(yt: np.ndarray, yp: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class F1 for each row of ``yt``/``yp`` ``[B, N]`` -> ``[B, C]`` (0 where undefined)."""
    out = np.empty((yt.shape[0], num_classes))
    for c in range(num_classes):
        t, p = yt == c, yp == c
        tp = np.sum(t & p, axis=1)
        denom = t.sum(1) + p.sum(1)
        out[:, c] = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return out


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro F1 over classes ``0 .. num_classes - 1`` (a fraction; a class absent from both counts 0)."""
    return float(f1_from_counts(np.asarray(y_true)[None], np.asarray(y_pred)[None], num_classes)[0].mean())


def source_draws(labels, groups, n_boot: int, rng: np.random.Generator, per_class: int | None = None) -> list[np.ndarray]:
    """Bootstrap draws of rows by **source**: in each class, ``per_class`` sources (default: as many as the class has)
    drawn with replacement from that class's sources (``groups``: each video's source), each drawn source bringing
    all its rows. Returns one row-index array per draw (lengths differ)."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    members: list[np.ndarray] = []  # the rows of each source, class by class
    owners: list[list[int]] = []  # for each class, its sources' positions in members
    for c in np.unique(labels):
        names = np.unique(groups[labels == c])
        owners.append(list(range(len(members), len(members) + len(names))))
        members += [np.flatnonzero((groups == name) & (labels == c)) for name in names]
    picks = [np.asarray(o)[rng.integers(0, len(o), size=(n_boot, per_class or len(o)))] for o in owners]
    return [np.concatenate([members[k] for p in picks for k in p[b]]) for b in range(n_boot)]


def _draws(y_true, n_boot: int, rng: np.random.Generator, size: int | None = None, groups=None):
    """Rows of each bootstrap draw: videos with replacement (an ``[n_boot, size]`` array), or, with ``groups``,
    :func:`source_draws` (``size`` then counts sources per class)."""
    if groups is None:
        return rng.integers(0, len(y_true), size=(n_boot, size or len(y_true)))
    return source_draws(y_true, groups, n_boot, rng, size)


def _f1_samples(y_true, y_pred, draws, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy ``[B]`` and per-class F1 ``[B, C]`` (fractions) of every draw."""
    if isinstance(draws, np.ndarray):
        yt, yp = y_true[draws], y_pred[draws]
        return np.mean(yt == yp, axis=1), f1_from_counts(yt, yp, num_classes)
    acc = np.array([np.mean(y_true[d] == y_pred[d]) for d in draws])
    return acc, np.concatenate([f1_from_counts(y_true[d][None], y_pred[d][None], num_classes) for d in draws])


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95, groups=None) -> dict:
    """Seeded percentile-bootstrap CIs for accuracy, macro F1 and each class's F1, videos resampled with replacement
    or, given ``groups`` (each video's source), sources resampled within each class (:func:`source_draws`). Values
    are ``[point, low, high]`` in %; ``resampled`` says which."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    acc, f1 = _f1_samples(y_true, y_pred, _draws(y_true, n_boot, np.random.default_rng(seed), groups=groups), num_classes)
    point_f1 = f1_from_counts(y_true[None], y_pred[None], num_classes)[0]
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def ci(point, samples):
        lo, hi = np.percentile(samples, q)
        return [100 * float(point), 100 * float(lo), 100 * float(hi)]

    return {
        "accuracy": ci(np.mean(y_true == y_pred), acc),
        "macro_f1": ci(point_f1.mean(), f1.mean(axis=1)),
        "per_class_f1": [ci(point_f1[c], f1[:, c]) for c in range(num_classes)],
        "n_boot": n_boot,
        "seed": seed,
        "level": level,
        "resampled": "videos" if groups is None else "sources",
    }


def paired_comparison(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int,
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95, groups=None) -> dict:
    """Compare prediction sets ``b`` against ``a`` on the same videos.

    Bootstrap CIs (the same resampled videos, or with ``groups`` the same resampled sources, for both) of the
    differences ``b - a`` in accuracy and macro F1 (in points), the two-sided bootstrap p-value of the
    macro-F1 difference (``(2 * min(#d <= 0, #d >= 0) + 1) / (n_boot + 1)``, capped at 1),
    and McNemar's exact test on the videos where exactly one of the two is right.
    """
    from scipy.stats import binomtest

    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    acc_d, f1_d = _paired_samples(y_true, pred_a, pred_b, num_classes, None, n_boot, seed, groups)
    point_f1 = (f1_from_counts(y_true[None], pred_b[None], num_classes).mean()
                - f1_from_counts(y_true[None], pred_a[None], num_classes).mean())
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue)
    return {
        "accuracy_diff": [100 * float(np.mean(right_b) - np.mean(right_a)), *(100 * np.percentile(acc_d, q)).tolist()],
        "macro_f1_diff": [100 * float(point_f1), *(100 * np.percentile(f1_d, q)).tolist()],
        "macro_f1_p_value": min(1.0, (2 * min(int(np.sum(f1_d <= 0)), int(np.sum(f1_d >= 0))) + 1) / (n_boot + 1)),
        "mcnemar": {"only_a_right": only_a, "only_b_right": only_b, "p_value": p},
    }


def bootstrap_statistic(statistic, n: int, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                        labels=None, groups=None) -> dict:
    """Percentile-bootstrap CI of ``statistic(rows)`` over ``n`` videos resampled with replacement, or, given
    ``labels`` and ``groups``, over sources resampled within each class (``rows`` an index array; the point
    estimate uses ``arange(n)``): ``{"ci": [point, low, high], "p_value"}``, the two-sided bootstrap p-value of the
    statistic being 0, as in :func:`paired_comparison`."""
    rng = np.random.default_rng(seed)
    if groups is None:
        draws = [rng.integers(0, n, size=n) for _ in range(n_boot)]
    else:
        draws = source_draws(labels, groups, n_boot, rng)
    samples = np.array([statistic(rows) for rows in draws])
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {"ci": [float(statistic(np.arange(n))), *map(float, np.percentile(samples, q))],
            "p_value": min(1.0, (2 * min(int(np.sum(samples <= 0)), int(np.sum(samples >= 0))) + 1) / (n_boot + 1))}


def _paired_samples(y_true, pred_a, pred_b, num_classes: int, size: int | None, n_boot: int, seed: int, groups=None):
    """Bootstrap differences ``b - a`` in accuracy and macro F1 (fractions) over resamples of ``size`` videos (or,
    with ``groups``, of ``size`` sources per class; ``None``: as many as there are)."""
    draws = _draws(y_true, n_boot, np.random.default_rng(seed), size, groups)
    acc_a, f1_a = _f1_samples(y_true, pred_a, draws, num_classes)
    acc_b, f1_b = _f1_samples(y_true, pred_b, draws, num_classes)
    return acc_b - acc_a, f1_b.mean(1) - f1_a.mean(1)


def ci_half_width(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int, size: int | None = None,
                  n_boot: int = 1000, seed: int = 0, level: float = 0.95, groups=None) -> float:
    """Half-width (points) of the paired bootstrap CI of the macro-F1 difference ``b - a`` that a test split of
    ``size`` videos drawn like these would give (resamples of ``size`` videos; ``None``: these videos' own); with
    ``groups``, of ``size`` sources per class drawn like these sources."""
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    _, f1_d = _paired_samples(y_true, pred_a, pred_b, num_classes, size, n_boot, seed, groups)
    lo, hi = np.percentile(f1_d, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(100 * (hi - lo) / 2)


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given; monotone, at most 1)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
