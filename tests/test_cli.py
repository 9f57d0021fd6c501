import json
import subprocess
import sys

import pytest
from conftest import original_arrays, write_plain_h5
from test_features import MALFORMED, SMALL

from vidstudy.features import feature_file_name


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vidstudy.cli", *map(str, args)], capture_output=True, text=True)


def test_simulate_then_inspect(tmp_path):
    r = run_cli("simulate", tmp_path, "--shape", "smoke", "--seed", "5")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(feature_file_name(s) for s in ("train", "val", "test"))
    r = run_cli("inspect", tmp_path / feature_file_name("train"))
    assert r.returncode == 0, r.stderr
    for text in ("videos (N)    160", "features (D)  32", "Animation", "videos per subcategory", "num_frames    min"):
        assert text in r.stdout
    r = run_cli("inspect", tmp_path / feature_file_name("val"), "--json")
    summary = json.loads(r.stdout)
    assert summary["num_videos"] == 60 and summary["videos_per_class"]["Gaming"] == 15


def test_probe_command(smoke_dir):
    import re

    from vidstudy.features import load_splits
    from vidstudy.probe import run_probe

    r = run_cli("probe", smoke_dir)
    assert r.returncode == 0, r.stderr
    files = load_splits(smoke_dir)
    for split in ("val", "test"):  # the printed numbers are the probe's, split by split
        expected = run_probe(files["train"], files[split], "mean")
        line = next(x for x in r.stdout.splitlines() if x.startswith(f"mean probe on {split}:"))
        accuracy, macro = map(float, re.search(r"accuracy ([\d.]+)  macro-F1 ([\d.]+)", line).groups())
        assert accuracy == pytest.approx(expected["accuracy"], abs=5e-4)
        assert macro == pytest.approx(expected["macro_f1"], abs=5e-4)
        assert f"Animation {expected['per_class_f1']['Animation']:.3f}" in line


@pytest.mark.parametrize("case", ["dataset_missing", "num_frames_above_T", "mapping_not_json", "nan_in_valid_frames"])
def test_malformed_file_gives_one_line_and_no_traceback(tmp_path, case):
    kwargs, expected = MALFORMED[case]
    kwargs = dict(kwargs)
    path = write_plain_h5(tmp_path / "bad.h5", kwargs.pop("arrays", original_arrays(**SMALL)), **kwargs)
    r = run_cli("inspect", path)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vidstudy: error: {path}: ") and expected in lines[0]


def test_missing_file_and_warning_are_one_line(tmp_path):
    r = run_cli("inspect", tmp_path / "nope.h5")
    assert r.returncode == 1 and r.stderr.strip() == f"vidstudy: error: {tmp_path / 'nope.h5'}: feature file does not exist."
    path = write_plain_h5(tmp_path / "x.h5", original_arrays(**SMALL), drop=("category_mapping",))
    r = run_cli("inspect", path)
    assert r.returncode == 0
    assert r.stderr.strip().splitlines() == [
        f"vidstudy: warning: {path}: attribute 'category_mapping' is missing; assuming the four study classes."]


def test_bad_parameter_is_one_line(tmp_path):
    r = run_cli("simulate", tmp_path, "--seed", "-3")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "vidstudy: error: seed must be a non-negative integer, got -3."
    assert list(tmp_path.iterdir()) == []
