"""What ``vidstudy classify`` prints and writes: a table on the terminal, JSON Lines, CSV.

**JSON Lines** (``--json OUT``, ``-`` for standard output): one object per video, in the order classified.

.. code-block:: text

    path           the video, as named or found
    status         "classified" or "failed"
    error          why it failed (null when classified)
    duration_s     seconds the video lasts (null when its frames carry no times)
    frames_total   frames the video has (those that decode)
    frames_used    frames through the backbone for the whole video
    top_k          [{category, probability}], most probable first (--top-k of them)
    probabilities  {category: probability} of every category (the temperature-scaled ensemble)
    confident      whether the top probability reaches the run's threshold (fitted on its validation split)
    agreement      share of the members whose own top category is the ensemble's
    members        [{member, category, probability}]: each member's top category (its mean over the views)
    windows        [{start_s, end_s, frames_used, top_k, probabilities, confident, agreement, members}] with
                   --window (a video shorter than a window has one), else []
    timings        {decode_s, cnn_s, members_s}: seconds spent on this video by each step

A failed video's object holds only ``path``, ``status``, ``error`` and ``timings``.

**CSV** (``--csv OUT``): one row per video, or with ``--window`` one row for the whole video (``window`` =
``whole``) followed by one per window (``window`` = 0, 1, ...); the columns are :data:`CSV_FIXED`, then ``top1``,
``p1`` ... up to ``--top-k``, then ``p_CATEGORY`` for every category.

Both files are written atomically when the batch ends (an interrupted batch leaves none); nothing else is written.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from ..atomic import atomic_path
from ..errors import ParameterError
from .classify import Prediction, VideoResult

#: The CSV's first columns, before the top-k and the per-category columns.
CSV_FIXED = ("path", "status", "error", "window", "start_s", "end_s", "frames_used", "confident", "agreement")


def json_line(result: VideoResult) -> str:
    """The video's JSON Lines record, one line without its newline."""
    return json.dumps(result.as_json(), ensure_ascii=False, allow_nan=False)


def csv_header(class_names: list[str], top_k: int) -> list[str]:
    """The CSV columns for these categories and ``top_k``."""
    tops = [name for k in range(1, top_k + 1) for name in (f"top{k}", f"p{k}")]
    return [*CSV_FIXED, *tops, *(f"p_{c}" for c in class_names)]


def csv_rows(result: VideoResult, class_names: list[str], top_k: int) -> list[list]:
    """The video's CSV rows: the whole video, then its windows (a failed video: one row with its error)."""
    if not result.ok:
        return [[result.path, "failed", result.error] + [""] * (len(csv_header(class_names, top_k)) - 3)]
    stretches = [("whole" if result.windows else "", result.whole)] + [(str(i), w) for i, w in enumerate(result.windows)]
    return [[result.path, "classified", "", label, *_csv_call(call, class_names, top_k)] for label, call in stretches]


def _csv_call(call: Prediction, class_names: list[str], top_k: int) -> list:
    tops = [x for c, p in call.top_k for x in (c, f"{p:.6f}")] + [""] * (2 * (top_k - len(call.top_k)))
    return [_seconds(call.start_s), _seconds(call.end_s), call.frames_used, call.confident, f"{call.agreement:.4f}",
            *tops, *(f"{call.probabilities[c]:.6f}" for c in class_names)]


def _seconds(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _clock(x: float | None) -> str:
    if x is None:
        return "?"
    minutes, seconds = divmod(x, 60)
    return f"{int(minutes)}:{seconds:04.1f}"


def table_lines(result: VideoResult) -> list[str]:
    """The video's lines of the terminal table: its call, then one line per window."""
    if not result.ok:
        return [f"{result.path}  FAILED: {result.error}"]
    w = result.whole
    lines = [f"{result.path}  ({_clock(result.duration_s)}, {w.frames_used} frames)  {_call_text(w)}"]
    for call in result.windows:
        lines.append(f"  {_clock(call.start_s):>7} - {_clock(call.end_s):<7} {_call_text(call)}")
    return lines


def _call_text(call: Prediction) -> str:
    tops = "  ".join(f"{c} {p:.3f}" for c, p in call.top_k)
    agree = round(call.agreement * len(call.members))
    return f"{tops}  members {agree}/{len(call.members)}  {'confident' if call.confident else 'not confident'}"


class Outputs:
    """The results files of one batch (``--json``, ``--csv``), each written to a temporary file as results come and
    renamed into place when the batch ends; ``-`` for JSON writes lines to ``stdout`` as they come."""

    def __init__(self, json_path: str | None, csv_path: str | None, class_names: list[str], top_k: int, stdout: IO):
        self.class_names, self.top_k = class_names, top_k
        named = [(flag, Path(p)) for flag, p in (("--json", json_path), ("--csv", csv_path)) if p not in (None, "-")]
        for flag, path in named:
            if path.is_dir():
                raise ParameterError(f"{path}: is a folder ({flag}); name a results file.")
        if len(named) == 2 and named[0][1].resolve() == named[1][1].resolve():
            raise ParameterError(f"{named[0][1]}: named by both --json and --csv; name two files.")
        self._stack = ExitStack()
        self._json = self._csv = None
        if json_path == "-":
            self._json = stdout
        elif json_path is not None:
            self._json = self._open(Path(json_path))
        if csv_path is not None:
            self._csv = csv.writer(self._open(Path(csv_path)), lineterminator="\n")
            self._csv.writerow(csv_header(class_names, top_k))

    def _open(self, path: Path) -> io.TextIOBase:
        tmp = self._stack.enter_context(atomic_path(path))
        return self._stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))

    def write(self, result: VideoResult) -> None:
        if self._json is not None:
            self._json.write(json_line(result) + "\n")
            self._json.flush()
        if self._csv is not None:
            self._csv.writerows(csv_rows(result, self.class_names, self.top_k))

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)
