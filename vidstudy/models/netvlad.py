"""``netvlad``: NetVLAD pooling with Context Gating (Miech, Laptev, Sivic 2017, "Learnable pooling with Context
Gating for video classification", first in the 2017 YouTube-8M challenge; antoine77340/Youtube-8M-WILLOW, LOUPE).

Frames (input batch norm) are softly assigned to ``clusters`` learned centres, ``a = softmax(BN(x W))`` over the
clusters, with padded frames given zero weight; the residuals ``a^T x - (sum a) c`` are intra-normalised (L2 per
cluster) and then L2-normalised as one vector; a hidden layer (batch norm, ReLU6), Context Gating, dropout and a
softmax classifier (the original's gated mixture of experts is multi-label). The pooling and hidden layer hold
``D * K * (H + 2)`` weights (assignment, centres, hidden), 268.7 M at D=1024, K=128, H=2048.
Published size: 256 clusters, hidden 1,024.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ContextGating, masked_batch_norm, valid_mask, vlad, xavier_init
from .registry import register_model


@dataclass
class NetVLADConfig:
    """``clusters`` centres, hidden width ``hidden_dim``, dropout before the classifier."""

    arch: str = "netvlad"
    clusters: int = 16
    hidden_dim: int = 128
    dropout: float = 0.2


class NetVLADPool(nn.Module):
    """Soft assignment of the valid frames to learned centres and their normalised residuals, ``[B, K * D]``."""

    def __init__(self, dim: int, clusters: int):
        super().__init__()
        self.assign = nn.Linear(dim, clusters, bias=False)
        self.assign_norm = nn.BatchNorm1d(clusters)
        self.centres = nn.Parameter(torch.randn(dim, clusters) / dim ** 0.5)

    def assignment(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, T, K]``: each valid frame's weights over the clusters (summing to one), zero for padded frames."""
        return torch.softmax(masked_batch_norm(self.assign_norm, self.assign(x), mask), dim=-1) * mask.unsqueeze(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D]``, ``mask [B, T]`` -> the L2-normalised VLAD vector ``[B, K * D]``."""
        return F.normalize(vlad(self.assignment(x, mask), x, self.centres).flatten(1), p=2, dim=1)


class NetVLAD(nn.Module):
    """NetVLAD pooling -> hidden layer -> Context Gating -> classifier."""

    def __init__(self, feature_dim: int, clusters: int, hidden_dim: int, dropout: float, num_classes: int):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(feature_dim)
        self.pool = NetVLADPool(feature_dim, clusters)
        self.hidden = nn.Linear(clusters * feature_dim, hidden_dim, bias=False)
        self.hidden_norm = nn.BatchNorm1d(hidden_dim)
        self.gating = ContextGating(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim, num_classes)
        xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        mask = valid_mask(lengths.to(features.device), features.shape[1])
        pooled = self.pool(masked_batch_norm(self.input_norm, features, mask), mask)
        hidden = self.gating(F.relu6(self.hidden_norm(self.hidden(pooled))))
        return self.classifier(self.dropout(hidden))


@register_model("netvlad", NetVLADConfig, ranges={"clusters": (1, 4096, False, False), "hidden_dim": (1, 8192, False, False),
                                                  "dropout": (0.0, 1.0, False, True)},
                sizes={"cpu": {}, "published": {"clusters": 256, "hidden_dim": 1024}})
def build(cfg: NetVLADConfig, feature_dim: int, num_classes: int) -> nn.Module:
    """NetVLAD + Context Gating (YouTube-8M 2017, first place)."""
    return NetVLAD(feature_dim, cfg.clusters, cfg.hidden_dim, cfg.dropout, num_classes)
