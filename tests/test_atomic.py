"""Atomic writes: a write that fails midway leaves the old file, byte for byte, and no temporary file in sight."""

import hashlib

import numpy as np
import pytest
import torch

from vidstudy import checkpoint
from vidstudy.cli import main
from vidstudy.evaluate import evaluate_run
from vidstudy.predictions import build_predictions


class Boom(RuntimeError):
    pass


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(smoke_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("atomic") / "run"
    assert main(["train", str(smoke_dir), str(out), "--members", "1", "--epochs", "1", "--quiet", "--no-plots"]) == 0
    evaluate_run(out, n_boot=10)
    return out


def _visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_store_write_that_fails_midway_leaves_the_old_store(run, monkeypatch):
    store = run / "predictions" / "test.npz"
    stores = sorted(store.parent.glob("*.npz"))  # val.npz is written first: the failure lands in it
    before, names = [_digest(p) for p in stores], _visible(store.parent)
    real, calls = np.lib.format.write_array, []

    def half_then_fail(fh, array, **kw):
        calls.append(1)
        if len(calls) == 3:  # two arrays are in the archive, then the disk "fails"
            raise Boom
        real(fh, array, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", half_then_fail)
    with pytest.raises(Boom):
        build_predictions(run)
    assert [p.name for p in stores] == ["test.npz", "val.npz"]
    assert [_digest(p) for p in stores] == before and _visible(store.parent) == names and _hidden(store.parent) == []


def test_a_results_write_that_fails_midway_leaves_the_old_results(run, monkeypatch):
    from pathlib import Path

    results = run / "results.json"
    before = _digest(results)
    real = Path.write_text

    def half_then_fail(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise Boom

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(Boom):
        evaluate_run(run, n_boot=12)
    monkeypatch.undo()
    assert _digest(results) == before and _hidden(run) == []


def test_a_checkpoint_write_that_fails_midway_leaves_the_old_checkpoint(run, monkeypatch):
    member = run / "members" / "ensemble_model_0"
    before = _digest(member / "best.pt")
    fields = checkpoint.load(member / "best.pt")
    real = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        real({"model_state": obj["model_state"]}, f)
        raise Boom

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(Boom):
        checkpoint.save_best(member, **fields)
    assert _digest(member / "best.pt") == before and _hidden(member) == []
