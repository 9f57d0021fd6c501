"""``dbof``: YouTube-8M's starter Deep Bag of Frames (google/youtube-8m ``frame_level_models.py``, ``DbofModel``).

Each valid frame (input batch norm) goes through a wide "cluster" layer with batch norm and ReLU6; the clusters
are max-pooled over the video's valid frames; a hidden layer with batch norm and ReLU6; dropout; a linear
classifier. Two departures, both for this study's single-label task: the starter's mixture-of-experts classifier
(sigmoid experts per label, for multi-label) becomes one softmax layer, as in every family here; and every valid
frame is used rather than a random sample of 30 (the sampler and the TTA views already vary the frames seen).
Batch norm over frames counts valid frames only, and the max never sees a padded one.
Published size (the starter's flags): 8,192 clusters, hidden 1,024.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import masked_batch_norm, masked_max, valid_mask, xavier_init
from .registry import register_model


@dataclass
class DBoFConfig:
    """Cluster-layer width ``cluster_size``, hidden width ``hidden_dim``, dropout before the classifier."""

    arch: str = "dbof"
    cluster_size: int = 256
    hidden_dim: int = 128
    dropout: float = 0.2


class DBoF(nn.Module):
    """Per-frame cluster layer -> max over valid frames -> hidden layer -> classifier."""

    def __init__(self, feature_dim: int, cluster_size: int, hidden_dim: int, dropout: float, num_classes: int):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(feature_dim)
        self.cluster = nn.Linear(feature_dim, cluster_size, bias=False)
        self.cluster_norm = nn.BatchNorm1d(cluster_size)
        self.hidden = nn.Linear(cluster_size, hidden_dim, bias=False)
        self.hidden_norm = nn.BatchNorm1d(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim, num_classes)
        xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        mask = valid_mask(lengths.to(features.device), features.shape[1])
        x = masked_batch_norm(self.input_norm, features, mask)
        clusters = F.relu6(masked_batch_norm(self.cluster_norm, self.cluster(x), mask))
        hidden = F.relu6(self.hidden_norm(self.hidden(masked_max(clusters, mask))))
        return self.classifier(self.dropout(hidden))


@register_model("dbof", DBoFConfig, ranges={"cluster_size": (1, 65536, False, False), "hidden_dim": (1, 8192, False, False),
                                            "dropout": (0.0, 1.0, False, True)},
                sizes={"cpu": {}, "published": {"cluster_size": 8192, "hidden_dim": 1024}})
def build(cfg: DBoFConfig, feature_dim: int, num_classes: int) -> nn.Module:
    """Deep Bag of Frames (YouTube-8M starter): cluster layer, max over frames, hidden layer."""
    return DBoF(feature_dim, cfg.cluster_size, cfg.hidden_dim, cfg.dropout, num_classes)
