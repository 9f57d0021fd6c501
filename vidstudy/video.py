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

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ParameterError, VidstudyError

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm")
CLIP_CENTRES: tuple[float, ...] = (0.2, 0.5, 0.8)
MIN_FRAMES = 3


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
        if self.num_frames < MIN_FRAMES:
            raise ParameterError(f"num_frames (--frames) must be at least {MIN_FRAMES}, got {self.num_frames}.")
        if self.clips not in (1, len(CLIP_CENTRES)):
            raise ParameterError(f"clips must be 1 (uniform) or {len(CLIP_CENTRES)} (clips centred at "
                                 f"{', '.join(map(str, CLIP_CENTRES))}), got {self.clips}.")
        if self.clips > 1 and self.num_frames < self.clips:
            raise ParameterError(f"num_frames ({self.num_frames}) must be at least clips ({self.clips}).")
        if not 0 < self.clip_width <= 0.4:
            raise ParameterError(f"clip_width (--clip-width) must be in (0, 0.4] so that the clips do not overlap, got {self.clip_width}.")
        if self.frame_size < 16:
            raise ParameterError(f"frame_size must be at least 16 pixels, got {self.frame_size}.")


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


def count_packets(path: Path) -> int:
    """Number of video packets (frames, for the usual codecs), read without decoding."""
    import av

    container = _open(path)
    try:
        stream = container.streams.video[0]
        n = 0
        try:
            for packet in container.demux(stream):
                if packet.size:
                    n += 1
        except av.error.FFmpegError:
            pass  # a damaged tail: count what could be read
        return n
    finally:
        container.close()


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
                    frames.append(frame.to_ndarray(width=size, height=size, format="rgb24", interpolation="AREA"))
                n += 1
                if n > last and last >= 0 and len(frames) == len(keep):
                    break
        except av.error.FFmpegError:
            pass  # keep what decoded before the damage
    finally:
        container.close()
    return frames, n


def read_frames(path: str | os.PathLike, sampling: Sampling) -> np.ndarray:
    """The sampled frames of one video as ``uint8 [L, S, S, 3]`` RGB (``S = sampling.frame_size``).

    The frame count comes from the container's packets; when fewer frames decode
    than that (a damaged or truncated file), the frames are chosen again from
    what does decode. Raises :class:`VideoError` when fewer than 3 frames decode.
    """
    path = Path(path)
    total = count_packets(path)
    if total < MIN_FRAMES:
        raise VideoError(f"has {total} frame(s); at least {MIN_FRAMES} are needed")
    wanted = frame_indices(total, sampling)
    frames, decoded = _decode(path, wanted, sampling.frame_size)
    if len(frames) < len(wanted):
        if decoded < MIN_FRAMES:
            raise VideoError(f"only {decoded} frame(s) decode; at least {MIN_FRAMES} are needed")
        wanted = frame_indices(decoded, sampling)
        frames, decoded = _decode(path, wanted, sampling.frame_size)
        if len(frames) < max(len(wanted), MIN_FRAMES):
            raise VideoError(f"decoding is not repeatable ({len(frames)} of {len(wanted)} frames on a second pass)")
    return np.stack(frames)


def read_frames_or_reason(path: str, sampling: Sampling) -> tuple[np.ndarray | None, str | None]:
    """:func:`read_frames` for worker processes: ``(frames, None)`` or ``(None, reason)``."""
    try:
        return read_frames(path, sampling), None
    except VideoError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 24, codec: str = "libx264") -> Path:
    """Encode ``uint8 [L, H, W, 3]`` RGB frames to a video file with PyAV (H and W even for H.264).

    Used by the tests and the book to make small clips; the file is written atomically.
    """
    import av

    from .runs import atomic_path

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ParameterError(f"frames must be uint8 RGB [L, H, W, 3], got shape {frames.shape}.")
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=path.suffix.lstrip(".").replace("mkv", "matroska")) as out:
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            for img in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path
