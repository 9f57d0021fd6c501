"""Chapter 10's pieces: leaving sources out, the claims' verdicts, the simulator against real statistics."""

from collections import Counter

import numpy as np
import pytest

from vidstudy.errors import VidstudyError
from vidstudy.metrics import bootstrap_ci, bootstrap_statistic, macro_f1, paired_comparison, source_draws
from vidstudy.study import claims, crosssource, simcompare


def _pool(per_class=(5, 6, 7, 8), clips=7):
    sources, labels = [], []
    for c, n in enumerate(per_class):
        for s in range(n):
            sources += [f"c{c}:s{s}"] * clips
            labels += [c] * clips
    return {"sources": sources, "labels": np.array(labels)}


def test_the_folds_hold_out_every_source_exactly_once_and_every_class_in_each_fold():
    pool = _pool(per_class=(5, 7, 11, 16))
    folds = crosssource.folds(pool["sources"], pool["labels"])
    assert len(folds) == crosssource.FOLDS == 5
    held = [s for fold in folds for s in fold]
    assert sorted(held) == sorted(set(pool["sources"]))  # each source once
    for fold in folds:
        per_class = Counter(s.split(":")[0] for s in fold)
        assert set(per_class) == {"c0", "c1", "c2", "c3"}
        assert per_class["c0"] == 1 and per_class["c1"] in (1, 2) and per_class["c3"] in (3, 4)  # dealt in turn
    assert 7 <= min(map(len, folds)) <= max(map(len, folds)) <= 8  # 39 sources: the classes carry on where the last stopped
    assert crosssource.folds(pool["sources"], pool["labels"], seed=0) == folds  # fixed by the seed
    assert crosssource.folds(pool["sources"], pool["labels"], seed=1) != folds


def test_fold_rows_keep_held_out_sources_out_of_training_and_split_the_rest_by_source():
    pool = _pool()
    held = crosssource.folds(pool["sources"], pool["labels"])[3]
    idx = crosssource.fold_indices(pool, held, seed=0)
    sources = np.asarray(pool["sources"])
    assert not set(sources[idx["train"]]) & set(held) and not set(sources[idx["val"]]) & set(held)
    all_rows = np.concatenate(list(idx.values()))
    assert len(all_rows) == len(set(all_rows)) == len(sources)  # a partition of the clips
    test_in = [i for i in idx["test"] if sources[i] not in held]
    for source in set(sources) - set(held):  # each kept source: ceil(15 %) of 7 = 2 clips in test and in val
        assert sum(sources[i] == source for i in test_in) == 2
        assert sum(sources[i] == source for i in idx["val"]) == 2
    again, other = crosssource.fold_indices(pool, held, seed=0), crosssource.fold_indices(pool, held, seed=1)
    assert all(np.array_equal(idx[k], again[k]) for k in idx)  # fixed by the seed
    assert not all(np.array_equal(idx[k], other[k]) for k in idx)


def test_a_class_with_fewer_sources_than_folds_is_refused():
    pool = _pool(per_class=(4, 5, 6, 8))
    with pytest.raises(VidstudyError, match="class 0 has 4 sources; 5 folds stratified by class need at least 5"):
        crosssource.folds(pool["sources"], pool["labels"])


def _fold_results(held_right: bool, kept_right: bool):
    """Two classes of three sources; every clip predicted right or wrong as asked."""
    out = []
    for k in range(3):
        labels, sources, held = [], [], []
        for c in (0, 1):
            for s in range(3):
                labels += [c] * 4
                sources += [f"{c}:{s}"] * 4
                held += [s == k] * 4
        labels, held = np.array(labels), np.array(held)
        right = np.where(held, held_right, kept_right)
        pred = np.where(right, labels, 1 - labels)
        out.append({"labels": labels, "sources": sources, "held": held, "model": pred})
    return out


def test_source_bootstrap_measures_the_gap_between_seen_and_held_out_sources():
    r = crosssource.source_bootstrap(_fold_results(held_right=False, kept_right=True), "model", 2, n_boot=50)
    assert r["in_source"] == [100.0, 100.0, 100.0] and r["held_out"] == [0.0, 0.0, 0.0]
    assert r["gap"] == [100.0, 100.0, 100.0] and r["sources"] == 6
    same = crosssource.source_bootstrap(_fold_results(held_right=True, kept_right=True), "model", 2, n_boot=50)
    assert same["gap"] == [0.0, 0.0, 0.0]
    rows = crosssource.per_source(_fold_results(held_right=False, kept_right=True), "model", ["A", "B"])
    assert [r["held-out recall (%)"] for r in rows] == [0.0] * 6
    assert [r["mistaken for"] for r in rows] == ["B"] * 3 + ["A"] * 3


