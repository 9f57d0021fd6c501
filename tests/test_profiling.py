"""The build profile: steps timed by phase (nested ones once), nothing written unless asked, and the table."""

import json

import pytest

from vidstudy import profiling
from vidstudy.errors import VidstudyError


@profiling.timed("training")
def _inner():
    return "trained"


@profiling.timed("data")
def _outer():
    return _inner()


def test_a_step_inside_another_counts_once_in_the_outermost(tmp_path, monkeypatch):
    log = tmp_path / "profile.jsonl"
    monkeypatch.setenv(profiling.PROFILE_ENV, str(log))
    monkeypatch.setenv(profiling.CHAPTER_ENV, "03_x")
    assert _outer() == "trained" and _inner() == "trained"
    records = profiling.read_profile(log)
    assert [(r["chapter"], r["phase"]) for r in records] == [("03_x", "data"), ("03_x", "training")]
    assert all(r["seconds"] >= 0 for r in records)


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(profiling.PROFILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    _outer()
    profiling.record("chapter", 1.0, chapter="01")
    assert list(tmp_path.iterdir()) == []


def test_the_table_splits_each_chapter_wall_time_into_its_phases(tmp_path):
    records = [{"chapter": "", "phase": "data", "seconds": 2.0},
               {"chapter": "01", "phase": "data", "seconds": 1.0}, {"chapter": "01", "phase": "chapter", "seconds": 3.0},
               {"chapter": "02", "phase": "training", "seconds": 5.0}, {"chapter": "02", "phase": "prediction", "seconds": 1.5},
               {"chapter": "02", "phase": "chapter", "seconds": 8.0}, {"chapter": "", "phase": "jupyter-book", "seconds": 4.0}]
    rows = profiling.profile_table(records, ["01", "02", "03"])  # 03 did not run: no row
    assert [r["chapter"] for r in rows] == ["runner", "01", "02", "jupyter-book", "total"]
    two = rows[2]
    assert (two["wall"], two["training"], two["prediction"], two["data"], two["other"]) == (8.0, 5.0, 1.5, 0.0, 1.5)
    assert rows[-1]["wall"] == 2.0 + 3.0 + 8.0 + 4.0 and rows[-1]["training"] == 5.0
    text = profiling.format_table(rows)
    assert text.splitlines()[0].startswith("| chapter | wall s | share |") and "| 02 | 8.0 | 47 % |" in text


def test_a_damaged_profile_line_is_one_sentence_naming_the_file(tmp_path):
    log = tmp_path / "profile.jsonl"
    log.write_text(json.dumps({"chapter": "01", "phase": "chapter", "seconds": 1}) + "\n{not json\n")
    with pytest.raises(VidstudyError, match=r"profile.jsonl: line 2 is not a profile record\.$"):
        profiling.read_profile(log)
    with pytest.raises(ValueError, match="unknown profile phase"):
        profiling.timed("sleeping")
