import numpy as np
import pytest
import torch

from vidstudy.data import AugmentConfig, VideoDataset, augment, collate, make_loader
from vidstudy.errors import ParameterError
from vidstudy.features import FeatureFile, feature_file_name


@pytest.fixture()
def train_file(smoke_dir):
    return FeatureFile(smoke_dir / feature_file_name("train"))


def test_collate_pads_to_the_longest_and_masks(train_file):
    ds = VideoDataset(train_file)
    items = [ds[i] for i in range(5)]
    batch = collate(items)
    lengths = [x.shape[0] for x, _ in items]
    assert batch.features.shape == (5, max(lengths), train_file.feature_dim)
    assert batch.lengths.tolist() == lengths
    assert batch.mask.sum(1).tolist() == lengths
    assert batch.labels.tolist() == [y for _, y in items]
    for i, (x, _) in enumerate(items):
        assert torch.equal(batch.features[i, : lengths[i]], x)
        assert torch.all(batch.features[i, lengths[i]:] == 0)


def test_evaluation_items_are_the_valid_frames(train_file):
    ds = VideoDataset(train_file)
    x, y = ds[3]
    np.testing.assert_array_equal(x.numpy(), train_file.frames(3))
    assert y == train_file.labels[3]


def test_augmentation_bounds():
    rng = np.random.default_rng(0)
    x = np.arange(40, dtype=np.float32)[:, None].repeat(3, 1)
    only_subset = AugmentConfig(subset_p=1.0, roll_p=0.0, noise_p=0.0)
    for _ in range(50):
        y = augment(x, rng, only_subset)
        assert 28 <= y.shape[0] <= 40  # 70-100 % of 40
        assert np.all(np.diff(y[:, 0]) > 0)  # ordered subset
    short = np.ones((6, 3), np.float32)
    assert augment(short, rng, only_subset).shape == (6, 3)  # at least 8 frames: untouched
    ten = np.arange(10, dtype=np.float32)[:, None]
    assert all(augment(ten, rng, only_subset).shape[0] >= 8 for _ in range(30))
    roll = augment(x, rng, AugmentConfig(subset_p=0.0, roll_p=1.0, noise_p=0.0))
    shift = int(roll[0, 0]) if roll[0, 0] < 4 else int(roll[0, 0]) - 40
    assert -3 <= shift <= 3 and np.array_equal(np.roll(x, -shift, 0), roll)
    noisy = augment(x, rng, AugmentConfig(subset_p=0.0, roll_p=0.0, noise_p=1.0, noise_std=0.01))
    assert noisy.shape == x.shape and 0 < np.abs(noisy - x).max() < 0.1


def test_bad_augment_parameters():
    with pytest.raises(ParameterError, match="subset_p must lie in"):
        AugmentConfig(subset_p=1.5)


def _epoch(loader):
    return [(b.features.clone(), b.labels.clone()) for b in loader]


@pytest.mark.parametrize("workers", [0, 2])
def test_augmented_loading_is_reproducible(train_file, workers):
    def run(seed):
        torch.manual_seed(seed)
        ds = VideoDataset(train_file, AugmentConfig(), seed=seed)
        return _epoch(make_loader(ds, 16, shuffle=True, num_workers=workers, seed=seed))

    a, b, c = run(1), run(1), run(2)
    assert len(a) == len(b)
    for (fa, la), (fb, lb) in zip(a, b):
        assert torch.equal(fa, fb) and torch.equal(la, lb)
    assert any(fa.shape != fc.shape or not torch.equal(fa, fc) for (fa, _), (fc, _) in zip(a, c))


def test_lazy_file_in_worker_processes(smoke_dir):
    lazy = FeatureFile(smoke_dir / feature_file_name("val"), memory_budget=0)
    eager = FeatureFile(smoke_dir / feature_file_name("val"))
    got = _epoch(make_loader(VideoDataset(lazy), 8, num_workers=2))
    want = _epoch(make_loader(VideoDataset(eager), 8))
    assert len(got) == len(want) == -(-len(eager) // 8)
    for (fa, la), (fb, lb) in zip(got, want):
        assert torch.equal(fa, fb) and torch.equal(la, lb)


def test_dataset_over_a_subset_of_indices(train_file):
    ds = VideoDataset(train_file, indices=[4, 2])
    assert len(ds) == 2 and ds.labels.tolist() == train_file.labels[[4, 2]].tolist()
    with pytest.raises(ParameterError, match="batch_size must be at least 1"):
        make_loader(ds, 0)
