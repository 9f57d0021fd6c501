"""What the classifying chapter needs: held-out clips of the real dataset, a long video joined from clips of different
categories, and the tables and shares it shows of :func:`vidstudy.classify`'s results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..fingerprint import difference, fingerprint


def held_out_clips(video_dir: Path, split: str = "test") -> list[tuple[Path, str, str]]:
    """``(path, category, source)`` of the first clip (by name) of each source of ``split``, by category and source."""
    sources = json.loads((Path(video_dir) / "sources.json").read_text())[split]
    first: dict[str, str] = {}
    for vid, source in sorted(sources.items()):
        first.setdefault(source, vid)
    out = []
    for source, vid in sorted(first.items(), key=lambda kv: (kv[1].split("/")[0], kv[0])):
        (path,) = (Path(video_dir) / split).glob(f"{vid}.*")
        out.append((path, vid.split("/")[0], source))
    return out


def _frames(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        w, h = size or (stream.codec_context.width // 2 * 2, stream.codec_context.height // 2 * 2)
        return np.stack([f.to_ndarray(width=w, height=h, format="rgb24") for f in container.decode(stream)])


def joined_video(out: Path, clips: list[tuple[Path, str]], fps: int) -> list[dict]:
    """Write the ``clips`` (``(path, category)``) one after another as one video at ``out`` (every frame at the first
    clip's size); returns each clip's segment ``{category, start_s, end_s}``. Rewritten only when the clips change."""
    from ..extraction.realclips import CODEC
    from ..extraction.video import write_video

    stamp = out.with_name(f".{out.name}.inputs.json")
    inputs = fingerprint({f"clip{k}": p for k, (p, _) in enumerate(clips)}, fps=fps)
    parts, size = [], None
    for path, _ in clips:
        frames = _frames(path, size)
        size = size or (frames.shape[2], frames.shape[1])
        parts.append(frames)
    starts = np.cumsum([0] + [len(p) for p in parts]) / fps
    segments = [{"category": c, "start_s": float(a), "end_s": float(b)} for (_, c), a, b in zip(clips, starts, starts[1:])]
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        recorded = None
    if not out.is_file() or difference(recorded, inputs) is not None:
        write_video(out, np.concatenate(parts), fps=fps, codec=CODEC)
        write_json(stamp, inputs)
    return segments


def longest_per_category(clips: list[tuple[Path, str, str]], order: list[str]) -> list[tuple[Path, str]]:
    """The longest clip (by size on disk) of each category in ``order``."""
    return [max(((p, c) for p, c, _ in clips if c == category), key=lambda pc: pc[0].stat().st_size) for category in order]


def results_table(results, truths: list[str], sources: list[str]):
    """One row per classified clip: its source, true category, the call and its probability (``p``), the runner-up,
    how many members agree with the call, whether it is confident and right."""
    import pandas as pd

    rows = []
    for r, truth, source in zip(results, truths, sources):
        w = r.whole
        agreeing = f"{round(w.agreement * len(w.members))}/{len(w.members)}"
        rows.append({"source": source, "category": truth, "called": w.category, "p": w.top_k[0][1],
                     "runner-up": f"{w.top_k[1][0]} ({w.top_k[1][1]:.2f})", "agree": agreeing,
                     "confident": "yes" if w.confident else "no", "right": w.category == truth})
    return pd.DataFrame(rows)


def windows_in_segments(result, segments: list[dict]) -> list[tuple[str, str]]:
    """``(true category, call)`` of each window that lies within one segment of the joined video."""
    out = []
    for w in result.windows:
        inside = [s for s in segments if s["start_s"] - 1e-6 <= w.start_s and w.end_s <= s["end_s"] + 1e-6]
        if inside:
            out.append((inside[0]["category"], w.category))
    return out


def timing_shares(results) -> dict[str, float]:
    """The share (%) of the classified videos' time in decoding, the backbone and the members."""
    total = {k: sum(r.timings.get(k, 0.0) for r in results if r.ok) for k in ("decode_s", "cnn_s", "members_s")}
    whole = sum(total.values())
    return {k: 100 * v / whole for k, v in total.items()}


def store_difference(run_dir, calls, clips: list[tuple[Path, str, str]], video_dir: Path) -> float:
    """The largest difference between a probability of ``calls`` (test clips classified from their video files) and
    the one the run's test predictions store gives the same clip, combined the same way."""
    from ..calibration import calibrated
    from ..ensemble import tta_ensemble
    from ..predictions import load_predictions
    from ..results import deployment, read_results

    store = load_predictions(run_dir, "test")
    dep = deployment(read_results(run_dir))
    probs = calibrated(tta_ensemble(store.probs, [store.view_names.index(v) for v in dep["views"]]), dep["temperature"])
    worst = 0.0
    for call, (path, _, _) in zip(calls, clips):
        i = store.video_ids.index(Path(path).relative_to(Path(video_dir) / "test").with_suffix("").as_posix())
        worst = max(worst, *(abs(call.whole.probabilities[c] - probs[i, k]) for k, c in enumerate(store.class_names)))
    return float(worst)


def threshold_sentence(confidence: dict) -> str:
    """What the run's confidence threshold is, in words, from its results' ``deployment.confidence`` section."""
    target = f"{100 * confidence['target_accuracy']:.0f} %"
    if confidence["threshold"] is None:
        return f"no confidence threshold makes the calls {target} right, so no call is marked confident"
    return (f"the calls with a top probability of at least {confidence['threshold']:.3f} are {target} right or more "
            f"(the lowest such threshold), and those are the calls marked confident")
