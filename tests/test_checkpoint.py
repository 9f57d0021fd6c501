"""The checkpoint layout: written atomically with exactly its keys; anything else is one error naming the file."""

import pickle

import pytest
import torch

from vidstudy import checkpoint
from vidstudy.cli import main
from vidstudy.config import apply_overrides, preset
from vidstudy.errors import VidstudyError
from vidstudy.features import load_splits
from vidstudy.train import train_ensemble


@pytest.fixture(scope="module")
def member(tmp_path_factory, smoke_dir):
    run = tmp_path_factory.mktemp("run")
    files = load_splits(smoke_dir, ("train", "val"))
    cfg = apply_overrides(preset("cpu"), ["model.hidden_dim=8", "model.num_heads=2", "model.head_dims=8", "train.epochs=1",
                                          "members=1"])
    train_ensemble(cfg, files["train"], files["val"], run, plots=False, quiet=True)
    return run / "members" / "ensemble_model_0"


def test_layout_is_exactly_the_documented_keys(member):
    assert sorted(torch.load(checkpoint.best_path(member), weights_only=True)) == sorted(checkpoint.BEST_KEYS)
    assert sorted(torch.load(checkpoint.last_path(member), weights_only=True)) == sorted(checkpoint.LAST_KEYS)
    with pytest.raises(ValueError, match="holds"):
        checkpoint.save_best(member / "x", model_state={})
    assert not (member / "x").exists()


class _Hostile:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content, needle", [
    (b"", "not a readable checkpoint"),
    (b"plain text, not a checkpoint", "not a readable checkpoint"),
    (pickle.dumps(_Hostile()), "not a readable checkpoint"),
    ("list", "not a vidstudy checkpoint (it holds a list"),
    ("no keys", "not a vidstudy checkpoint (it lacks model_state"),
    ("truncated", "not a readable checkpoint"),
    ("wrong weights", "its weights do not fit the model its config describes"),
], ids=["empty", "text", "hostile-pickle", "list", "no-keys", "truncated", "wrong-weights"])
def test_damaged_or_foreign_best_checkpoint_is_one_line(member, tmp_path, capsys, content, needle):
    path = tmp_path / "best.pt"
    good = checkpoint.best_path(member).read_bytes()
    if content == "list":
        torch.save([1, 2], path)
    elif content == "no keys":
        torch.save({"weights": torch.zeros(2)}, path)
    elif content == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif content == "wrong weights":
        ckpt = torch.load(checkpoint.best_path(member), weights_only=True)
        ckpt["model_state"] = {k: torch.zeros(3) for k in ckpt["model_state"]}
        torch.save(ckpt, path)
    else:
        path.write_bytes(content)
    with pytest.raises(VidstudyError) as err:
        checkpoint.load_model(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message
    assert "this must never run" not in capsys.readouterr().out


def test_damaged_member_checkpoint_through_the_cli(member, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(member.parent.parent, run)
    (run / "members" / "ensemble_model_0" / "best.pt").write_bytes(b"\x80\x02garbage")
    assert main(["predict", str(run)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "ensemble_model_0/best.pt: not a readable checkpoint" in lines[0]
