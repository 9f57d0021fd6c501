import json

import h5py
import numpy as np
import pytest
from conftest import ORIGINAL_D, ORIGINAL_T, original_arrays, write_plain_h5

from vidstudy.errors import FeatureFileError
from vidstudy.features import (
    STUDY_CATEGORIES,
    FeatureFile,
    dequantize,
    feature_file_name,
    load_splits,
    write_feature_file,
)


def test_plain_h5py_file_in_original_schema_opens(tmp_path):
    arrays = original_arrays()
    path = write_plain_h5(tmp_path / "test_features_multiscale.h5", arrays)
    ff = FeatureFile(path)
    assert ff.shape == (8, ORIGINAL_T, ORIGINAL_D)
    assert ff.category_mapping == STUDY_CATEGORIES
    assert ff.class_names == ["Animation", "Flat_Content", "Gaming", "Natural_Content"]
    assert ff.multi_scale is True
    assert ff.subcategories is None and ff.video_ids is None and ff.simulation is None
    np.testing.assert_array_equal(ff.labels, arrays["labels"])
    for i in range(len(ff)):
        np.testing.assert_array_equal(ff.frames(i), arrays["features"][i, : arrays["num_frames"][i]])


def test_round_trip_with_extras(tmp_path):
    arrays = original_arrays(n=6, t=10, d=5)
    subs = ["cartoon", "slideshow", "first_person_hud", "wildlife", "anime", "chart_map"]
    ids = [f"v{i}" for i in range(6)]
    path = write_feature_file(tmp_path / "x.h5", **arrays, subcategories=subs, video_ids=ids)
    ff = FeatureFile(path)
    assert ff.subcategories == subs and ff.video_ids == ids
    np.testing.assert_array_equal(ff.padded(), arrays["features"])
    np.testing.assert_array_equal(ff.num_frames, arrays["num_frames"])
    with h5py.File(path) as f:
        assert f["features"].dtype == np.float32 and f["labels"].dtype == np.int64
        assert f["num_frames"].dtype == np.int32 and f["features"].compression == "gzip"
        assert json.loads(f.attrs["category_mapping"]) == STUDY_CATEGORIES
        assert int(f.attrs["num_videos"]) == 6 and int(f.attrs["feature_dim"]) == 5
    # nothing but the file itself is left in the folder
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def test_lazy_path_reads_the_same_frames(tmp_path):
    arrays = original_arrays(n=6, t=12, d=7)
    path = write_feature_file(tmp_path / "x.h5", **arrays)
    eager, lazy = FeatureFile(path), FeatureFile(path, memory_budget=0)
    assert eager.in_memory and not lazy.in_memory
    for i in range(6):
        np.testing.assert_array_equal(eager.frames(i), lazy.frames(i))
    np.testing.assert_array_equal(eager.padded(), lazy.padded())
    lazy.close()


YT8M = {"scale": 4 / 255, "offset": 4 / 512 - 2}


def _quantized(n=6, t=9, d=5, seed=0):
    rng = np.random.default_rng(seed)
    a = original_arrays(n=n, t=t, d=d)
    q = rng.integers(0, 256, (n, t, d), dtype=np.uint8)
    q[np.arange(t)[None, :] >= a["num_frames"][:, None]] = 7  # padding holds values, which must read as 0
    return {**a, "features": q}


def test_the_quantized_encoding_reads_back_as_the_float32_file_eagerly_and_lazily(tmp_path):
    a = _quantized()
    path = write_feature_file(tmp_path / "q.h5", **a, quantization=YT8M)
    by_hand = (a["features"].astype(np.float32) * np.float32(4 / 255) + np.float32(4 / 512 - 2)).astype(np.float32)
    by_hand[np.arange(9)[None, :] >= a["num_frames"][:, None]] = 0
    float_file = FeatureFile(write_feature_file(tmp_path / "f.h5", **{**a, "features": by_hand}))
    eager, lazy = FeatureFile(path), FeatureFile(path, memory_budget=0)
    assert eager.in_memory and not lazy.in_memory and eager.quantization == YT8M and eager.dtype == "uint8"
    np.testing.assert_array_equal(eager.padded(), float_file.padded())
    np.testing.assert_array_equal(lazy.padded(), float_file.padded())
    for i in range(len(a["labels"])):
        np.testing.assert_array_equal(lazy.frames(i), float_file.frames(i))
        np.testing.assert_array_equal(eager.frames(i), float_file.frames(i))
    assert float(lazy.frames(0).max()) <= 2 and float(lazy.frames(0).min()) >= -2
    lazy.close()
    with h5py.File(path) as f:
        assert f["features"].dtype == np.uint8  # a quarter of float32 on disk
    np.testing.assert_array_equal(dequantize(a["features"][:, :3], a["num_frames"], None), a["features"][:, :3])


