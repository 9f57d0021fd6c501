import numpy as np
import pytest

from vidstudy.errors import ParameterError
from vidstudy.sampling import class_counts, class_weights, stratified_split, weighted_sampler


def labels_from_counts(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_class_weights_on_a_known_count_vector():
    labels = labels_from_counts([50, 100, 200, 650])  # N = 1000, C = 4
    np.testing.assert_allclose(class_weights(labels, 4), [5.0, 2.5, 1.25, 0.5])  # 0.385 clipped up
    rare = labels_from_counts([1, 300, 300, 399])
    np.testing.assert_allclose(class_weights(rare, 4), [10.0, 1000 / 1200, 1000 / 1200, 1000 / 1596])
    np.testing.assert_allclose(class_weights(labels_from_counts([5, 5, 0]), 3), [0.6666666, 0.6666666, 10.0], rtol=1e-6)
    assert class_counts(labels, 4).tolist() == [50, 100, 200, 650]


def test_weighted_sampler_balances_classes_and_is_seeded():
    labels = labels_from_counts([50, 100, 200, 650])
    w = class_weights(labels, 4, clip=(0.0, np.inf))
    draws = np.array(list(weighted_sampler(labels, w, seed=0, num_samples=20000)))
    share = np.bincount(labels[draws], minlength=4) / draws.size
    np.testing.assert_allclose(share, 0.25, atol=0.02)
    assert len(list(weighted_sampler(labels, w, seed=0))) == 1000
    assert list(weighted_sampler(labels, w, seed=3)) == list(weighted_sampler(labels, w, seed=3))


def test_stratified_split_preserves_subcategory_proportions():
    labels = labels_from_counts([100, 60])
    subs = ["a"] * 80 + ["b"] * 20 + ["c"] * 30 + ["d"] * 30
    train, val = stratified_split(labels, subs, val_fraction=0.2, seed=0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 160
    val_subs = [subs[i] for i in val]
    assert {s: val_subs.count(s) for s in "abcd"} == {"a": 16, "b": 4, "c": 6, "d": 6}
    again = stratified_split(labels, subs, val_fraction=0.2, seed=0)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(stratified_split(labels, subs, 0.2, seed=1)[1], val)


def test_stratified_split_parameters():
    with pytest.raises(ParameterError, match="val_fraction must lie strictly between 0 and 1"):
        stratified_split([0, 1], None, val_fraction=1.0)
    with pytest.raises(ParameterError, match="subcategories has 1 entries but labels has 2"):
        stratified_split([0, 1], ["x"])
