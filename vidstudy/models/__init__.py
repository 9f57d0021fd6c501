"""The models: a registry of families, the masked blocks they share, one module per family.

``registry`` (:func:`~vidstudy.models.registry.register_model`, :func:`~vidstudy.models.registry.build_model`,
:func:`~vidstudy.models.registry.list_models`), ``blocks`` (masked pooling, heads, gates and VLAD residuals), and
the families, each module with its config: ``temporal`` (the study's BiLSTM + attention), ``meanpool``, ``dbof``
and ``lstm`` (YouTube-8M's starter models), ``netvlad`` (+ Context Gating), ``nextvlad`` (+ SE gating) and
``transformer``. Importing the package registers them all, in the order of :data:`FAMILIES`.
"""

import importlib

#: The families in the order they register (and :func:`~vidstudy.models.registry.list_models` lists them): the
#: study's model first.
FAMILIES = ("temporal", "meanpool", "dbof", "lstm", "netvlad", "nextvlad", "transformer")
for _name in FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")

from . import blocks, dbof, lstm, meanpool, netvlad, nextvlad, registry, temporal, transformer  # noqa: E402
from .meanpool import MeanPoolClassifier  # noqa: E402
from .registry import Family, build_model, check_model_config, count_parameters, family, list_models, register_model  # noqa: E402
from .temporal import TemporalClassifier, TemporalConfig, bidirectional_lstm  # noqa: E402

__all__ = ["FAMILIES", "Family", "MeanPoolClassifier", "TemporalClassifier", "TemporalConfig", "bidirectional_lstm", "blocks",
           "build_model", "check_model_config", "count_parameters", "dbof", "family", "list_models", "lstm", "meanpool",
           "netvlad", "nextvlad", "register_model", "registry", "temporal", "transformer"]
