import numpy as np
import pytest

from vidstudy.calibration import ece, fit_temperature, softmax
from vidstudy.ensemble import (
    fit_class_conditional_tta,
    hard_vote,
    leave_one_out,
    select_members,
    soft_vote,
    tta_ensemble,
    weighted_vote,
)
from vidstudy.errors import ParameterError
from vidstudy.metrics import bootstrap_ci, paired_comparison
from vidstudy.stacking import fit_class_member_weights


def test_seed_page_worked_example():
    # An Animation video: model 1 gives Animation 0.01, models 2-4 give 0.87.
    members = np.array([[0.01, 0.33, 0.33, 0.33], [0.87, 0.05, 0.04, 0.04],
                        [0.87, 0.05, 0.04, 0.04], [0.87, 0.05, 0.04, 0.04]])[:, None, :]
    avg = soft_vote(members)[0]
    assert avg[0] == pytest.approx(0.655)
    assert avg.argmax() == 0


def test_votes():
    p = np.array([[[0.6, 0.4]], [[0.4, 0.6]], [[0.45, 0.55]]])  # [M=3, N=1, C=2]
    assert hard_vote(p).tolist() == [1]
    assert soft_vote(p)[0].argmax() == 1
    assert weighted_vote(p, [10, 1, 1])[0].argmax() == 0
    tie = np.array([[[0.9, 0.1]], [[0.3, 0.7]]])
    assert hard_vote(tie).tolist() == [0]  # tie broken by the soft vote (0.6 vs 0.4)
    with pytest.raises(ParameterError, match="weights must be 3 non-negative numbers"):
        weighted_vote(p, [1, -1, 1])
    assert len(leave_one_out(p)) == 3 and np.allclose(leave_one_out(p)[0], soft_vote(p[1:]))


def test_tta_mean_over_views_then_members():
    probs = np.random.default_rng(0).dirichlet(np.ones(4), size=(3, 5, 7))  # [M, V, N, C]
    np.testing.assert_allclose(tta_ensemble(probs), probs.mean(axis=(0, 1)))
    np.testing.assert_allclose(tta_ensemble(probs, [0, 2]), probs[:, [0, 2]].mean(axis=(0, 1)))


def test_collapsed_member_is_dropped_on_validation():
    y = np.repeat(np.arange(4), 10)
    good = np.eye(4)[y] * 0.7 + 0.075
    collapsed = np.tile([0.1, 0.1, 0.7, 0.1], (40, 1))
    assert select_members(np.stack([good, collapsed, good]), y) == [0, 2]


def test_class_conditional_tta_spends_views_only_where_unsure():
    rng = np.random.default_rng(0)
    n, c, v = 400, 4, 5
    y = rng.integers(0, c, n)
    confident = rng.random(n) < 0.6
    base = np.where(confident[:, None], np.eye(c)[y] * 0.9 + 0.025, rng.dirichlet(np.ones(c), n))
    probs = np.empty((1, v, n, c))
    probs[0, 0] = base
    probs[0, 1:] = np.eye(c)[y] * 0.6 + 0.1  # the other views are right, but only help when averaged in
    policy = fit_class_conditional_tta(probs, y)
    combined, views = policy.apply(probs)
    acc = np.mean(combined.argmax(1) == y)
    # about as good as full TTA (a view costs a little, so a video may be traded for many views) ...
    assert acc >= np.mean(tta_ensemble(probs).argmax(1) == y) - 0.01
    assert acc > np.mean(base.argmax(1) == y) + 0.1  # ... far better than no TTA ...
    assert 1 <= views.mean() < v - 1  # ... at a fraction of the views
    assert np.all(views[confident & (base.max(1) > 0.8)] == 1)


def test_stacking_recovers_a_planted_class_member_weighting():
    rng = np.random.default_rng(0)
    n, c = 600, 4
    y = rng.integers(0, c, n)
    noise = lambda: rng.dirichlet(np.ones(c), n)  # noqa: E731
    # member A knows classes 0 and 1, member B knows 2 and 3; each is noise elsewhere
    a = np.where(np.isin(y, [0, 1])[:, None], np.eye(c)[y] * 0.8 + 0.05, noise())
    b = np.where(np.isin(y, [2, 3])[:, None], np.eye(c)[y] * 0.8 + 0.05, noise())
    a[:, 2:] *= 0.2
    b[:, :2] *= 0.2
    members = np.stack([a, b]) / np.stack([a, b]).sum(-1, keepdims=True)
    w = fit_class_member_weights(members, y).weights
    assert w.shape == (2, c)
    np.testing.assert_allclose(w.sum(0), 1.0, atol=1e-6)  # each class's weights sum to one over the members
    # the planted weighting, class by class: A carries classes 0 and 1, B carries 2 and 3
    for cls, expert in ((0, 0), (1, 0), (2, 1), (3, 1)):
        assert w[expert, cls] > 0.7 and w[1 - expert, cls] < 0.3, (cls, w[:, cls])


