"""``vidstudy extract``: from a folder of videos to the study's feature files.

Input layout, as the original study's: ``VIDEO_DIR/{split}/{Category}/{Subcategory}/*``
with ``.mp4``, ``.avi``, ``.mkv`` or ``.webm`` files (other files are ignored).
Category ids are the positions of the sorted category folder names over all
splits; each video's subcategory and id (``Category/Subcategory/name``) are
recorded in the file.

Per video: frames are chosen and decoded (:mod:`vidstudy.extraction.video`), turned into
features by a backbone (:mod:`vidstudy.extraction.backbone`; EfficientNet-Lite0 by default)
in batches, and combined over the time-aligned scales of :func:`vidstudy.multiscale.multiscale`
unless ``multiscale=False``. Each split becomes ``OUT_DIR/{split}_features_multiscale.h5``
through :func:`vidstudy.features.write_feature_file`.

Long jobs: each video's frame features are saved under ``OUT_DIR/.partial/{split}/``
as soon as they are computed, so a run that is interrupted resumes where it
stopped (a video whose content changed meanwhile is extracted again); the split's
file is written atomically once every video is done and the partial folder is then
removed. A split whose file records the same settings and the same videos (ids and
content, :func:`split_inputs`) is not redone. Bad videos (unreadable, empty,
fewer than 3 decodable frames) are skipped with a one-line warning and listed,
with the reason, in ``OUT_DIR/extract_report.json``.

Where the pixels come from: an optional ``VIDEO_DIR/sources.json``,
``{split: {video id: source}}`` (for example ``"ale:pong"``), names the source of every
video of the splits it lists; the split files then hold a ``sources`` string dataset
(``vidstudy realclips`` writes one). A video it does not name is an error naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..atomic import atomic_path, read_json, write_json
from ..device import resolve_device
from ..errors import ParameterError, VidstudyError
from ..executor import LocalExecutor
from ..features import feature_file_name, write_feature_file
from ..fingerprint import difference, file_digest, fingerprint, input_key, plain
from ..multiscale import DEFAULT_SCALES, multiscale_length, pad_sequences
from ..multiscale import multiscale as combine_scales
from ..profiling import timed
from .backbone import LITE0_INPUT_SIZE, LITE0_NAME, lite0_backbone
from .video import VIDEO_EXTENSIONS, Sampling, read_frames_or_reason

PARTIAL_DIR = ".partial"
REPORT_NAME = "extract_report.json"


@dataclass(frozen=True)
class VideoItem:
    """One video of the input tree."""

    path: Path
    category: str
    subcategory: str
    video_id: str
    source: str | None = None


DEFAULT_BATCH = 32  # frames per backbone call
MAX_BATCH = 65536


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS)


def scan_videos(video_dir: str | os.PathLike, splits: Sequence[str] | None = None,
                out_dir: str | os.PathLike | None = None) -> tuple[dict[str, list[VideoItem]], dict[str, int]]:
    """The videos of each split and the category mapping ``{name: id}`` (sorted names).

    ``splits`` defaults to every split folder in ``video_dir`` except ``out_dir``
    (features may be written inside the video folder). A missing folder,
    an empty split folder or an empty category folder raises :class:`ParameterError`
    naming it. Videos directly in a category folder get the subcategory ``""``.
    """
    root = Path(video_dir)
    if not root.is_dir():
        raise ParameterError(f"{root}: video folder {'is a file, not a folder' if root.exists() else 'does not exist'}.")
    out = Path(out_dir).resolve() if out_dir is not None else None
    split_dirs = [root / s for s in splits] if splits else [d for d in _visible_dirs(root) if d.resolve() != out]
    if not split_dirs:
        raise ParameterError(f"{root}: has no split folders (expected {root}/{{split}}/{{Category}}/{{Subcategory}}/videos).")
    found: dict[str, list[VideoItem]] = {}
    for sdir in split_dirs:
        if not sdir.is_dir():
            raise ParameterError(f"{sdir}: split folder does not exist.")
        cat_dirs = _visible_dirs(sdir)
        if not cat_dirs:
            raise ParameterError(f"{sdir}: split folder is empty (expected one folder per category).")
        items = []
        for cdir in cat_dirs:
            cat_items = [VideoItem(p, cdir.name, "", f"{cdir.name}/{p.stem}") for p in _video_files(cdir)]
            for sub in _visible_dirs(cdir):
                cat_items += [VideoItem(p, cdir.name, sub.name, f"{cdir.name}/{sub.name}/{p.stem}") for p in _video_files(sub)]
            if not cat_items:
                raise ParameterError(f"{cdir}: category folder has no video files ({', '.join(VIDEO_EXTENSIONS)}).")
            items += cat_items
        ids = [it.video_id for it in items]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ParameterError(f"{sdir}: two videos share the id {dup!r} (same name, different extensions).")
        found[sdir.name] = items
    found = _with_sources(root, found)
    categories = sorted({it.category for items in found.values() for it in items})
    return found, {name: i for i, name in enumerate(categories)}


SOURCES_FILE = "sources.json"


def _with_sources(root: Path, found: dict[str, list[VideoItem]]) -> dict[str, list[VideoItem]]:
    """``found`` with each video's source from ``root/sources.json`` (when there is one)."""
    path = root / SOURCES_FILE
    if not path.is_file():
        return found
    table = read_json(path, "each video's source: {split: {video id: source}}")
    out = {}
    for split, items in found.items():
        named = table.get(split)
        if named is None:
            out[split] = items
            continue
        if not isinstance(named, dict):
            raise ParameterError(f"{path}: split {split!r} must map video ids to sources.")
        missing = [it.video_id for it in items if not isinstance(named.get(it.video_id), str) or not named[it.video_id]]
        if missing:
            raise ParameterError(f"{path}: names no source for video {split}/{missing[0]} ({len(missing)} in all).")
        out[split] = [dataclasses.replace(it, source=named[it.video_id]) for it in items]
    return out


