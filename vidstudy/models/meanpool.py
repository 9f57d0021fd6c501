"""``meanpool``: the mean of the valid frames through a small MLP; it cannot see frame order (a baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import masked_mean, mlp_head, valid_mask, xavier_init
from .registry import register_model


@dataclass
class MeanPoolConfig:
    """One hidden layer of ``hidden_dim`` over the mean frame, dropout ``dropout``."""

    arch: str = "meanpool"
    hidden_dim: int = 64
    dropout: float = 0.3


class MeanPoolClassifier(nn.Module):
    """Baseline: the mean of the valid frames through a small MLP (cannot see frame order)."""

    def __init__(self, feature_dim: int, hidden_dim: int = 128, dropout: float = 0.2, num_classes: int = 4):
        super().__init__()
        self.head = mlp_head(feature_dim, (hidden_dim,), (dropout,), num_classes)
        xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        return self.head(masked_mean(features, valid_mask(lengths.to(features.device), features.shape[1])))


# Configs written before families had sections of their own carry the temporal model's fields: read and dropped.
# Its sizes are the temporal model's width and dropout at each preset, which is what it took from them then.
@register_model("meanpool", MeanPoolConfig, ranges={"hidden_dim": (1, 8192, False, False), "dropout": (0.0, 1.0, False, True)},
                sizes={"cpu": {}, "published": {"hidden_dim": 768, "dropout": 0.4}},
                legacy=("num_lstm_layers", "num_heads", "head_dims", "masked"))
def build(cfg: MeanPoolConfig, feature_dim: int, num_classes: int) -> nn.Module:
    """Mean of the frames -> MLP (order-blind baseline)."""
    return MeanPoolClassifier(feature_dim, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout, num_classes=num_classes)