@pytest.mark.parametrize("case, attrs, expected", [
    ("no attribute", {}, "'features' is uint8 but the file has no 'quantization' attribute"),
    ("not numbers", {"quantization": json.dumps({"scale": "x", "offset": 0})}, "has scale 'x', expected a finite number"),
    ("zero scale", {"quantization": json.dumps({"scale": 0, "offset": 0})}, "has scale 0.0, expected > 0"),
    ("other keys", {"quantization": json.dumps({"scale": 1})}, "must hold exactly 'scale' and 'offset'"),
])
def test_a_malformed_quantized_file_is_one_sentence(tmp_path, case, attrs, expected):
    path = write_plain_h5(tmp_path / "bad.h5", _quantized(n=8, t=6, d=3), attrs=attrs)
    with pytest.raises(FeatureFileError, match=expected):
        FeatureFile(path)


def test_float_features_with_a_quantization_attribute_are_refused(tmp_path):
    path = write_plain_h5(tmp_path / "bad.h5", original_arrays(**SMALL), attrs={"quantization": json.dumps(YT8M)})
    with pytest.raises(FeatureFileError, match="'features' has dtype float32, expected uint8"):
        FeatureFile(path)
    with pytest.raises(FeatureFileError, match="'features' has dtype float32, expected uint8"):
        write_feature_file(tmp_path / "w.h5", **original_arrays(**SMALL), quantization=YT8M)
    assert not (tmp_path / "w.h5").exists()


def test_missing_mapping_falls_back_with_warning(tmp_path):
    path = write_plain_h5(tmp_path / "x.h5", original_arrays(t=6, d=3), drop=("category_mapping",))
    with pytest.warns(UserWarning, match="category_mapping"):
        ff = FeatureFile(path)
    assert ff.category_mapping == STUDY_CATEGORIES


def _nan_in_valid_frames():
    a = original_arrays(t=6, d=3)
    a["features"][2, 0, 1] = np.nan
    return a


def _inf_in_padding_is_fine():
    a = original_arrays(t=6, d=3)
    a["num_frames"][1] = 2
    a["features"][1, 4, 0] = np.inf
    return a


