"""The HDF5 feature-file format: read, validate, write; the category mapping.

One file per split, ``{split}_features_multiscale.h5``, in the original study's
schema:

========================  ===========================================================
``features``              float32 ``[N, T, D]``, zero-padded after ``num_frames[i]``
``labels``                int64 ``[N]``, category ids
``num_frames``            int32 ``[N]``, valid steps per video (``1 <= n <= T``)
``subcategories``         optional, one UTF-8 string per video (written by this project)
``video_ids``             optional, one UTF-8 string per video (written by this project)
``sources``               optional, one UTF-8 string per video: where its pixels come from (``ale:pong``)
``source_labels``         optional, one UTF-8 string per video: its labels in the dataset it was imported from
                          (YouTube-8M vocabulary ids, space-separated)
attributes                ``num_videos``, ``max_frames``, ``feature_dim``, ``multi_scale``,
                          ``category_mapping`` (JSON object ``{name: id}``)
========================  ===========================================================

**Quantized encoding**: ``features`` may instead be uint8 with a ``quantization`` attribute, the JSON object
``{"scale": s, "offset": o}``; every reader (in memory or lazily, video by video) turns a stored ``q`` into the
float32 ``q * s + o`` (computed in float32) inside the valid frames and 0 after them (:func:`dequantize`). YouTube-8M's
frame features are stored this way (``s = 4/255``, ``o = 4/512 - 2``), at a quarter of float32's size.

:class:`FeatureFile` opens and validates a file. Every problem raises
:class:`~vidstudy.errors.FeatureFileError` with one sentence naming the file and
the field. A file smaller than the memory budget is read into RAM once; a larger
one stays on disk and is read per video through HDF5's chunk cache, with the
handle opened lazily in each process (so DataLoader workers each get their own).
"""

from __future__ import annotations

import errno
import json
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import h5py
import numpy as np

from .atomic import atomic_path
from .errors import FeatureFileError, ParameterError

STUDY_CATEGORIES: dict[str, int] = {
    "Animation": 0,
    "Flat_Content": 1,
    "Gaming": 2,
    "Natural_Content": 3,
}
SPLITS: tuple[str, ...] = ("train", "val", "test")
PROVENANCE_KEYS: tuple[str, ...] = ("simulation", "extraction", "subset", "imported")
DEFAULT_MEMORY_BUDGET = 2 * 1024**3  # bytes of decoded float32 features held in RAM
_VALUE_CHECK_BLOCK = 64 * 1024**2  # bytes of features checked per block


#: The optional per-video string datasets, in the order they are written.
STRING_DATASETS = ("subcategories", "video_ids", "sources", "source_labels")

def feature_file_name(split: str) -> str:
    """The file name the study uses for ``split``."""
    return f"{split}_features_multiscale.h5"


def class_names(mapping: Mapping[str, int]) -> list[str]:
    """Category names ordered by id."""
    return [name for name, _ in sorted(mapping.items(), key=lambda kv: kv[1])]


def class_index(names: Sequence[str], name: str, role: str = "the study's focus class") -> int:
    """The id of class ``name`` in ``names`` (class names ordered by id): the one way the study finds a class.

    A dataset without it raises :class:`~vidstudy.errors.ParameterError` naming the classes it has,
    rather than silently taking another class's id.
    """
    names = list(names)
    if name not in names:
        raise ParameterError(f"this dataset has no {name} class ({role}); its classes are {', '.join(names)}.")
    return names.index(name)


