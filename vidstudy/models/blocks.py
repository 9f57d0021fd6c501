"""Masked building blocks the families share: a padded batch ``x [B, T, D]`` with ``mask [B, T]`` (True where a
step is a valid frame) in, a video's result independent of the other videos' padding out.

Sequence blocks take ``(x, mask)``: :func:`masked_mean`, :func:`masked_max`, :func:`attention_pool` and its module
:class:`MaskedAttentionPool`, :func:`masked_batch_norm` (statistics over valid frames only). Vector blocks act on
one vector a video: :func:`mlp_head`, :class:`ContextGating` (Miech et al. 2017: ``sigmoid(W x + b) * x``) and
:class:`SEGating` (squeeze-and-excitation gating, NeXtVLAD's). :func:`vlad` aggregates soft-assigned residuals
(NetVLAD, NeXtVLAD); :func:`xavier_init` is the study's initialisation.
"""

from __future__ import annotations

import torch
from torch import nn


def valid_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``[B, steps]`` bool, True where the step is a valid frame."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every Linear layer of ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def mlp_head(in_dim: int, dims: tuple[int, ...], dropouts: tuple[float, ...], num_classes: int) -> nn.Sequential:
    """Linear -> LayerNorm -> ReLU -> Dropout per width in ``dims``, then a Linear to ``num_classes`` logits."""
    layers: list[nn.Module] = []
    for dim, p in zip(dims, dropouts):
        layers += [nn.Linear(in_dim, dim), nn.LayerNorm(dim), nn.ReLU(), nn.Dropout(p)]
        in_dim = dim
    layers.append(nn.Linear(in_dim, num_classes))
    return nn.Sequential(*layers)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of each video's valid steps, ``[B, D]`` (zero for a video without any)."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The maximum over each video's valid steps, ``[B, D]``."""
    return x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min).amax(1)


def attention_pool(scores: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``softmax`` over time of ``scores [B, T]`` (padded steps weight zero unless ``mask`` is None) applied to
    ``x [B, T, D]`` -> ``[B, D]``."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=1)
    return torch.bmm(weights.unsqueeze(1).to(x.dtype), x).squeeze(1)


class MaskedAttentionPool(nn.Module):
    """Attention pooling: a small MLP scores each step, softmax over the valid steps, weighted sum."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.Tanh(), nn.Dropout(dropout),
                                   nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D]``, ``mask [B, T]`` -> ``[B, D]``."""
        return attention_pool(self.score(x).squeeze(-1), x, mask)


def masked_batch_norm(norm: nn.BatchNorm1d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``norm`` over the channels of ``x [B, T, C]`` with statistics of the valid steps only; padded steps are zero."""
    out = x.new_zeros(x.shape)
    out[mask] = norm(x[mask]).to(x.dtype)
    return out


class ContextGating(nn.Module):
    """Context Gating (Miech, Laptev, Sivic 2017): ``y = sigmoid(W x + b) * x``, optionally batch-normalising the
    gates as their code does."""

    def __init__(self, dim: int, batch_norm: bool = True):
        super().__init__()
        self.gate = nn.Linear(dim, dim, bias=not batch_norm)
        self.norm = nn.BatchNorm1d(dim) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D]`` -> gated ``[B, D]``."""
        return x * torch.sigmoid(self.norm(self.gate(x)))


class SEGating(nn.Module):
    """Squeeze-and-excitation gating (NeXtVLAD's context gating): ``y = x * sigmoid(W2 relu(BN(W1 x)))`` with a
    bottleneck of ``dim // reduction``."""

    def __init__(self, dim: int, reduction: int = 8):
        super().__init__()
        inner = max(1, dim // reduction)
        self.squeeze = nn.Sequential(nn.Linear(dim, inner, bias=False), nn.BatchNorm1d(inner), nn.ReLU())
        self.excite = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D]`` -> gated ``[B, D]``."""
        return x * torch.sigmoid(self.excite(self.squeeze(x)))


def vlad(assignment: torch.Tensor, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """The VLAD residuals of ``x [B, N, D]`` under soft ``assignment [B, N, K]`` (zero rows for padded steps) to
    ``centres [D, K]``: ``a^T x - (sum a) c`` per cluster, each cluster's residual L2-normalised (intra-normalisation;
    L2, as the original code, not L1) -> ``[B, K, D]``."""
    residuals = torch.bmm(assignment.transpose(1, 2), x) - assignment.sum(1).unsqueeze(-1) * centres.t().unsqueeze(0)
    return nn.functional.normalize(residuals, p=2, dim=2)
