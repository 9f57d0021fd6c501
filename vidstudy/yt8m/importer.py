"""``vidstudy import-yt8m``: YouTube-8M's frame-level TFRecords to the study's three split files.

Each input file is one job (here, or a Ray task with ``--ray``): its records are read in order (both CRCs checked,
:mod:`~vidstudy.yt8m.tfrecord`), decoded (:mod:`~vidstudy.yt8m.example`), given a class by the mapping's
multi-label rule (:mod:`~vidstudy.yt8m.vocabulary`) and the kept videos' uint8 frames appended to that file's part
in ``OUT_DIR/.partial/``, written atomically and stamped with the file's identity and the settings, so an
interrupted import resumes by file. The parts are then merged, a block of videos at a time, into
``{train,val,test}_features_multiscale.h5`` in the quantized encoding (``vidstudy.features``): YouTube-8M's
``train*`` records make train; its ``validate*`` records are split into val and test, within each class, by the
order of ``sha256(f"{seed}:{video id}")`` (the first ``val_fraction`` of each class to val); its ``test*`` records
carry no labels and are refused. ``import_report.json`` records the inputs' fingerprint, and an import whose inputs
and settings are unchanged is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from ..atomic import atomic_path, write_json
from ..errors import ParameterError, VidstudyError
from ..features import SPLITS, STUDY_CATEGORIES, feature_file_name, write_feature_file
from ..fingerprint import difference, file_identity, fingerprint
from .example import MAX_FRAMES, QUANTIZATION, decode_video
from .tfrecord import RecordError, read_records
from .vocabulary import DROP_REASONS, Mapping, load_mapping

REPORT_NAME = "import_report.json"
PARTIAL = ".partial"
ROLES = {"train": "train", "validate": "validate"}  # YouTube-8M's file prefixes the import takes
FEATURES = {"rgb": 1024, "rgb+audio": 1152}
_BUFFER_BYTES = 32 * 1024**2


@dataclass(frozen=True)
class Settings:
    """What an import is made with (recorded; a change imports again)."""

    features: str = "rgb"
    val_fraction: float = 0.5
    seed: int = 0
    max_videos: int | None = None  # kept videos of each input file (its first ones); None: all
    skip_damaged: bool = False

    def __post_init__(self):
        if self.features not in FEATURES:
            raise ParameterError(f"features (--features) must be one of {', '.join(FEATURES)}, got {self.features!r}.")
        if not 0 < self.val_fraction < 1:
            raise ParameterError(f"val fraction (--val-fraction) must lie in (0, 1), got {self.val_fraction}.")
        if not 0 <= self.seed <= 2**31 - 1:
            raise ParameterError(f"seed (--seed) must lie in [0, {2**31 - 1}], got {self.seed}.")
        if self.max_videos is not None and self.max_videos < 1:
            raise ParameterError(f"max videos (--max-videos) must be at least 1, got {self.max_videos}.")


def input_files(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, str]]:
    """``(file, role)`` of every TFRecord the paths name (a folder: the files in it whose names start with
    ``train``, ``validate`` or ``test``), in name order; ``test*`` files and other names are refused in one line."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted(f for f in p.iterdir() if f.is_file() and f.name.startswith(("train", "validate", "test")))
            if not inside:
                raise ParameterError(f"{p}: folder holds no YouTube-8M TFRecords (train*, validate* files).")
            found += inside
        elif p.is_file():
            found.append(p)
        else:
            raise ParameterError(f"{p}: does not exist.")
    out = []
    for f in sorted(dict.fromkeys(found), key=lambda f: (f.name, str(f))):
        if f.name.startswith("test"):
            raise ParameterError(f"{f}: YouTube-8M's test records carry no labels, so they cannot be imported; "
                                 f"import its train* and validate* files.")
        role = next((r for prefix, r in ROLES.items() if f.name.startswith(prefix)), None)
        if role is None:
            raise ParameterError(f"{f}: a YouTube-8M file name starts with train or validate (which says its split).")
        out.append((f, role))
    return out