def parse_category_mapping(raw, where: str) -> dict[str, int]:
    """Parse and check a ``category_mapping`` value (JSON text or a mapping).

    It must be a JSON object from distinct names to the ids ``0..C-1``, each once.
    """
    if isinstance(raw, (bytes, np.bytes_)):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FeatureFileError(f"{where}: attribute 'category_mapping' is not UTF-8 text.") from None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FeatureFileError(f"{where}: attribute 'category_mapping' is not valid JSON ({exc.msg}).") from None
    if not isinstance(raw, Mapping) or not raw:
        raise FeatureFileError(f"{where}: attribute 'category_mapping' must be a non-empty JSON object of name -> id.")
    ids = []
    for name, value in raw.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise FeatureFileError(f"{where}: attribute 'category_mapping' maps {name!r} to {value!r}, not to an integer id.")
        ids.append(int(value))
    if sorted(ids) != list(range(len(ids))):
        raise FeatureFileError(
            f"{where}: attribute 'category_mapping' must map its {len(ids)} names one-to-one onto 0..{len(ids) - 1}, "
            f"got ids {sorted(ids)}."
        )
    return {str(k): int(v) for k, v in raw.items()}


def check_arrays(where: str, features, labels: np.ndarray, num_frames: np.ndarray, mapping: Mapping[str, int],
                 extras: Mapping[str, Sequence] = (), quantized: bool = False) -> None:
    """Check the layout and the values of a feature set.

    ``features`` may be an h5py dataset (only its shape and dtype are read here);
    the finiteness of its valid frames is checked block by block by the caller. ``quantized``: ``features`` holds
    the quantized encoding's uint8 values.

    Raises :class:`FeatureFileError` naming ``where`` and the offending field.
    """
    feature_kind = ("u", "uint8 [N, T, D] (the quantized encoding)") if quantized else ("f", "floating point [N, T, D]")
    if quantized and np.dtype(features.dtype) != np.uint8:
        raise FeatureFileError(f"{where}: dataset 'features' has dtype {features.dtype}, expected {feature_kind[1]}.")
    for name, arr, rank, kinds, what in (
        ("features", features, 3, *feature_kind),
        ("labels", labels, 1, "iu", "integer [N]"),
        ("num_frames", num_frames, 1, "iu", "integer [N]"),
    ):
        if len(arr.shape) != rank:
            raise FeatureFileError(f"{where}: dataset '{name}' has rank {len(arr.shape)}, expected {what}.")
        if arr.dtype.kind not in kinds:
            raise FeatureFileError(f"{where}: dataset '{name}' has dtype {arr.dtype}, expected {what}.")
    n, t, d = features.shape
    if t < 1 or d < 1:
        raise FeatureFileError(f"{where}: dataset 'features' has shape [N, T, D] = [{n}, {t}, {d}]; T and D must be at least 1.")
    sizes = {"labels": labels.shape[0], "num_frames": num_frames.shape[0]}
    for k, v in dict(extras).items():
        if len(np.shape(v)) != 1:
            raise FeatureFileError(f"{where}: dataset '{k}' has rank {len(np.shape(v))}, expected strings [N].")
    sizes.update({k: np.shape(v)[0] for k, v in dict(extras).items()})
    for name, size in sizes.items():
        if size != n:
            raise FeatureFileError(f"{where}: dataset '{name}' has {size} entries but 'features' has {n} videos.")
    if n == 0:
        raise FeatureFileError(f"{where}: dataset 'features' holds no videos.")
    labels, nf = np.asarray(labels), np.asarray(num_frames)
    c = len(mapping)
    bad = np.flatnonzero((labels < 0) | (labels >= c))
    if bad.size:
        raise FeatureFileError(
            f"{where}: dataset 'labels' holds {labels[bad[0]]} at video {bad[0]}, outside the category mapping's ids 0..{c - 1}."
        )
    bad = np.flatnonzero((nf < 1) | (nf > t))
    if bad.size:
        raise FeatureFileError(f"{where}: dataset 'num_frames' holds {nf[bad[0]]} at video {bad[0]}, outside 1..{t} (T).")


def _check_finite(where: str, block: np.ndarray, nf: np.ndarray, offset: int) -> None:
    """``block`` is already float32: a float64 value beyond float32's range has become infinite and is caught."""
    valid = np.arange(block.shape[1])[None, :] < nf[:, None]
    finite = np.isfinite(block).all(axis=2) | ~valid
    if not finite.all():
        video, step = np.argwhere(~finite)[0]
        raise FeatureFileError(
            f"{where}: dataset 'features' holds NaN or infinite values inside the valid frames "
            f"(video {offset + video}, step {step})."
        )


