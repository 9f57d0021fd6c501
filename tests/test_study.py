"""The book's study code on small inputs: anomaly, experiments, recipes and report, each against a hand-made case."""

from pathlib import Path

import numpy as np
import pytest

from vidstudy.ensemble import soft_vote
from vidstudy.study import anomaly, experiments, recipes, report

NAMES = ["Animation", "Flat_Content", "Gaming", "Natural_Content"]


def _probs(rows):
    p = np.asarray(rows, float)
    return p / p.sum(-1, keepdims=True)


def test_suppression_scales_one_member_one_class_and_renormalises():
    probs = np.stack([_probs([[4, 2, 2, 2], [1, 1, 1, 7]]), _probs([[5, 1, 2, 2], [2, 2, 2, 4]])])
    out = anomaly.suppress_class(probs, 0, 0, factor=0.5)
    np.testing.assert_allclose(out[0], _probs([[2, 2, 2, 2], [0.5, 1, 1, 7]]))
    np.testing.assert_array_equal(out[1], probs[1])  # the other member is untouched
    np.testing.assert_array_equal(probs[0], _probs([[4, 2, 2, 2], [1, 1, 1, 7]]))  # and the input too


def test_unconfident_and_confidently_wrong_change_only_the_class_calls():
    probs = np.stack([_probs([[7, 1, 1, 1], [1, 7, 1, 1]])])
    flat = anomaly.unconfident(probs, 0, 0)
    np.testing.assert_allclose(flat[0, 0], 0.25)
    np.testing.assert_array_equal(flat[0, 1], probs[0, 1])
    wrong = anomaly.confidently_wrong(probs, 0, 0, 2, confidence=0.91)
    np.testing.assert_allclose(wrong[0, 0], [0.03, 0.03, 0.91, 0.03])
    np.testing.assert_array_equal(wrong[0, 1], probs[0, 1])


def test_prediction_changes_counts_fixed_broken_and_other():
    labels = np.array([0, 1, 2, 0, 3, 1, 3])
    before = np.array([0, 0, 0, 0, 3, 2, 0])  # right, false Animation x2, right, right, wrong, false Animation
    after = np.array([2, 1, 0, 0, 1, 1, 1])  # broken, fixed, unchanged, unchanged, moved, moved, moved (still wrong)
    moves = anomaly.prediction_changes(labels, before, after, 0)
    assert (moves["changed"], moves["fixed"], moves["broken"], moves["other"]) == (5, 1, 1, 3)
    assert moves["precision_before"] == pytest.approx(100 * 2 / 5) and moves["recall_before"] == pytest.approx(100)
    assert moves["precision_after"] == pytest.approx(100 * 1 / 2) and moves["recall_after"] == pytest.approx(50)


def test_most_confused_with_counts_the_mistakes_then_the_lean():
    labels = np.array([0, 0, 0, 1])
    probs = np.stack([_probs([[1, 1, 5, 1], [1, 1, 5, 1], [1, 6, 1, 1], [1, 5, 1, 1]])])
    assert anomaly.most_confused_with(probs, labels, 0) == 2  # two mistakes towards Gaming, one towards Flat_Content
    right = np.stack([_probs([[5, 1, 3, 1], [5, 1, 2, 1], [5, 2, 2, 1], [1, 5, 1, 1]])])
    assert anomaly.most_confused_with(right, labels, 0) == 2  # never wrong: the class it leans to


def test_robustness_sweep_matches_a_hand_count():
    labels = np.array([0, 0, 1, 2])
    member = _probs([[8, 1, 1, 1], [8, 1, 1, 1], [1, 8, 1, 1], [1, 1, 8, 1]])
    probs = np.stack([member, member, member])
    rows = anomaly.robustness_sweep(probs, labels, NAMES, 0, 2)
    assert sorted(rows) == [(1, "confidently wrong"), (1, "unconfident"), (2, "confidently wrong"), (2, "unconfident")]
    assert rows[(2, "unconfident")]["Animation F1"] == pytest.approx(100)  # the third member still decides
    # two of three members send the Animation videos to Gaming with 0.97: the vote follows them
    assert rows[(2, "confidently wrong")]["Animation F1"] == pytest.approx(0)
    both_wrong = anomaly.confidently_wrong(anomaly.confidently_wrong(probs, 0, 0, 2), 1, 0, 2)
    assert soft_vote(both_wrong).argmax(1).tolist() == [2, 2, 1, 2]


