"""The model registry: a family is a config dataclass, its ranges and rules, and a builder, under one name.

A family registers itself with :func:`register_model` in its own module::

    @dataclass
    class ToyConfig:
        arch: str = "toy"
        width: int = 8

    @register_model("toy", ToyConfig, ranges={"width": (1, 64, False, False)})
    def build_toy(cfg, feature_dim, num_classes):
        return Toy(feature_dim, cfg.width, num_classes)

after which (in the ``vidstudy`` command: once the module is named in the ``VIDSTUDY_MODELS`` environment variable,
:data:`~vidstudy.models.registry.PLUGINS_ENV`) ``--set model.arch=toy --set model.width=16`` trains it,
:func:`build_model` builds it from a run's config and checkpoint, and nothing else changes. A family's config holds
its own fields (``arch`` first); a run's ``model`` section is one family's config. Sizes other than the config's
defaults (the published one, the chapters' choices) are named in ``sizes``; ``legacy`` lists keys of older configs
the family accepts and drops.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..errors import ParameterError

Bounds = tuple[float, float, bool, bool]  # (low, high, low is open, high is open), as config.RANGES


@dataclass(frozen=True)
class Family:
    """A registered model family (see the module docstring)."""

    arch: str
    config: type
    build: Callable
    ranges: dict[str, Bounds] = field(default_factory=dict)
    check: Callable | None = None
    sizes: dict[str, dict] = field(default_factory=dict)
    legacy: tuple[str, ...] = ()
    summary: str = ""

    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.config))

    def sized(self, size: str | None = None, **values):
        """A fresh config of this family: its defaults, then the named size's fields, then ``values``."""
        if size is not None and size not in self.sizes:
            raise ParameterError(f"model size must be one of {', '.join(self.sizes) or 'none'} for {self.arch}, "
                                 f"got {size!r}.")
        return self.config(**{**(self.sizes[size] if size else {}), **values})


_FAMILIES: dict[str, Family] = {}
_PLUGINS_LOADED: set[str] = set()

#: The environment variable naming modules (comma-separated, importable) that register families of their own; they are
#: imported the first time a family is looked up, so the ``vidstudy`` command and its workers know them.
PLUGINS_ENV = "VIDSTUDY_MODELS"


def load_plugins() -> None:
    """Import the modules :data:`PLUGINS_ENV` names (once each); one that cannot be imported is a
    :class:`~vidstudy.errors.ParameterError` naming it."""
    for name in (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",")):
        if name and name not in _PLUGINS_LOADED:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ParameterError(f"{PLUGINS_ENV} names the module {name!r}, which cannot be imported: {exc}.") from None
            _PLUGINS_LOADED.add(name)


def register_model(arch: str, config: type, *, ranges: dict[str, Bounds] | None = None, check: Callable | None = None,
                   sizes: dict[str, dict] | None = None, legacy: tuple[str, ...] = (), summary: str = ""):
    """Register the builder it decorates (``build(cfg, feature_dim, num_classes) -> nn.Module``) as family ``arch``
    with config dataclass ``config`` (whose ``arch`` field defaults to ``arch``), the valid range of each numeric
    field, a ``check(cfg)`` for fields that depend on each other, named ``sizes`` and ``legacy`` keys."""
    names = [f.name for f in dataclasses.fields(config)]
    if not names or names[0] != "arch" or config().arch != arch:
        raise ValueError(f"{config.__name__}: a family's config starts with the field arch = {arch!r}.")
    unknown = set(ranges or {}) - set(names)
    if unknown:
        raise ValueError(f"{config.__name__}: ranges name no field of it: {sorted(unknown)}.")

    def decorate(build: Callable) -> Callable:
        _FAMILIES[arch] = Family(arch, config, build, dict(ranges or {}), check, dict(sizes or {}), tuple(legacy),
                                 summary or (build.__doc__ or "").strip().split("\n")[0])
        return build

    return decorate


def list_models() -> list[str]:
    """The registered families' names, in the order they registered."""
    load_plugins()
    return list(_FAMILIES)


def family(arch: str, where: str = "model.arch") -> Family:
    """The family ``arch``, or a :class:`~vidstudy.errors.ParameterError` naming ``where`` and the known ones."""
    if arch not in _FAMILIES:
        load_plugins()
    if arch not in _FAMILIES:
        raise ParameterError(f"{where} must be one of {', '.join(_FAMILIES)}, got {arch!r}.")
    return _FAMILIES[arch]


def check_model_config(cfg) -> None:
    """Refuse a family config whose fields, each in its range, do not make a network together (the family's rule)."""
    fam = family(cfg.arch)
    if fam.check is not None:
        fam.check(cfg)


def build_model(cfg, feature_dim: int, num_classes: int) -> nn.Module:
    """The network a family config (a run's ``model`` section) describes."""
    return family(cfg.arch).build(cfg, feature_dim, num_classes)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