def parse_quantization(raw: Mapping | None, where: str) -> dict | None:
    """A ``quantization`` attribute's ``{"scale", "offset"}`` as floats, checked (finite, a positive scale)."""
    if raw is None:
        return None
    if set(raw) != {"scale", "offset"}:
        raise FeatureFileError(f"{where}: attribute 'quantization' must hold exactly 'scale' and 'offset', got "
                               f"{sorted(raw)}.")
    values = {}
    for key in ("scale", "offset"):
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise FeatureFileError(f"{where}: attribute 'quantization' has {key} {v!r:.40}, expected a finite number.")
        values[key] = float(v)
    if values["scale"] <= 0:
        raise FeatureFileError(f"{where}: attribute 'quantization' has scale {values['scale']}, expected > 0.")
    return values


def dequantize(stored: np.ndarray, num_frames: np.ndarray, quantization: Mapping | None) -> np.ndarray:
    """Stored features as float32: ``stored`` is rows ``[B, T, D]`` with their ``num_frames`` ``[B]``, or one video's
    valid frames ``[n, D]`` with ``num_frames`` ``None``. Without ``quantization`` only the type changes; with it, each
    value is ``q * scale + offset`` in float32, and the frames after each row's ``num_frames`` are 0."""
    if quantization is None:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(stored, dtype=np.float32)
    out = stored.astype(np.float32)
    out *= np.float32(quantization["scale"])
    out += np.float32(quantization["offset"])
    if num_frames is not None:
        out[np.arange(out.shape[1])[None, :] >= np.asarray(num_frames)[:, None]] = 0
    return out


