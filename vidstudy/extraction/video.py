"""Reading videos: which frames to take, and decoding them with PyAV.

:func:`frame_indices` chooses the frames: ``num_frames`` spread uniformly over
the video (the centre of each of ``num_frames`` equal segments), or with
``clips=3`` the same number of frames in three windows centred at 20 %, 50 % and
80 % of the video (the original study's multi-clip option), each window
``clip_width`` of the video long. A video with no more frames than requested
keeps every frame, so short videos keep their true length and nothing is padded.

:func:`read_frames` decodes the chosen frames as RGB at a square working size.
Anything wrong with the file raises :class:`VideoError` with a short reason; the
extractor records it and moves on.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import ParameterError, VidstudyError

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm")
CLIP_CENTRES: tuple[float, ...] = (0.2, 0.5, 0.8)
MIN_FRAMES = 3
MAX_FRAMES = 4096  # frames per video (--frames)


class VideoError(VidstudyError):
    """A video cannot be used: unreadable, empty, or too few decodable frames."""


@dataclass(frozen=True)
class Sampling:
    """How frames are taken from a video (recorded in the feature files)."""

    num_frames: int = 64
    clips: int = 1
    clip_width: float = 0.2
    frame_size: int = 224

    def __post_init__(self):
        if not MIN_FRAMES <= self.num_frames <= MAX_FRAMES:
            raise ParameterError(f"num_frames (--frames) must lie in [{MIN_FRAMES}, {MAX_FRAMES}], got {self.num_frames}.")
        if self.clips not in (1, len(CLIP_CENTRES)):
            raise ParameterError(f"clips must be 1 (uniform) or {len(CLIP_CENTRES)} (clips centred at "
                                 f"{', '.join(map(str, CLIP_CENTRES))}), got {self.clips}.")
        if self.clips > 1 and self.num_frames < self.clips:
            raise ParameterError(f"num_frames ({self.num_frames}) must be at least clips ({self.clips}).")
        if not 0 < self.clip_width <= 0.4:
            raise ParameterError(f"clip_width (--clip-width) must be in (0, 0.4] so that the clips do not overlap, "
                                 f"got {self.clip_width}.")
        if not 16 <= self.frame_size <= 2048:
            raise ParameterError(f"frame_size must lie in [16, 2048] pixels, got {self.frame_size}.")


def frame_indices(total: int, sampling: Sampling) -> np.ndarray:
    """Sorted, distinct indices of the frames to take from a video of ``total`` frames."""
    if total <= sampling.num_frames:
        return np.arange(total, dtype=np.int64)
    if sampling.clips == 1:
        pos = (np.arange(sampling.num_frames) + 0.5) / sampling.num_frames
    else:
        per_clip = np.full(sampling.clips, sampling.num_frames // sampling.clips)
        per_clip[len(per_clip) // 2] += sampling.num_frames - per_clip.sum()
        parts = []
        for centre, k in zip(CLIP_CENTRES, per_clip):
            start = centre - sampling.clip_width / 2
            parts.append(start + (np.arange(k) + 0.5) * sampling.clip_width / k)
        pos = np.concatenate(parts)
    idx = np.minimum(np.floor(pos * total).astype(np.int64), total - 1)
    return np.unique(idx)


def _open(path: Path):
    import av

    if path.stat().st_size == 0:
        raise VideoError("the file is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot be opened ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("has no video stream")
    return container


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


@dataclass(frozen=True)
class PacketIndex:
    """What demuxing (no decoding) tells about a video stream.

    ``count`` is the number of video packets (frames, for the usual codecs).
    ``frame_pts`` are their presentation timestamps in display order and
    ``keyframes`` the frame indices where decoding can start after a seek; both
    are ``None`` when the container does not give every packet a timestamp.
    ``time_base`` and ``rate`` are the stream's, when it states them.
    """

    count: int
    frame_pts: np.ndarray | None = None
    keyframes: np.ndarray | None = None
    time_base: float | None = None  # seconds per timestamp tick
    rate: float | None = None  # the stream's average frames per second


def scan_packets(path: str | os.PathLike) -> PacketIndex:
    """Demux the video stream of ``path`` (a damaged tail ends the scan) into a :class:`PacketIndex`."""
    import av

    container = _open(Path(path))
    pts: list = []
    keys: list = []
    stream = container.streams.video[0]
    time_base = float(stream.time_base) if stream.time_base else None
    rate = float(stream.average_rate) if stream.average_rate else None
    try:
        try:
            for packet in container.demux(stream):
                if packet.size:
                    pts.append(packet.pts)
                    keys.append(bool(packet.is_keyframe))
        except av.error.FFmpegError:
            pass  # a damaged tail: index what could be read
    finally:
        container.close()
    if not pts or any(p is None for p in pts) or len(set(pts)) != len(pts):
        return PacketIndex(len(pts), time_base=time_base, rate=rate)
    order = np.argsort(np.asarray(pts, np.int64), kind="stable")
    frame_pts = np.asarray(pts, np.int64)[order]
    keyframes = np.flatnonzero(np.asarray(keys)[order])
    return PacketIndex(len(pts), frame_pts, keyframes if keyframes.size and keyframes[0] == 0 else None, time_base, rate)


def count_packets(path: str | os.PathLike) -> int:
    """Number of video packets (frames, for the usual codecs), read without decoding."""
    return scan_packets(path).count


def _convert(frame, size: int) -> np.ndarray:
    return frame.to_ndarray(width=size, height=size, format="rgb24", interpolation="AREA")


def _decode(path: Path, wanted: np.ndarray, size: int) -> tuple[list[np.ndarray], int]:
    """Decode in order, converting only the ``wanted`` frames; stops at the first decoding error.

    Returns the converted frames and the number of frames decoded.
    """
    import av

    container = _open(path)
    keep = set(int(i) for i in wanted)
    last = int(wanted.max()) if wanted.size else -1
    frames: list[np.ndarray] = []
    n = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if n in keep:
                    frames.append(_convert(frame, size))
                n += 1
                if n > last and last >= 0 and len(frames) == len(keep):
                    break
        except av.error.FFmpegError:
            pass  # keep what decoded before the damage
    finally:
        container.close()
    return frames, n


def seek_plan(wanted: np.ndarray, keyframes: np.ndarray) -> tuple[list[int | None], int]:
    """Per wanted frame, the keyframe to seek to first (``None``: decode on); and the frames decoded that way.

    A seek pays off when the keyframe before the next wanted frame lies beyond
    the frames already decoded: decoding then starts there instead of running on.
    The first wanted frame always starts with a seek.
    """
    starts, cost, pos = [], 0, -1
    for w in wanted:
        key = int(keyframes[np.searchsorted(keyframes, w, side="right") - 1])
        seek = key > pos
        cost += w - (key - 1 if seek else pos)
        starts.append(key if seek else None)
        pos = int(w)
    return starts, cost


def _decode_seeking(path: Path, wanted: np.ndarray, frame_pts: np.ndarray, starts: list[int | None], size: int
                    ) -> list[np.ndarray] | None:
    """Decode the ``wanted`` frames, seeking to the planned keyframes; ``None`` if anything does not go to plan."""
    import av

    container = _open(path)
    frames: list[np.ndarray] = []
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for w, start in zip(wanted, starts):
            target = int(frame_pts[w])
            if start is not None:
                container.seek(int(frame_pts[start]), stream=stream, backward=True)
                decoded = container.decode(stream)
            for frame in decoded:
                if frame.pts is None:
                    return None
                if frame.pts >= target:
                    if frame.pts != target:
                        return None
                    frames.append(_convert(frame, size))
                    break
            else:
                return None
    except av.error.FFmpegError:
        return None
    finally:
        container.close()
    return frames


def read_frames(path: str | os.PathLike, sampling: Sampling, seek: bool = True) -> np.ndarray:
    """The sampled frames of one video as ``uint8 [L, S, S, 3]`` RGB (``S = sampling.frame_size``).

    The frame count comes from the container's packets. When the packets carry
    timestamps and keyframes, and seeking to keyframes decodes fewer than half
    the frames that decoding straight through would (long videos), the frames are
    reached by seeking; otherwise, or if seeking does not land on the expected
    frames, by decoding in order. When fewer frames decode than the packets
    promise (a damaged or truncated file), the frames are chosen again from what
    does decode. ``seek=False`` always decodes in order (the frames are the same).
    Raises :class:`VideoError` when fewer than 3 frames decode.
    """
    return read_stretches(path, sampling, seek=seek).frames


@dataclass(frozen=True)
class Stretch:
    """A stretch of a video: its frames ``[start, stop)`` and the seconds ``[start_s, end_s)`` they cover
    (``end_s`` ``None`` when the video's frame times are unknown)."""

    start: int
    stop: int
    start_s: float
    end_s: float | None


@dataclass(frozen=True)
class SampledVideo:
    """What :func:`read_stretches` decodes: the distinct frames of every stretch, once."""

    frames: np.ndarray  # uint8 [U, S, S, 3], in display order
    picks: list[np.ndarray]  # per stretch, the positions of its sampled frames in ``frames``
    stretches: list[Stretch]  # the whole video first, then its windows
    total: int  # frames in the video (those that decode)


def frame_times(index: PacketIndex) -> np.ndarray | None:
    """Each frame's time in seconds from the first, in display order: from the packets' timestamps, else from the
    stream's frame rate; ``None`` when neither is known."""
    if index.frame_pts is not None and index.time_base:
        return (index.frame_pts - index.frame_pts[0]) * index.time_base
    if index.rate:
        return np.arange(index.count) / index.rate
    return None


def _duration(times: np.ndarray) -> float:
    """The seconds ``times`` cover, the last frame shown as long as the typical frame."""
    gap = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return float(times[-1]) + gap


def window_stretches(times: np.ndarray, seconds: float) -> list[Stretch]:
    """The video of frame ``times`` cut into windows of ``seconds`` (``[k s, (k + 1) s)``); a window of fewer than
    3 frames joins the one before it (the first, the one after), so a video shorter than a window is one window."""
    duration = _duration(times)
    starts = np.arange(0.0, duration, seconds)
    bounds = list(np.searchsorted(times, starts, side="left")) + [len(times)]
    windows = [[int(a), int(b), float(t)] for a, b, t in zip(bounds[:-1], bounds[1:], starts)]
    merged: list[list] = []
    for w in windows:
        if merged and (w[1] - w[0] < MIN_FRAMES or merged[-1][1] - merged[-1][0] < MIN_FRAMES):
            merged[-1][1] = w[1]
        else:
            merged.append(w)
    ends = [w[2] for w in merged[1:]] + [duration]
    return [Stretch(a, b, t, end) for (a, b, t), end in zip(merged, ends)]


def _plan(total: int, times: np.ndarray | None, sampling: Sampling, window_s: float | None):
    """``(stretches, frames to take per stretch, their union)`` of a video of ``total`` frames."""
    end = _duration(times[:total]) if times is not None else None
    stretches = [Stretch(0, total, 0.0, end)]
    if window_s is not None:
        stretches += window_stretches(times[:total], window_s)
    wanted = [s.start + frame_indices(s.stop - s.start, sampling) for s in stretches]
    return stretches, wanted, np.unique(np.concatenate(wanted))


def _read_wanted(path: Path, index: PacketIndex, wanted: np.ndarray, size: int, seek: bool) -> tuple[list, int]:
    """The ``wanted`` frames, by seeking when that pays (see :func:`read_frames`), else decoding in order; and the
    number of frames decoded in order (the packets' count after a seek)."""
    if seek and index.keyframes is not None:
        starts, cost = seek_plan(wanted, index.keyframes)
        if 2 * cost < int(wanted[-1]) + 1:
            frames = _decode_seeking(path, wanted, index.frame_pts, starts, size)
            if frames is not None:
                return frames, index.count
    return _decode(path, wanted, size)


def read_stretches(path: str | os.PathLike, sampling: Sampling, window_s: float | None = None,
                   seek: bool = True) -> SampledVideo:
    """The frames ``sampling`` takes from the whole video and, with ``window_s``, from each window of that many
    seconds (:func:`window_stretches`), each frame decoded once (as :func:`read_frames` decodes them; the whole
    video's frames are exactly its). Raises :class:`VideoError` when fewer than 3 frames decode, or when windows are
    asked of a video whose frames carry no times."""
    path = Path(path)
    index = scan_packets(path)
    if index.count < MIN_FRAMES:
        raise VideoError(f"has {index.count} frame(s); at least {MIN_FRAMES} are needed")
    times = frame_times(index)
    if window_s is not None and times is None:
        raise VideoError("its frames carry no timestamps and its stream no frame rate, so it cannot be cut into windows")
    stretches, wanted, union = _plan(index.count, times, sampling, window_s)
    frames, decoded = _read_wanted(path, index, union, sampling.frame_size, seek)
    total = index.count
    if len(frames) < len(union):
        if decoded < MIN_FRAMES:
            raise VideoError(f"only {decoded} frame(s) decode; at least {MIN_FRAMES} are needed")
        total = decoded
        stretches, wanted, union = _plan(decoded, times, sampling, window_s)
        frames, decoded = _decode(path, union, sampling.frame_size)
        if len(frames) < max(len(union), MIN_FRAMES):
            raise VideoError(f"decoding is not repeatable ({len(frames)} of {len(union)} frames on a second pass)")
    return SampledVideo(np.stack(frames), [np.searchsorted(union, w) for w in wanted], stretches, total)


def read_frames_or_reason(path: str, sampling: Sampling) -> tuple[np.ndarray | None, str | None]:
    """:func:`read_frames` for worker processes: ``(frames, None)`` or ``(None, reason)``."""
    try:
        return read_frames(path, sampling), None
    except VideoError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int = 24, codec: str = "libx264",
                gop: int | None = None) -> Path:
    """Encode RGB frames, ``uint8 [H, W, 3]`` each (an ``[L, H, W, 3]`` array or any iterable), with PyAV.

    H and W must be even for H.264. ``gop`` sets the keyframe interval (default:
    the encoder's). Used by the tests, the book and the benchmarks to make clips;
    the file is written atomically.
    """
    import av

    from ..atomic import atomic_path

    path = Path(path)
    frames = iter(frames)
    first = np.asarray(next(frames, np.empty((0, 0, 0), np.uint8)))
    if first.ndim != 3 or first.shape[-1] != 3 or first.dtype != np.uint8:
        raise ParameterError(f"frames must be uint8 RGB images [H, W, 3], got {first.dtype} {first.shape}.")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=path.suffix.lstrip(".").replace("mkv", "matroska")) as out:
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height = first.shape[1], first.shape[0]
            stream.pix_fmt = "yuv420p"
            if gop is not None:
                stream.codec_context.gop_size = int(gop)
            for i, img in enumerate(itertools.chain([first], frames)):
                frame = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")
                frame.pts = i  # one tick of the stream's rate per frame, stated rather than left to the encoder
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path
