"""``temporal``: the original study's architecture, padding masked (the study's model).

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

Its config (:class:`TemporalConfig`, also ``vidstudy.config.ModelConfig``) defaults to the original's size
(about 65.3 M parameters at D=1280); ``cpu`` is the size of the ``cpu`` preset. Rules: ``head_dims`` names at least
one width, and ``num_heads`` divides the attention width ``2 * hidden_dim``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ParameterError
from .blocks import attention_pool, mlp_head, valid_mask, xavier_init
from .registry import register_model


@dataclass
class TemporalConfig:
    """The study's model: BiLSTM width ``hidden_dim`` (the attention's is twice it), its layers, attention heads,
    heavy dropout (half of it elsewhere), head widths, and whether padding is masked."""

    arch: str = "temporal"
    hidden_dim: int = 768
    num_lstm_layers: int = 4
    num_heads: int = 12
    dropout: float = 0.4
    head_dims: tuple[int, ...] = (768, 512, 256)
    masked: bool = True


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
        self.head = mlp_head(width, tuple(head_dims), head_dropouts, num_classes)
        xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        steps = features.shape[1]
        x = self.input_proj(features)
        out = bidirectional_lstm(self.lstm, x, lengths)
        valid = valid_mask(lengths.to(out.device), steps)
        attn, _ = self.attention(out, out, out, key_padding_mask=~valid if self.masked else None, need_weights=False)
        out = self.attention_norm(out + attn)
        pooled = attention_pool(self.pool_score(out).squeeze(-1), out, valid if self.masked else None)
        return self.head(pooled)


def check(cfg: TemporalConfig) -> None:
    """The head names at least one width; the attention splits its width ``2 * hidden_dim`` into ``num_heads`` heads."""
    if not cfg.head_dims:
        raise ParameterError("model.head_dims must name at least one layer width.")
    if (2 * cfg.hidden_dim) % cfg.num_heads:
        raise ParameterError(f"model.num_heads ({cfg.num_heads}) must divide the attention width 2 * hidden_dim "
                             f"({2 * cfg.hidden_dim}).")


@register_model("temporal", TemporalConfig, check=check, ranges={
    "hidden_dim": (1, 8192, False, False), "num_lstm_layers": (1, 16, False, False), "num_heads": (1, 256, False, False),
    "dropout": (0.0, 1.0, False, True), "head_dims": (1, 65536, False, False)},
    sizes={"cpu": {"hidden_dim": 64, "num_lstm_layers": 1, "num_heads": 4, "dropout": 0.3, "head_dims": (64, 32)},
           "published": {}})
def build(cfg: TemporalConfig, feature_dim: int, num_classes: int) -> nn.Module:
    """BiLSTM + self-attention + attention pooling (the original's model, padding masked)."""
    return TemporalClassifier(feature_dim, hidden_dim=cfg.hidden_dim, num_lstm_layers=cfg.num_lstm_layers,
                              num_heads=cfg.num_heads, dropout=cfg.dropout, num_classes=num_classes,
                              head_dims=tuple(cfg.head_dims), masked=cfg.masked)