def split_inputs(items: Sequence[VideoItem], settings: dict) -> dict:
    """The fingerprint of a split file's inputs: every video's content (by id), its source when named, and the
    extraction settings."""
    sources = {it.video_id: it.source for it in items if it.source is not None}
    return fingerprint({it.video_id: it.path for it in items}, settings=settings, **({"sources": sources} if sources else {}))


def _key(item: VideoItem) -> str:
    """The partial file name of a video: its id and its content, so a video changed since is extracted again."""
    return hashlib.sha256(f"{item.video_id}\0{file_digest(item.path)}".encode()).hexdigest()[:24]


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"vidstudy: warning: {message}", file=sys.stderr)


def frame_features(backbone: Callable, frames: np.ndarray, batch_size: int) -> np.ndarray:
    """``[L, D]`` float32 features of ``[L, H, W, 3]`` frames, ``batch_size`` frames per backbone call; a backbone
    that returns another shape or non-finite values is refused in one sentence."""
    out = []
    name = getattr(backbone, "name", type(backbone).__name__)
    for start in range(0, len(frames), batch_size):
        try:
            feats = backbone(frames[start:start + batch_size])
            feats = feats.detach().cpu().numpy() if hasattr(feats, "detach") else np.asarray(feats)
            out.append(feats.astype(np.float32, copy=False))
        except Exception as exc:  # a user's backbone may fail in any way; say so in one line, naming it
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ParameterError(f"the backbone {name} failed on a batch of {len(frames[start:start + batch_size])} "
                                 f"frames ({type(exc).__name__}: {first}).") from None
    feats = np.concatenate(out)
    if feats.ndim != 2 or feats.shape[0] != len(frames):
        raise ParameterError(f"the backbone must map [B, H, W, 3] frames to [B, D] features; it returned shape "
                             f"{feats.shape} for {len(frames)} frames.")
    if not np.all(np.isfinite(feats)):
        raise ParameterError("the backbone returned non-finite features.")
    return feats


