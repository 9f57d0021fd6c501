"""Promises of the README that no other test keeps: --help, what makes a chapter execute again, the default data
simulated again on other settings, and the training options given on the command line."""

import json
import subprocess
import sys

import h5py
import pytest

from vidstudy.cli import COMMANDS, main
from vidstudy.features import feature_file_name
from vidstudy.fingerprint import difference, input_key
from vidstudy.simulate import ensure_simulated
from vidstudy.study.book import book_root, chapter_inputs, resolve_params


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in COMMANDS]], ids=lambda a: " ".join(a))
def test_help_prints_the_usage_and_exits_0(argv):
    proc = subprocess.run([sys.executable, "-m", "vidstudy.cli", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith(f"usage: vidstudy{' ' + argv[0] if len(argv) == 2 else ''}")


def test_a_chapter_executes_again_when_its_parameters_the_package_or_the_chapter_before_change(smoke_dir):
    root, params = book_root(), resolve_params(smoke=True)

    def inputs(name="02_training", p=params, package="pkg", previous="prev"):
        return chapter_inputs(name, p, root, smoke_dir, package, previous)

    base = inputs()
    assert difference(base, inputs()) is None  # the same inputs: reused
    assert "params" in difference(base, inputs(p={**params, "members": 3}))
    assert "package" in difference(base, inputs(package="other"))
    assert "previous_chapter" in difference(base, inputs(previous="changed"))
    assert input_key(inputs(name="03_per_class_f1")) != input_key(base)  # another notebook


def _recorded_seed(folder):
    with h5py.File(folder / feature_file_name("train"), "r") as f:
        return json.loads(f.attrs["simulation"])["seed"]


def test_the_default_data_is_simulated_again_only_on_other_settings(tmp_path):
    out = ensure_simulated(tmp_path / "d", seed=0, shape="smoke")
    stamp = (out / feature_file_name("train")).stat().st_mtime_ns
    assert ensure_simulated(out, seed=0, shape="smoke") == out
    assert (out / feature_file_name("train")).stat().st_mtime_ns == stamp  # same settings: reused
    ensure_simulated(out, seed=1, shape="smoke")
    assert _recorded_seed(out) == 1  # other settings: simulated again


def test_checkpoint_every_on_the_command_line_writes_the_resume_point_less_often(smoke_dir, tmp_path, monkeypatch):
    import vidstudy.checkpoint as checkpoint

    written, real = [], checkpoint.save_last
    monkeypatch.setattr(checkpoint, "save_last", lambda member, **f: written.append(f["epoch"]) or real(member, **f))
    assert main(["train", str(smoke_dir), str(tmp_path / "run"), "--members", "1", "--epochs", "5", "--quiet",
                 "--no-plots", "--set", "train.patience=100", "--checkpoint-every", "2"]) == 0
    assert written == [2, 4, 5]


def test_a_store_is_rebuilt_when_the_view_seed_changes(tiny_run):
    from vidstudy.predictions import ensure_predictions, is_current, stored_views

    views = stored_views(tiny_run, "test")
    assert is_current(tiny_run, "test", views, seed=0) and not is_current(tiny_run, "test", views, seed=1)
    before = (tiny_run / "predictions" / "test.npz").read_bytes()
    _, rebuilt = ensure_predictions(tiny_run, views, seed=1, device="cpu")
    assert rebuilt and is_current(tiny_run, "test", views, seed=1)
    assert (tiny_run / "predictions" / "test.npz").read_bytes() != before  # other random subsequences
