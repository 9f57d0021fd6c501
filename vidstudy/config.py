"""Run configuration as data: dataclasses, presets, ``key=value`` overrides, JSON.

A run is described by one :class:`RunConfig`; it is written to
``RUN_DIR/config.json`` before training starts and shown in the book.

Presets
-------
``paper``
    The original study's model (about 65.3 M parameters at D=1280) and recipe:
    batch 48, AdamW lr 1e-3 / wd 5e-4, CosineAnnealingWarmRestarts(T_0=20, T_mult=2,
    eta_min=1e-6) stepped every batch, up to 150 epochs, patience 25 on val
    accuracy, class rebalancing by both the sampler and the focal alpha. For a GPU
    and real features.
``cpu`` (the default)
    The same architecture, small enough for the embedded data on two CPU cores,
    with this project's recipe: linear warm-up then cosine decay per epoch, early
    stopping on val macro-F1, and one rebalancer only (the class-balanced sampler,
    focal loss without alpha), so classes are not reweighted twice.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field

from .errors import ParameterError

ARCHS = ("temporal", "meanpool")
SCHEDULES = ("warm_restarts", "warmup_cosine")
BALANCES = ("sampler", "alpha", "both", "none")
MONITORS = ("val_acc", "val_macro_f1", "val_f1")
SAMPLINGS = ("class", "subcategory")


@dataclass
class ModelConfig:
    arch: str = "temporal"
    hidden_dim: int = 768
    num_lstm_layers: int = 4
    num_heads: int = 12
    dropout: float = 0.4
    head_dims: tuple[int, ...] = (768, 512, 256)
    masked: bool = True


@dataclass
class TrainConfig:
    epochs: int = 150
    batch_size: int = 48
    lr: float = 1e-3
    weight_decay: float = 5e-4
    schedule: str = "warm_restarts"
    warmup_epochs: int = 2
    restart_t0: int = 20  # batches (the original steps the warm-restart schedule per batch)
    restart_t_mult: int = 2
    min_lr: float = 1e-6
    grad_clip: float = 1.0
    patience: int = 25
    monitor: str = "val_acc"
    balance: str = "both"
    weight_clip: tuple[float, float] = (0.5, 10.0)
    focal_gamma: float = 2.0
    label_smoothing: float = 0.1
    augment: bool = True
    num_workers: int = 0
    sampling: str = "class"  # "class": balance classes; "subcategory": also balance subcategories within a class
    class_boost: tuple[float, ...] = ()  # per-class multipliers on the class weights (e.g. 3,1,1,1 for Animation)


@dataclass
class RunConfig:
    preset: str = "cpu"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    members: int = 4
    seed_base: int = 42

    def to_dict(self) -> dict:
        """Plain JSON values (tuples become lists), so a saved config compares equal to a fresh one."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d, where: str = "config") -> "RunConfig":
        """Rebuild a config from :meth:`to_dict` output; ``where`` names the source in errors.

        A key missing from ``d`` keeps its default (configs written by older versions
        open); an unknown key or a value of the wrong type raises :class:`~vidstudy.errors.ParameterError`.
        """
        if not isinstance(d, dict):
            raise ParameterError(f"{where}: a run config must be a JSON object, got {type(d).__name__}.")
        top = {k: v for k, v in d.items() if k not in ("model", "train")}
        config = cls()
        config.model = _section(ModelConfig, d.get("model", {}), f"{where}: section 'model'")
        config.train = _section(TrainConfig, d.get("train", {}), f"{where}: section 'train'")
        for key, value in _section(cls, top, f"{where}:", nested=False).items():
            setattr(config, key, value)
        return config

    def validate(self) -> "RunConfig":
        m, t = self.model, self.train
        checks = [
            (self.members >= 1, f"members must be at least 1, got {self.members}"),
            (m.arch in ARCHS, f"model.arch must be one of {', '.join(ARCHS)}, got {m.arch!r}"),
            (t.schedule in SCHEDULES, f"train.schedule must be one of {', '.join(SCHEDULES)}, got {t.schedule!r}"),
            (t.balance in BALANCES, f"train.balance must be one of {', '.join(BALANCES)}, got {t.balance!r}"),
            (t.monitor in MONITORS, f"train.monitor must be one of {', '.join(MONITORS)}, got {t.monitor!r}"),
            (t.epochs >= 1, f"train.epochs must be at least 1, got {t.epochs}"),
            (t.batch_size >= 1, f"train.batch_size must be at least 1, got {t.batch_size}"),
            (t.lr > 0, f"train.lr must be positive, got {t.lr}"),
            (t.patience >= 1, f"train.patience must be at least 1, got {t.patience}"),
            (t.num_workers >= 0, f"train.num_workers must be non-negative, got {t.num_workers}"),
            (t.sampling in SAMPLINGS, f"train.sampling must be one of {', '.join(SAMPLINGS)}, got {t.sampling!r}"),
            (all(b > 0 for b in t.class_boost), f"train.class_boost must hold positive numbers, got {t.class_boost}"),
            (m.hidden_dim >= 1 and m.num_lstm_layers >= 1, "model.hidden_dim and model.num_lstm_layers must be at least 1"),
            (m.num_heads >= 1 and (2 * m.hidden_dim) % m.num_heads == 0,
             f"model.num_heads ({m.num_heads}) must divide the attention width 2 * hidden_dim ({2 * m.hidden_dim})"),
            (0.0 <= m.dropout < 1.0, f"model.dropout must lie in [0, 1), got {m.dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ParameterError(message + ".")
        return self


def _typed(typ, value):
    """``value`` as ``typ`` (int, float, str, bool or tuple[X, ...]), or raise ValueError."""
    if typing.get_origin(typ) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError
        item = typing.get_args(typ)[0]
        return tuple(_typed(item, v) for v in value)
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ is bool and isinstance(value, bool) or typ in (int, str) and isinstance(value, typ) and not isinstance(value, bool):
        return value
    raise ValueError


def _section(cls, values, where: str, nested: bool = True):
    """Check the fields of one config section; returns the dataclass (or, with ``nested=False``, the typed values)."""
    if not isinstance(values, dict):
        raise ParameterError(f"{where} must be a JSON object, got {type(values).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(f.default_factory() if f.default_factory
                                                                                    is not dataclasses.MISSING else None)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ParameterError(f"{where} has unknown keys {unknown}; known: {', '.join(sorted(fields))}.")
    typed = {}
    for key, value in values.items():
        try:
            typed[key] = _typed(hints[key], value)
        except ValueError:
            name = getattr(hints[key], "__name__", str(hints[key]))
            raise ParameterError(f"{where} key {key!r} must be {name}, got {json.dumps(value)}.") from None
    return cls(**typed) if nested else typed


PRESETS = {
    "paper": lambda: RunConfig(preset="paper", members=5),
    "cpu": lambda: RunConfig(
        preset="cpu",
        model=ModelConfig(hidden_dim=64, num_lstm_layers=1, num_heads=4, dropout=0.3, head_dims=(64, 32)),
        train=TrainConfig(epochs=10, batch_size=32, lr=2e-3, weight_decay=1e-4, schedule="warmup_cosine",
                          warmup_epochs=1, patience=5, monitor="val_macro_f1", balance="sampler"),
        members=4,
    ),
}


def preset(name: str) -> RunConfig:
    """A fresh copy of a named preset."""
    if name not in PRESETS:
        raise ParameterError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}.")
    return PRESETS[name]()


def build(preset_name: str = "cpu", *, members: int | None = None, epochs: int | None = None,
          seed_base: int | None = None, workers: int | None = None, overrides: typing.Iterable[str] = ()) -> RunConfig:
    """The one way a config is made from a preset and the usual knobs (``None`` keeps the preset's), then
    ``key=value`` overrides; validated. The CLI, the chapters and the recipe study all use it."""
    knobs = {"members": members, "train.epochs": epochs, "seed_base": seed_base, "train.num_workers": workers}
    items = list(overrides) + [f"{k}={v}" for k, v in knobs.items() if v is not None]
    return apply_overrides(preset(preset_name), items).validate()


def _convert(key: str, text: str, typ):
    origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if origin is tuple:
            args = typing.get_args(typ)
            item = args[0]
            parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
            return tuple(item(p.strip()) for p in parts)
        return typ(text)
    except ValueError:
        name = getattr(typ, "__name__", str(typ))
        raise ParameterError(f"config key {key} expects {name}, got {text!r}.") from None


def apply_overrides(config: RunConfig, overrides: typing.Iterable[str]) -> RunConfig:
    """Apply ``section.key=value`` strings (``members=5``, ``train.lr=3e-4``, ``model.head_dims=64,32``)."""
    for item in overrides:
        if "=" not in item:
            raise ParameterError(f"override {item!r} must look like key=value.")
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        target = config
        for part in parts[:-1]:
            target = getattr(target, part, None)
            if not dataclasses.is_dataclass(target):
                raise ParameterError(f"unknown config key {key!r}.")
        hints = typing.get_type_hints(type(target))
        name = parts[-1]
        if name not in hints or dataclasses.is_dataclass(getattr(target, name)):
            known = sorted(_keys(config))
            raise ParameterError(f"unknown config key {key!r}; known keys: {', '.join(known)}.")
        setattr(target, name, _convert(key, text.strip(), hints[name]))
    return config


def _keys(obj, prefix=""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _keys(value, prefix + f.name + ".")
        else:
            yield prefix + f.name
