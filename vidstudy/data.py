"""Torch datasets over feature files, padding collate, and train-time augmentation.

A :class:`VideoDataset` item is ``(frames [L, D] float32 tensor, label)`` holding
only the valid frames; :func:`collate` pads a batch to its longest video and
returns a :class:`Batch` with lengths and a boolean mask (True on valid steps).

Augmentation follows the original study, applied per video with probabilities:
an ordered random subset of 70-100 % of the frames (at least 8), a roll in time by
-3..3 steps, Gaussian noise. It is off unless an :class:`AugmentConfig` is given.
Its random numbers come from a generator seeded by ``(seed, torch.initial_seed())``
in each process, so runs are reproducible in the main process and in DataLoader
workers alike (each worker's torch seed derives from the loader's generator).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .errors import ParameterError
from .features import FeatureFile


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation, the original study's values by default."""

    subset_p: float = 0.5
    subset_min_fraction: float = 0.7
    subset_min_frames: int = 8
    roll_p: float = 0.3
    roll_max: int = 3
    noise_p: float = 0.2
    noise_std: float = 0.01

    def __post_init__(self):
        for name in ("subset_p", "roll_p", "noise_p", "subset_min_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ParameterError(f"augmentation parameter {name} must lie in [0, 1], got {v}.")
        if self.subset_min_frames < 1 or self.roll_max < 0 or self.noise_std < 0:
            raise ParameterError("augmentation parameters subset_min_frames >= 1, roll_max >= 0 and noise_std >= 0 are required.")


def augment(frames: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Augment one video's valid frames ``[L, D]``; returns a new ``[L', D]`` array."""
    x = frames
    length = x.shape[0]
    if rng.random() < cfg.subset_p and length > cfg.subset_min_frames:
        low = max(cfg.subset_min_frames, math.ceil(cfg.subset_min_fraction * length))
        keep = int(rng.integers(low, length + 1))
        x = x[np.sort(rng.choice(length, size=keep, replace=False))]
    if rng.random() < cfg.roll_p and cfg.roll_max > 0:
        x = np.roll(x, int(rng.integers(-cfg.roll_max, cfg.roll_max + 1)), axis=0)
    if rng.random() < cfg.noise_p:
        x = x + rng.normal(0.0, cfg.noise_std, size=x.shape).astype(x.dtype)
    return np.ascontiguousarray(x, dtype=np.float32)


def augment_batch(x: torch.Tensor, lengths: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`augment` for a padded batch ``[B, T, D]`` on any device, at once: the same three steps with the same
    probabilities, drawn from ``generator`` (on the batch's device). Returns the new batch (zero after each new
    length, trimmed to the longest) and the new lengths."""
    b, t, d = x.shape
    dev = x.device
    steps = torch.arange(t, device=dev)
    draw = torch.rand(b, 4, generator=generator, device=dev)
    # an ordered random subset of the valid frames: the ``keep`` lowest of random scores, in time order
    low = torch.clamp(torch.ceil(cfg.subset_min_fraction * lengths.double()).long(), min=cfg.subset_min_frames)
    subset = (draw[:, 0] < cfg.subset_p) & (lengths > cfg.subset_min_frames)
    keep = torch.where(subset, low + (draw[:, 1] * (lengths - low + 1).double()).long().clamp(min=0), lengths)
    keep = torch.minimum(keep, lengths)
    scores = torch.rand(b, t, generator=generator, device=dev).masked_fill(steps[None] >= lengths[:, None], 2.0)
    rank = scores.argsort(1).argsort(1)
    source = torch.where(rank < keep[:, None], steps[None], t + steps[None]).sort(1).values.clamp(max=t - 1)
    # a roll in time by -roll_max..roll_max steps: out[i] = in[(i - shift) mod length]
    if cfg.roll_max > 0:
        shift = torch.randint(-cfg.roll_max, cfg.roll_max + 1, (b,), generator=generator, device=dev)
        shift = torch.where(draw[:, 2] < cfg.roll_p, shift, torch.zeros_like(shift))
        source = torch.gather(source, 1, (steps[None] - shift[:, None]) % keep[:, None])
    out = torch.gather(x, 1, source[..., None].expand(b, t, d))
    valid = (steps[None] < keep[:, None])[..., None]
    noise = (draw[:, 3] < cfg.noise_p)[:, None, None] & valid
    out = out + cfg.noise_std * torch.randn(out.shape, generator=generator, device=dev, dtype=out.dtype) * noise
    out = out * valid
    return out[:, : int(keep.max())], keep


class VideoDataset(Dataset):
    """Videos of one :class:`~vidstudy.features.FeatureFile`, optionally augmented."""

    def __init__(self, features: FeatureFile, augment: AugmentConfig | None = None, seed: int = 0,
                 indices: Sequence[int] | None = None):
        self.file = features
        self.augment = augment
        self.seed = int(seed)
        self.indices = np.arange(len(features)) if indices is None else np.asarray(indices, dtype=np.int64)
        self._rng_key: tuple[int, int] | None = None
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        return self.file.labels[self.indices]

    def _generator(self) -> np.random.Generator:
        key = (os.getpid(), torch.initial_seed())
        if self._rng is None or self._rng_key != key:
            self._rng = np.random.default_rng([self.seed, key[1] % 2**63])
            self._rng_key = key
        return self._rng

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = int(self.indices[i])
        x = self.file.frames(j)
        if self.augment is not None:
            x = augment(x, self._generator(), self.augment)
        return torch.from_numpy(np.array(x, dtype=np.float32)), int(self.file.labels[j])


class Batch(NamedTuple):
    features: torch.Tensor  # [B, T, D] float32, zero after each length
    lengths: torch.Tensor  # [B] int64
    mask: torch.Tensor  # [B, T] bool, True on valid steps
    labels: torch.Tensor  # [B] int64


def collate(items: Sequence[tuple[torch.Tensor, int]]) -> Batch:
    """Pad a list of ``(frames [L, D], label)`` to the batch's longest video."""
    lengths = torch.tensor([x.shape[0] for x, _ in items], dtype=torch.int64)
    t = int(lengths.max())
    features = torch.zeros(len(items), t, items[0][0].shape[1], dtype=torch.float32)
    for i, (x, _) in enumerate(items):
        features[i, : x.shape[0]] = x
    mask = torch.arange(t)[None, :] < lengths[:, None]
    labels = torch.tensor([y for _, y in items], dtype=torch.int64)
    return Batch(features, lengths, mask, labels)


def longest_first(num_frames) -> np.ndarray:
    """Indices of the videos, longest first (ties in file order): batches taken in this order are each padded little."""
    return np.argsort(-np.asarray(num_frames), kind="stable")


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False, sampler: Sampler | None = None,
                num_workers: int = 0, seed: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader with :func:`collate` and a seeded generator (shuffling and worker seeds); ``pin_memory``
    puts batches in page-locked memory, for non-blocking copies to a GPU."""
    if batch_size < 1:
        raise ParameterError(f"batch_size must be at least 1, got {batch_size}.")
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, collate_fn=collate, generator=generator,
                      persistent_workers=False, pin_memory=pin_memory)
