"""What a chapter sets up before it shows anything: its data folder, its run's config and its run folder.

Every chapter takes the same parameters (``data_dir``, ``run_dir``, ``preset``,
``members``, ``epochs``, ``seed_base``, ``smoke``, ``device``, ``shape``); :func:`setup`
turns them into the data folder (the simulated data of ``shape`` when ``data_dir`` is
empty), the run's config (:func:`vidstudy.config.build`) and the run folder of that data
and config inside ``run_dir`` (:func:`run_folder`). :func:`ensure_run` trains it on
``device`` or reuses it.
"""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig, build
from ..features import SPLITS, feature_file_name, load_splits
from ..fingerprint import fingerprint, input_key
from ..train import train_ensemble


def data_folder(data_dir: str, smoke: bool, shape: str = "default") -> Path:
    """The chapter's data folder: ``data_dir``, or the simulated data of ``shape`` under ``./data`` (written once)."""
    from .book import default_data

    return Path(data_dir) if data_dir else default_data(Path("data"), smoke, shape)


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


def setup(data_dir: str, run_dir: str, preset: str, members: int, epochs: int, seed_base: int,
          smoke: bool, device: str = "auto", shape: str = "default", ray: str = "") -> tuple[Path, RunConfig, Path]:
    """``(data folder, config, run folder)`` from a chapter's parameters (``epochs`` 0 keeps the preset's); a
    ``device`` this machine does not have is refused here, before anything runs. ``ray`` (where members train,
    :func:`ensure_run`) does not change what is trained."""
    from ..device import resolve_device

    resolve_device(device, "device")
    data = data_folder(data_dir, smoke, shape)
    config = build(preset, members=members, epochs=epochs or None, seed_base=seed_base)
    return data, config, run_folder(run_dir, data, config)


def ensure_run(config: RunConfig, data_dir, run_dir, device: str = "auto", ray: str = "") -> list[dict]:
    """Train the ensemble into ``run_dir`` on ``device`` (its members side by side on the Ray cluster ``ray``, when
    given: :mod:`vidstudy.cluster`), or reuse it when it is finished with the same config and data."""
    files = load_splits(data_dir, ("train", "val"))
    return train_ensemble(config, files["train"], files["val"], run_dir, resume=True, plots=False, quiet=True,
                          device=device, ray=ray or None)
