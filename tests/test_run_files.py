"""Run files that parse but hold wrong contents: each is refused in one line naming it, before anything is built from
it or written, the run is left as it was, and once the file is good again the same command succeeds."""

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from conftest import tree_digest

from vidstudy.atomic import write_npz
from vidstudy.cli import main
from vidstudy.features import feature_file_name

TRAIN = ["--members", "1", "--epochs", "1", "--quiet", "--no-plots"]
BEST = "members/ensemble_model_0/best.pt"
LAST = "members/ensemble_model_0/last.pt"
SUMMARY = "members/ensemble_model_0/summary.json"
STORE = "predictions/test.npz"


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def _json(change):
    def damage(path):
        value = json.loads(path.read_text())
        change(value)
        path.write_text(json.dumps(value))
    return damage


def _checkpoint(change):
    def damage(path):
        value = torch.load(path, weights_only=True)
        change(value)
        torch.save(value, path)
    return damage


def _store(change):
    """Change a store's arrays, keeping its fingerprint: the store still claims to be current."""
    def damage(path):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        change(arrays)
        write_npz(path, arrays)
    return damage


def _nan_probs(a):
    a["probs"] = a["probs"].copy()
    a["probs"][0, 0, 0, 0] = np.nan


def _set(keys, new):
    def change(value):
        for key in keys[:-1]:
            value = value[key]
        value[keys[-1]] = new
    return change


def _wrong_shape(ckpt):
    name = next(iter(ckpt["model_state"]))
    ckpt["model_state"][name] = torch.zeros(3, 3, 3)


# case: (file, damage, needle, the commands that read the file)
CASES = {
    "config_members_0": ("config.json", _json(_set(["members"], 0)), "members must lie in [1, 1000], got 0", "run"),
    "config_members_negative": ("config.json", _json(_set(["members"], -1)), "members must lie in [1, 1000], got -1", "run"),
    "config_unknown_preset": ("config.json", _json(_set(["preset"], "gpu")), "preset must be one of", "run"),
    "data_path_null": ("data.json", _json(_set(["files", "train", "path"], None)), "does not record the run's split", "data"),
    "data_path_number": ("data.json", _json(_set(["files", "val", "path"], 7)), "does not record the run's split", "data"),
    "summary_metrics_string": (SUMMARY, _json(_set(["best_metrics"], "good")), "best_metrics", "resume"),
    "summary_metrics_empty": (SUMMARY, _json(_set(["best_metrics"], {})), "best_metrics", "resume"),
    "summary_wall_time_string": (SUMMARY, _json(_set(["wall_time_s"], "long")), "wall_time_s", "resume"),
    "best_absurd_hidden_dim": (BEST, _checkpoint(_set(["config", "model", "hidden_dim"], 10**9)),
                               "its config: model.hidden_dim must lie in [1, 8192]", "best"),
    "best_negative_feature_dim": (BEST, _checkpoint(_set(["feature_dim"], -5)), "feature_dim must be an integer", "best"),
    "best_metrics_empty": (BEST, _checkpoint(_set(["metrics"], {})), "metrics must hold val_acc", "best"),
    "best_metrics_string": (BEST, _checkpoint(_set(["metrics", "val_acc"], "x")), "metrics must hold val_acc", "best"),
    "best_class_names": (BEST, _checkpoint(_set(["class_names"], ["A"])), "class_names must be 4 names", "best"),
    "best_wrong_weights": (BEST, _checkpoint(_wrong_shape), "do not fit the model its config describes", "best"),
    "last_garbage_optimizer": (LAST, _checkpoint(_set(["optimizer_state"], {"x": 1})), "optimizer_state", "last"),
    "last_negative_epoch": (LAST, _checkpoint(_set(["epoch"], -1)), "epoch must be an integer of at least 1", "last"),
    "last_string_epoch": (LAST, _checkpoint(_set(["epoch"], "3")), "epoch must be an integer of at least 1", "last"),
    "last_string_history": (LAST, _checkpoint(_set(["history"], "x")), "history must hold one entry per", "last"),
    "last_wrong_weights": (LAST, _checkpoint(_wrong_shape), "do not fit this member", "last"),
    "store_nan_probs": (STORE, _store(_nan_probs), "holds NaN or infinite probabilities", "store"),
    "store_probs_above_one": (STORE, _store(lambda a: a.update(probs=a["probs"] * 3)), "outside [0, 1]", "store"),
    "store_labels_out_of_range": (STORE, _store(lambda a: a.update(labels=a["labels"] + 9)), "labels outside 0..3",
                                  "store"),
    "store_repeated_class_names": (STORE, _store(lambda a: a.update(class_names=np.array(["A", "A", "B", "C"]))),
                                   "class names that are empty or repeated", "store"),
    "store_short_subcategories": (STORE, _store(lambda a: a.update(subcategories=a["subcategories"][:3])),
                                  "subcategories for", "store"),
}


def _commands(kind, run, smoke_dir):
    resume = ["train", smoke_dir, run, *TRAIN, "--resume"]
    return {"run": [["predict", run, "--force"], ["evaluate", run], resume],
            "data": [["predict", run], resume],
            "resume": [resume],
            "best": [["predict", run, "--force"], ["evaluate", run]],
            "last": [resume],
            "store": [["evaluate", run, "--bootstrap", "20"]]}[kind]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_run_file_with_wrong_contents_is_one_line_and_changes_nothing(run, smoke_dir, tmp_path, capsys, case):
    rel, damage, needle, kind = CASES[case]
    target = tmp_path / "run"
    shutil.copytree(run, target)
    if kind == "last":  # a member still to finish: train --resume reads its last checkpoint
        (target / SUMMARY).unlink()
    good = (target / rel).read_bytes()
    damage(target / rel)
    before = tree_digest(target)
    for argv in _commands(kind, target, smoke_dir):
        rc = main([str(a) for a in argv])
        err = capsys.readouterr().err
        lines = [line for line in err.strip().splitlines() if not line.startswith("vidstudy: warning:")]
        assert rc == 1 and len(lines) == 1 and lines[0].startswith("vidstudy: error: "), (argv, err)
        assert "Traceback" not in err and str(target / rel) in lines[0] and needle in lines[0], (argv, lines[0])
        assert tree_digest(target) == before, argv  # nothing written, nothing removed
    (target / rel).write_bytes(good)
    for argv in _commands(kind, target, smoke_dir):
        assert main([str(a) for a in argv]) == 0, (argv, capsys.readouterr().err)


def test_features_that_overflow_the_members_are_refused_before_a_store_is_written(run, smoke_dir, tmp_path, capsys):
    data = tmp_path / "huge"
    shutil.copytree(smoke_dir, data)
    with h5py.File(data / feature_file_name("test"), "r+") as f:
        f["features"][...] = f["features"][()] * np.float32(1e37)  # finite, so the file itself is valid
    assert main(["inspect", str(data / feature_file_name("test"))]) == 0
    target = tmp_path / "run"
    shutil.copytree(run, target)
    before = tree_digest(target)
    assert main(["predict", str(target), str(data)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vidstudy: error: {data / feature_file_name('test')}: the members' "
                                               f"outputs are not finite"), err
    assert tree_digest(target) == before
    assert main(["predict", str(target), str(smoke_dir)]) == 0  # the same command on good features
