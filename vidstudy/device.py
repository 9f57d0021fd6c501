"""Where the networks run and at what precision: one device for training, prediction and extraction.

:func:`resolve_device` turns ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a
:class:`torch.device` (``auto``: the first CUDA GPU when there is one, else the CPU);
asking for a GPU that is not there is one :class:`~vidstudy.errors.ParameterError`
naming the parameter. :func:`autocast` is the precision of a forward pass:
``fp32`` (on CUDA, TF32 matrix products are allowed, see :func:`allow_tf32`) or
``bf16`` autocast on any device. On the CPU in ``fp32`` nothing changes: the same
operations as before, so CPU results stay deterministic.

The device is where a run is computed, not part of what it is: it is not in the
run's config (a run trained on a GPU predicts on a CPU and back) but it is
recorded in each member's ``summary.json``.
"""

from __future__ import annotations

import contextlib

import torch

from .config import PRECISIONS
from .errors import ParameterError

DEVICES = "auto, cpu, cuda or cuda:N"


def resolve_device(spec: str | torch.device | None = "auto", parameter: str = "--device") -> torch.device:
    """The torch device ``spec`` names (``None`` is ``auto``), checked against this machine."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = "auto" if spec is None else str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    kind, _, index = spec.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ParameterError(f"{parameter} must be {DEVICES}, got {spec!r}.")
    if not torch.cuda.is_available():
        raise ParameterError(f"{parameter} {spec}: this machine has no CUDA GPU that torch can use; "
                             f"use {parameter} cpu or auto.")
    if index and int(index) >= torch.cuda.device_count():
        raise ParameterError(f"{parameter} {spec}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0.")
    return torch.device(spec)


def check_precision(precision: str, parameter: str = "train.precision") -> str:
    if precision not in PRECISIONS:
        raise ParameterError(f"{parameter} must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    return precision


def allow_tf32(device: torch.device) -> None:
    """On CUDA, let fp32 matrix products and convolutions use TF32 (the ``fp32`` precision's GPU speed-up)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device, precision: str):
    """The context of a forward pass at ``precision``: bf16 autocast, or nothing for fp32."""
    if check_precision(precision) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def inference_attention(device: torch.device):
    """The context of inference (no gradients): on a CPU, ``nn.MultiheadAttention`` takes its plain path instead of
    the fused "fast path", which ran slower on two CPU cores (benchmarks/README.md); elsewhere nothing changes."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device`` (a CUDA GPU); 0 elsewhere, where data is never made resident."""
    if device.type != "cuda":
        return 0
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)
