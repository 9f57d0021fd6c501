"""Where a book build spends its time: the package's costly steps timed by phase, and a table per chapter.

The steps that cost time are decorated with :func:`timed` and a phase of ``PHASES``: building data
(simulation, rendering and extracting clips, subsets), training ensembles, building predictions stores, and
recombining stores into results. When the environment variable ``VIDSTUDY_PROFILE`` names a file, each step that is
not inside another timed step appends one JSON line, ``{"chapter", "phase", "seconds"}``, to it; the book runner
names the chapter (``VIDSTUDY_PROFILE_CHAPTER``, which the chapter's kernel inherits) and adds a ``chapter`` line with the
chapter's wall time and a ``jupyter-book`` line. Without the variable nothing is written. The file is a log that
only grows, one whole line per write; :func:`profile_table` reads it into one row per chapter: its wall time, the
seconds in each phase and the rest (the kernel, the figures and tables, the study's own arithmetic).
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from .errors import VidstudyError

PROFILE_ENV = "VIDSTUDY_PROFILE"
CHAPTER_ENV = "VIDSTUDY_PROFILE_CHAPTER"
#: The timed phases, in the order the table shows them.
PHASES = ("data", "training", "prediction", "evaluation")
_WALL = ("chapter", "jupyter-book")
_depth = 0


def record(phase: str, seconds: float, chapter: str | None = None) -> None:
    """Append one line to the profile file, if ``VIDSTUDY_PROFILE`` names one (the chapter from ``VIDSTUDY_PROFILE_CHAPTER``
    unless given)."""
    path = os.environ.get(PROFILE_ENV)
    if not path:
        return
    if phase not in PHASES + _WALL:
        raise ValueError(f"unknown profile phase {phase!r}")
    line = {"chapter": os.environ.get(CHAPTER_ENV, "") if chapter is None else chapter, "phase": phase,
            "seconds": round(float(seconds), 3)}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def timed(phase: str) -> Callable:
    """Decorate a step of ``phase``: its wall time is recorded when it is not called from inside another timed step
    (so nested steps count once, in the outermost)."""
    if phase not in PHASES:
        raise ValueError(f"unknown profile phase {phase!r}")

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            global _depth
            t0 = time.perf_counter()
            _depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                _depth -= 1
                if _depth == 0:
                    record(phase, time.perf_counter() - t0)
        return run
    return wrap


def read_profile(path: str | os.PathLike) -> list[dict]:
    """The records of a profile file (one sentence naming the file if a line is not a record)."""
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rec = json.loads(line)
            if not (isinstance(rec, dict) and isinstance(rec.get("chapter"), str) and rec.get("phase") in PHASES + _WALL
                    and isinstance(rec.get("seconds"), (int, float))):
                raise ValueError
        except ValueError:
            raise VidstudyError(f"{path}: line {n} is not a profile record.") from None
        out.append(rec)
    return out


def profile_table(records: Sequence[dict], chapters: Sequence[str]) -> list[dict]:
    """One row per chapter of ``chapters`` that ran (wall seconds, seconds per phase, ``other`` = wall minus the
    phases), after a ``runner`` row for steps the runner timed before the chapters (the default data), then
    ``jupyter-book`` and ``total``."""
    rows = []
    before = {p: sum(r["seconds"] for r in records if r["chapter"] == "" and r["phase"] == p) for p in PHASES}
    if any(before.values()):
        rows.append({"chapter": "runner", "wall": sum(before.values()), **before, "other": 0.0})
    for name in chapters:
        mine = [r for r in records if r["chapter"] == name]
        wall = sum(r["seconds"] for r in mine if r["phase"] == "chapter")
        if not wall:
            continue
        phases = {p: sum(r["seconds"] for r in mine if r["phase"] == p) for p in PHASES}
        rows.append({"chapter": name, "wall": wall, **phases, "other": wall - sum(phases.values())})
    jb = sum(r["seconds"] for r in records if r["phase"] == "jupyter-book")
    rows.append({"chapter": "jupyter-book", "wall": jb, **dict.fromkeys(PHASES, 0.0), "other": jb})
    rows.append({"chapter": "total", **{k: sum(r[k] for r in rows) for k in ("wall", *PHASES, "other")}})
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """A Markdown table of :func:`profile_table` rows, in seconds, with each chapter's share of the total."""
    total = rows[-1]["wall"] or 1.0
    head = ["chapter", "wall s", "share", *(f"{p} s" for p in PHASES), "other s"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        cells = [r["chapter"], f"{r['wall']:.1f}", f"{100 * r['wall'] / total:.0f} %",
                 *(f"{r[p]:.1f}" for p in PHASES), f"{r['other']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
