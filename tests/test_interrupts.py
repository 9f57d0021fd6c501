"""Ctrl-C (SIGINT) and SIGTERM end a command in one line with exit status 130, leave nothing half-written, and the
command run again continues where it stopped."""

import os
import signal
import subprocess
import sys
import time

import pytest

EPOCHS = 12


def _vidstudy(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "vidstudy.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def _wait_for(path, seconds=120):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _interrupt(proc, signum):
    """Send ``signum`` once, as a user presses Ctrl-C once."""
    proc.send_signal(signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_train_is_one_line_and_resumes(smoke_dir, tmp_path, signum):
    run = tmp_path / "run"
    train = ["train", smoke_dir, run, "--members", "1", "--epochs", EPOCHS, "--set", "train.patience=1000", "--quiet",
             "--no-plots"]
    proc = _vidstudy(*train)
    _wait_for(run / "members" / "ensemble_model_0" / "last.pt")
    _interrupt(proc, signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["vidstudy: interrupted; finished epochs are kept: run the same command with "
                                        "--resume to continue."], err
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
    assert not (run / "members" / "ensemble_model_0" / "summary.json").exists()
    again = subprocess.run([sys.executable, "-m", "vidstudy.cli", *map(str, train), "--resume"], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "best epoch" in again.stdout and (run / "members" / "ensemble_model_0" / "summary.json").exists()


def test_an_interrupt_while_a_file_is_being_written_leaves_no_part_of_it(tmp_path):
    out = tmp_path / "paper"
    proc = _vidstudy("simulate", out)  # several seconds of writing, with h5py objects freed all along
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.name.endswith(".tmp") for p in out.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None, "no file was being written"
        time.sleep(0.05)
    _interrupt(proc, signal.SIGINT)
    out_, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["vidstudy: interrupted; nothing was left half-written; run the same command "
                                        "again."], err
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