def _blocks(n: int, row_bytes: int) -> Iterable[slice]:
    step = max(1, _VALUE_CHECK_BLOCK // max(row_bytes, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _json_attr(attrs: Mapping, name: str, where: str) -> dict | None:
    if name not in attrs:
        return None
    try:
        value = json.loads(attrs[name])
    except (TypeError, json.JSONDecodeError):
        raise FeatureFileError(f"{where}: attribute '{name}' is not valid JSON.") from None
    if not isinstance(value, dict):
        raise FeatureFileError(f"{where}: attribute '{name}' must be a JSON object.")
    return value


def _read_strings(ds, where: str) -> list[str]:
    try:
        if ds.dtype.kind in "OS":
            return [s if isinstance(s, str) else s.decode("utf-8") for s in ds[()]]
        return [str(s) for s in ds[()]]
    except (UnicodeDecodeError, AttributeError, TypeError) as exc:
        name = ds.name.lstrip("/")
        raise FeatureFileError(f"{where}: dataset '{name}' must hold UTF-8 strings ({type(exc).__name__}).") from None


def _int_attr(attrs: Mapping, name: str, where: str) -> int | None:
    """An integer attribute (a scalar of an integer type), or None when absent."""
    if name not in attrs:
        return None
    value = attrs[name]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise FeatureFileError(f"{where}: attribute '{name}' must be an integer, got {value!r:.60}.")
    return int(value)


def _bool_attr(attrs: Mapping, name: str, where: str) -> bool:
    """A boolean attribute (a bool, or the integer 0 or 1); absent means False."""
    value = attrs.get(name, False)
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise FeatureFileError(f"{where}: attribute '{name}' must be true or false, got {value!r:.60}.")


def _check_stored_here(f: h5py.File, name: str, where: str, required: bool) -> None:
    """Refuse, before reading it, a dataset that is a link (to another object or file) or whose header claims more
    data than the file stores (unwritten chunks or storage), so that no claimed size is ever allocated."""
    link = f.get(name, getlink=True)
    if link is None:
        if required:
            raise FeatureFileError(f"{where}: required dataset '{name}' is missing.")
        return
    if not isinstance(link, h5py.HardLink):
        raise FeatureFileError(f"{where}: '{name}' is a {type(link).__name__} to another object; the datasets must be "
                               f"stored in the file itself.")
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise FeatureFileError(f"{where}: '{name}' is not a dataset.")
    if ds.size == 0 or ds.dtype.kind in "OSU":  # variable-length strings keep their bytes on the heap
        return
    if ds.chunks is None:
        stored = ds.id.get_storage_size() >= ds.size * ds.dtype.itemsize
    else:
        needed = math.prod(-(-n // c) for n, c in zip(ds.shape, ds.chunks))
        stored = ds.id.get_num_chunks() >= needed
    if not stored:
        raise FeatureFileError(f"{where}: dataset '{name}' claims shape {ds.shape}, more than the file stores "
                               f"(the file is truncated or its header was changed).")


class FeatureFile:
    """A validated feature file of one split.

    Parameters
    ----------
    path:
        The HDF5 file.
    memory_budget:
        Largest decoded feature array (bytes) read into RAM at once; a larger
        file is read lazily, video by video.
    """

    def __init__(self, path: str | os.PathLike, *, memory_budget: int = DEFAULT_MEMORY_BUDGET):
        self.path = Path(path)
        where = str(self.path)
        if not self.path.exists():
            raise FeatureFileError(f"{where}: feature file does not exist.")
        if not self.path.is_file() or not h5py.is_hdf5(self.path):
            raise FeatureFileError(f"{where}: not an HDF5 file.")
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise FeatureFileError(f"{where}: cannot be opened as HDF5 ({exc}).") from None
        try:
            with f:
                self._read(f, where, memory_budget)
        except OSError as exc:  # a damaged chunk or a truncated file surfaces as an h5py read error
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FeatureFileError(f"{where}: cannot be read, the file is damaged ({first[:160]}).") from None
        self._handle: h5py.File | None = None
        self._pid: int | None = None

    def _read(self, f: h5py.File, where: str, memory_budget: int) -> None:
        for name in ("features", "labels", "num_frames", *STRING_DATASETS):
            _check_stored_here(f, name, where, required=name in ("features", "labels", "num_frames"))
        attrs = dict(f.attrs)
        if "category_mapping" in attrs:
            mapping = parse_category_mapping(attrs["category_mapping"], where)
        else:
            warnings.warn(f"{where}: attribute 'category_mapping' is missing; assuming the four study classes.", stacklevel=2)
            mapping = dict(STUDY_CATEGORIES)
        extras = {k: f[k] for k in STRING_DATASETS if k in f}
        feats = f["features"]
        labels, num_frames = f["labels"][()], f["num_frames"][()]
        self.quantization = parse_quantization(_json_attr(attrs, "quantization", where), where)
        if self.quantization is None and feats.dtype == np.uint8:
            raise FeatureFileError(f"{where}: dataset 'features' is uint8 but the file has no 'quantization' "
                                   f"attribute saying how to read it back as floats.")
        check_arrays(where, feats, labels, num_frames, mapping, extras, quantized=self.quantization is not None)
        n, t, d = feats.shape
        for name, actual, what in (("feature_dim", d, f"'features' has D={d}"), ("num_videos", n, f"'features' has {n} videos"),
                                   ("max_frames", t, f"'features' has T={t}")):
            value = _int_attr(attrs, name, where)
            if value is not None and value != actual:
                raise FeatureFileError(f"{where}: attribute '{name}' is {value} but {what}.")
        self.category_mapping = mapping
        self.labels = labels.astype(np.int64)
        self.num_frames = num_frames.astype(np.int32)
        self.subcategories = _read_strings(f["subcategories"], where) if "subcategories" in f else None
        self.video_ids = _read_strings(f["video_ids"], where) if "video_ids" in f else None
        self.sources = _read_strings(f["sources"], where) if "sources" in f else None
        self.source_labels = _read_strings(f["source_labels"], where) if "source_labels" in f else None
        self.multi_scale = _bool_attr(attrs, "multi_scale", where)
        # vidstudy.simulate and vidstudy.extraction.extract record their settings; other files have neither.
        self.simulation = _json_attr(attrs, "simulation", where)
        self.extraction = _json_attr(attrs, "extraction", where)
        self.subset = _json_attr(attrs, "subset", where)  # vidstudy.study.recipes.training_subset: its source and size
        self.imported = _json_attr(attrs, "imported", where)  # vidstudy.yt8m: the dataset and the import's settings
        self.dtype = str(feats.dtype)
        self.shape = (n, t, d)
        self.nbytes = n * t * d * 4
        self.in_memory = self.nbytes <= memory_budget
        self._features = np.empty((n, t, d), np.float32) if self.in_memory else None
        for sl in _blocks(n, t * d * feats.dtype.itemsize):
            block = dequantize(feats[sl], self.num_frames[sl], self.quantization)
            _check_finite(where, block, self.num_frames[sl], sl.start)
            if self.in_memory:
                self._features[sl] = block

    # --- sizes and names -------------------------------------------------
    def __len__(self) -> int:
        return self.shape[0]

    @property
    def num_videos(self) -> int:
        return self.shape[0]

    @property
    def max_frames(self) -> int:
        return self.shape[1]

    @property
    def feature_dim(self) -> int:
        return self.shape[2]

    @property
    def class_names(self) -> list[str]:
        return class_names(self.category_mapping)

    @property
    def num_classes(self) -> int:
        return len(self.category_mapping)

    # --- frames ------------------------------------------------------------
    def _dataset(self) -> h5py.Dataset:
        if self._handle is None or self._pid != os.getpid():
            # Each process (e.g. a DataLoader worker) opens its own handle.
            self._handle = h5py.File(self.path, "r", rdcc_nbytes=64 * 1024**2)
            self._pid = os.getpid()
        return self._handle["features"]

    def frames(self, i: int) -> np.ndarray:
        """The valid frames of video ``i``: float32 ``[num_frames[i], D]``."""
        n = int(self.num_frames[i])
        if self.in_memory:
            return self._features[i, :n]
        try:
            return dequantize(self._dataset()[i, :n], None, self.quantization)
        except OSError as exc:
            raise FeatureFileError(f"{self.path}: cannot be read at video {i}, the file is damaged or was changed "
                                   f"({exc}).") from None

    def padded(self) -> np.ndarray:
        """All features as float32 ``[N, T, D]`` (reads the whole file if lazy)."""
        if self.in_memory:
            return self._features
        return dequantize(self._dataset()[()], self.num_frames, self.quantization)

    def mean_features(self) -> np.ndarray:
        """Time-averaged features over each video's valid frames, ``[N, D]``."""
        out = np.empty((len(self), self.feature_dim), np.float32)
        for i in range(len(self)):
            out[i] = self.frames(i).mean(axis=0)
        return out

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_pid"] = None
        return state

    # --- summary -----------------------------------------------------------
    def summary(self) -> dict:
        """A plain-dict summary (what ``vidstudy inspect`` prints)."""
        names = self.class_names
        per_class = {name: int(np.sum(self.labels == i)) for i, name in enumerate(names)}
        per_sub: dict[str, dict[str, int]] | None = None
        if self.subcategories is not None:
            per_sub = {}
            for label, sub in zip(self.labels, self.subcategories):
                counts = per_sub.setdefault(names[label], {})
                counts[sub] = counts.get(sub, 0) + 1
            per_sub = {c: dict(sorted(per_sub[c].items())) for c in names if c in per_sub}
        n, t, d = self.shape
        return {
            "path": str(self.path),
            "num_videos": n,
            "max_frames": t,
            "feature_dim": d,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "size_on_disk_bytes": self.path.stat().st_size,
            "multi_scale": self.multi_scale,
            "category_mapping": self.category_mapping,
            "videos_per_class": per_class,
            "videos_per_subcategory": per_sub,
            "num_frames": {
                "min": int(self.num_frames.min()),
                "median": float(np.median(self.num_frames)),
                "max": int(self.num_frames.max()),
            },
            "in_memory": self.in_memory,
            "extraction": self.extraction,
        }


def read_provenance(path: str | os.PathLike) -> dict:
    """A feature file's provenance, read without its features: ``{"extraction", "simulation", "subset",
    "imported"}`` (each a dict, or ``None`` when the file records none) and ``multi_scale``; one sentence naming the
    file if it is not a readable HDF5 file."""
    path = Path(path)
    where = str(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        raise FeatureFileError(f"{where}: {'not an HDF5 file' if path.is_file() else 'feature file does not exist'}.")
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except OSError as exc:
        raise FeatureFileError(f"{where}: cannot be opened as HDF5 ({exc}).") from None
    return {**{name: _json_attr(attrs, name, where) for name in PROVENANCE_KEYS},
            "multi_scale": _bool_attr(attrs, "multi_scale", where)}


def write_feature_file(
    path: str | os.PathLike,
    features: np.ndarray,
    labels: np.ndarray,
    num_frames: np.ndarray,
    category_mapping: Mapping[str, int] = STUDY_CATEGORIES,
    *,
    multi_scale: bool = True,
    subcategories: Sequence[str] | None = None,
    video_ids: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    source_labels: Sequence[str] | None = None,
    compression_level: int = 4,
    provenance: Mapping[str, Mapping] | None = None,
    quantization: Mapping[str, float] | None = None,
) -> Path:
    """Validate and write a feature file in the study's schema, atomically.

    ``features`` is float ``[N, T, D]`` (stored as float32, gzip level
    ``compression_level``, 0 for none, one chunk per video): an array, or any object with
    ``shape``, ``dtype`` and ``features[start:stop]`` returning those rows as an
    array. It is read a block at a time, so a split larger than memory can be
    written. ``provenance`` maps ``"simulation"`` (the simulator's settings),
    ``"extraction"`` (the extractor's), ``"imported"`` (the dataset an import read, and its settings) or
    ``"subset"`` (the fingerprint of a subset's source) to a JSON-able mapping, stored as a JSON attribute of that
    name. With ``quantization`` (``{"scale", "offset"}``), ``features`` is uint8 and is stored as
    it is, in the quantized encoding. Nothing is written if any check fails.
    """
    path = Path(path)
    where = str(path)
    if not hasattr(features, "shape"):
        features = np.asarray(features)
    labels = np.asarray(labels)
    num_frames = np.asarray(num_frames)
    mapping = parse_category_mapping(dict(category_mapping), where)
    extras = {k: v for k, v in (("subcategories", subcategories), ("video_ids", video_ids), ("sources", sources),
                                ("source_labels", source_labels)) if v is not None}
    quantization = parse_quantization(None if quantization is None else dict(quantization), where)
    check_arrays(where, features, labels, num_frames, mapping, extras, quantized=quantization is not None)
    unknown = sorted(set(provenance or {}) - set(PROVENANCE_KEYS))
    if unknown:
        raise FeatureFileError(f"{where}: unknown provenance {unknown}; known: {', '.join(PROVENANCE_KEYS)}.")
    # unbuffered, so that a write the system refuses fails in that write (a buffer would fail in a later seek)
    with atomic_path(path) as tmp, open(tmp, "w+b", buffering=0) as raw:  # a failed check removes the temporary file
        sink = _WriteErrorKeeper(raw)
        try:
            _write_datasets(sink, features, labels, num_frames, mapping, extras, multi_scale, provenance,
                            compression_level, where, quantization)
        except Exception:
            sink.raise_kept(tmp)
            raise
        sink.raise_kept(tmp)
    return path


def _write_datasets(sink, features, labels, num_frames, mapping, extras, multi_scale, provenance, compression_level,
                    where, quantization=None) -> None:
    """The datasets and attributes of a feature file, written by h5py through ``sink``."""
    n, t, d = features.shape
    dtype = np.float32 if quantization is None else np.uint8
    with h5py.File(sink, "w") as f:
        ds = f.create_dataset("features", shape=(n, t, d), dtype=dtype, chunks=(1, t, d),
                              **({"compression": "gzip", "compression_opts": compression_level} if compression_level else {}))
        for sl in _blocks(n, t * d * np.dtype(dtype).itemsize):
            if quantization is None:
                with np.errstate(over="ignore"):  # values beyond float32 become inf and are refused below
                    block = np.asarray(features[sl], dtype=np.float32)
                _check_finite(where, block, num_frames[sl], sl.start)
            else:
                block = np.asarray(features[sl], dtype=np.uint8)
            ds[sl] = block
        f.create_dataset("labels", data=labels.astype(np.int64))
        f.create_dataset("num_frames", data=num_frames.astype(np.int32))
        for name, values in extras.items():
            f.create_dataset(name, data=[str(v) for v in values], dtype=h5py.string_dtype("utf-8"))
        f.attrs["num_videos"] = n
        f.attrs["max_frames"] = t
        f.attrs["feature_dim"] = d
        f.attrs["multi_scale"] = bool(multi_scale)
        f.attrs["category_mapping"] = json.dumps(mapping)
        for key, value in (provenance or {}).items():
            f.attrs[key] = json.dumps(dict(value))
        if quantization is not None:
            f.attrs["quantization"] = json.dumps(quantization)


class _WriteErrorKeeper:
    """The file object h5py writes a feature file through: a write the system refuses (a full disk, a file-size
    limit) is kept, not reported to HDF5, whose library cannot recover from a failed write (it crashes the process
    when it later closes the file). After one, writes are skipped while positions still advance as if written.
    :meth:`raise_kept` raises the kept error once h5py has closed the file."""

    def __init__(self, raw):
        self._raw, self._error, self._end = raw, None, 0

    def _keep(self, exc: OSError) -> None:
        self._error = self._error or exc

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        start, done = self._raw.tell(), 0
        while self._error is None and done < len(view):
            try:
                written = self._raw.write(view[done:])
            except OSError as exc:
                self._keep(exc)
                break
            if not written:  # nothing taken and no error: the system will take no more
                self._keep(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            done += written or 0
        if self._error is not None:  # skipped: move on as a write would have
            self._raw.seek(start + len(view))
        self._end = max(self._end, start + len(view))
        return len(view)

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def readinto(self, buffer) -> int:
        return self._raw.readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 2:  # from the end, counting what was skipped
            return self._raw.seek(max(self._end, self._raw.seek(0, 2)) + offset)
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._raw.truncate(size)
        except OSError as exc:
            self._keep(exc)
            return size if size is not None else self._raw.tell()

    def flush(self) -> None:
        try:
            self._raw.flush()
        except OSError as exc:
            self._keep(exc)

    def raise_kept(self, path: Path) -> None:
        """Flush to the system and raise the first refused write, if there was one, as an ``OSError`` naming ``path``
        (called after h5py closed the file, or when it failed: a refused write is the cause of what followed)."""
        self.flush()
        if self._error is not None:
            raise OSError(self._error.errno, self._error.strerror or str(self._error), str(path))


def load_splits(
    data_dir: str | os.PathLike,
    splits: Sequence[str] = SPLITS,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> dict[str, FeatureFile]:
    """Open ``{split}_features_multiscale.h5`` for each split in ``data_dir``.

    Splits must agree on the feature dimension and the category mapping.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FeatureFileError(f"{data_dir}: data folder does not exist.")
    files: dict[str, FeatureFile] = {}
    for split in splits:
        ff = FeatureFile(data_dir / feature_file_name(split), memory_budget=memory_budget)
        if files:
            ref_split, ref = next(iter(files.items()))
            if ff.feature_dim != ref.feature_dim:
                raise FeatureFileError(
                    f"{ff.path}: 'features' has D={ff.feature_dim}, disagreeing with the {ref_split} split's "
                    f"D={ref.feature_dim} ({ref.path})."
                )
            if ff.category_mapping != ref.category_mapping:
                raise FeatureFileError(
                    f"{ff.path}: attribute 'category_mapping' {json.dumps(ff.category_mapping)} disagrees with the "
                    f"{ref_split} split's {json.dumps(ref.category_mapping)}."
                )
        files[split] = ff
    return files
