"""``nextvlad``: NeXtVLAD (Lin, Xiao, Fan 2018, third in the 2018 YouTube-8M challenge; linrongc/youtube-8m
``nextvlad.py``).

Each frame is expanded to ``expansion * D`` and split into ``groups`` groups of ``expansion * D / groups``; every
group gets a sigmoid attention (zero for padded frames, as the original masks them) and a softmax over ``clusters``
centres shared by the groups; the attention-weighted residuals of all groups are aggregated per cluster and
intra-normalised (L2, not the L1 of a public port), batch-normalised; dropout, a hidden layer (batch norm),
squeeze-and-excitation gating (reduction ``reduction``) and a softmax classifier. The weights
(expansion, group attention, assignment, centres, hidden) number ``lambda N (N + G + K (G + (H + 1) / G))``:
71.4 M at N=1024, K=128, H=2048, G=8, lambda=2. Rule: ``groups`` divides ``expansion`` times the feature dimension.
Published size: 128 clusters, 8 groups, expansion 2, hidden 2,048, reduction 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ParameterError
from .blocks import SEGating, masked_batch_norm, valid_mask, vlad, xavier_init
from .registry import register_model


@dataclass
class NeXtVLADConfig:
    """Clusters, groups, expansion factor lambda, hidden width, the gating's reduction, dropout."""

    arch: str = "nextvlad"
    clusters: int = 16
    groups: int = 8
    expansion: int = 2
    hidden_dim: int = 128
    reduction: int = 8
    dropout: float = 0.2


class NeXtVLADPool(nn.Module):
    """Expansion, grouped attention and soft assignment, aggregated residuals: ``[B, K * expansion * D / groups]``."""

    def __init__(self, dim: int, clusters: int, groups: int, expansion: int):
        super().__init__()
        width = expansion * dim
        if width % groups:
            raise ParameterError(f"model.groups ({groups}) must divide model.expansion times the feature dimension "
                                 f"({expansion} x {dim} = {width}).")
        self.groups, self.clusters, self.group_size = groups, clusters, width // groups
        self.expand = nn.Linear(dim, width)
        self.group_attention = nn.Linear(width, groups)
        self.assign = nn.Linear(width, groups * clusters, bias=False)
        self.assign_norm = nn.BatchNorm1d(groups * clusters)
        self.centres = nn.Parameter(torch.randn(self.group_size, clusters) / self.group_size ** 0.5)

    def assignment(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, T, G, K]`` for the expanded frames ``x``: each group's softmax over the clusters (summing to one)
        times its sigmoid attention, zero for padded frames."""
        b, t, _ = x.shape
        attention = torch.sigmoid(self.group_attention(x)) * mask.unsqueeze(-1)
        logits = masked_batch_norm(self.assign_norm, self.assign(x), mask).view(b, t, self.groups, self.clusters)
        return torch.softmax(logits, dim=-1) * attention.unsqueeze(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D]``, ``mask [B, T]`` -> the intra-normalised aggregate ``[B, K * expansion * D / groups]``."""
        x = self.expand(x)
        b, t, _ = x.shape
        weights = self.assignment(x, mask).reshape(b, t * self.groups, self.clusters)
        return vlad(weights, x.reshape(b, t * self.groups, self.group_size), self.centres).flatten(1)


class NeXtVLAD(nn.Module):
    """NeXtVLAD pooling -> batch norm -> hidden layer -> SE gating -> classifier."""

    def __init__(self, feature_dim: int, cfg: NeXtVLADConfig, num_classes: int):
        super().__init__()
        self.pool = NeXtVLADPool(feature_dim, cfg.clusters, cfg.groups, cfg.expansion)
        width = cfg.clusters * self.pool.group_size
        self.pool_norm = nn.BatchNorm1d(width)
        self.hidden = nn.Linear(width, cfg.hidden_dim, bias=False)
        self.hidden_norm = nn.BatchNorm1d(cfg.hidden_dim)
        self.gating = SEGating(cfg.hidden_dim, cfg.reduction)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.hidden_dim, num_classes)
        xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        mask = valid_mask(lengths.to(features.device), features.shape[1])
        pooled = self.pool_norm(self.pool(features, mask))
        hidden = self.gating(self.hidden_norm(self.hidden(self.dropout(pooled))))
        return self.classifier(hidden)


@register_model("nextvlad", NeXtVLADConfig, ranges={
    "clusters": (1, 4096, False, False), "groups": (1, 256, False, False), "expansion": (1, 16, False, False),
    "hidden_dim": (1, 8192, False, False), "reduction": (1, 1024, False, False), "dropout": (0.0, 1.0, False, True)},
    sizes={"cpu": {}, "published": {"clusters": 128, "groups": 8, "expansion": 2, "hidden_dim": 2048, "reduction": 8}})
def build(cfg: NeXtVLADConfig, feature_dim: int, num_classes: int) -> nn.Module:
    """NeXtVLAD + SE gating (YouTube-8M 2018, third place)."""
    return NeXtVLAD(feature_dim, cfg, num_classes)
