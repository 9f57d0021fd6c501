"""Class weights, the weighted sampler, and subcategory-stratified splits."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from .errors import ParameterError


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Videos per class, ``[C]`` int."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]


def class_weights(labels: np.ndarray, num_classes: int, clip: tuple[float, float] = (0.5, 10.0)) -> np.ndarray:
    """The original formula ``w_c = N / (C * n_c)``, clipped to ``clip`` (an absent class gets the upper bound)."""
    counts = class_counts(labels, num_classes).astype(np.float64)
    n = counts.sum()
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, n / (num_classes * counts), np.inf)
    return np.clip(w, clip[0], clip[1])


def weighted_sampler(labels: np.ndarray, weights: np.ndarray, seed: int = 0,
                     num_samples: int | None = None, sample_weights: np.ndarray | None = None) -> WeightedRandomSampler:
    """A ``WeightedRandomSampler`` drawing video ``i`` with weight ``weights[labels[i]]`` (or
    ``sample_weights[i]`` when given), with replacement, ``len(labels)`` draws per epoch by
    default, from a seeded generator."""
    labels = np.asarray(labels, dtype=np.int64)
    per_video = np.asarray(weights, dtype=np.float64)[labels] if sample_weights is None else sample_weights
    sample_w = torch.as_tensor(np.asarray(per_video, dtype=np.float64))
    return WeightedRandomSampler(sample_w, num_samples=num_samples or len(labels), replacement=True,
                                 generator=torch.Generator().manual_seed(int(seed)))


def subcategory_sample_weights(labels: np.ndarray, subcategories: Sequence[str], class_w: np.ndarray) -> np.ndarray:
    """Per-video sampling weights: the class's weight, shared equally among the class's subcategories.

    Within class ``c`` every subcategory then gets the same expected share of draws,
    however rare it is; across classes the class weights act as usual.
    """
    labels = np.asarray(labels)
    subs = np.asarray(subcategories, dtype=object)
    w = np.empty(len(labels))
    for c in np.unique(labels):
        in_c = labels == c
        groups = np.unique(subs[in_c])
        for g in groups:
            sel = in_c & (subs == g)
            w[sel] = class_w[c] * in_c.sum() / (len(groups) * sel.sum())
    return w


def stratified_split(labels: np.ndarray, subcategories: Sequence[str] | None, val_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``(train, val)`` preserving subcategory proportions within each class.

    Each (class, subcategory) group is shuffled and ``round(val_fraction * size)`` of
    it goes to val. Without subcategories it stratifies by class only.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ParameterError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}.")
    labels = np.asarray(labels)
    subs = np.asarray(subcategories if subcategories is not None else [""] * len(labels), dtype=object)
    if len(subs) != len(labels):
        raise ParameterError(f"subcategories has {len(subs)} entries but labels has {len(labels)}.")
    rng = np.random.default_rng(seed)
    train, val = [], []
    keys = sorted(set(zip(labels.tolist(), subs.tolist())))
    for label, sub in keys:
        idx = np.flatnonzero((labels == label) & (subs == sub))
        idx = idx[rng.permutation(idx.size)]
        k = int(round(val_fraction * idx.size))
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
