"""Run files that parse but hold wrong contents: each is refused in one line naming it, before anything is built from
it or written, the run is left as it was, and once the file is good again the same command succeeds."""

import json
import shutil

import pytest
import torch
from conftest import tree_digest

from vidstudy.cli import main

TRAIN = ["--members", "1", "--epochs", "1", "--quiet", "--no-plots"]
BEST = "members/ensemble_model_0/best.pt"
LAST = "members/ensemble_model_0/last.pt"
SUMMARY = "members/ensemble_model_0/summary.json"


@pytest.fixture(scope="module")
def run(smoke_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("contents") / "run"
    assert main(["train", str(smoke_dir), str(out), *TRAIN]) == 0
    assert main(["evaluate", str(out), "--bootstrap", "20", "--subsequences", "1"]) == 0
    return out


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
}


def _commands(kind, run, smoke_dir):
    resume = ["train", smoke_dir, run, *TRAIN, "--resume"]
    return {"run": [["predict", run, "--force"], ["evaluate", run], resume],
            "data": [["predict", run], resume],
            "resume": [resume],
            "best": [["predict", run, "--force"], ["evaluate", run]],
            "last": [resume]}[kind]


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