def _store(split, rng, n, labels=None, members=3, views=("original", "reverse", "speed_up", "speed_down")):
    from vidstudy.predictions import Predictions

    labels = rng.integers(0, 4, n) if labels is None else labels
    logits = rng.normal(size=(members, len(views), n, 4)) + 2.0 * np.eye(4)[labels]  # informative, imperfect
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return Predictions(split, probs, logits, labels, [f"{split}-{i}" for i in range(n)], None, list(views),
                       [f"ensemble_model_{m}" for m in range(members)],
                       ["Animation", "Flat_Content", "Gaming", "Natural_Content"])


def test_nothing_fitted_sees_the_test_labels():
    """The whole recombination with the test labels permuted: everything selected or fitted (kept members,
    class-conditional thresholds, stacking, per-class weights, temperatures) and every test prediction is
    identical; only the scores computed against the labels change."""
    import dataclasses

    from vidstudy.evaluate import recombine

    rng = np.random.default_rng(1)
    val, test = _store("val", rng, 240), _store("test", rng, 160)
    shuffled = dataclasses.replace(test, labels=np.random.default_rng(2).permutation(test.labels))
    a, b = recombine(val, test, n_boot=20), recombine(val, shuffled, n_boot=20)
    for name, method in a["methods"].items():
        assert method["test_predictions"] == b["methods"][name]["test_predictions"], name
    def fitted(r):
        return (r["methods"]["soft_vote_selected"]["members"], r["methods"]["class_conditional_tta"]["thresholds"],
                r["methods"]["stacking"]["cv_on_val"], r["methods"]["class_member_weights"]["weights"],
                {k: v["temperature"] for k, v in r["calibration"].items()},
                {m: v["kept"] for m, v in r["members"].items()})
    assert fitted(a) == fitted(b)
    assert a["methods"]["soft_vote"]["table"] != b["methods"]["soft_vote"]["table"]  # the labels did change


def test_ece_and_temperature_scaling():
    rng = np.random.default_rng(0)
    n = 20000
    probs = rng.dirichlet(np.ones(4) * 0.5, n)
    labels = np.array([rng.choice(4, p=p) for p in probs])  # labels drawn from the probabilities: calibrated
    assert ece(probs, labels) < 0.02
    logits = rng.normal(size=(n, 4))
    y = np.array([rng.choice(4, p=p) for p in softmax(logits)])
    over = logits * 4  # deliberately over-confident
    t = fit_temperature(over, y)
    assert t == pytest.approx(4, rel=0.1)
    assert ece(softmax(over, t), y) < ece(softmax(over), y) / 3


def test_bootstrap_ci_contains_the_point_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.8, y, rng.integers(0, 4, 300))
    ci = bootstrap_ci(y, pred, 4, n_boot=500, seed=3)
    for point, lo, hi in [ci["accuracy"], ci["macro_f1"], *ci["per_class_f1"]]:
        assert lo <= point <= hi
    assert ci == bootstrap_ci(y, pred, 4, n_boot=500, seed=3)
    assert ci != bootstrap_ci(y, pred, 4, n_boot=500, seed=4)
    assert ci["accuracy"][0] == pytest.approx(100 * np.mean(y == pred))


def test_paired_comparison():
    y = np.zeros(100, int)
    a = np.zeros(100, int)
    b = a.copy()
    b[:30] = 1  # b is wrong on 30 videos where a is right
    r = paired_comparison(y, a, b, 2, n_boot=200)
    assert r["accuracy_diff"][0] == pytest.approx(-30)
    assert r["accuracy_diff"][1] <= -30 <= r["accuracy_diff"][2]
    assert r["mcnemar"]["only_a_right"] == 30 and r["mcnemar"]["only_b_right"] == 0
    assert r["mcnemar"]["p_value"] < 1e-6
    assert paired_comparison(y, a, a, 2, n_boot=50)["mcnemar"]["p_value"] == 1.0


def test_holm_matches_the_step_down_definition():
    from vidstudy.metrics import holm

    # m = 4: sorted p 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5
    assert holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0]) and holm([0.2, 0.4]) == pytest.approx([0.4, 0.4])


def test_bootstrap_p_value_separates_a_real_change_from_none():
    from vidstudy.metrics import paired_comparison

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    a = np.where(rng.random(400) < 0.7, y, (y + 1) % 4)
    better = np.where(rng.random(400) < 0.5, y, a)  # fixes about half of a's mistakes
    assert paired_comparison(y, a, better, 4, n_boot=500)["macro_f1_p_value"] < 0.01
    assert paired_comparison(y, a, a, 4, n_boot=500)["macro_f1_p_value"] == 1.0