SMALL = dict(t=6, d=3)
MALFORMED = {
    "dataset_missing": (dict(drop=("labels",)), "required dataset 'labels' is missing"),
    "features_rank": (dict(features=np.zeros((8, 6), np.float32)), "'features' has rank 2"),
    "features_dtype": (dict(features=np.zeros((8, 6, 3), np.int32)), "'features' has dtype int32"),
    "labels_dtype": (dict(labels=np.zeros(8, np.float32)), "'labels' has dtype float32"),
    "num_frames_rank": (dict(num_frames=np.ones((8, 1), np.int32)), "'num_frames' has rank 2"),
    "n_disagrees": (dict(labels=np.zeros(7, np.int64)), "'labels' has 7 entries but 'features' has 8"),
    "label_outside_mapping": (dict(labels=np.array([0, 1, 2, 3, 4, 0, 1, 2])), "'labels' holds 4 at video 4"),
    "negative_label": (dict(labels=np.array([0, -1, 2, 3, 0, 0, 1, 2])), "'labels' holds -1"),
    "num_frames_zero": (dict(num_frames=np.array([6, 0, 3, 3, 3, 3, 3, 3], np.int32)), "'num_frames' holds 0 at video 1"),
    "num_frames_above_T": (dict(num_frames=np.array([6, 7, 3, 3, 3, 3, 3, 3], np.int32)),
                           "'num_frames' holds 7 at video 1, outside 1..6"),
    "nan_in_valid_frames": (dict(arrays=_nan_in_valid_frames()),
                            "NaN or infinite values inside the valid frames (video 2, step 0)"),
    "mapping_not_json": (dict(attrs={"category_mapping": "{Animation: 0"}), "'category_mapping' is not valid JSON"),
    "mapping_not_one_to_one": (dict(attrs={"category_mapping": json.dumps({"A": 0, "B": 0, "C": 2, "D": 3})}),
                               "one-to-one onto 0..3"),
    "mapping_gap": (dict(attrs={"category_mapping": json.dumps({"A": 0, "B": 1, "C": 2, "D": 5})}), "one-to-one onto 0..3"),
    "mapping_not_object": (dict(attrs={"category_mapping": json.dumps(["A", "B"])}), "must be a non-empty JSON object"),
    "feature_dim_disagrees": (dict(attrs={"feature_dim": 1280}), "attribute 'feature_dim' is 1280 but 'features' has D=3"),
    "num_videos_disagrees": (dict(attrs={"num_videos": 9}), "attribute 'num_videos' is 9 but 'features' has 8"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_refused_with_one_sentence(tmp_path, case):
    kwargs, expected = MALFORMED[case]
    kwargs = dict(kwargs)
    arrays = kwargs.pop("arrays", original_arrays(**SMALL))
    path = write_plain_h5(tmp_path / "bad.h5", arrays, **kwargs)
    with pytest.raises(FeatureFileError) as info:
        FeatureFile(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert expected in message
    assert "\n" not in message and message.endswith(".")


def test_inf_in_padding_is_not_an_error(tmp_path):
    path = write_plain_h5(tmp_path / "x.h5", _inf_in_padding_is_fine())
    assert len(FeatureFile(path)) == 8


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(FeatureFileError, match="feature file does not exist"):
        FeatureFile(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(FeatureFileError, match="junk.h5: not an HDF5 file"):
        FeatureFile(junk)


def test_writer_refuses_bad_arrays_and_writes_nothing(tmp_path):
    arrays = original_arrays(**SMALL)
    arrays["labels"][0] = 9
    with pytest.raises(FeatureFileError, match="'labels' holds 9"):
        write_feature_file(tmp_path / "x.h5", **arrays)
    assert list(tmp_path.iterdir()) == []


class _RowSource:
    """An array-like that hands out rows on request and records the requests."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.requests = array, array.shape, array.dtype, []

    def __getitem__(self, rows):
        self.requests.append((rows.start, rows.stop))
        return self.array[rows]


def test_writer_reads_an_array_like_block_by_block(tmp_path, monkeypatch):
    arrays = original_arrays(n=6, **SMALL)
    monkeypatch.setattr("vidstudy.features._VALUE_CHECK_BLOCK", 2 * SMALL["t"] * SMALL["d"] * 4)
    source = _RowSource(arrays["features"])
    write_feature_file(tmp_path / "lazy.h5", **{**arrays, "features": source})
    assert source.requests == [(0, 2), (2, 4), (4, 6)]
    write_feature_file(tmp_path / "whole.h5", **arrays)
    np.testing.assert_array_equal(FeatureFile(tmp_path / "lazy.h5").padded(), FeatureFile(tmp_path / "whole.h5").padded())


def test_writer_refuses_values_that_overflow_float32(tmp_path):
    arrays = original_arrays(**SMALL)
    features = arrays["features"].astype(np.float64)
    features[1, 0, 0] = 1e300
    with pytest.raises(FeatureFileError, match=r"NaN or infinite values inside the valid frames \(video 1, step 0\)"):
        write_feature_file(tmp_path / "x.h5", **{**arrays, "features": features})
    assert list(tmp_path.iterdir()) == []


def test_writer_failure_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "x.h5"
    write_feature_file(target, **original_arrays(**SMALL))
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(RuntimeError):
        write_feature_file(target, **original_arrays(n=4, **SMALL))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def test_load_splits_refuses_disagreeing_splits(tmp_path):
    for split in ("train", "val"):
        write_feature_file(tmp_path / feature_file_name(split), **original_arrays(**SMALL))
    write_feature_file(tmp_path / feature_file_name("test"), **original_arrays(t=6, d=4))
    with pytest.raises(FeatureFileError,
                       match=r"test_features_multiscale.h5: 'features' has D=4, disagreeing with the train split's D=3"):
        load_splits(tmp_path)
    other = {"Animation": 1, "Flat_Content": 0, "Gaming": 2, "Natural_Content": 3}
    write_feature_file(tmp_path / feature_file_name("test"), **original_arrays(**SMALL), category_mapping=other)
    with pytest.raises(FeatureFileError, match="'category_mapping' .* disagrees with the train split"):
        load_splits(tmp_path)
    assert set(load_splits(tmp_path, ("train", "val"))) == {"train", "val"}


def test_load_splits_names_a_missing_split(tmp_path):
    write_feature_file(tmp_path / feature_file_name("train"), **original_arrays(**SMALL))
    with pytest.raises(FeatureFileError, match="val_features_multiscale.h5: feature file does not exist"):
        load_splits(tmp_path)


def test_summary_counts(smoke_dir):
    s = FeatureFile(smoke_dir / feature_file_name("val")).summary()
    assert s["num_videos"] == 60 and s["videos_per_class"] == {
        "Animation": 15, "Flat_Content": 15, "Gaming": 15, "Natural_Content": 15}
    assert sum(sum(v.values()) for v in s["videos_per_subcategory"].values()) == 60
    assert s["num_frames"]["min"] >= 1 and s["num_frames"]["max"] <= s["max_frames"]
    assert s["size_on_disk_bytes"] > 0


def _file_with(tmp_path, build):
    """A small valid file, then ``build(f)`` changes it in place; returns its path."""
    path = write_plain_h5(tmp_path / "f.h5", original_arrays(**SMALL))
    with h5py.File(path, "r+") as f:
        build(f)
    return path


def _unwritten(f, n, t):
    """Replace the datasets by chunked ones claiming ``n`` videos of ``t`` frames, none of it written."""
    for name in ("features", "labels", "num_frames"):
        del f[name]
    f.create_dataset("features", shape=(n, t, 3), dtype="f4", chunks=(1, min(t, 1024), 3))
    f.create_dataset("labels", shape=(n,), dtype="i8", chunks=(min(n, 1024),))
    f.create_dataset("num_frames", shape=(n,), dtype="i4", chunks=(min(n, 1024),))
    f.attrs["num_videos"], f.attrs["max_frames"] = n, t


def _replace(name, link):
    def build(f):
        if f.get(name, getlink=True) is not None:
            del f[name]
        f[name] = link
    return build


FOREIGN_CONTENT = {
    "dangling_soft_link": (_replace("subcategories", h5py.SoftLink("/nowhere")), "'subcategories' is a SoftLink"),
    "soft_link_to_features": (_replace("labels", h5py.SoftLink("/num_frames")), "'labels' is a SoftLink"),
    "external_link_loop": (lambda f: _replace("features", h5py.ExternalLink(f.filename, "/features"))(f),
                           "'features' is a ExternalLink"),
    "claims_1e10_videos": (lambda f: _unwritten(f, 10**10, 6), "claims shape (10000000000, 6, 3), more than the file"),
    "claims_1e12_frames": (lambda f: _unwritten(f, 8, 10**12), "claims shape (8, 1000000000000, 3), more than the file"),
    "mapping_not_utf8": (lambda f: f.attrs.__setitem__("category_mapping", np.bytes_(b'{"\xff\xfe": 0}')),
                         "attribute 'category_mapping' is not UTF-8 text"),
}


@pytest.mark.parametrize("case", sorted(FOREIGN_CONTENT))
def test_links_claimed_sizes_and_foreign_text_are_refused_before_reading(tmp_path, capsys, case):
    from vidstudy.cli import main

    build, needle = FOREIGN_CONTENT[case]
    path = _file_with(tmp_path, build)
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vidstudy: error: {path}: ") and needle in err[0], err


def test_an_extraction_record_without_sampling_is_still_summarised(tmp_path, capsys):
    from vidstudy.cli import main

    path = _file_with(tmp_path, lambda f: f.attrs.__setitem__("extraction", json.dumps({"backbone": "mine"})))
    assert main(["inspect", str(path)]) == 0
    assert "extracted by  mine (no sampling recorded)" in capsys.readouterr().out