def test_source_draws_resample_whole_sources_within_each_class():
    pool = _pool(per_class=(3, 4, 5, 6), clips=5)
    labels, sources = pool["labels"], np.asarray(pool["sources"])
    draws = source_draws(labels, sources, 50, np.random.default_rng(0))
    for rows in draws:
        drawn = Counter(sources[rows])
        assert all(n % 5 == 0 for n in drawn.values())  # a drawn source brings all its clips, once per draw of it
        for c, n in enumerate((3, 4, 5, 6)):
            assert sum(v for s, v in drawn.items() if s.startswith(f"c{c}:")) == 5 * n  # as many draws as sources
    assert len({tuple(r) for r in draws}) > 40  # with replacement, and differently each time
    ten = source_draws(labels, sources, 5, np.random.default_rng(0), per_class=10)
    assert all(len(r) == 4 * 10 * 5 for r in ten)


def test_a_planted_bad_source_widens_the_source_interval_as_a_clip_interval_does_not():
    """Twelve sources of 20 clips a class, all right but one source wrong whole: resampling clips sees 240 nearly
    independent clips, resampling sources sees twelve, one of them bad."""
    y = np.repeat(np.arange(2), 240)
    sources = np.array([f"{c}:{k // 20}" for c, k in zip(y, np.tile(np.arange(240), 2))])
    good = y.copy()
    bad = np.where(sources == "0:0", 1, y)
    clip, by_source = bootstrap_ci(y, bad, 2, 500, seed=0), bootstrap_ci(y, bad, 2, 500, seed=0, groups=sources)
    assert clip["resampled"] == "videos" and by_source["resampled"] == "sources"
    assert clip["macro_f1"][0] == by_source["macro_f1"][0]
    width = lambda ci: ci["macro_f1"][2] - ci["macro_f1"][1]  # noqa: E731
    assert width(by_source) > 2 * width(clip)
    assert bootstrap_ci(y, good, 2, 100, groups=sources)["macro_f1"] == [100.0] * 3
    pair_clip = paired_comparison(y, good, bad, 2, 500)["macro_f1_diff"]
    pair_source = paired_comparison(y, good, bad, 2, 500, groups=sources)["macro_f1_diff"]
    assert pair_source[2] - pair_source[1] > 2 * (pair_clip[2] - pair_clip[1])
    assert pair_source[2] == 0.0  # a draw that leaves the bad source out changes nothing


def test_the_power_analyses_shrink_with_sources_and_name_the_sources_needed():
    pool = _pool(per_class=(8, 8), clips=6)
    y, sources = pool["labels"], np.asarray(pool["sources"])
    rng = np.random.default_rng(0)
    right = {s: rng.random() < 0.75 for s in set(pool["sources"])}  # each source right whole or wrong whole
    a = np.where([right[s] for s in sources], y, 1 - y)
    fixed = sorted(s for s, r in right.items() if not r)[:3]
    b = np.where(np.isin(sources, fixed), y, a)  # b also gets three of a's wrong sources right
    c = 2

    def diff(p, q):
        return lambda rows: 100 * (macro_f1(y[rows], q[rows], c) - macro_f1(y[rows], p[rows], c))

    inputs = {"y": y, "num_classes": c, "groups": sources, "pairs": {},
              "statistics": {k.key: diff(a, b) if k.key == "tta_helps" else (lambda rows: 0.0) for k in claims.CLAIMS}}
    rows = {r["key"]: r for r in claims.source_power(inputs, sizes=(3, 10, 30, 100), n_boot=200)}
    tta = rows["tta_helps"]
    assert tta["difference"] > 0 and tta["half_widths"] == sorted(tta["half_widths"], reverse=True)
    assert tta["sources_needed"] == next(m for m, w in zip(tta["sizes"], tta["half_widths"]) if w < tta["difference"])
    assert rows["stacking_helps"]["sources_needed"] is None  # no difference: no number of sources resolves it
    folds = [{"labels": y, "sources": sources, "held": np.ones(len(y), bool), "model": a}]
    widths = crosssource.held_out_power(folds, "model", c, sizes=(3, 10, 30, 100), n_boot=200)
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 3


