"""The Animation anomaly: why averaging probabilities tolerates a collapsed member, and when not.

Array code over stored probabilities (``[M, N, C]`` for one view).
"""

from __future__ import annotations

import numpy as np

from ..ensemble import soft_vote

SUPPRESS_FACTOR = 0.01  # how much a suppressed member keeps of its probability of the class
WRONG_CONFIDENCE = 0.97  # the probability a confidently wrong member gives the wrong class


def mean_class_probability(member_probs: np.ndarray, labels: np.ndarray, cls: int) -> dict:
    """Each member's and the soft vote's mean probability of ``cls`` on the videos of ``cls``."""
    sel = labels == cls
    return {"members": member_probs[:, sel, cls].mean(axis=1).tolist(),
            "ensemble": float(soft_vote(member_probs)[sel, cls].mean())}


def _renormalise(p: np.ndarray) -> np.ndarray:
    return p / p.sum(-1, keepdims=True)


def suppress_class(member_probs: np.ndarray, member: int, cls: int, factor: float = SUPPRESS_FACTOR) -> np.ndarray:
    """A copy where ``member`` has collapsed on ``cls``: its probability of ``cls`` is scaled by
    ``factor`` and renormalised (it almost never predicts ``cls`` and is unsure elsewhere)."""
    out = member_probs.copy()
    out[member, :, cls] *= factor
    out[member] = _renormalise(out[member])
    return out


def confidently_wrong(member_probs: np.ndarray, member: int, cls: int, wrong: int,
                      confidence: float = WRONG_CONFIDENCE) -> np.ndarray:
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


def most_confused_with(member_probs: np.ndarray, labels: np.ndarray, cls: int) -> int:
    """The class the soft vote most often predicts for videos of ``cls`` when it is wrong; when it is never
    wrong, the other class it gives the most probability on those videos."""
    vote = soft_vote(member_probs)
    pred = vote.argmax(1)
    wrong = pred[(labels == cls) & (pred != cls)]
    if wrong.size:
        return int(np.bincount(wrong, minlength=member_probs.shape[-1]).argmax())
    lean = vote[labels == cls].mean(axis=0)
    lean[cls] = -np.inf
    return int(np.argmax(lean))


def robustness_sweep(member_probs: np.ndarray, labels: np.ndarray, class_names: list[str], cls: int, wrong: int) -> dict:
    """The soft vote's F1 on ``cls`` and macro-F1 when the first ``k`` members (k = 1..M-1) turn unconfident
    on, or confidently wrong (towards ``wrong``) about, every video they would call ``cls``.

    Returns ``{(k, behaviour): {"cls F1": .., "macro F1": ..}}`` in percent.
    """
    from ..metrics import per_class_table

    behaviours = {"unconfident": lambda p, m: unconfident(p, m, cls),
                  "confidently wrong": lambda p, m: confidently_wrong(p, m, cls, wrong)}
    rows = {}
    for k in range(1, member_probs.shape[0]):
        for kind, change in behaviours.items():
            p = member_probs
            for m in range(k):
                p = change(p, m)
            t = per_class_table(labels, soft_vote(p).argmax(1), class_names)
            rows[(k, kind)] = {f"{class_names[cls]} F1": t["classes"][class_names[cls]]["f1"], "macro F1": t["macro_f1"]}
    return rows


def prediction_changes(labels: np.ndarray, before: np.ndarray, after: np.ndarray, cls: int) -> dict:
    """How the predictions that changed between ``before`` and ``after`` moved with respect to ``cls``.

    ``fixed``: wrongly called ``cls`` before, right after; ``broken``: rightly called ``cls`` before, wrong
    after; ``other``: any other change. Also the precision and recall of ``cls`` before and after (percent).
    """
    changed = before != after
    fixed = int(np.sum(changed & (before == cls) & (labels != cls) & (after == labels)))
    broken = int(np.sum(changed & (before == cls) & (labels == cls)))

    def pr(pred):
        called, true = pred == cls, labels == cls
        hits = np.sum(called & true)
        return (100 * hits / max(called.sum(), 1), 100 * hits / max(true.sum(), 1))

    (p0, r0), (p1, r1) = pr(before), pr(after)
    return {"changed": int(changed.sum()), "fixed": fixed, "broken": broken, "other": int(changed.sum()) - fixed - broken,
            "precision_before": float(p0), "precision_after": float(p1), "recall_before": float(r0), "recall_after": float(r1)}