def test_multiplicity_and_power_on_planted_changes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    base = np.where(rng.random(2000) < 0.7, labels, rng.integers(0, 4, 2000))
    better = np.where(rng.random(2000) < 0.5, labels, base)  # a large, real improvement
    same = base.copy()
    same[:4] = (same[:4] + 1) % 4  # next to no change
    exps = [experiments.compare(n, "", labels, base, p, NAMES, "", n_boot=200) for n, p in (("better", better), ("same", same))]
    experiments.adjust_for_multiplicity(exps, labels, base, 4, n_boot=200)
    holm = {e["name"]: e["vs_baseline"]["holm"] for e in exps}
    assert holm["better"]["survives"] and not holm["same"]["survives"]
    lo, hi = holm["better"]["simultaneous_ci"][1:]
    raw = exps[0]["vs_baseline"]["macro_f1_diff"]
    assert lo < raw[1] and hi > raw[2] and lo > 0  # wider than the 95 % CI, and still clear of zero
    power = experiments.power(exps, labels, base, 4, sizes=(250, 1000), n_boot=200)
    widths = power["half_widths"]["better"]
    assert power["sizes"] == [250, 1000, 2000] and widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(np.sqrt(2000 / 250), rel=0.25)  # the square-root law


def test_bundled_differences_come_from_the_configs():
    table = recipes.bundled_differences()
    assert table.loc["model.masked", "isolated by"] == "original + masking"
    assert table.loc["train.schedule", "isolated by"] == "original + schedule"
    assert table.loc["train.balance", "isolated by"] == "original + single rebalancer"
    bundled = set(table.index[table["isolated by"] == "bundled: not ablated"])
    assert bundled == {"train.lr", "train.weight_decay", "train.batch_size", "train.monitor"}
    assert table.loc["train.lr", "original"] == "0.001" and table.loc["train.lr", "improved"] == "0.002"


def test_epochs_collapsed_and_time_to_fraction():
    history = {"collapsed_classes": [[0, 1], [], [2], []], "val_macro_f1": [0.2, 0.5, 0.9, 1.0],
               "epoch_times": [1.0, 2.0, 3.0, 4.0]}
    assert recipes.epochs_collapsed(history) == 2
    assert recipes.time_to_fraction(history, 0.9) == pytest.approx(6.0)  # first epoch at >= 0.9 of 1.0 is the third


def test_parameters_table_shows_what_acts_and_no_machine_path(tmp_path, monkeypatch):
    from vidstudy.config import build

    monkeypatch.chdir(tmp_path)
    table = report.parameters_table({"data_dir": "", "run folder": tmp_path / "runs" / "x", "epochs": 0,
                                     "elsewhere": Path("/opt/data")}, build("cpu"))
    shown = dict(zip(table["parameter"], table["value"]))
    assert shown == {"data_dir": "(default)", "run folder": "runs/x", "epochs": "0 (the preset's: 10)",
                     "elsewhere": "/opt/data"}


def test_class_difficulty_ranks_by_the_ensemble_and_averages_members():
    table = lambda f1s: {"classes": {c: {"f1": f} for c, f in zip(NAMES, f1s)}}  # noqa: E731
    results = {"class_names": NAMES, "methods": {"soft_vote": {"table": table([80, 90, 70, 95])}},
               "members": {"m0": {"test": {"table": table([60, 80, 70, 90])}},
                           "m1": {"test": {"table": table([80, 100, 50, 90])}}}}
    frame = report.class_difficulty(results)
    assert list(frame.index) == ["Gaming", "Animation", "Flat_Content", "Natural_Content"]
    assert frame.loc["Gaming", "mean member test F1 (%)"] == 60 and frame.loc["Animation", "ensemble test F1 (%)"] == 80
