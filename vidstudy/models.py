"""The temporal classifier (the original architecture, padding masked) and a mean-pool baseline.

:class:`TemporalClassifier` follows the original study: a linear input projection
with LayerNorm, ReLU and dropout; a bidirectional LSTM packed by length; multi-head
self-attention with a residual connection and LayerNorm; attention pooling (a small
MLP scores each step, softmax over time, weighted sum); an MLP head; Xavier-uniform
initialisation of every Linear layer with zero biases.

On the CPU the BiLSTM runs each direction as its own unpacked LSTM (oneDNN's kernel), the backward one over
each video reversed within its own length, and zeroes the padded steps: the same function as the packed
BiLSTM (:func:`bidirectional_lstm`), two to four times faster there. Other devices take the packed path.

Unlike the original, padding is masked (``masked=True``): the attention gets a
``key_padding_mask`` and the pooling softmax gives padded steps zero weight, so a
video's logits do not depend on how long the other videos in its batch are.
``masked=False`` keeps the original's behaviour for the recipe comparison.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .errors import ParameterError


def _mlp_head(in_dim: int, dims: tuple[int, ...], dropouts: tuple[float, ...], num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for dim, p in zip(dims, dropouts):
        layers += [nn.Linear(in_dim, dim), nn.LayerNorm(dim), nn.ReLU(), nn.Dropout(p)]
        in_dim = dim
    layers.append(nn.Linear(in_dim, num_classes))
    return nn.Sequential(*layers)


def _xavier_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def valid_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``[B, steps]`` bool, True where the step is a valid frame."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def _direction(lstm: nn.LSTM, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    """One direction of one layer of ``lstm`` over ``x [B, T, in]`` (unpacked, from zero states) -> ``[B, T, H]``."""
    weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    zeros = x.new_zeros(1, x.shape[0], lstm.hidden_size)
    return torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, lstm.training, False, True)[0]


def bidirectional_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``lstm`` (bidirectional, ``batch_first``) over the zero-padded ``x [B, T, in]`` of ``lengths [B]`` -> ``[B, T, 2H]``,
    zero at the padded steps: what packing, the LSTM and unpacking give.

    On the CPU each direction of each layer runs unpacked: the forward one over ``x`` as it is (padding at the end
    cannot reach a valid step), the backward one over each video reversed within its length, its output reversed
    back; dropout between layers as ``nn.LSTM`` applies it. Elsewhere the packed path.
    """
    steps = x.shape[1]
    if x.device.type != "cpu":
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=steps)
        return out
    valid = valid_mask(lengths, steps)
    t = torch.arange(steps)[None, :]
    reverse = torch.where(valid, lengths.long()[:, None] - 1 - t, t)[:, :, None]  # an involution: it also reverses back
    out = x
    for layer in range(lstm.num_layers):
        if layer and lstm.dropout and lstm.training:
            out = F.dropout(out, lstm.dropout, training=True)
        forward = _direction(lstm, out, layer, "")
        backward = _direction(lstm, out.gather(1, reverse.expand_as(out)), layer, "_reverse")
        out = torch.cat([forward, backward.gather(1, reverse.expand_as(backward))], dim=-1)
    return out * valid[:, :, None]


class TemporalClassifier(nn.Module):
    """Input projection -> BiLSTM over the valid steps -> masked self-attention -> attention pooling -> MLP head.

    ``dropout`` is the heavy dropout of the LSTM, the attention and the first head
    layers (0.4 in the original); the projection, the pooling and the last head layer
    use half of it (0.2 in the original).
    """

    def __init__(self, feature_dim: int, hidden_dim: int = 768, num_lstm_layers: int = 4, num_heads: int = 12,
                 dropout: float = 0.4, num_classes: int = 4, head_dims: tuple[int, ...] = (768, 512, 256),
                 masked: bool = True):
        super().__init__()
        light = dropout / 2
        width = 2 * hidden_dim
        self.masked = masked
        self.input_proj = nn.Sequential(nn.Linear(feature_dim, hidden_dim), nn.LayerNorm(hidden_dim), nn.ReLU(),
                                        nn.Dropout(light))
        self.lstm = nn.LSTM(hidden_dim, hidden_dim, num_layers=num_lstm_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_lstm_layers > 1 else 0.0)
        self.attention = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(width)
        self.pool_score = nn.Sequential(nn.Linear(width, hidden_dim), nn.LayerNorm(hidden_dim), nn.Tanh(), nn.Dropout(light),
                                        nn.Linear(hidden_dim, 1))
        head_dropouts = tuple([dropout] * (len(head_dims) - 1) + [light])[: len(head_dims)]
        self.head = _mlp_head(width, tuple(head_dims), head_dropouts, num_classes)
        _xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        steps = features.shape[1]
        x = self.input_proj(features)
        out = bidirectional_lstm(self.lstm, x, lengths)
        valid = valid_mask(lengths.to(out.device), steps)
        attn, _ = self.attention(out, out, out, key_padding_mask=~valid if self.masked else None, need_weights=False)
        out = self.attention_norm(out + attn)
        scores = self.pool_score(out).squeeze(-1)
        if self.masked:
            scores = scores.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        pooled = torch.bmm(weights.unsqueeze(1), out).squeeze(1)
        return self.head(pooled)


class MeanPoolClassifier(nn.Module):
    """Baseline: the mean of the valid frames through a small MLP (cannot see frame order)."""

    def __init__(self, feature_dim: int, hidden_dim: int = 128, dropout: float = 0.2, num_classes: int = 4):
        super().__init__()
        self.head = _mlp_head(feature_dim, (hidden_dim,), (dropout,), num_classes)
        _xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = valid_mask(lengths.to(features.device), features.shape[1]).unsqueeze(-1)
        mean = (features * valid).sum(1) / lengths.to(features.dtype).clamp(min=1).unsqueeze(-1)
        return self.head(mean)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_model_config(cfg) -> None:
    """Refuse a :class:`~vidstudy.config.ModelConfig` whose fields, each in its range, do not make a network together:
    the temporal model's attention splits its width ``2 * hidden_dim`` into ``num_heads`` heads."""
    if cfg.arch == "temporal" and (2 * cfg.hidden_dim) % cfg.num_heads:
        raise ParameterError(f"model.num_heads ({cfg.num_heads}) must divide the attention width 2 * hidden_dim "
                             f"({2 * cfg.hidden_dim}).")


def build_model(cfg, feature_dim: int, num_classes: int) -> nn.Module:
    """The network a :class:`~vidstudy.config.ModelConfig` describes."""
    if cfg.arch == "meanpool":
        return MeanPoolClassifier(feature_dim, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout, num_classes=num_classes)
    return TemporalClassifier(feature_dim, hidden_dim=cfg.hidden_dim, num_lstm_layers=cfg.num_lstm_layers,
                              num_heads=cfg.num_heads, dropout=cfg.dropout, num_classes=num_classes,
                              head_dims=tuple(cfg.head_dims), masked=cfg.masked)
