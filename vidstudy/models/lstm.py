"""``lstm``: YouTube-8M's starter LSTM (google/youtube-8m ``frame_level_models.py``, ``LstmModel``): stacked
unidirectional LSTM layers over the frames, the last layer's state at the video's last valid frame, a classifier.

The state is read at each video's own last frame, so the padding after it (which a forward LSTM reaches only
later) never enters; the starter's mixture-of-experts classifier becomes one softmax layer after dropout, as in
every family here. Published size (the starter's flags): 2 layers of 1,024 cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import xavier_init
from .registry import register_model


@dataclass
class LSTMConfig:
    """``num_layers`` stacked LSTM layers of ``hidden_dim`` cells, dropout between layers and before the classifier."""

    arch: str = "lstm"
    hidden_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.2


class FinalStateLSTM(nn.Module):
    """Stacked LSTM -> the state at the last valid frame -> classifier."""

    def __init__(self, feature_dim: int, hidden_dim: int, num_layers: int, dropout: float, num_classes: int):
        super().__init__()
        self.lstm = nn.LSTM(feature_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim, num_classes)
        xavier_init(self)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, T, D]`` (zero-padded), ``lengths [B]`` -> logits ``[B, C]``."""
        out = self.lstm(features)[0]
        last = (lengths.to(out.device).long() - 1).clamp(min=0)[:, None, None].expand(-1, 1, out.shape[-1])
        return self.classifier(self.dropout(out.gather(1, last).squeeze(1)))


@register_model("lstm", LSTMConfig, ranges={"hidden_dim": (1, 8192, False, False), "num_layers": (1, 16, False, False),
                                            "dropout": (0.0, 1.0, False, True)},
                sizes={"cpu": {}, "published": {"hidden_dim": 1024, "num_layers": 2}})
def build(cfg: LSTMConfig, feature_dim: int, num_classes: int) -> nn.Module:
    """Stacked LSTM, final state (YouTube-8M starter)."""
    return FinalStateLSTM(feature_dim, cfg.hidden_dim, cfg.num_layers, cfg.dropout, num_classes)
