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
from .executor import max_workers
from .models import check_model_config, family, list_models
from .models.temporal import TemporalConfig

SCHEDULES = ("warm_restarts", "warmup_cosine")
BALANCES = ("sampler", "alpha", "both", "none")
MONITORS = ("val_acc", "val_macro_f1", "val_f1")
SAMPLINGS = ("class", "subcategory")
PRECISIONS = ("fp32", "bf16")


#: The study's model's config (:class:`vidstudy.models.temporal.TemporalConfig`), the default ``model`` section. A run's
#: ``model`` section is the config of one family of :mod:`vidstudy.models`, chosen by its ``arch`` field.
ModelConfig = TemporalConfig


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
    precision: str = "fp32"  # "fp32" (TF32 products allowed on CUDA) or "bf16" autocast


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
        config.model = model_section(d.get("model", {}), f"{where}: section 'model'")
        config.train = _section(TrainConfig, d.get("train", {}), f"{where}: section 'train'")
        for key, value in _section(cls, top, f"{where}:", nested=False).items():
            setattr(config, key, value)
        return config

    def validate(self) -> "RunConfig":
        """Check every field: its range (:data:`RANGES`), its choices and the fields that depend on each other.
        Raises :class:`~vidstudy.errors.ParameterError` naming the first bad field."""
        m, t = self.model, self.train
        for key, bounds in {**RANGES, **{f"model.{k}": v for k, v in family(m.arch).ranges.items()}}.items():
            _check_range(key, _get(self, key), bounds)
        checks = [
            (self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}"),
            (t.schedule in SCHEDULES, f"train.schedule must be one of {', '.join(SCHEDULES)}, got {t.schedule!r}"),
            (t.balance in BALANCES, f"train.balance must be one of {', '.join(BALANCES)}, got {t.balance!r}"),
            (t.monitor in MONITORS, f"train.monitor must be one of {', '.join(MONITORS)}, got {t.monitor!r}"),
            (t.sampling in SAMPLINGS, f"train.sampling must be one of {', '.join(SAMPLINGS)}, got {t.sampling!r}"),
            (t.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}"),
            (len(t.weight_clip) == 2 and t.weight_clip[0] <= t.weight_clip[1],
             f"train.weight_clip must be two numbers LOW,HIGH with LOW <= HIGH, got {t.weight_clip}"),
            (t.min_lr <= t.lr, f"train.min_lr ({t.min_lr}) must not exceed train.lr ({t.lr})"),
            (t.num_workers <= max_workers(), f"train.num_workers must lie in [0, {max_workers()}] (this machine's CPUs), "
                                             f"got {t.num_workers}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ParameterError(message + ".")
        check_model_config(m)
        return self


#: The valid range of every numeric config field outside ``model``: ``(low, high, low is open, high is open)``; for
#: a tuple field, of each item. A value outside it (NaN and infinities included) is refused before anything is
#: written. The ``model`` fields' ranges are their family's (:func:`vidstudy.config.model_ranges`). The README's "Valid values"
#: tables list the same ranges.
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "members": (1, 1000, False, False),
    "seed_base": (0, 2**31 - 1, False, False),
    "train.epochs": (1, 100_000, False, False),
    "train.batch_size": (1, 65536, False, False),
    "train.lr": (0.0, 10.0, True, False),
    "train.weight_decay": (0.0, 10.0, False, False),
    "train.warmup_epochs": (0, 100_000, False, False),
    "train.restart_t0": (1, 10**9, False, False),
    "train.restart_t_mult": (1, 100, False, False),
    "train.min_lr": (0.0, 10.0, False, False),
    "train.grad_clip": (0.0, 1e6, True, False),
    "train.patience": (1, 100_000, False, False),
    "train.weight_clip": (0.0, 1e6, True, False),
    "train.focal_gamma": (0.0, 100.0, False, False),
    "train.label_smoothing": (0.0, 1.0, False, True),
    "train.num_workers": (0, 1024, False, False),
    "train.class_boost": (0.0, 1e6, True, False),
}


def model_ranges() -> dict[str, dict]:
    """``{"model.FIELD": {"range": bounds, "families": [arch, ...]}}`` over every registered family; a field two
    families share has one range."""
    out: dict[str, dict] = {}
    for arch in list_models():
        for name, bounds in family(arch).ranges.items():
            entry = out.setdefault(f"model.{name}", {"range": bounds, "families": []})
            if entry["range"] != bounds:
                raise ValueError(f"model.{name}: families {entry['families']} and {arch} give it different ranges.")
            entry["families"].append(arch)
    return out


def model_section(values, where: str = "model"):
    """The config of the family ``values["arch"]`` names (``temporal`` when absent) from a ``model`` section;
    keys the family keeps only for older configs are dropped."""
    if not isinstance(values, dict):
        raise ParameterError(f"{where} must be a JSON object, got {type(values).__name__}.")
    arch = values.get("arch", "temporal")
    fam = family(arch if isinstance(arch, str) else repr(arch), f"{where}: key 'arch'")
    return _section(fam.config, {k: v for k, v in values.items() if k not in fam.legacy}, where)


def _get(config, key: str):
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _number(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


def _interval(low, high, low_open, high_open) -> str:
    """``[low, high]`` with round brackets for open ends."""
    return f"{'(' if low_open else '['}{_number(low)}, {_number(high)}{')' if high_open else ']'}"


def _check_range(key: str, value, bounds) -> None:
    low, high, low_open, high_open = bounds
    for item in value if isinstance(value, tuple) else (value,):
        above = item > low if low_open else item >= low
        below = item < high if high_open else item <= high
        if not (above and below):  # NaN fails both
            what = "hold numbers in" if isinstance(value, tuple) else "lie in"
            shown = ",".join(_number(v) for v in value) if isinstance(value, tuple) else _number(value)
            raise ParameterError(f"{key} must {what} {_interval(*bounds)}, got {shown}.")


def coerce(typ, value, *, text: bool = False):
    """``value`` as ``typ`` (int, float, str, bool or tuple[X, ...]), or raise ValueError: the one conversion of
    config values, for JSON and YAML values (types must match; an int is a float) and, with ``text``, for
    command-line text (``64``, ``3e-4``, ``true``, ``64,32``)."""
    if text:
        value = _parse(typ, value)
    if typing.get_origin(typ) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError
        item = typing.get_args(typ)[0]
        return tuple(coerce(item, v) for v in value)
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ is bool and isinstance(value, bool) or typ in (int, str) and isinstance(value, typ) and not isinstance(value, bool):
        return value
    raise ValueError


def _parse(typ, text: str):
    """Command-line text as the plain value :func:`coerce` then checks."""
    if typing.get_origin(typ) is tuple:
        item = typing.get_args(typ)[0]
        return [_parse(item, p.strip()) for p in text.strip("()[] ").split(",") if p.strip()]
    if typ is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError
    return typ(text) if typ in (int, float) else text


def _section(cls, values, where: str, nested: bool = True):
    """Check the fields of one config section; returns the dataclass (or, with ``nested=False``, the typed values)."""
    if not isinstance(values, dict):
        raise ParameterError(f"{where} must be a JSON object, got {type(values).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(f.default_factory() if f.default_factory
                                                                                    is not dataclasses.MISSING else None)}
    typed = typed_values(hints, values, fields,
                         unknown=lambda keys: f"{where} has unknown keys {keys}; known: {', '.join(sorted(fields))}.",
                         wrong=lambda key, name, value: f"{where} key {key!r} must be {name}, got {json.dumps(value)}.")
    return cls(**typed) if nested else typed


def typed_values(hints: dict, values: dict, known, *, unknown, wrong) -> dict:
    """``values`` (``{name: value}``) coerced to the types ``hints`` gives each (:func:`coerce`); a name outside
    ``known`` raises :class:`~vidstudy.errors.ParameterError` with ``unknown(names)``, a value of the wrong type with
    ``wrong(name, type name, value)``. The config's sections and the chapters' parameters are read by it."""
    extra = sorted(set(values) - set(known))
    if extra:
        raise ParameterError(unknown(extra))
    typed = {}
    for key, value in values.items():
        try:
            typed[key] = coerce(hints[key], value)
        except ValueError:
            raise ParameterError(wrong(key, getattr(hints[key], "__name__", str(hints[key])), value)) from None
    return typed


PRESETS = {
    "paper": lambda: RunConfig(preset="paper", members=5),
    "cpu": lambda: RunConfig(
        preset="cpu",
        model=family("temporal").sized("cpu"),
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


def apply_overrides(config: RunConfig, overrides: typing.Iterable[str]) -> RunConfig:
    """Apply ``section.key=value`` strings (``members=5``, ``train.lr=3e-4``, ``model.head_dims=64,32``).

    ``model.arch=NAME`` is applied first, whatever its place: it makes the ``model`` section that family's config at
    its ``cpu`` size (its ``published`` size under the ``paper`` preset), and the other ``model.*`` keys then set
    that family's fields (``model.arch=nextvlad model.clusters=64``)."""
    overrides = list(overrides)
    arch_first = [o for o in overrides if o.split("=", 1)[0].strip() == "model.arch"]
    for item in arch_first:
        arch = item.split("=", 1)[1].strip()
        if arch != config.model.arch:
            config.model = family(arch).sized("published" if config.preset == "paper" else "cpu")
    for item in (o for o in overrides if o not in arch_first):
        if "=" not in item:
            raise ParameterError(f"override {item!r} must look like key=value.")
        key, text = item.split("=", 1)
        key = key.strip()
        if key == "preset":
            raise ParameterError(f"override {item!r}: the preset is chosen with --preset ({', '.join(PRESETS)}), "
                                 f"not set as a config key.")
        parts = key.split(".")
        target = config
        for part in parts[:-1]:
            target = getattr(target, part, None)
            if not dataclasses.is_dataclass(target):
                raise ParameterError(f"unknown config key {key!r}.")
        hints = typing.get_type_hints(type(target))
        name = parts[-1]
        if parts[0] == "model" and len(parts) == 2 and name not in hints:
            raise ParameterError(f"unknown config key {key!r}: the {config.model.arch} model has the fields "
                                 f"{', '.join(family(config.model.arch).fields()[1:])} (model.arch chooses the family: "
                                 f"{', '.join(list_models())}).")
        if name not in hints or dataclasses.is_dataclass(getattr(target, name)):
            known = sorted(_keys(config))
            raise ParameterError(f"unknown config key {key!r}; known keys: {', '.join(known)}.")
        try:
            value = coerce(hints[name], text.strip(), text=True)
        except ValueError:
            typ = getattr(hints[name], "__name__", str(hints[name]))
            raise ParameterError(f"config key {key} expects {typ}, got {text.strip()!r}.") from None
        setattr(target, name, value)
    return config


def _keys(obj, prefix=""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _keys(value, prefix + f.name + ".")
        else:
            yield prefix + f.name
