"""``vidstudy classify``: video files in, the run's categories out, with a timeline for long videos.

Per video, the frames are chosen and decoded as ``vidstudy extract`` chooses them
(:func:`vidstudy.extraction.video.read_stretches`, with the settings of the run's own features:
:func:`vidstudy.inference.deployed.feature_recipe`), turned into features by the same backbone (in batches of
``batch_size`` frames, on ``device``) and combined over the same scales; the run's members then score every
test-time view and the scores are combined as the run's evaluation combines them
(:class:`vidstudy.inference.deployed.DeployedRun`). With ``window_s`` each window of that many seconds is classified
the same way, as if it were a video of its own, beside the whole; every frame is decoded and embedded once.

A video that cannot be used (unreadable, empty, corrupt, too few frames) becomes a :class:`VideoResult` with its
``error`` and the batch goes on. :func:`exit_status` turns a batch's results into the command's exit status.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import ParameterError, VidstudyError
from ..executor import LocalExecutor
from ..extraction.extract import DEFAULT_BATCH, MAX_BATCH, frame_features
from ..extraction.video import VIDEO_EXTENSIONS, SampledVideo, Sampling, VideoError, read_stretches
from ..multiscale import multiscale as combine_scales
from .deployed import DeployedRun, FeatureRecipe, feature_recipe

#: Exit status of ``vidstudy classify`` when every video was classified.
EXIT_ALL = 0
#: Exit status when no video was classified (or an error came before any video).
EXIT_NONE = 1
#: Exit status when some videos were classified and some failed.
EXIT_SOME = 3
MIN_WINDOW_S = 0.1


@dataclass(frozen=True)
class Prediction:
    """The ensemble's call on one stretch of a video: the whole, or one window."""

    start_s: float
    end_s: float | None  # None when the video's frame times are unknown
    frames_used: int  # frames through the backbone for this stretch
    probabilities: dict[str, float]  # every category, in the order of their ids
    top_k: list[tuple[str, float]]  # the k most probable categories, most probable first
    confident: bool  # the top probability reaches the run's threshold (fitted on its validation split)
    agreement: float  # the share of members whose own top category is the ensemble's
    members: dict[str, tuple[str, float]]  # each member's top category and its probability (mean over the views)

    @property
    def category(self) -> str:
        """The most probable category."""
        return self.top_k[0][0]

    def as_json(self) -> dict:
        return {"start_s": _round(self.start_s), "end_s": _round(self.end_s), "frames_used": self.frames_used,
                "top_k": [{"category": c, "probability": _round(p)} for c, p in self.top_k],
                "probabilities": {c: _round(p) for c, p in self.probabilities.items()},
                "confident": self.confident, "agreement": _round(self.agreement),
                "members": [{"member": m, "category": c, "probability": _round(p)} for m, (c, p) in self.members.items()]}


@dataclass(frozen=True)
class VideoResult:
    """One video of a batch: its call (``whole``) and its windows', or why it could not be classified (``error``)."""

    path: str
    error: str | None = None  # None: classified
    duration_s: float | None = None
    frames_total: int = 0  # frames the video has (those that decode)
    whole: Prediction | None = None
    windows: list[Prediction] = field(default_factory=list)  # with window_s; a short video has one
    timings: dict[str, float] = field(default_factory=dict)  # decode_s, cnn_s, members_s

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict:
        """The video's JSON Lines record (:mod:`vidstudy.inference.output` documents the schema)."""
        out = {"path": self.path, "status": "classified" if self.ok else "failed", "error": self.error}
        if self.ok:
            out.update({"duration_s": _round(self.duration_s), "frames_total": self.frames_total,
                        **self.whole.as_json(), "windows": [w.as_json() for w in self.windows]})
            del out["start_s"], out["end_s"]
        out["timings"] = {k: _round(v) for k, v in self.timings.items()}
        return out


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