class Embedder:
    """The per-video step after decoding: ``(frames or None, skip reason)`` -> ``(features or None, reason, frames)``.

    Built where it runs (in this process, or in each actor of a Ray cluster); with ``backbone`` ``None`` it builds
    EfficientNet-Lite0 there, on ``device`` (``auto``: that machine's GPU when it has one).
    """

    def __init__(self, backbone: Callable | None, device: str, batch_size: int):
        if backbone is None:
            backbone = lite0_backbone(device=resolve_device(device, "device"))
        self.backbone, self.batch_size = backbone, batch_size

    def __call__(self, decoded: tuple) -> tuple:
        frames, reason = decoded
        if frames is None:
            return None, reason, 0
        return frame_features(self.backbone, frames, self.batch_size), None, len(frames)


class _SplitFeatures:
    """A split's ``[N, T, D]`` features, read from the per-video frame features a block of rows at a time.

    With ``scales`` each video is combined over them (:func:`vidstudy.multiscale.multiscale`);
    with ``None`` its frame features are kept as they are. Only the ``.npy`` headers
    are read up front, so a split larger than memory can be written.
    """

    def __init__(self, files: Sequence[Path], scales: Sequence[float] | None):
        self.files, self.scales = list(files), scales
        shapes = [np.load(f, mmap_mode="r", allow_pickle=False).shape for f in self.files]
        dims = {d for _, d in shapes}
        if len(dims) > 1:
            raise VidstudyError(f"{self.files[0].parent}: partial features of different widths {sorted(dims)}; "
                                f"remove the folder and extract again.")
        lengths = [n if scales is None else multiscale_length(n, scales) for n, _ in shapes]
        self.num_frames = np.array(lengths, np.int32)
        self.shape = (len(self.files), int(self.num_frames.max()), int(shapes[0][1]))
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, rows: slice) -> np.ndarray:
        seqs = [np.load(f, allow_pickle=False) for f in self.files[rows]]
        if self.scales is not None:
            seqs = [combine_scales(x, self.scales)[0] for x in seqs]
        return pad_sequences(seqs, self.shape[1])[0]


def _partial_done(partial: Path, key: str) -> bool:
    """Whether a video's partial result (features or skip note) is there and readable; a damaged one is
    removed, with a warning, so that the video is extracted again. Readable features win over a skip note."""
    npy, skip = partial / f"{key}.npy", partial / f"{key}.skip.json"
    if npy.exists() and _readable_features(npy):
        skip.unlink(missing_ok=True)
        return True
    for path, ok in ((npy, _readable_features), (skip, _readable_skip)):
        if path.exists():
            if ok(path):
                return True
            _warn(f"{path}: damaged partial result; extracting that video again.")
            path.unlink(missing_ok=True)
    return False


def _readable_features(path: Path) -> bool:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return arr.ndim == 2 and arr.shape[0] >= 1 and arr.shape[1] >= 1 and arr.dtype == np.float32


