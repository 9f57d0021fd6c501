"""``transformer``: a small masked Transformer encoder with attention pooling, the modern reference.

A linear projection with LayerNorm, sinusoidal positions, ``num_layers`` pre-norm encoder layers whose
self-attention ignores padded frames (``src_key_padding_mask``), a final LayerNorm, attention pooling over the
valid frames (:class:`~vidstudy.models.blocks.MaskedAttentionPool`), dropout and a linear classifier. There is
no single published size for this family; ``published`` is a common base width (512, 4 layers, 8 heads, feed-forward
2,048). Rule: ``num_heads`` divides ``hidden_dim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ParameterError
from .blocks import MaskedAttentionPool, valid_mask, xavier_init
from .registry import register_model


@dataclass
class TransformerConfig:
    """Model width, encoder layers, heads, feed-forward width, dropout."""

    arch: str = "transformer"
    hidden_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    ff_dim: int = 128
    dropout: float = 0.1


def sinusoids(steps: int, dim: int, device=None) -> torch.Tensor:
    """``[steps, dim]`` sinusoidal position encodings (Vaswani et al. 2017)."""
    position = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(steps, dim, device=device)
    out[:, 0::2] = torch.sin(position * rate)
    out[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return out


class MaskedTransformer(nn.Module):
    """Projection + positions -> masked Transformer encoder -> attention pooling -> classifier."""

    def __init__(self, feature_dim: int, cfg: TransformerConfig, num_classes: int):
        super().__init__()
        width = cfg.hidden_dim
        self.input_proj = nn.Sequential(nn.Linear(feature_dim, width), nn.LayerNorm(width))
        layer = nn.TransformerEncoderLayer(width, cfg.num_heads, cfg.ff_dim, cfg.dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.pool = MaskedAttentionPool(width, max(1, width // 2), cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(width, num_classes)
        xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        steps = features.shape[1]
        mask = valid_mask(lengths.to(features.device), steps)
        x = self.input_proj(features) + sinusoids(steps, self.classifier.in_features, features.device)
        x = self.norm(self.encoder(x, src_key_padding_mask=~mask))
        return self.classifier(self.dropout(self.pool(x, mask)))


def check(cfg: TransformerConfig) -> None:
    """The attention splits ``hidden_dim`` into ``num_heads`` heads."""
    if cfg.hidden_dim % cfg.num_heads:
        raise ParameterError(f"model.num_heads ({cfg.num_heads}) must divide model.hidden_dim ({cfg.hidden_dim}).")


@register_model("transformer", TransformerConfig, check=check, ranges={
    "hidden_dim": (1, 8192, False, False), "num_layers": (1, 16, False, False), "num_heads": (1, 256, False, False),
    "ff_dim": (1, 65536, False, False), "dropout": (0.0, 1.0, False, True)},
    sizes={"cpu": {}, "published": {"hidden_dim": 512, "num_layers": 4, "num_heads": 8, "ff_dim": 2048}})
def build(cfg: TransformerConfig, feature_dim: int, num_classes: int) -> nn.Module:
    """Masked Transformer encoder + attention pooling (the modern reference)."""
    return MaskedTransformer(feature_dim, cfg, num_classes)