def video_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The videos ``paths`` name: files as given, folders searched recursively for the video types ``extract``
    reads (sorted; hidden entries skipped), ``@list.txt`` one path a line (blank lines and ``#`` comments skipped,
    relative paths from the list's folder). A path that does not exist, a folder without videos or an empty batch
    is refused in one sentence naming it, before anything runs. Repeats are kept once."""
    found: list[Path] = []
    for raw in paths:
        text = str(raw)
        if text.startswith("@"):
            found += _listed(Path(text[1:]))
        else:
            found += _expand(Path(text), text)
    if not found:
        raise ParameterError("no videos to classify: name video files, folders or @list.txt files.")
    seen, out = set(), []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _listed(listing: Path) -> list[Path]:
    if not listing.is_file():
        raise ParameterError(f"{listing}: list of videos does not exist.")
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"{listing}: list of videos cannot be read ({exc}).") from None
    out = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            path = Path(entry) if Path(entry).is_absolute() else listing.parent / entry
            out += _expand(path, f"{listing}, line {number}: {entry}")
    return out


def _expand(path: Path, named: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ParameterError(f"{named}: does not exist.")
    videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                    and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not videos:
        raise ParameterError(f"{named}: folder holds no video files ({', '.join(VIDEO_EXTENSIONS)}).")
    return videos


def _decode(path: str, sampling: Sampling, window_s: float | None) -> tuple:
    """In a decoding process: ``(SampledVideo or None, reason or None, seconds)``."""
    t0 = time.perf_counter()
    try:
        return read_stretches(path, sampling, window_s), None, time.perf_counter() - t0
    except VideoError as exc:
        return None, str(exc), time.perf_counter() - t0
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})", time.perf_counter() - t0


class _Embed:
    """The step after decoding: each stretch's feature sequence, every distinct frame through the backbone once."""

    def __init__(self, recipe: FeatureRecipe, batch_size: int):
        self.recipe, self.batch_size = recipe, batch_size

    def __call__(self, decoded: tuple) -> tuple:
        video, reason, decode_s = decoded
        if video is None:
            return None, reason, {"decode_s": decode_s}
        t0 = time.perf_counter()
        feats = frame_features(self.recipe.backbone, video.frames, self.batch_size)
        seqs = [feats[pick] for pick in video.picks]
        if self.recipe.multiscale:
            seqs = [combine_scales(x, self.recipe.scales)[0] for x in seqs]
        return (video, seqs), None, {"decode_s": decode_s, "cnn_s": time.perf_counter() - t0}


class Classifier:
    """A run ready to classify videos: its members on ``device`` and the backbone that makes its features.

    ``backbone`` ``None`` takes the one the run's features were made by (refused when that is not known); a name,
    ``MODULE:FACTORY`` or a backbone itself (a callable, as :func:`vidstudy.extraction.extract.extract` takes) is the
    user's choice, and :attr:`note` then says what differs from the run's own features.
    """

    def __init__(self, run_dir, *, backbone: str | Callable | None = None, device: str = "auto", batch_size: int = DEFAULT_BATCH,
                 top_k: int = 2, window_s: float | None = None, workers: int = 0):
        from ..device import resolve_device

        if not 1 <= batch_size <= MAX_BATCH:
            raise ParameterError(f"batch_size (--batch-size) must lie in [1, {MAX_BATCH}], got {batch_size}.")
        if window_s is not None and not (np.isfinite(window_s) and window_s >= MIN_WINDOW_S):
            raise ParameterError(f"window (--window) must be a number of seconds of at least {MIN_WINDOW_S}, "
                                 f"got {window_s}.")
        self.executor = LocalExecutor(workers)
        dev = resolve_device(device, "device")
        self.run = DeployedRun(run_dir, dev)
        if not 1 <= top_k <= len(self.run.class_names):
            raise ParameterError(f"top_k (--top-k) must lie in [1, {len(self.run.class_names)}] (the run's categories), "
                                 f"got {top_k}.")
        self.recipe = feature_recipe(run_dir, backbone, dev)
        self.batch_size, self.top_k, self.window_s = batch_size, top_k, window_s

    @property
    def note(self) -> str | None:
        """What differs from the run's own features (a backbone the user chose), else ``None``."""
        return self.recipe.note

    def describe(self) -> str:
        """How videos become features and how the members are combined, in two sentences."""
        s = self.recipe.sampling
        how = "uniformly" if s.clips == 1 else f"in {s.clips} clips"
        scales = f", over the scales {', '.join(f'{x:g}' for x in self.recipe.scales)}" if self.recipe.multiscale else ""
        name = getattr(self.recipe.backbone, "name", type(self.recipe.backbone).__name__)
        return (f"features: up to {s.num_frames} frames {how} at {s.frame_size}x{s.frame_size} through {name}{scales}."
                f"\n{self.run.describe()}.")

    def stream(self, paths: Sequence[str | os.PathLike]) -> Iterator[VideoResult]:
        """A :class:`VideoResult` per video of :func:`video_paths` ``(paths)``, in order, as each is done."""
        videos = video_paths(paths)
        decode = functools.partial(_decode, sampling=self.recipe.sampling, window_s=self.window_s)
        make_worker = functools.partial(_Embed, self.recipe, self.batch_size)
        results = self.executor.stream(decode, make_worker, [str(p) for p in videos])
        try:
            for path, (done, reason, timings) in zip(videos, results):
                yield self._result(str(path), done, reason, timings)
        finally:
            results.close()

    def _result(self, path: str, done, reason: str | None, timings: dict) -> VideoResult:
        if done is None:
            return VideoResult(path, error=reason, timings=timings)
        video, seqs = done
        if seqs[0].shape[1] != self.run.feature_dim:
            raise ParameterError(f"the backbone gives {seqs[0].shape[1]}-d features but the run's members take "
                                 f"{self.run.feature_dim}-d ones; pass the backbone the run was trained with.")
        t0 = time.perf_counter()
        try:
            ensemble, members = self.run.predict(seqs)
        except VidstudyError as exc:  # non-finite outputs on one video: that video fails, the batch goes on
            return VideoResult(path, error=str(exc), timings=timings)
        timings = {**timings, "members_s": time.perf_counter() - t0}
        calls = [self._prediction(video, k, ensemble[k], members[:, k]) for k in range(len(seqs))]
        return VideoResult(path, duration_s=video.stretches[0].end_s, frames_total=video.total, whole=calls[0],
                           windows=calls[1:], timings=timings)

    def _prediction(self, video: SampledVideo, k: int, probs: np.ndarray, members: np.ndarray) -> Prediction:
        names, stretch = self.run.class_names, video.stretches[k]
        order = np.argsort(-probs, kind="stable")
        top = int(order[0])
        threshold = self.run.threshold
        own = members.argmax(1)
        return Prediction(
            start_s=stretch.start_s, end_s=stretch.end_s, frames_used=len(video.picks[k]),
            probabilities={n: float(p) for n, p in zip(names, probs)},
            top_k=[(names[int(c)], float(probs[c])) for c in order[:self.top_k]],
            confident=threshold is not None and float(probs[top]) >= threshold,
            agreement=float(np.mean(own == top)),
            members={m: (names[int(c)], float(members[i, c])) for i, (m, c) in enumerate(zip(self.run.member_names, own))})


def classify(run_dir, paths: Sequence[str | os.PathLike], **options) -> list[VideoResult]:
    """Classify the videos ``paths`` names (files, folders, ``@list.txt``) with the run at ``run_dir``.

    ``options`` are :class:`Classifier`'s: ``backbone``, ``device`` (``auto``), ``batch_size`` (frames per backbone
    call), ``top_k`` (2), ``window_s`` (a timeline of windows of that many seconds) and ``workers`` (decoding
    processes). Returns one :class:`VideoResult` per video, in order; a video that cannot be used has its ``error``.
    """
    return list(Classifier(run_dir, **options).stream(paths))


def exit_status(results: Sequence[VideoResult]) -> int:
    """:data:`EXIT_ALL` when every video was classified, :data:`EXIT_NONE` when none was, else :data:`EXIT_SOME`."""
    failed = sum(not r.ok for r in results)
    return EXIT_ALL if not failed else EXIT_NONE if failed == len(results) else EXIT_SOME
