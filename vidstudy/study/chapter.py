"""The chapters' parameters (declared once, in :class:`Params`) and what a chapter sets up before it shows anything.

Every chapter takes the parameters of :class:`Params`; its parameters cell assigns each of them
(papermill's injection point, checked against :class:`Params` by a test) and the chapter then calls
``params = chapter.params(globals())``. :func:`setup` turns them into the data folder (the
simulated data of ``shape`` when ``data_dir`` is empty), the run's config
(:func:`vidstudy.config.build`) and the run folder of that data and config inside ``run_dir``
(:func:`run_folder`); :func:`ensure_run` trains it (on the executor :func:`executor` builds from
``ray``) or reuses it. The book runner takes its defaults from :class:`Params` and its smoke
overrides from :data:`SMOKE`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

from .. import executor as executors
from ..config import RunConfig, build, typed_values
from ..device import resolve_device
from ..errors import ParameterError
from ..features import SPLITS, feature_file_name, load_splits
from ..fingerprint import fingerprint, input_key
from ..simulate import ensure_simulated, shape_config
from ..train import train_ensemble


@dataclass(frozen=True)
class Params:
    """A chapter's parameters, with the defaults the book is built with."""

    data_dir: str = ""  # folder of the three split files; empty means the simulated default data
    run_dir: str = "runs/book"  # where the chapters' runs live (one folder per data and config)
    preset: str = "cpu"  # cpu or paper
    members: int = 4  # ensemble members, seeds from seed_base upwards
    epochs: int = 0  # maximum epochs per member; 0 keeps the preset's
    seed_base: int = 42  # seed of member 0
    smoke: bool = False  # tiny data and runs, for tests
    device: str = "auto"  # where the networks run: auto (a CUDA GPU when there is one), cpu, cuda or cuda:N
    shape: str = "default"  # shape of the simulated data when data_dir is empty: default, paper or smoke
    ray: str = "local"  # where members train: a Ray cluster ("local": on this machine), or "" (here, in turn)

    def validate(self) -> "Params":
        """Refuse, before anything runs, a value no chapter can use (one sentence naming the parameter)."""
        if self.epochs < 0:
            raise ParameterError(f"epochs must be 0 (the preset's) or more, got {self.epochs}.")
        self.config()
        resolve_device(self.device, "device")
        shape_config(self.shape)
        if self.ray and not executors.ray_available():
            raise ParameterError(f"ray is {self.ray!r} (members train on a Ray cluster) but Ray is not installed: "
                                 f"pip install 'vidstudy[ray]', or set ray: \"\" in a parameters file to train here.")
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def config(self) -> RunConfig:
        """The chapters' run config: the preset with ``members``, ``epochs`` (0: the preset's) and ``seed_base``."""
        return build(self.preset, members=self.members, epochs=self.epochs or None, seed_base=self.seed_base)


#: What ``vidstudy book --smoke`` changes: tiny runs, trained here (a Ray cluster per chapter would cost more
#: than its runs).
SMOKE = {"run_dir": "runs/book-smoke", "members": 2, "epochs": 2, "smoke": True, "ray": ""}


def defaults() -> dict:
    """``{name: default}`` of every chapter parameter."""
    return dataclasses.asdict(Params())


def make_params(values: dict, where: str = "chapter parameters") -> Params:
    """:class:`Params` from ``{name: value}`` (defaults for those missing), each value checked against its declared
    type (:func:`vidstudy.config.coerce`); ``where`` names the source in errors."""
    hints = typing.get_type_hints(Params)
    return Params(**typed_values(
        hints, values, hints,
        unknown=lambda keys: f"{where}: unknown chapter parameters {keys}; known: {', '.join(hints)}.",
        wrong=lambda key, name, value: f"{where}: parameter {key} must be {name}, got {value!r}."))


def params(namespace: dict) -> Params:
    """The chapter's parameters from its namespace (``globals()`` after the parameters cell), validated."""
    return make_params({name: namespace[name] for name in defaults()}).validate()


def data_folder(p: Params) -> Path:
    """The chapter's data folder: ``data_dir``, or the simulated data of ``shape`` under ``./data`` (written once)."""
    return Path(p.data_dir) if p.data_dir else default_data(Path("data"), p.smoke, p.shape)


def default_data(folder: Path, smoke: bool, shape: str = "default") -> Path:
    """The simulated data the book uses when no data folder is given: ``folder/{shape}-seed0`` (written once;
    ``smoke`` overrides ``shape``)."""
    shape = "smoke" if smoke else shape
    return ensure_simulated(Path(folder) / f"{shape}-seed0", seed=0, shape=shape)


def run_folder(run_dir: str | Path, data_dir: str | Path, config: RunConfig) -> Path:
    """The run folder of this data and config inside the chapters' ``run_dir``.

    ``RUN_DIR/{data folder name}-{key}``, where the key is taken from the content of
    the three split files and the config (all but ``members``: a run with fewer members
    reuses the first ones). Chapters on other data, or with another config, therefore
    train runs of their own, and going back reuses the earlier ones.
    """
    cfg = config.to_dict()
    cfg.pop("members")
    key = input_key(fingerprint({s: Path(data_dir) / feature_file_name(s) for s in SPLITS}, config=cfg))
    return Path(run_dir) / f"{Path(data_dir).resolve().name}-{key[:10]}"


def setup(p: Params) -> tuple[Path, RunConfig, Path]:
    """``(data folder, config, run folder)`` of a chapter's parameters."""
    data = data_folder(p)
    config = p.config()
    return data, config, run_folder(p.run_dir, data, config)


def executor(p: Params):
    """Where the chapter's members train (:mod:`vidstudy.executor`): the Ray cluster ``ray``, or here."""
    return executors.from_options(p.ray or None)


def close() -> None:
    """The chapter's last step: leave the Ray cluster its members trained on, if any (:func:`vidstudy.executor.shutdown`)."""
    executors.shutdown()


def ensure_run(config: RunConfig, data_dir, run_dir, p: Params) -> list[dict]:
    """Train the ensemble into ``run_dir`` on the parameters' device and executor, or reuse it when it is finished
    with the same config and data."""
    files = load_splits(data_dir, ("train", "val"))
    return train_ensemble(config, files["train"], files["val"], run_dir, resume=True, plots=False, quiet=True,
                          device=p.device, executor=executor(p))


def real_clips(p: Params, device: str | None = None):
    """``(folder, settings, frames per clip)`` of the book's real-features dataset, ``run_dir/realclips``, built by
    ``vidstudy realclips`` on every CPU (reused when unchanged); ``smoke`` halves the clips, 1 to 2 s long, 4 frames."""
    from ..executor import max_workers
    from ..extraction import realclips

    settings = realclips.Settings(scale=0.5, min_seconds=1.0, max_seconds=2.0) if p.smoke else realclips.Settings()
    frames = 4 if p.smoke else 12
    folder = Path(p.run_dir) / "realclips"
    realclips.build(folder, settings, frames=frames, device=device or p.device, progress=False, workers=max_workers())
    return folder, settings, frames