def _readable_skip(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8"))["reason"], str)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def extract_split(split: str, items: Sequence[VideoItem], mapping: dict[str, int], out_dir: Path, settings: dict, *,
                  inputs_key: str, make_embedder: Callable[[], Embedder], executor, progress: bool) -> dict:
    """Extract one split (resuming from ``OUT_DIR/.partial/{split}``); returns its report entry.

    ``inputs_key`` (:func:`split_inputs` of ``items`` and ``settings``) is recorded in the file. The videos still
    to do are decoded and embedded through ``executor`` (:mod:`vidstudy.executor`), ``make_embedder`` building
    the :class:`Embedder` where it runs.
    """
    partial = _partial_folder(out_dir / PARTIAL_DIR / split, split, settings)
    keys = {it.video_id: _key(it) for it in items}
    todo = [it for it in items if not _partial_done(partial, keys[it.video_id])]
    t0 = time.perf_counter()
    frames_done = _embed_videos(split, todo, keys, partial, settings, make_embedder, executor,
                                resumed=len(items) - len(todo), progress=progress)
    seconds = time.perf_counter() - t0
    kept, skipped = [], []
    for it in items:
        skip = partial / f"{keys[it.video_id]}.skip.json"
        if skip.exists():
            skipped.append({"video": str(it.path), "reason": json.loads(skip.read_text())["reason"]})
        else:
            kept.append(it)
    entry = {"file": None, "videos_found": len(items), "videos_written": len(kept), "resumed": len(items) - len(todo),
             "skipped": skipped, "frames_extracted": frames_done, "seconds": round(seconds, 3),
             "frames_per_s": round(frames_done / seconds, 2) if frames_done else None}
    if not kept:
        return entry
    path = _write_split(out_dir / feature_file_name(split), kept, [partial / f"{keys[it.video_id]}.npy" for it in kept],
                        mapping, settings, inputs_key)
    shutil.rmtree(partial)
    return {**entry, "file": str(path)}


def _partial_folder(partial: Path, split: str, settings: dict) -> Path:
    """The split's folder of per-video results, stamped with the settings they depend on; one made with other
    settings is started again."""
    partial_inputs = fingerprint(settings={k: settings[k] for k in ("backbone", "sampling")})
    stamp = partial / "settings.json"
    if partial.exists():
        try:
            recorded = json.loads(stamp.read_text())
        except (OSError, ValueError):
            recorded = None
        changed = difference(recorded, partial_inputs)
        if changed:
            _warn(f"{partial}: made with other settings ({changed}); starting split {split!r} again.")
            shutil.rmtree(partial)
    if not stamp.exists():
        write_json(stamp, partial_inputs)
    return partial