class _Part:
    """The kept videos of one input file, appended to an HDF5 part a buffer at a time."""

    def __init__(self, f: h5py.File, dim: int):
        self.f, self.buffer, self.size = f, [], 0
        self.frames = f.create_dataset("frames", (0, dim), np.uint8, maxshape=(None, dim), chunks=(MAX_FRAMES, dim))
        self.rows: dict[str, list] = {"num_frames": [], "labels": [], "video_ids": [], "subcategories": [],
                                      "source_labels": []}

    def add(self, frames: np.ndarray, label: int, video_id: str, subcategory: str, labels) -> None:
        self.buffer.append(frames)
        self.size += frames.nbytes
        for key, value in zip(self.rows, (len(frames), label, video_id, subcategory, " ".join(map(str, labels)))):
            self.rows[key].append(value)
        if self.size >= _BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            block = np.concatenate(self.buffer)
            start = self.frames.shape[0]
            self.frames.resize(start + len(block), axis=0)
            self.frames[start:] = block
        self.buffer, self.size = [], 0

    def close(self, counts: dict, stamp: dict) -> None:
        self.flush()
        self.f.create_dataset("num_frames", data=np.asarray(self.rows["num_frames"], np.int32))
        self.f.create_dataset("labels", data=np.asarray(self.rows["labels"], np.int64))
        for key in ("video_ids", "subcategories", "source_labels"):
            self.f.create_dataset(key, data=self.rows[key], dtype=h5py.string_dtype("utf-8"))
        self.f.attrs["counts"] = _json(counts)
        self.f.attrs["stamp"] = _json(stamp)


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def import_file(path: Path, role: str, identity: dict, mapping: Mapping, settings: Settings, part_path: Path) -> dict:
    """Import one TFRecord file into its part at ``part_path`` (reused when its stamp matches); its counts."""
    stamp = {"input": identity, "role": role, "mapping": mapping.as_json(), "settings": asdict(settings)}
    done = _read_part_counts(part_path, stamp)
    if done is not None:
        return done
    counts = {"file": str(path), "role": role, "records": 0, "kept": {c: 0 for c in STUDY_CATEGORIES},
              "dropped": {r: 0 for r in DROP_REASONS}, "damaged": []}
    part_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(part_path) as tmp, h5py.File(tmp, "w") as f:
        part = _Part(f, FEATURES[settings.features])
        for index, video in _videos(path, settings):
            counts["records"] = index + 1
            if isinstance(video, RecordError):
                counts["damaged"].append({"record": video.index, "reason": video.reason})
                continue
            _check_vocabulary(video.labels, mapping, path, index, video.video_id)
            label, why = mapping.assign(video.labels)
            if label is None:
                counts["dropped"][why] += 1
                continue
            part.add(video.frames, label, video.video_id, why, video.labels)
            counts["kept"][list(STUDY_CATEGORIES)[label]] += 1
            if settings.max_videos is not None and len(part.rows["labels"]) >= settings.max_videos:
                break
        part.close(counts, stamp)
    return counts


def _videos(path: Path, settings: Settings):
    """``(index, Video)`` of each record; with ``skip_damaged`` a damaged one is ``(index, RecordError)`` (a framing
    error ends the file: nothing after it can be found again)."""
    records = read_records(path, settings.skip_damaged)
    while True:
        try:
            index, data = next(records)
        except StopIteration:
            return
        except RecordError as exc:
            if not settings.skip_damaged:
                raise
            yield exc.index, exc
            return
        except OSError as exc:
            raise VidstudyError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
        if isinstance(data, RecordError):
            yield index, data
            continue
        try:
            yield index, decode_video(data, path, index, audio=settings.features == "rgb+audio")
        except RecordError as exc:
            if not settings.skip_damaged:
                raise
            yield index, exc


def _check_vocabulary(labels, mapping: Mapping, path: Path, index: int, video_id: str) -> None:
    bad = [label for label in labels if not 0 <= label < mapping.size]
    if bad:
        raise VidstudyError(f"{path}: record {index} (video {video_id}) has label {bad[0]}, outside the "
                            f"{mapping.vocabulary} vocabulary's ids 0..{mapping.size - 1}; is --vocabulary right?")


def _read_part_counts(part_path: Path, stamp: dict) -> dict | None:
    try:
        with h5py.File(part_path, "r") as f:
            if json.loads(f.attrs["stamp"]) == json.loads(_json(stamp)):
                return json.loads(f.attrs["counts"])
    except (OSError, KeyError, ValueError):
        pass
    return None


