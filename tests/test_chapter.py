"""The chapters' parameters, declared once, and the study functions the chapters call instead of cells."""

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest

from vidstudy.errors import ParameterError
from vidstudy.study import chapter, recipes, report
from vidstudy.study.book import resolve_params, toc_chapters

REPO = Path(__file__).resolve().parents[1]


def test_the_runner_defaults_and_smoke_overrides_come_from_the_declaration():
    assert resolve_params() == chapter.defaults() == dataclasses.asdict(chapter.Params())
    assert resolve_params(smoke=True) == {**chapter.defaults(), **chapter.SMOKE}


def test_parameters_are_checked_against_their_declared_types(tmp_path):
    assert chapter.make_params({"members": 3, "smoke": True}) == chapter.Params(members=3, smoke=True)
    for values, message in (({"members": "3"}, "parameter members must be int, got '3'"),
                            ({"members": True}, "parameter members must be int, got True"),
                            ({"smoke": 1}, "parameter smoke must be bool, got 1"),
                            ({"device": 0}, "parameter device must be str, got 0"),
                            ({"colour": "red"}, "unknown chapter parameters ['colour']")):
        with pytest.raises(ParameterError, match=rf"^here: {message.replace('[', '.').replace(']', '.')}"):
            chapter.make_params(values, "here")
    for bad, message in (({"epochs": -1}, "epochs must be 0"), ({"members": 0}, "members must lie in"),
                         ({"shape": "huge"}, "shape must be one of"), ({"device": "tpu"}, "device")):
        with pytest.raises(ParameterError, match=message):
            chapter.make_params(bad).validate()


def test_a_chapter_reads_its_parameters_from_its_namespace():
    namespace = {**chapter.defaults(), "members": 2, "other": "ignored"}
    assert chapter.params(namespace) == chapter.Params(members=2)
    with pytest.raises(KeyError):
        chapter.params({"members": 2})  # a parameters cell that does not assign every parameter


def test_the_chapter_list_is_the_table_of_contents(tmp_path):
    for name in ("notebooks", "book"):
        (tmp_path / name).mkdir()
    shutil.copy(REPO / "_config.yml", tmp_path)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n"
                                       "      - file: book/executed/02_b\n      - file: book/methods\n"
                                       "      - file: book/executed/01_a\n")
    assert toc_chapters(tmp_path) == ("02_b", "01_a")
    assert toc_chapters()[0] == "01_data" and len(toc_chapters()) == len(list((REPO / "notebooks").glob("*.ipynb")))


def test_the_recipe_study_size_follows_the_preset_and_smoke():
    assert recipes.study_size("cpu", False) == recipes.SIZES["study"]
    assert recipes.study_size("paper", False) == recipes.SIZES["paper"]
    assert recipes.study_size("paper", True) == recipes.study_size("cpu", True) == recipes.SIZES["smoke"]
    assert recipes.SIZES["paper"].scale == "paper" and recipes.SIZES["study"].scale == "study"


def _attempt(epochs_collapsed, collapsed):
    return pd.DataFrame({"epochs collapsed": epochs_collapsed, "collapsed": collapsed})


def test_the_collapse_verdict_has_three_outcomes():
    assert recipes.collapse_verdict(_attempt([0, 0, 0], [False] * 3)) == "it did not reproduce the collapsed state at all"
    assert recipes.collapse_verdict(_attempt([0, 2, 0], [False] * 3)).startswith(
        "it reproduced the collapsed state during training, but not the failure to leave it")
    assert recipes.collapse_verdict(_attempt([3, 2, 0], [True, True, False])) == \
        "it reproduced the failure: 2 member(s) were still collapsed at their best checkpoint"


def test_the_collapse_table_shows_each_members_check():
    results = {"members": {
        "ensemble_model_0": {"collapse_on_val": {"collapsed": False, "lost_classes": [], "dominant_share": 0.31234}},
        "ensemble_model_1": {"collapse_on_val": {"collapsed": True, "lost_classes": [0, 2], "dominant_share": 0.7}}}}
    table = report.collapse_flags(results, ["Animation", "Flat_Content", "Gaming", "Natural_Content"])
    assert list(table.index) == ["ensemble_model_0", "ensemble_model_1"]
    assert table.loc["ensemble_model_0"].tolist() == [False, "none", 0.312]
    assert table.loc["ensemble_model_1"].tolist() == [True, "Animation, Gaming", 0.7]


def test_glue_ci_glues_the_value_and_both_bounds(monkeypatch):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: glued.update({name: (value, display)}))
    report.glue_ci("gain", (1.5, -0.5, 3.0))
    report.glue_ci("loso_held", (80.0, 70.0, 90.0), value_suffix="_f1")
    assert glued == {"gain": (1.5, False), "gain_lo": (-0.5, False), "gain_hi": (3.0, False),
                     "loso_held_f1": (80.0, False), "loso_held_lo": (70.0, False), "loso_held_hi": (90.0, False)}
