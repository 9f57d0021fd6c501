"""Test-time views over the frame sequence, and running a model over them.

Each view is a pure function of ``(features, length)`` returning new
``(features, length)``; it reads only the ``length`` valid frames, so padding never
leaks in:

``original``               the valid frames
``reverse``                the valid frames in reverse time order
``speed_up``               ``max(1, L // 2)`` frames picked by linspace (L=73 -> 36)
``speed_down``             ``max(1, int(1.5 L))`` frames by linspace, frames repeated (73 -> 109)
``random_subsequence_k``   an ordered random subset of 70-100 % of the frames; the subset is
                           drawn from a generator seeded by ``(seed, k, L)``, so it is
                           reproducible (the k-th draw of K)

The first four are the original study's TTA; the seed page suggests random
subsequences for Animation.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from .data import collate, longest_first
from .errors import ParameterError
from .features import FeatureFile
from .multiscale import resample_indices

View = Callable[[np.ndarray, int], tuple[np.ndarray, int]]
BASE_VIEWS = ("original", "reverse", "speed_up", "speed_down")
SUBSEQUENCE_PREFIX = "random_subsequence_"
MAX_SUBSEQUENCES = 64


def _pick(features: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, int]:
    return features[idx], len(idx)


def original(features: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    return features[:length], length


def reverse(features: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    return features[:length][::-1].copy(), length  # a copy: torch takes no negative strides, even of one frame


def speed_up(features: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    return _pick(features, resample_indices(length, max(1, length // 2)))


def speed_down(features: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    return _pick(features, resample_indices(length, max(1, int(1.5 * length))))


def random_subsequence(k: int, seed: int = 0, min_fraction: float = 0.7) -> View:
    """The k-th random-subsequence view (ordered subset of ``min_fraction``..100 % of the frames)."""

    def view(features: np.ndarray, length: int) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng([seed, k, length])
        keep = int(rng.integers(max(1, math.ceil(min_fraction * length)), length + 1))
        return _pick(features, np.sort(rng.choice(length, size=keep, replace=False)))

    return view


def view_names(subsequences: int = 1) -> list[str]:
    """The default view set: the four original views and ``subsequences`` random subsequences."""
    if not 0 <= subsequences <= MAX_SUBSEQUENCES:
        raise ParameterError(f"subsequences (--subsequences) must lie in [0, {MAX_SUBSEQUENCES}], got {subsequences}.")
    return list(BASE_VIEWS) + [f"{SUBSEQUENCE_PREFIX}{k}" for k in range(subsequences)]


def get_view(name: str, seed: int = 0) -> View:
    """The view function called ``name``."""
    fixed = {"original": original, "reverse": reverse, "speed_up": speed_up, "speed_down": speed_down}
    if name in fixed:
        return fixed[name]
    if name.startswith(SUBSEQUENCE_PREFIX) and name[len(SUBSEQUENCE_PREFIX):].isdigit():
        return random_subsequence(int(name[len(SUBSEQUENCE_PREFIX):]), seed)
    raise ParameterError(f"unknown view {name!r}; views are {', '.join(BASE_VIEWS)} and {SUBSEQUENCE_PREFIX}K.")


def predict_views(model: torch.nn.Module, data: FeatureFile, views: Sequence[str], batch_size: int = 64,
                  seed: int = 0, device: torch.device | str = "cpu", precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over every view of every video: ``(probs [V, N, C], logits [V, N, C])``."""
    probs, logits = predict_members([model], data, views, batch_size, seed, device, precision)
    return probs[0], logits[0]


@torch.no_grad()
def predict_members(models: Sequence[torch.nn.Module], data: FeatureFile, views: Sequence[str], batch_size: int = 64,
                    seed: int = 0, device: torch.device | str = "cpu", precision: str = "fp32"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Run every model (already on ``device``) over every view of every video:
    ``(probs [M, V, N, C], logits [M, V, N, C])``, float32.

    Videos are taken longest first, so that each batch is padded only to its own longest view; each batch is built
    once, all its views in one padded batch, and goes through every model in one forward pass
    (:func:`~vidstudy.device.inference_attention`); on a GPU it is copied from pinned memory without blocking.
    Logits are read back once, at the end, in the file's order of videos.
    """
    from .device import autocast, inference_attention
    from .feeding import to_device

    device = torch.device(device)
    fns = [get_view(v, seed) for v in views]
    for model in models:
        model.eval()
    order = longest_first(data.num_frames)  # each view is a function of its video alone
    chunks: list[list[torch.Tensor]] = [[] for _ in models]
    for start in range(0, len(data), batch_size):
        rows = order[start:start + batch_size]
        items = []
        for fn in fns:
            for i in rows:
                x, n = fn(data.frames(int(i)), int(data.num_frames[i]))
                items.append((torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), 0))
        batch = collate(items)
        if device.type == "cuda":
            batch = to_device(type(batch)(*(t.pin_memory() for t in batch)), device)
        for model, out in zip(models, chunks):
            with autocast(device, precision), inference_attention(device):
                logits = model(batch.features, batch.lengths).float()
            out.append(logits.reshape(len(fns), len(rows), -1))
    logits = torch.stack([torch.cat(c, dim=1) for c in chunks]).cpu()[:, :, np.argsort(order)]
    return torch.softmax(logits, -1).numpy(), logits.numpy()