def split_of_validate(video_ids: Sequence[str], labels: np.ndarray, seed: int, val_fraction: float) -> np.ndarray:
    """For videos of YouTube-8M's validate files: ``True`` for val, ``False`` for test. Within each class the videos
    are ordered by ``sha256(f"{seed}:{video id}")`` and the first ``round(val_fraction * n)`` go to val."""
    to_val = np.zeros(len(video_ids), bool)
    keys = np.array([hashlib.sha256(f"{seed}:{v}".encode()).hexdigest() for v in video_ids])
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        ordered = rows[np.argsort(keys[rows], kind="stable")]
        to_val[ordered[:round(val_fraction * len(rows))]] = True
    return to_val


class _Rows:
    """The chosen videos of the parts as one uint8 ``[N, T, D]`` array, read a block of rows at a time (what
    :func:`~vidstudy.features.write_feature_file` takes). One part is open at a time, however many there are: the
    rows come part after part."""

    def __init__(self, parts: list[Path], rows: list[tuple[int, int]], starts: list[np.ndarray], t: int, d: int):
        self.parts, self.rows, self.starts = parts, rows, starts
        self.shape, self.dtype = (len(rows), t, d), np.dtype(np.uint8)
        self._open: tuple[int, h5py.File] | None = None

    def _frames(self, p: int, first: int, last: int) -> np.ndarray:
        if self._open is None or self._open[0] != p:
            self.close()
            self._open = (p, h5py.File(self.parts[p], "r"))
        return self._open[1]["frames"][first:last]

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def __getitem__(self, sl: slice) -> np.ndarray:
        chosen = self.rows[sl]
        out = np.zeros((len(chosen), *self.shape[1:]), np.uint8)
        for p in sorted({p for p, _ in chosen}):  # each part's frames for the block in one read
            mine = [(k, i) for k, (q, i) in enumerate(chosen) if q == p]
            first, last = self.starts[p][mine[0][1]], self.starts[p][mine[-1][1] + 1]
            frames = self._frames(p, first, last)
            for k, i in mine:
                a, b = self.starts[p][i] - first, self.starts[p][i + 1] - first
                out[k, :b - a] = frames[a:b]
        return out


def _columns(parts: list[Path]) -> tuple[dict[str, np.ndarray], int]:
    """Every part's per-video columns, concatenated, with each video's part and index; and the frames' width. The
    parts are opened one after another."""
    read: dict[str, list] = {key: [] for key in ("num_frames", "labels", "video_ids", "subcategories", "source_labels",
                                                 "where")}
    width = 0
    for k, path in enumerate(parts):
        with h5py.File(path, "r") as f:
            for key in ("num_frames", "labels"):
                read[key].append(f[key][()])
            for key in ("video_ids", "subcategories", "source_labels"):
                read[key] += [s.decode() if isinstance(s, bytes) else s for s in f[key][()]]
            read["where"] += [(k, i) for i in range(len(f["labels"]))]
            width = f["frames"].shape[1]
    cols = {key: np.concatenate(read[key]) for key in ("num_frames", "labels")}
    cols.update({key: np.array(read[key], dtype=object) for key in ("video_ids", "subcategories", "source_labels")})
    cols["where"] = np.array(read["where"], dtype=np.int64).reshape(-1, 2)
    return cols, width


def write_splits(parts: list[Path], roles: list[str], out_dir: Path, settings: Settings, provenance: dict) -> dict:
    """The three split files from the parts (their videos in input order); returns the videos per class of each
    split."""
    cols, width = _columns(parts)
    role = np.array([roles[k] for k, _ in cols["where"]])
    validate = np.flatnonzero(role == "validate")
    to_val = np.zeros(len(role), bool)
    to_val[validate] = split_of_validate(cols["video_ids"][validate], cols["labels"][validate], settings.seed,
                                         settings.val_fraction)
    split = np.where(role == "train", "train", np.where(to_val, "val", "test"))
    per_part = np.split(cols["num_frames"], np.cumsum(np.bincount(cols["where"][:, 0], minlength=len(parts)))[:-1])
    starts = [np.concatenate([[0], np.cumsum(n)]) for n in per_part]  # each part's videos' first frames
    names = list(STUDY_CATEGORIES)
    for s in SPLITS:
        if not (split == s).any():
            source = "train*" if s == "train" else "validate*"
            raise VidstudyError(f"no video of YouTube-8M's {source} files maps to a class, so the {s} split would be "
                                f"empty; import more files, or widen the mapping (--mapping).")
    counts = {}
    for s in SPLITS:
        rows = np.flatnonzero(split == s)
        nf = cols["num_frames"][rows]
        frames = _Rows(parts, [tuple(cols["where"][r]) for r in rows], starts, int(nf.max()), width)
        try:
            write_feature_file(out_dir / feature_file_name(s), frames, cols["labels"][rows], nf, STUDY_CATEGORIES,
                               multi_scale=False, subcategories=list(cols["subcategories"][rows]),
                               video_ids=list(cols["video_ids"][rows]), source_labels=list(cols["source_labels"][rows]),
                               provenance={"imported": provenance}, quantization=QUANTIZATION, compression_level=0)
        finally:
            frames.close()
        counts[s] = {c: int((cols["labels"][rows] == k).sum()) for k, c in enumerate(names)}
    return counts


