"""Reuse is decided by the content of every input: runs, stores, chapters' runs, subsets, split files, run files."""

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import tree_digest

from vidstudy import fingerprint as fp
from vidstudy.cli import main
from vidstudy.config import apply_overrides, preset
from vidstudy.errors import VidstudyError
from vidstudy.evaluate import evaluate_run
from vidstudy.features import FeatureFile, feature_file_name, load_splits
from vidstudy.predictions import build_predictions, ensure_predictions, load_predictions, store_path
from vidstudy.runs import member_checkpoints
from vidstudy.simulate import shape_config, simulate
from vidstudy.study.chapter import run_folder as chapter_run
from vidstudy.study.recipes import training_subset
from vidstudy.train import train_ensemble
from vidstudy.tta import view_names

TINY = ["--set", "model.hidden_dim=8", "--set", "model.num_heads=2", "--set", "model.head_dims=8", "--epochs", "1",
        "--no-plots", "--quiet"]


def rewrite_in_place(path: Path) -> None:
    """Change a feature file's content without changing its size, and put its modification time back."""
    st = path.stat()
    with h5py.File(path, "r+") as f:
        labels = f["labels"][()]
        f["labels"][...] = np.roll(labels, 1)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def one_line_error(capsys, argv, *needles):
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidstudy: error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three smoke data folders: A, B (same shapes, another seed) and C (another feature dimension)."""
    root = tmp_path_factory.mktemp("data")
    simulate(root / "A", seed=0, shape="smoke")
    simulate(root / "B", seed=1, shape="smoke")
    simulate(root / "C", seed=0, shape=shape_config("smoke", feature_dim=24))
    return root


@pytest.fixture(scope="module")
def run_a(data, tmp_path_factory):
    """A three-member run trained on A (with its own store), copied by the tests that change it."""
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", str(data / "A"), str(run), "--members", "3", *TINY]) == 0
    assert main(["predict", str(run)]) == 0
    return run


def copy_run(run_a, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(run_a, run)
    return run


# --- the fingerprint itself ---------------------------------------------------------------------


def test_fingerprint_sees_content_not_size_mtime_or_path(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 1000)
    recorded = fp.fingerprint({"train": a}, config={"lr": 1e-3})
    moved = tmp_path / "moved.bin"
    shutil.copy(a, moved)
    assert fp.difference(recorded, fp.fingerprint({"train": moved}, config={"lr": 1e-3})) is None
    st = a.stat()
    a.write_bytes(b"y" + b"x" * 999)  # same size, then the old modification time again
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = fp.difference(recorded, fp.fingerprint({"train": a}, config={"lr": 1e-3}))
    assert changed == f"the train file {a} is not the one it was made from (its content changed)"
    assert fp.difference(recorded, fp.fingerprint({"train": moved}, config={"lr": 3e-4})) == "config.lr was 0.001, is now 0.0003"
    assert "val file" in fp.difference(recorded, fp.fingerprint({"train": moved, "val": a}, config={"lr": 1e-3}))
    assert fp.difference(None, recorded) == "no record of its inputs"


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["B", "C"])
def test_resume_on_other_data_is_refused_and_changes_nothing(data, run_a, tmp_path, capsys, other):
    run = copy_run(run_a, tmp_path)
    before = tree_digest(run)
    line = one_line_error(capsys, ["train", str(data / other), str(run), "--members", "3", "--resume", *TINY],
                          "data.json: the run was trained on other data",
                          f"the train file {data / other / feature_file_name('train')} is not the one it was made from")
    assert str(data / "A" / feature_file_name("train")) in line
    assert tree_digest(run) == before


def test_resume_after_the_data_was_rewritten_in_place_is_refused(data, run_a, tmp_path, capsys):
    shutil.copytree(data / "A", tmp_path / "A")
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "A"), str(run), "--members", "1", *TINY]) == 0
    rewrite_in_place(tmp_path / "A" / feature_file_name("val"))
    one_line_error(capsys, ["train", str(tmp_path / "A"), str(run), "--members", "1", "--resume", *TINY],
                   f"the val file {tmp_path / 'A' / feature_file_name('val')} is not the one it was made from "
                   f"(its content changed)")
    one_line_error(capsys, ["predict", str(run)],  # the run's own store is not made from a changed file either
                   f"{feature_file_name('val')}: the run's val file changed since the run was trained")


def test_a_run_has_exactly_the_members_its_config_names(data, run_a, tmp_path, capsys):
    run = copy_run(run_a, tmp_path)
    assert main(["train", str(data / "A"), str(run), "--members", "2", "--resume", *TINY]) == 0
    assert [name for name, _ in member_checkpoints(run)] == ["ensemble_model_0", "ensemble_model_1"]
    assert (run / "members" / "ensemble_model_2" / "best.pt").exists()  # kept on disk, not used
    results = evaluate_run(run, n_boot=20)
    assert list(results["members"]) == ["ensemble_model_0", "ensemble_model_1"] and results["store_rebuilt"]
    assert load_predictions(run, "test").probs.shape[0] == 2
    assert len(json.loads((run / "members_summary.json").read_text())) == 2


# --- the predictions store ----------------------------------------------------------------------


def test_predict_on_other_data_has_its_own_store_and_fits_on_the_runs_validation(data, run_a, tmp_path, capsys):
    run = copy_run(run_a, tmp_path)
    own = {s: store_path(run, s).read_bytes() for s in ("val", "test")}
    assert main(["predict", str(run), str(data / "B")]) == 0
    other = store_path(run, "test", data / "B")
    assert other.parent.parent == run / "other_data" and other.exists()
    assert {s: store_path(run, s).read_bytes() for s in ("val", "test")} == own  # the run's own store is untouched
    saved = np.load(other)["fingerprint"]
    assert json.loads(str(saved))["files"]["data"]["path"] == str((data / "B" / feature_file_name("test")).resolve())
    results = evaluate_run(run, data / "B", n_boot=20)
    assert results["results_dir"] == str(other.parent) and (other.parent / "results.json").exists()
    assert results["data"] == {"val": str((data / "A" / feature_file_name("val")).resolve()),
                               "test": str(data / "B" / feature_file_name("test"))}
    labels_b = FeatureFile(data / "B" / feature_file_name("test")).labels
    assert len(results["methods"]["soft_vote"]["test_predictions"]) == len(labels_b)
    assert not (run / "results.json").exists()  # the run's own results are not replaced by those on other data
    # the same folder as the run's own data is the run's own store, whatever path it is given by
    shutil.copytree(data / "A", tmp_path / "A-copy")
    assert store_path(run, "test", tmp_path / "A-copy") == store_path(run, "test")
    one_line_error(capsys, ["predict", str(run), str(data / "C")], "feature dimension differ")


def test_evaluate_keeps_the_views_another_command_chose(run_a, tmp_path, capsys):
    run = copy_run(run_a, tmp_path)
    assert main(["predict", str(run), "--subsequences", "4"]) == 0
    before = store_path(run, "val").read_bytes()
    assert main(["evaluate", str(run), "--bootstrap", "20"]) == 0
    assert store_path(run, "val").read_bytes() == before
    assert json.loads((run / "results.json").read_text())["views"] == view_names(4)
    assert main(["predict", str(run)]) == 0 and "are current" in capsys.readouterr().out
    _, rebuilt = ensure_predictions(run, view_names(2))  # asking for other views does rebuild
    assert rebuilt and load_predictions(run, "val").view_names == view_names(2)
    shutil.rmtree(run / "predictions")  # a run with a test store only (as the recipe study keeps)
    build_predictions(run, views=["original"], splits=("test",))
    assert evaluate_run(run, n_boot=20)["views"] == ["original"] == load_predictions(run, "val").view_names


# --- malformed run files --------------------------------------------------------------------------


@pytest.mark.parametrize("name, text, needle", [
    ("config.json", "{not json", "config.json: not valid JSON"),
    ("config.json", "[1, 2]", "config.json: holds a JSON list"),
    ("config.json", '{"model": {"hidden_dim": "wide"}}', "config.json: section 'model' key 'hidden_dim' must be int"),
    ("config.json", '{"members": 2, "epochs": 3}', "config.json: has unknown keys ['epochs']"),
    ("data.json", "", "data.json: not valid JSON"),
    ("data.json", '{"data_dir": "/somewhere"}', "data.json: does not record the run's split files"),
    ("predictions/val.npz", "PK\x03\x04 truncated", "val.npz: not a readable predictions store"),
    ("predictions/test.npz", None, "test.npz: predictions store lacks"),
])
def test_malformed_run_files_are_one_line(run_a, tmp_path, capsys, name, text, needle):
    run = copy_run(run_a, tmp_path)
    if text is None:  # a valid zip without the store's arrays
        with open(run / name, "wb") as fh:
            np.savez(fh, probs=np.zeros(3))
    else:
        (run / name).write_text(text)
    line = one_line_error(capsys, ["evaluate", str(run), "--bootstrap", "20"], needle)
    assert str(run / name) in line


def test_malformed_summary_is_one_line(data, run_a, tmp_path, capsys):
    run = copy_run(run_a, tmp_path)
    (run / "members" / "ensemble_model_1" / "summary.json").write_text('{"member": "ensemble_model_1"}')
    one_line_error(capsys, ["train", str(data / "A"), str(run), "--members", "3", "--resume", *TINY],
                   "ensemble_model_1/summary.json: lacks 'seed'")


def test_a_damaged_store_is_rebuilt_only_when_asked(run_a, tmp_path, capsys):
    run = copy_run(run_a, tmp_path)
    store_path(run, "val").write_bytes(b"garbage")
    one_line_error(capsys, ["predict", str(run)], "val.npz: not a readable predictions store", "--force")
    assert main(["predict", str(run), "--force"]) == 0
    assert load_predictions(run, "val").probs.shape[0] == 3


# --- the chapters' run folders and the recipe subset ----------------------------------------------


def test_chapters_keep_one_run_folder_per_data_and_config(data, tmp_path):
    cfg = apply_overrides(preset("cpu"), ["members=2"])
    a = chapter_run("runs/book", data / "A", cfg)
    assert a.parent == Path("runs/book") and a.name.startswith("A-")
    assert chapter_run("runs/book", data / "B", cfg) != a
    assert chapter_run("runs/book", data / "C", cfg) != a
    assert chapter_run("runs/book", data / "A", apply_overrides(preset("cpu"), ["members=3"])) == a  # members: same run
    assert chapter_run("runs/book", data / "A", apply_overrides(preset("cpu"), ["members=2", "train.lr=1e-3"])) != a
    shutil.copytree(data / "A", tmp_path / "A")
    assert chapter_run("runs/book", tmp_path / "A", cfg) == a  # a copy is the same data
    rewrite_in_place(tmp_path / "A" / feature_file_name("test"))
    assert chapter_run("runs/book", tmp_path / "A", cfg) != a  # rewritten in place is not


def test_recipe_subset_is_rewritten_when_its_source_size_or_seed_changes(data, tmp_path):
    a, b = (load_splits(data / x, ("train",))["train"] for x in ("A", "B"))
    first = training_subset(a, tmp_path, 40)
    assert len(first) == 40 and first.subset["files"]["source"]["path"] == str(a.path.resolve())
    mtime = first.path.stat().st_mtime_ns
    assert training_subset(a, tmp_path, 40).path.stat().st_mtime_ns == mtime  # reused
    from_b = training_subset(b, tmp_path, 40)
    assert from_b.subset["files"]["source"]["sha256"] == fp.file_digest(b.path)
    rows = [b.video_ids.index(v) for v in from_b.video_ids]
    np.testing.assert_array_equal(from_b.padded(), b.padded()[rows])
    smaller = training_subset(b, tmp_path, 30)  # stratified, so about 30 videos
    assert smaller.subset["values"] == {"size": 30, "seed": 0} and len(smaller) < len(from_b)
    assert training_subset(b, tmp_path, 10_000) is b
    seed0 = list(smaller.video_ids)
    reseeded = training_subset(b, tmp_path, 30, seed=1)  # another seed draws other videos
    assert reseeded.subset["values"] == {"size": 30, "seed": 1} and list(reseeded.video_ids) != seed0
    again = training_subset(b, tmp_path, 30, seed=1).path.stat().st_mtime_ns
    assert training_subset(b, tmp_path, 30, seed=1).path.stat().st_mtime_ns == again  # and is then reused


def test_experiment_runs_record_the_checkpoints_they_start_from(data, run_a, tmp_path):
    run = copy_run(run_a, tmp_path)
    files = load_splits(data / "A", ("train", "val"))
    cfg = apply_overrides(preset("cpu"), ["model.hidden_dim=8", "model.num_heads=2", "model.head_dims=8",
                                          "train.epochs=1", "members=3"])
    train_ensemble(cfg, files["train"], files["val"], tmp_path / "tuned", init_from=run, plots=False, quiet=True)
    recorded = json.loads((tmp_path / "tuned" / "data.json").read_text())["files"]
    assert recorded["init_0"]["sha256"] == fp.file_digest(run / "members" / "ensemble_model_0" / "best.pt")
    with pytest.raises(VidstudyError, match="the init_0 file .* is not the one it was made from"):
        other = copy_run(run_a, tmp_path / "x")
        best = other / "members" / "ensemble_model_0" / "best.pt"
        best.write_bytes(best.read_bytes() + b"\0")
        train_ensemble(cfg, files["train"], files["val"], tmp_path / "tuned", init_from=other, resume=True,
                       plots=False, quiet=True)
