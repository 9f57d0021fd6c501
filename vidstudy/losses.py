"""Focal loss, the original study's formula."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ParameterError


class FocalLoss(nn.Module):
    """``alpha[y] * (1 - pt)**gamma * ce`` averaged over the batch.

    ``ce`` is the cross-entropy against label-smoothed targets
    (``(1 - smoothing) * onehot + smoothing / C``) and ``pt = exp(-ce)``, as in the
    original. With ``gamma=0``, no ``alpha`` and no smoothing it is cross-entropy.
    """

    def __init__(self, alpha: torch.Tensor | None = None, gamma: float = 2.0, smoothing: float = 0.1):
        super().__init__()
        if gamma < 0 or not 0.0 <= smoothing < 1.0:
            raise ParameterError(f"focal loss needs gamma >= 0 and 0 <= smoothing < 1, got gamma={gamma}, smoothing={smoothing}.")
        self.gamma = float(gamma)
        self.smoothing = float(smoothing)
        self.register_buffer("alpha", None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[-1]
        log_probs = F.log_softmax(logits, dim=-1)
        soft = F.one_hot(targets, num_classes).to(log_probs.dtype) * (1 - self.smoothing) + self.smoothing / num_classes
        ce = -(soft * log_probs).sum(-1)
        pt = torch.exp(-ce)
        loss = (1 - pt) ** self.gamma * ce
        if self.alpha is not None:
            loss = self.alpha.to(loss.device)[targets] * loss
        return loss.mean()
