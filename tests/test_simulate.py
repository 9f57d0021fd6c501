import h5py
import numpy as np
import pytest

from vidstudy.errors import ParameterError
from vidstudy.features import SPLITS, FeatureFile, feature_file_name, load_splits
from vidstudy.probe import run_probe
from vidstudy.simulate import SHAPES, SUBCATEGORIES, shape_config, simulate


def _arrays(folder):
    out = {}
    for split in SPLITS:
        with h5py.File(folder / feature_file_name(split)) as f:
            out[split] = {k: f[k][()] for k in f}
    return out


def test_same_seed_gives_identical_arrays(tmp_path, smoke_dir):
    simulate(tmp_path / "again", seed=0, shape="smoke")
    simulate(tmp_path / "other", seed=1, shape="smoke")
    a, b, c = _arrays(smoke_dir), _arrays(tmp_path / "again"), _arrays(tmp_path / "other")
    for split in SPLITS:
        for key in a[split]:
            if a[split][key].dtype.kind == "O":  # strings
                assert a[split][key].tolist() == b[split][key].tolist(), (split, key)
            else:
                assert a[split][key].tobytes() == b[split][key].tobytes(), (split, key)
        assert a[split]["features"].tobytes() != c[split]["features"].tobytes()


def test_smoke_files_follow_the_schema(smoke_dir):
    files = load_splits(smoke_dir)
    cfg = SHAPES["smoke"]
    for split, ff in files.items():
        assert len(ff) == cfg.split_sizes[split]
        assert ff.shape[1:] == (cfg.max_frames, cfg.feature_dim)
        assert ff.multi_scale and ff.subcategories is not None and len(set(ff.video_ids)) == len(ff)
        assert ff.simulation["shape"] == "smoke" and ff.simulation["seed"] == 0
        x = ff.padded()
        assert x.min() >= 0.0  # post-ReLU-like features
        assert np.all(x[np.arange(x.shape[1])[None, :] >= ff.num_frames[:, None]] == 0)
    assert len(set(files["train"].num_frames)) > 3  # variable lengths


def test_subcategories_are_at_least_four_per_class():
    assert set(SUBCATEGORIES) == {"Animation", "Flat_Content", "Gaming", "Natural_Content"}
    assert all(len(subs) >= 4 for subs in SUBCATEGORIES.values())
    assert {"3d_cgi", "motion_graphics", "anime", "cartoon"} <= {s.name for s in SUBCATEGORIES["Animation"]}


def test_paper_shape_has_the_original_sizes(tmp_path):
    cfg = SHAPES["paper"]
    assert cfg.max_frames == 73 and cfg.feature_dim == 1280
    assert dict(cfg.split_sizes) == {"train": 2622, "val": 737, "test": 412}
    # the generator at the paper's T and D, with few videos
    small = shape_config("paper", split_sizes={"train": 8, "val": 8, "test": 8}, fixed_class_counts={})
    simulate(tmp_path, seed=3, shape=small)
    ff = FeatureFile(tmp_path / feature_file_name("val"))
    assert ff.shape == (8, 73, 1280) and ff.num_frames.max() <= 73


def test_default_shape_sizes():
    cfg = SHAPES["default"]
    assert cfg.max_frames == 64 and cfg.feature_dim == 256
    assert dict(cfg.split_sizes) == {"train": 2000, "val": 600, "test": 3000}
    assert all(len(set(counts)) == 1 for counts in cfg.fixed_class_counts.values())  # balanced val and test


def test_bad_simulation_parameters(tmp_path):
    with pytest.raises(ParameterError, match="shape must be one of"):
        simulate(tmp_path, shape="huge")
    with pytest.raises(ParameterError, match="seed must be a non-negative integer"):
        simulate(tmp_path, seed=-1, shape="smoke")
    with pytest.raises(ParameterError, match="unknown simulation parameter"):
        shape_config("smoke", colour=3)
    assert list(tmp_path.iterdir()) == []


def test_frame_order_carries_signal_and_animation_is_hardest(default_dir):
    files = load_splits(default_dir)
    mean = run_probe(files["train"], files["val"], "mean")
    temporal = run_probe(files["train"], files["val"], "temporal")
    shuffled = run_probe(files["train"], files["val"], "temporal", shuffle_seed=0)
    # the time-averaged probe does not solve the task, and Animation is its hardest class
    assert mean["macro_f1"] < 0.85
    assert min(mean["per_class_f1"], key=mean["per_class_f1"].get) == "Animation"
    # order statistics add a lot, and shuffling frames in time takes it away again
    assert temporal["macro_f1"] > mean["macro_f1"] + 0.08
    assert shuffled["macro_f1"] < temporal["macro_f1"] - 0.08