def import_yt8m(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, vocabulary: str = "2018",
                mapping: str | os.PathLike | None = None, settings: Settings = Settings(), executor=None,
                progress: bool = True) -> dict:
    """Import YouTube-8M frame-level TFRecords (files or folders) into ``out_dir``; returns the import report."""
    from ..executor import LocalExecutor

    t0 = time.perf_counter()
    files = input_files(inputs)
    chosen = load_mapping(vocabulary, mapping)
    out_dir = Path(out_dir)
    inputs_fp = fingerprint({f"input{k}": f for k, (f, _) in enumerate(files)}, roles=[r for _, r in files],
                            mapping=chosen.as_json(), settings=asdict(settings))
    reused = _reusable(out_dir, inputs_fp)
    if reused is not None:
        return {**reused, "up_to_date": True}
    identities = [inputs_fp["files"][f"input{k}"] for k in range(len(files))]
    part_paths = [out_dir / PARTIAL / f"{ident['sha256'][:24]}-{f.name}.h5" for (f, _), ident in zip(files, identities)]
    jobs = [(f, role, ident, chosen, settings, p) for (f, role), ident, p in zip(files, identities, part_paths)]
    if executor is None or isinstance(executor, LocalExecutor):
        from tqdm import tqdm

        per_file = [import_file(*job) for job in tqdm(jobs, desc="import-yt8m", unit="file", disable=not progress)]
    else:  # one task per file
        per_file = executor.map(import_file, jobs)
    provenance = {"dataset": "YouTube-8M frame-level", "vocabulary": chosen.vocabulary, "mapping": chosen.source,
                  "features": settings.features, "seed": settings.seed, "val_fraction": settings.val_fraction}
    splits = write_splits(part_paths, [r for _, r in files], out_dir, settings, provenance)
    report = _report(inputs_fp, per_file, splits, chosen, settings, time.perf_counter() - t0, out_dir)
    write_json(out_dir / REPORT_NAME, report)
    shutil.rmtree(out_dir / PARTIAL, ignore_errors=True)
    return report


def _reusable(out_dir: Path, inputs_fp: dict) -> dict | None:
    try:
        report = json.loads((out_dir / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return None
    files = report.get("outputs", {})
    if difference(report.get("inputs"), inputs_fp) is not None or set(files) != set(SPLITS):
        return None
    current = {s: file_identity(out_dir / feature_file_name(s)) for s in SPLITS if (out_dir / feature_file_name(s)).is_file()}
    same = all(s in current and {k: current[s][k] for k in ("size", "sha256")} == {k: files[s][k] for k in ("size", "sha256")}
               for s in SPLITS)
    return report if same else None


def _report(inputs_fp: dict, per_file: list[dict], splits: dict, mapping: Mapping, settings: Settings, seconds: float,
            out_dir: Path) -> dict:
    kept = {c: sum(f["kept"][c] for f in per_file) for c in STUDY_CATEGORIES}
    return {"inputs": inputs_fp, "files": per_file, "records_read": sum(f["records"] for f in per_file),
            "kept_per_class": kept, "dropped_per_reason": {r: sum(f["dropped"][r] for f in per_file) for r in DROP_REASONS},
            "damaged": sum(len(f["damaged"]) for f in per_file), "splits": splits,
            "mapping": mapping.as_json(), "settings": asdict(settings), "seconds": round(seconds, 3),
            "outputs": {s: file_identity(out_dir / feature_file_name(s)) for s in SPLITS}}
