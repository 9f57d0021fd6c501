"""The simulated default dataset: per-frame CNN-like features with class-specific dynamics.

The study's YouTube videos cannot be redistributed, so the book runs by default on
a simulation of what a frozen ImageNet CNN produces for each frame. It is built to
have the properties the original study describes, and to make the question the
study asks (does reading frames in order help?) a real one.

Generative model
----------------
Each video lives in a small latent space (``latent_dim``, 16 by default):

1. **Subcategory prototypes.** Each class has a centre; each subcategory (named after
   YouTube-8M tags, at least four per class) a prototype around it
   (``subcategory_spread``). Animation is heterogeneous on purpose: its ``3d_cgi``
   prototype is pulled towards Gaming and its ``motion_graphics`` towards
   Flat_Content by ``animation_blend``, so appearance alone does not separate it.
2. **A video** gets a style offset around its prototype (``style_spread``) and a raw
   length (``full_length_fraction`` of videos have ``max_raw_frames``, the rest a
   uniform length from ``min_raw_frames``).
3. **Dynamics.** The latent trajectory is AR(1) around the video's anchor,
   ``z_t = a_t + rho (z_{t-1} - a_t) + s * noise``, with per-subcategory ``rho``
   (smoothness) and ``s`` (motion). The anchor ``a_t`` jumps at random times
   (``jump_rate``: slide changes, cuts), and ``hold`` > 1 repeats each state for
   several frames (stop-motion). Pairs that look alike in a single frame are given
   the same stationary spread ``s / sqrt(1 - rho^2)`` but different ``rho``: Gaming
   is fast and jittery, 3D CGI smooth; Flat_Content is static with rare jumps,
   motion graphics move continuously. Only the order of frames tells them apart.
4. **Class cues.** Gaming adds a heads-up display: a fixed latent direction present
   in every frame, scaled per subcategory and video (``hud_strength``).
   Natural_Content has strong per-frame texture noise (``texture_noise``).
5. **Frame features.** ``x_t = relu(z_t W + b + texture * eps_t)`` with one fixed
   random backbone ``W`` (``latent_dim -> feature_dim``) shared by all classes:
   non-negative and sparse, like pooled post-ReLU CNN outputs.
6. **Multi-scale.** Each video's raw frames go through
   :func:`vidstudy.multiscale.multiscale` (time-aligned, scales 1.0/0.85/1.15), so a
   ``max_raw_frames``-frame video ends up with ``int(1.15 * max_raw_frames)`` steps
   (64 -> 73, as in the original files), and ``num_frames`` records the true length.

The difficulty knobs are the fields of :class:`SimulationConfig` below
``feature_dim``; the two shapes are ``default`` (sized for the CPU book) and
``paper`` (the original's T=73, D=1280 and split sizes 2622/737/412, with the
original's validation and test class counts). The same seed gives byte-identical
arrays.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import ParameterError
from .features import SPLITS, STUDY_CATEGORIES, class_names, feature_file_name, write_feature_file
from .multiscale import DEFAULT_SCALES, multiscale_batch, multiscale_length
from .profiling import timed


@dataclass(frozen=True)
class Subcategory:
    """Temporal behaviour of one subcategory (see the module docstring)."""

    name: str
    rho: float  # AR(1) smoothness in 0..1
    motion: float  # innovation scale s
    weight: float = 1.0  # relative frequency within its class
    jump_rate: float = 0.0  # anchor jumps per frame
    hold: int = 1  # frames each state is held
    hud: float = 0.0  # HUD amplitude (times hud_strength)
    texture: float = 1.0  # per-frame texture noise (times texture_noise)
    towards: str | None = None  # class whose centre the prototype is pulled towards


def _stationary(spread: float, rho: float) -> float:
    """Innovation scale giving the stationary spread ``spread`` at smoothness ``rho``."""
    return spread * float(np.sqrt(1.0 - rho**2))


SUBCATEGORIES: dict[str, tuple[Subcategory, ...]] = {
    "Animation": (
        Subcategory("cartoon", rho=0.6, motion=_stationary(0.7, 0.6), jump_rate=0.03, texture=0.5),
        Subcategory("anime", rho=0.8, motion=_stationary(0.6, 0.8), jump_rate=0.05, hold=2, texture=0.5),
        Subcategory("3d_cgi", rho=0.95, motion=_stationary(0.8, 0.95), towards="Gaming", texture=0.8),
        Subcategory("stop_motion", rho=0.7, motion=_stationary(0.6, 0.7), hold=3, weight=0.5, texture=0.8),
        Subcategory("motion_graphics", rho=0.97, motion=_stationary(0.5, 0.97), towards="Flat_Content", texture=0.3),
    ),
    "Flat_Content": (
        Subcategory("slideshow", rho=0.5, motion=0.02, jump_rate=0.06, texture=0.3),
        Subcategory("screen_recording", rho=0.3, motion=0.08, jump_rate=0.03, texture=0.3),
        Subcategory("website", rho=0.9, motion=0.05, jump_rate=0.04, texture=0.3),
        Subcategory("chart_map", rho=0.5, motion=0.03, jump_rate=0.03, texture=0.3),
    ),
    "Gaming": (
        Subcategory("first_person_hud", rho=0.3, motion=_stationary(0.8, 0.3), hud=1.0),
        Subcategory("top_down_strategy", rho=0.5, motion=_stationary(0.5, 0.5), hud=0.8),
        Subcategory("blocky_sandbox", rho=0.4, motion=_stationary(0.6, 0.4), hud=0.6),
        Subcategory("sports_racing", rho=0.2, motion=_stationary(0.9, 0.2), hud=0.4),
    ),
    "Natural_Content": (
        Subcategory("wildlife", rho=0.9, motion=_stationary(0.6, 0.9), texture=1.6),
        Subcategory("landscape", rho=0.97, motion=_stationary(0.4, 0.97), texture=1.4),
        Subcategory("water", rho=0.8, motion=_stationary(0.6, 0.8), texture=2.0),
        Subcategory("street", rho=0.85, motion=_stationary(0.7, 0.85), jump_rate=0.01, texture=1.6),
    ),
}


@dataclass(frozen=True)
class SimulationConfig:
    """Sizes and difficulty knobs of the simulation (see the module docstring)."""

    shape: str = "default"
    split_sizes: Mapping[str, int] = field(default_factory=lambda: {"train": 2000, "val": 600, "test": 3000})
    # Per-class counts for a split; splits not listed draw train_class_fractions.
    fixed_class_counts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    train_class_fractions: tuple[float, ...] = (0.20, 0.26, 0.27, 0.27)
    max_raw_frames: int = 56
    min_raw_frames: int = 12
    full_length_fraction: float = 0.6
    feature_dim: int = 256
    # difficulty knobs
    latent_dim: int = 16
    class_separation: float = 0.2
    subcategory_spread: float = 0.4
    style_spread: float = 0.4
    animation_blend: float = 0.9
    hud_strength: float = 0.3
    texture_noise: float = 0.1
    jump_size: float = 0.9
    scales: tuple[float, ...] = DEFAULT_SCALES

    @property
    def max_frames(self) -> int:
        """T of the written files: the longest multi-scale length."""
        return multiscale_length(self.max_raw_frames, self.scales)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["split_sizes"] = dict(self.split_sizes)
        d["fixed_class_counts"] = {k: list(v) for k, v in self.fixed_class_counts.items()}
        return d


SHAPES: dict[str, SimulationConfig] = {
    # Validation and test are only predicted, never trained on, so they are cheap: the test split is sized
    # so that the paired 95 % CI of a macro-F1 change between two ensembles has a half-width of about one
    # point (chapter 6 measures it); validation is doubled from the first 300 for steadier fits on val.
    "default": SimulationConfig(
        shape="default",
        split_sizes={"train": 2000, "val": 600, "test": 3000},
        fixed_class_counts={"val": (150, 150, 150, 150), "test": (750, 750, 750, 750)},
    ),
    "paper": SimulationConfig(
        shape="paper",
        split_sizes={"train": 2622, "val": 737, "test": 412},
        fixed_class_counts={"val": (179, 187, 190, 181), "test": (97, 106, 105, 104)},
        max_raw_frames=64,
        min_raw_frames=16,
        feature_dim=1280,
    ),
    # Tiny data for smoke runs and tests: same generator, a few seconds end to end.
    "smoke": SimulationConfig(
        shape="smoke",
        split_sizes={"train": 160, "val": 60, "test": 60},
        fixed_class_counts={"val": (15, 15, 15, 15), "test": (15, 15, 15, 15)},
        max_raw_frames=20,
        min_raw_frames=6,
        feature_dim=32,
    ),
}


def shape_config(shape: str, **overrides) -> SimulationConfig:
    """The config of a named shape, with field overrides."""
    if shape not in SHAPES:
        raise ParameterError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}.")
    try:
        return dataclasses.replace(SHAPES[shape], **overrides)
    except TypeError as exc:
        raise ParameterError(f"unknown simulation parameter: {exc}.") from None


@dataclass
class World:
    """The seed-fixed parts shared by all splits: prototypes, HUD direction, backbone."""

    prototypes: dict[tuple[int, int], np.ndarray]
    hud_direction: np.ndarray
    backbone: np.ndarray
    bias: np.ndarray


def _make_world(cfg: SimulationConfig, rng: np.random.Generator) -> World:
    k = cfg.latent_dim
    names = class_names(STUDY_CATEGORIES)
    centres = {c: rng.standard_normal(k) * cfg.class_separation for c in names}
    prototypes = {}
    for ci, cname in enumerate(names):
        for si, sub in enumerate(SUBCATEGORIES[cname]):
            p = centres[cname] + rng.standard_normal(k) * cfg.subcategory_spread
            if sub.towards is not None:
                p = (1 - cfg.animation_blend) * p + cfg.animation_blend * centres[sub.towards]
            prototypes[(ci, si)] = p
    hud = rng.standard_normal(k)
    hud /= np.linalg.norm(hud)
    backbone = rng.standard_normal((k, cfg.feature_dim)) / np.sqrt(k)
    bias = rng.uniform(-0.6, 0.0, cfg.feature_dim)
    return World(prototypes, hud, backbone, bias)


def _class_counts(cfg: SimulationConfig, split: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if split in cfg.fixed_class_counts:
        counts = np.asarray(cfg.fixed_class_counts[split])
        if counts.sum() != n:
            raise ParameterError(f"fixed_class_counts[{split!r}] sums to {counts.sum()}, not the split size {n}.")
        return counts
    frac = np.asarray(cfg.train_class_fractions, float)
    counts = np.floor(frac / frac.sum() * n).astype(int)
    counts[np.argsort(-(frac / frac.sum() * n - counts))[: n - counts.sum()]] += 1
    return counts


def simulate_split(cfg: SimulationConfig, split: str, seed: int, world: World | None = None) -> dict:
    """Simulate one split; returns the arrays :func:`~vidstudy.features.write_feature_file` takes."""
    if world is None:
        world = _make_world(cfg, np.random.default_rng([seed, 0]))
    rng = np.random.default_rng([seed, 1 + SPLITS.index(split) if split in SPLITS else 99])
    names = class_names(STUDY_CATEGORIES)
    n = int(cfg.split_sizes[split])
    counts = _class_counts(cfg, split, n, rng)
    labels = np.repeat(np.arange(len(names)), counts)
    rng.shuffle(labels)
    subs = np.empty(n, np.int64)
    for ci, cname in enumerate(names):
        w = np.array([s.weight for s in SUBCATEGORIES[cname]], float)
        idx = np.flatnonzero(labels == ci)
        subs[idx] = rng.choice(len(w), size=idx.size, p=w / w.sum())
    spec = [SUBCATEGORIES[names[c]][s] for c, s in zip(labels, subs)]
    rho = np.array([s.rho for s in spec])[:, None]
    motion = np.array([s.motion for s in spec])[:, None]
    jump = np.array([s.jump_rate for s in spec])
    hold = np.array([s.hold for s in spec])
    texture = np.array([s.texture for s in spec]) * cfg.texture_noise

    L = cfg.max_raw_frames
    lengths = np.where(
        rng.random(n) < cfg.full_length_fraction, L, rng.integers(cfg.min_raw_frames, L + 1, size=n)
    )
    k = cfg.latent_dim
    anchor = np.stack([world.prototypes[(c, s)] for c, s in zip(labels, subs)])
    anchor = anchor + rng.standard_normal((n, k)) * cfg.style_spread
    hud = (np.array([s.hud for s in spec]) * cfg.hud_strength * rng.uniform(0.6, 1.4, n))[:, None] * world.hud_direction
    state = anchor + rng.standard_normal((n, k)) * motion / np.sqrt(1 - rho**2)
    z = np.empty((n, L, k))
    for t in range(L):
        jumps = rng.random(n) < jump
        anchor = anchor + jumps[:, None] * rng.standard_normal((n, k)) * cfg.jump_size
        new_state = anchor + rho * (state - anchor) + motion * rng.standard_normal((n, k))
        moving = (t % hold) == 0
        state = np.where(moving[:, None], new_state, state)
        z[:, t] = state + hud

    features = np.zeros((n, cfg.max_frames, cfg.feature_dim), np.float32)
    num_frames = np.empty(n, np.int32)
    for start in range(0, n, 256):
        sl = slice(start, min(n, start + 256))
        pre = z[sl] @ world.backbone + world.bias
        pre += texture[sl, None, None] * rng.standard_normal(pre.shape)
        raw = np.maximum(pre, 0.0).astype(np.float32)
        videos = [raw[i, : lengths[start + i]] for i in range(raw.shape[0])]
        features[sl], num_frames[sl] = multiscale_batch(videos, cfg.scales, max_frames=cfg.max_frames)
    return {
        "features": features,
        "labels": labels.astype(np.int64),
        "num_frames": num_frames,
        "subcategories": [SUBCATEGORIES[names[c]][s].name for c, s in zip(labels, subs)],
        "video_ids": [f"sim-{split}-{i:05d}" for i in range(n)],
    }


@timed("data")
def simulate(out_dir: str | Path, seed: int = 0, shape: str | SimulationConfig = "default") -> dict[str, Path]:
    """Write ``{split}_features_multiscale.h5`` for train, val and test into ``out_dir``.

    ``shape`` is the name of a shape (``default``, ``paper``, ``smoke``) or a :class:`SimulationConfig`.
    Returns the written paths by split.
    """
    cfg = shape if isinstance(shape, SimulationConfig) else shape_config(shape)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}.")
    world = _make_world(cfg, np.random.default_rng([seed, 0]))
    out_dir = Path(out_dir)
    paths = {}
    for split in SPLITS:
        arrays = simulate_split(cfg, split, seed, world)
        paths[split] = write_feature_file(out_dir / feature_file_name(split), category_mapping=STUDY_CATEGORIES, multi_scale=True,
                                          provenance={"simulation": {"seed": int(seed), **cfg.to_dict()}}, **arrays)
    return paths


def ensure_simulated(out_dir: str | Path, seed: int = 0, shape: str = "default") -> Path:
    """``out_dir`` holding the simulated data of ``shape`` and ``seed``: reused when all three split files record
    exactly these simulation settings, written (again) otherwise."""
    import h5py

    cfg = shape_config(shape)
    wanted = {"seed": int(seed), **cfg.to_dict()}
    out_dir = Path(out_dir)
    for split in SPLITS:
        path = out_dir / feature_file_name(split)
        try:
            with h5py.File(path, "r") as f:
                recorded = json.loads(f.attrs.get("simulation", "null"))
        except (OSError, ValueError):
            recorded = None
        if recorded != json.loads(json.dumps(wanted)):
            simulate(out_dir, seed=seed, shape=cfg)
            break
    return out_dir
