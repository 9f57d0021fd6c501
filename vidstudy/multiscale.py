"""Multi-scale temporal features, time-aligned.

The original study resampled each video's frame features at three temporal
scales (1.0, 0.85, 1.15: 64, 54 and 73 frames for a 64-frame video), zero-padded
each to the longest and averaged them element-wise. That mixes features from
different moments (step 50 of the 0.85 scale is about frame 59 of the video, step
50 of the 1.15 scale is about frame 44) and dilutes the tail with zeros.

:func:`multiscale` does it on one time axis instead: each scale is resampled from
the video's valid frames (``int(L * s)`` steps picked by ``linspace``, at least one),
then mapped back by linear interpolation onto a common axis of ``int(L * max(s))``
steps that spans the same time interval, and the scales are averaged there. The
result has as many steps as the longest scale (73 for a 64-frame video, the
original's ``T``), every step describes one moment of the video, and the true
length is returned. ``mode="original"`` reproduces the original computation for
comparison.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ParameterError

DEFAULT_SCALES: tuple[float, ...] = (1.0, 0.85, 1.15)


def scale_length(length: int, scale: float) -> int:
    """Number of steps of ``scale`` for a video of ``length`` frames: ``max(1, int(length * scale))``."""
    return max(1, int(length * scale))


def multiscale_length(length: int, scales: Sequence[float] = DEFAULT_SCALES) -> int:
    """Steps :func:`multiscale` gives a video of ``length`` frames: the longest scale's."""
    return max(scale_length(length, s) for s in scales)


def resample_indices(length: int, steps: int) -> np.ndarray:
    """``steps`` frame indices spread by ``linspace`` over ``0..length-1`` (rounded)."""
    return np.round(np.linspace(0, length - 1, steps)).astype(np.int64)


def _to_axis(seq: np.ndarray, steps: int) -> np.ndarray:
    """Linearly interpolate ``seq [n, D]`` onto ``steps`` points spanning the same time interval."""
    n = seq.shape[0]
    if n == 1:
        return np.repeat(seq, steps, axis=0)
    pos = np.linspace(0.0, n - 1, steps)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None].astype(seq.dtype)
    return seq[lo] * (1 - w) + seq[hi] * w


def multiscale(
    frame_features: np.ndarray,
    scales: Sequence[float] = DEFAULT_SCALES,
    mode: str = "aligned",
) -> tuple[np.ndarray, int]:
    """Combine temporal scales of one video's frame features ``[L, D]``.

    Returns ``(features [T_out, D], length)`` with ``T_out = int(L * max(scales))``.
    In ``"aligned"`` mode every step is valid, so ``length == T_out``. In
    ``"original"`` mode (the original study's code) each scale is zero-padded at the
    end to ``T_out`` and averaged; ``length`` is ``T_out`` as the original stored it.
    """
    x = np.asarray(frame_features)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ParameterError(f"frame_features must be a [L, D] array with L >= 1, got shape {x.shape}.")
    if not scales or any(not np.isfinite(s) or s <= 0 for s in scales):
        raise ParameterError(f"scales must be positive numbers, got {tuple(scales)}.")
    if mode not in ("aligned", "original"):
        raise ParameterError(f"mode must be 'aligned' or 'original', got {mode!r}.")
    length = x.shape[0]
    out_steps = multiscale_length(length, scales)
    acc = np.zeros((out_steps, x.shape[1]), dtype=np.float64)
    for s in scales:
        seq = x[resample_indices(length, scale_length(length, s))].astype(np.float64)
        if mode == "aligned":
            acc += _to_axis(seq, out_steps)
        else:
            acc[: seq.shape[0]] += seq
    return (acc / len(scales)).astype(x.dtype, copy=False), out_steps


def pad_sequences(seqs: Sequence[np.ndarray], max_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``[L_i, D]`` sequences into zero-padded ``float32 [N, T, D]`` and their lengths ``int32 [N]``.

    ``max_frames`` fixes ``T`` (default: the longest sequence).
    """
    longest = max(seq.shape[0] for seq in seqs)
    t = longest if max_frames is None else int(max_frames)
    if t < longest:
        raise ParameterError(f"max_frames={t} is shorter than the longest sequence ({longest} steps).")
    out = np.zeros((len(seqs), t, seqs[0].shape[1]), np.float32)
    lengths = np.empty(len(seqs), np.int32)
    for i, seq in enumerate(seqs):
        out[i, : seq.shape[0]] = seq
        lengths[i] = seq.shape[0]
    return out, lengths


def multiscale_batch(
    videos: Sequence[np.ndarray],
    scales: Sequence[float] = DEFAULT_SCALES,
    mode: str = "aligned",
    max_frames: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply :func:`multiscale` to each video and pad to ``[N, T, D]`` (:func:`pad_sequences`).

    Returns ``(features float32 [N, T, D], num_frames int32 [N])``.
    """
    return pad_sequences([multiscale(v, scales, mode)[0] for v in videos], max_frames)


def source_positions(length: int, scales: Sequence[float] = DEFAULT_SCALES, mode: str = "aligned") -> np.ndarray:
    """Where in the video each output step of :func:`multiscale` looks, per scale.

    Returns ``[T_out, len(scales)]`` source-frame positions (fractional where the
    aligned mode interpolates between two frames); ``NaN`` where ``"original"``
    mode averages in a zero pad instead of a frame. It explains the two modes:
    in ``"aligned"`` the scales of a step agree to within a frame; in
    ``"original"`` they drift apart towards the end of the video.
    """
    if mode not in ("aligned", "original"):
        raise ParameterError(f"mode must be 'aligned' or 'original', got {mode!r}.")
    out_steps = multiscale_length(length, scales)
    pos = np.full((out_steps, len(scales)), np.nan)
    for j, s in enumerate(scales):
        n = scale_length(length, s)
        idx = resample_indices(length, n).astype(np.float64)
        if mode == "original":
            pos[:n, j] = idx
        elif n == 1:
            pos[:, j] = idx[0]
        else:
            pos[:, j] = np.interp(np.linspace(0.0, n - 1, out_steps), np.arange(n), idx)
    return pos


def compare_modes(per_frame: np.ndarray, scales: Sequence[float] = DEFAULT_SCALES) -> dict:
    """The original (pad and average) and the time-aligned combination of one video's per-frame features, side by side.

    Returns, per mode, the source positions (:func:`source_positions`) and the size (L2 norm) of each
    output step, plus the figures the book quotes: the largest spread in frames between the scales of one
    step (``spread``) and, over the steps after the 1.0 scale ends, the original's mean step size relative
    to the aligned one (``tail_ratio``).
    """
    length = len(per_frame)
    modes = {}
    for mode in ("original", "aligned"):
        combined = multiscale(per_frame, scales, mode)[0]
        positions = source_positions(length, scales, mode)
        modes[mode] = {"positions": positions, "norms": np.linalg.norm(combined, axis=1),
                       "spread": float(np.nanmax(np.nanmax(positions, axis=1) - np.nanmin(positions, axis=1)))}
    tail = slice(length, None)
    return {"frames": length, "steps": len(modes["aligned"]["norms"]), "modes": modes,
            "tail_ratio": float(modes["original"]["norms"][tail].mean() / modes["aligned"]["norms"][tail].mean())}