def _embed_videos(split: str, todo: Sequence[VideoItem], keys: dict, partial: Path, settings: dict,
                  make_embedder: Callable, executor, *, resumed: int, progress: bool) -> int:
    """Decode and embed ``todo``, saving each video's features (or skip note) in ``partial`` as it arrives;
    returns the number of frames embedded."""
    from tqdm import tqdm

    t0, frames_done = time.perf_counter(), 0
    bar = tqdm(total=resumed + len(todo), initial=resumed, unit="video", desc=f"extract {split}", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    decode = functools.partial(read_frames_or_reason, sampling=Sampling(**settings["sampling"]))
    results = executor.stream(decode, make_embedder, [str(it.path) for it in todo])
    try:
        for it, (feats, reason, count) in zip(todo, results):
            key = keys[it.video_id]
            if feats is None:
                _warn(f"{it.path}: skipped, {reason}.")
                write_json(partial / f"{key}.skip.json", {"path": str(it.path), "reason": reason})
            else:
                _save_array(partial / f"{key}.npy", feats)
                frames_done += count
            bar.update(1)
            bar.set_postfix(frames_per_s=f"{frames_done / max(time.perf_counter() - t0, 1e-9):.1f}")
    finally:
        results.close()
        bar.close()
    return frames_done


def _write_split(path: Path, kept: Sequence[VideoItem], files: Sequence[Path], mapping: dict[str, int],
                 settings: dict, inputs_key: str) -> Path:
    """The split file of the videos ``kept``, from their per-video frame features ``files``."""
    features = _SplitFeatures(files, settings["scales"] if settings["multiscale"] else None)
    return write_feature_file(
        path, features,
        labels=np.array([mapping[it.category] for it in kept], np.int64), num_frames=features.num_frames,
        category_mapping=mapping, multi_scale=settings["multiscale"],
        subcategories=[it.subcategory for it in kept], video_ids=[it.video_id for it in kept],
        sources=[it.source for it in kept] if kept[0].source is not None else None,
        provenance={"extraction": {**settings, "inputs_sha256": inputs_key}},
    )


def _up_to_date(path: Path, settings: dict, inputs_key: str) -> bool:
    """Whether the split file records these settings and this :func:`split_inputs` key."""
    import h5py

    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            recorded = json.loads(f.attrs.get("extraction", "null"))
    except (OSError, json.JSONDecodeError):
        return False
    return recorded == {**plain(settings), "inputs_sha256": inputs_key}


@timed("data")
def extract(
    video_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    backbone: Callable | None = None,
    sampling: Sampling = Sampling(),
    multiscale: bool = True,
    scales: Sequence[float] = DEFAULT_SCALES,
    splits: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    workers: int = 0,
    device: str = "cpu",
    progress: bool = True,
    executor=None,
) -> dict:
    """Extract every split of ``video_dir`` into ``out_dir``; returns the report (also written).

    ``backbone`` is any callable from ``uint8 [B, H, W, 3]`` RGB frames to ``[B, D]``
    features (default: :func:`vidstudy.extraction.backbone.lite0_backbone` on ``device``: ``auto``, ``cpu``,
    ``cuda`` or ``cuda:N``);
    frames are decoded at its ``input_size`` attribute when it has one, else at
    ``sampling.frame_size``. ``executor`` (:mod:`vidstudy.executor`) runs the decoding and the backbone:
    by default here, with ``workers`` processes decoding in parallel; a :class:`~vidstudy.executor.RayExecutor`
    decodes as Ray tasks and runs the backbone in a pool of actors (the default backbone is then built on each
    actor's own device). The files are the same either way.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ParameterError(f"batch_size (--batch-size) must lie in [1, {MAX_BATCH}], got {batch_size}.")
    executor = executor if executor is not None else LocalExecutor(workers)
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ParameterError(f"{out_dir}: output folder is a file, not a folder.")
    found, mapping = scan_videos(video_dir, splits, out_dir)
    if backbone is None and executor.shares_memory:  # built once here; on a cluster, in each actor
        backbone = lite0_backbone(device=resolve_device(device, "device"))
    settings = _settings(backbone, sampling, multiscale, scales, mapping)
    make_embedder = functools.partial(Embedder, backbone, device, batch_size)
    out_dir = Path(out_dir)
    report_path = out_dir / REPORT_NAME
    old = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report = {"video_dir": str(Path(video_dir)), "settings": settings, "splits": {}}
    for split, items in found.items():
        target = out_dir / feature_file_name(split)
        inputs_key = input_key(split_inputs(items, settings))
        if _up_to_date(target, settings, inputs_key) and split in old.get("splits", {}):
            report["splits"][split] = {**old["splits"][split], "up_to_date": True}
            continue
        entry = extract_split(split, items, mapping, out_dir, settings, inputs_key=inputs_key,
                              make_embedder=make_embedder, executor=executor, progress=progress)
        report["splits"][split] = entry
        write_json(report_path, report)
        if entry["file"] is None:
            raise VidstudyError(f"{Path(video_dir) / split}: none of its {len(items)} videos could be used; "
                                f"the reasons are in {report_path}.")
    write_json(report_path, report)
    partial_root = out_dir / PARTIAL_DIR
    if partial_root.is_dir() and not any(partial_root.iterdir()):
        partial_root.rmdir()
    return report


def _settings(backbone: Callable | None, sampling: Sampling, multiscale: bool, scales: Sequence[float],
              mapping: dict[str, int]) -> dict:
    """What a split file's features depend on besides the videos (``backbone`` ``None``: EfficientNet-Lite0)."""
    name = LITE0_NAME if backbone is None else str(getattr(backbone, "name", type(backbone).__name__))
    size = LITE0_INPUT_SIZE if backbone is None else getattr(backbone, "input_size", None)
    if size is not None and size != sampling.frame_size:
        sampling = Sampling(**{**asdict(sampling), "frame_size": int(size)})
    return {"backbone": name, "sampling": asdict(sampling), "multiscale": bool(multiscale),
            "scales": [float(s) for s in scales], "category_mapping": mapping}
