"""How a split's batches reach the device that trains or predicts.

Three ways, chosen by :func:`feeding_mode` from the device and the split's size:

``loader``
    On the CPU: the DataLoader over a :class:`~vidstudy.data.VideoDataset`, as
    always (per-video augmentation in numpy, workers if asked). CPU runs take
    only this path, so their results do not change.
``resident``
    On a GPU, when the split's padded features fit :data:`RESIDENT_FRACTION` of
    the free device memory: the whole split is copied to the device once and
    each batch is indexed there; augmentation runs on the device too
    (:func:`~vidstudy.data.augment_batch`, the same steps and probabilities).
``pinned``
    On a GPU, when the split does not fit: the DataLoader reads it (lazily,
    if the file is lazy) into page-locked memory and each batch is copied with
    a non-blocking transfer.

The batch order is the same random stream in every mode (the sampler, or a
permutation seeded by the epoch); only where the numbers live differs.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from .data import Batch, VideoDataset, augment_batch, make_loader
from .device import free_memory

MODES = ("loader", "pinned", "resident")
#: The share of the free device memory a split may take to be made resident.
RESIDENT_FRACTION = 0.5


def split_bytes(dataset: VideoDataset) -> int:
    """Bytes of the dataset's padded float32 features."""
    f = dataset.file
    return len(dataset) * f.max_frames * f.feature_dim * 4


def feeding_mode(dataset: VideoDataset, device: torch.device, budget: int | None = None) -> str:
    """``loader`` on the CPU; on a GPU ``resident`` when the split fits ``budget`` bytes (default: a
    :data:`RESIDENT_FRACTION` of the free device memory), else ``pinned``."""
    if device.type == "cpu":
        return "loader"
    budget = int(RESIDENT_FRACTION * free_memory(device)) if budget is None else budget
    return "resident" if split_bytes(dataset) <= budget else "pinned"


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``batch`` on ``device`` (non-blocking from pinned memory); the same object on the CPU."""
    if device.type == "cpu":
        return batch
    return Batch(*(t.to(device, non_blocking=True) for t in batch))


class Feed:
    """The batches of one dataset on one device (see the module docstring for ``mode``)."""

    def __init__(self, dataset: VideoDataset, device: torch.device, mode: str | None = None, num_workers: int = 0,
                 budget: int | None = None):
        self.dataset, self.device, self.num_workers = dataset, torch.device(device), num_workers
        self.mode = mode or feeding_mode(dataset, self.device, budget)
        if self.mode not in MODES:
            raise ValueError(f"feeding mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "resident":
            f, idx = dataset.file, dataset.indices
            self.features = torch.as_tensor(f.padded()[idx]).to(self.device)
            self.host_lengths = torch.as_tensor(f.num_frames[idx].astype(np.int64))  # batch widths, read without a wait
            self.lengths = self.host_lengths.to(self.device)
            self.labels = torch.as_tensor(f.labels[idx].astype(np.int64)).to(self.device)

    def batches(self, batch_size: int, *, shuffle: bool = False, sampler: Sampler | None = None,
                seed: int = 0) -> Iterator[Batch]:
        """One pass over the dataset: in order, shuffled (seeded by ``seed``), or in ``sampler``'s order."""
        if self.mode != "resident":
            loader = make_loader(self.dataset, batch_size, shuffle=shuffle, sampler=sampler, num_workers=self.num_workers,
                                 seed=seed, pin_memory=self.mode == "pinned")
            for batch in loader:
                yield to_device(batch, self.device)
            return
        n = len(self.dataset)
        if sampler is not None:
            order = torch.as_tensor(list(iter(sampler)), dtype=torch.int64)
        elif shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
        else:
            order = torch.arange(n)
        augment = self.dataset.augment
        generator = None
        if augment is not None:
            generator = torch.Generator(device=self.device).manual_seed(
                int(np.random.SeedSequence([self.dataset.seed, int(seed)]).generate_state(1)[0]))
        steps = torch.arange(self.features.shape[1], device=self.device)
        for start in range(0, n, batch_size):
            host_idx = order[start:start + batch_size]
            idx = host_idx.to(self.device, non_blocking=True)
            lengths = self.lengths[idx]
            x = self.features[idx, : int(self.host_lengths[host_idx].max())]
            if augment is not None:  # its new lengths are read back once per batch, to trim the padding
                x, lengths = augment_batch(x, lengths, augment, generator)
            yield Batch(x, lengths, steps[None, : x.shape[1]] < lengths[:, None], self.labels[idx])