def test_source_bootstrap_resamples_sources_not_clips():
    """One source of six all wrong: a clip bootstrap would almost never leave it out entirely, a source bootstrap
    leaves it out about a third of the time, so the upper bound of held-out F1 reaches 100."""
    res = _fold_results(held_right=True, kept_right=True)
    for r in res:
        bad = np.asarray(r["sources"]) == "0:0"
        r["model"] = np.where(bad & r["held"], 1 - r["labels"], r["model"])
    b = crosssource.source_bootstrap(res, "model", 2, n_boot=400, seed=1)
    assert b["held_out"][0] < 90 and b["held_out"][2] == 100.0


@pytest.mark.parametrize("point, p, direction, want", [
    (2.0, 0.01, 1, "holds"), (-2.0, 0.01, 1, "contradicted"), (2.0, 0.2, 1, "not resolved"),
    (-2.0, 0.01, -1, "holds"), (0.0, 0.001, 1, "not resolved")])
def test_verdicts(point, p, direction, want):
    assert claims.verdict(point, p, direction) == want


def test_bootstrap_statistic_gives_the_point_its_ci_and_a_p_value():
    x = np.r_[np.ones(60), np.zeros(40)]
    r = bootstrap_statistic(lambda rows: 100 * x[rows].mean() - 50, len(x), n_boot=500)
    assert r["ci"][0] == pytest.approx(10.0)
    assert r["ci"][1] < 10 < r["ci"][2]
    assert 0 < r["p_value"] < 0.2
    assert bootstrap_statistic(lambda rows: 0.0, 10, n_boot=20)["p_value"] == 1.0


def test_the_animation_gap_and_the_ece_reduction_on_planted_predictions():
    labels = np.repeat(np.arange(4), 10)
    pred = labels.copy()
    pred[:5] = 1  # half of Animation wrong
    gap = claims._animation_gap(labels, pred, 0, 4)(np.arange(40))
    f1_anim, f1_flat = 2 * 5 / (10 + 5), 2 * 10 / (10 + 15)
    assert gap == pytest.approx(100 * (f1_anim - f1_flat))
    probs = np.full((1, 40, 4), 0.01)
    probs[0, np.arange(40), labels] = 0.97  # right and confident: a temperature changes little
    assert abs(claims._ece_reduction(probs, probs, labels)(np.arange(40))) < 1e-9


def test_statistics_on_planted_features():
    x = np.zeros((4, 6, 3), np.float32)
    x[:, :, 0] = np.array([1, -1, 1, -1, 1, -1]) + 2  # alternating: lag-1 autocorrelation -1
    x[:, :, 1] = 3.0  # constant (and dimension 2 zero): no variance, left out of the average
    nf = np.array([6, 6, 6, 6])
    assert simcompare.autocorrelation(x, nf) == pytest.approx(-1.0)
    x[:, :, 2] = np.arange(6)  # a steady ramp
    c = np.arange(6) - 2.5
    ramp = np.mean(c[1:] * c[:-1]) / np.mean(c**2)
    assert simcompare.autocorrelation(x, nf) == pytest.approx((-1.0 + ramp) / 2)
    labels = np.array([0, 0, 1, 1])
    data = {"features": x + labels[:, None, None] * 5, "num_frames": nf, "labels": labels}
    stats = simcompare.statistics(data, data)
    assert stats["separability"] == 100.0
    valid = data["features"]
    assert stats["sparsity"] == pytest.approx(100 * np.mean(valid == 0))
    assert stats["scale"] == pytest.approx(np.sqrt(np.mean(valid.astype(np.float64) ** 2)))


def test_calibration_finds_the_grid_point_a_target_was_measured_at():
    grid = {"texture_noise": (0.1, 0.6), "style_spread": (0.4, 1.2)}
    target = simcompare.statistics(*simcompare.simulated(seed=3, scale=0.25, texture_noise=0.6, style_spread=1.2))
    rows = simcompare.calibrate(target, seed=3, scale=0.25, grid=grid)
    assert (rows[0]["texture_noise"], rows[0]["style_spread"]) == (0.6, 1.2) and rows[0]["distance"] == 0.0
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
