import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from vidstudy.checkpoint import load_model
from vidstudy.cli import main
from vidstudy.config import apply_overrides, preset
from vidstudy.errors import ParameterError, VidstudyError
from vidstudy.executor import LocalExecutor
from vidstudy.features import FeatureFile, feature_file_name, load_splits, write_feature_file
from vidstudy.metrics import detect_collapse
from vidstudy.train import Ensemble, lr_at_epoch, train_ensemble, train_ensembles, train_single_model

TINY = ["model.hidden_dim=8", "model.num_heads=2", "model.head_dims=8", "train.batch_size=32", "train.epochs=3"]


def tiny_config(*extra):
    return apply_overrides(preset("cpu"), TINY + list(extra))


@pytest.fixture(scope="module")
def splits(smoke_dir):
    return load_splits(smoke_dir, ("train", "val"))


def _history(member):
    h = json.loads((member / "history.json").read_text())
    h.pop("epoch_times")
    return h


def _weights(member):
    return torch.load(member / "best.pt", weights_only=True)["model_state"]


def test_ensemble_writes_every_artifact(tmp_path, splits):
    cfg = tiny_config("members=5")
    summaries = train_ensemble(cfg, splits["train"], splits["val"], tmp_path / "run", num_models=2,
                               plots_per_epoch=True, quiet=True)
    cfg.members = 2
    assert [s["seed"] for s in summaries] == [42, 43]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == cfg.to_dict()
    for i in range(2):
        member = tmp_path / "run" / "members" / f"ensemble_model_{i}"
        for name in ("best.pt", "last.pt", "history.json", "training_metrics.csv", "summary.json", "plots/current.png",
                     "plots/epoch_001.png", "plots/epoch_003.png"):
            assert (member / name).exists(), name
        ckpt = torch.load(member / "best.pt", weights_only=True)
        assert ckpt["class_names"] == splits["train"].class_names
        with open(member / "training_metrics.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0][:12] == ["epoch", "train_loss", "train_acc", "train_f1", "val_loss", "val_acc", "val_f1",
                                "class_0_f1", "class_1_f1", "class_2_f1", "class_3_f1", "learning_rates"]
        assert len(rows) == 1 + 3
        summary = json.loads((member / "summary.json").read_text())
        assert summary["epochs_run"] == 3 and 1 <= summary["best_epoch"] <= 3
        history = json.loads((member / "history.json").read_text())
        assert summary["best_metrics"]["val_macro_f1"] == pytest.approx(max(history["val_macro_f1"]))
        model, _ = load_model(member / "best.pt")
        assert not model.training
    with pytest.raises(VidstudyError, match="already holds a run; pass --resume"):
        train_ensemble(cfg, splits["train"], splits["val"], tmp_path / "run", quiet=True)
    # resuming a finished run skips its members
    again = train_ensemble(cfg, splits["train"], splits["val"], tmp_path / "run", resume=True, quiet=True)
    assert sorted(p.name for p in (tmp_path / "run" / "members").iterdir()) == ["ensemble_model_0", "ensemble_model_1"]
    assert again == summaries


class _CountingExecutor(LocalExecutor):
    def __init__(self):
        super().__init__()
        self.batches = []

    def map(self, fn, jobs):
        jobs = list(jobs)
        self.batches.append([job[3] for job in jobs])  # each job's seed
        return super().map(fn, jobs)


def test_several_runs_train_as_one_batch_of_jobs_and_match_training_each_alone(tmp_path, splits):
    one, two = tiny_config("members=2", "train.epochs=1"), tiny_config("members=1", "train.epochs=1", "seed_base=7")
    runs = [Ensemble(one, splits["train"], splits["val"], tmp_path / "a"),
            Ensemble(two, splits["train"], splits["val"], tmp_path / "b")]
    executor = _CountingExecutor()
    together = train_ensembles(runs, quiet=True, plots=False, executor=executor)
    assert executor.batches == [[42, 43, 7]]  # one batch, in the order of the runs
    alone = train_ensemble(two, splits["train"], splits["val"], tmp_path / "alone", quiet=True, plots=False)
    assert [s["seed"] for s in together[0]] == [42, 43] and together[1][0]["best_metrics"] == alone[0]["best_metrics"]
    member = ("members", "ensemble_model_0")
    assert _history(tmp_path.joinpath("b", *member)) == _history(tmp_path.joinpath("alone", *member))
    assert json.loads((tmp_path / "a" / "members_summary.json").read_text())[1]["seed"] == 43
    # reused when finished; a run that cannot train is refused before any run is written
    assert train_ensembles(runs, resume=True, quiet=True, plots=False, executor=executor)[0] == together[0]
    assert executor.batches[-1] == []
    bad = Ensemble(tiny_config("members=1", "train.class_boost=1,2"), splits["train"], splits["val"], tmp_path / "d")
    with pytest.raises(ParameterError, match="class_boost"):
        train_ensembles([Ensemble(one, splits["train"], splits["val"], tmp_path / "c"), bad], quiet=True, plots=False)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_same_seed_gives_identical_history(tmp_path, splits):
    cfg = tiny_config()
    train_single_model(cfg, splits["train"], splits["val"], 7, tmp_path / "a", plots=False, quiet=True)
    train_single_model(cfg, splits["train"], splits["val"], 7, tmp_path / "b", plots=False, quiet=True)
    train_single_model(cfg, splits["train"], splits["val"], 8, tmp_path / "c", plots=False, quiet=True)
    assert _history(tmp_path / "a") == _history(tmp_path / "b")
    wa, wb, wc = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    # the results are the same for the same seed and thread count, and the summary records the thread count
    summaries = [json.loads((tmp_path / m / "summary.json").read_text()) for m in ("a", "b")]
    assert [s["torch_threads"] for s in summaries] == [torch.get_num_threads()] * 2


def _train_cmd(data, run):
    sets = [a for s in TINY + ["train.epochs=10"] for a in ("--set", s)]
    return [sys.executable, "-m", "vidstudy.cli", "train", str(data), str(run), "--members", "1", "--no-plots", "--quiet", *sets]


def test_killed_run_resumes_to_the_same_best_checkpoint(tmp_path, smoke_dir):
    member = "members/ensemble_model_0"
    full = subprocess.run(_train_cmd(smoke_dir, tmp_path / "full"), capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen(_train_cmd(smoke_dir, tmp_path / "cut"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "cut" / member / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = torch.load(last, weights_only=True)["epoch"]
    assert done < 10 and not (tmp_path / "cut" / member / "summary.json").exists()
    resumed = subprocess.run(_train_cmd(smoke_dir, tmp_path / "cut") + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _history(tmp_path / "cut" / member) == _history(tmp_path / "full" / member)
    wa, wb = _weights(tmp_path / "cut" / member), _weights(tmp_path / "full" / member)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_degenerate_member_is_flagged(tmp_path, splits):
    # A member trained only on Gaming videos can only predict Gaming.
    train = splits["train"]
    only_gaming = write_feature_file(tmp_path / feature_file_name("train"), train.padded(), np.full(len(train), 2),
                                     train.num_frames, train.category_mapping)
    summary = train_single_model(tiny_config("train.epochs=1", "train.balance=none"), FeatureFile(only_gaming),
                                 splits["val"], 42, tmp_path / "m", plots=False, quiet=True)
    assert summary["collapsed"] and summary["lost_classes"] == [0, 1, 3]
    assert summary["lost_class_names"] == ["Animation", "Flat_Content", "Natural_Content"]
    assert summary["dominant_class"] == 2
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert history["collapsed_classes"] == [[0, 1, 3]]


def test_collapse_rules():
    y = np.repeat(np.arange(4), 25)
    healthy = detect_collapse(y, y, 4)
    assert not healthy["collapsed"] and healthy["dominant_class"] is None
    lost_animation = np.where(y == 0, 2, y)  # Animation always called Gaming
    flags = detect_collapse(y, lost_animation, 4)
    assert flags["collapsed"] and flags["lost_classes"] == [0] and flags["dominant_class"] is None
    # one class takes most of the predictions: every other class present counts as lost, even one still called
    mostly_gaming = np.where(np.arange(100) % 25 == 0, y, 2)  # 97 of 100 predictions are Gaming
    flags = detect_collapse(y, mostly_gaming, 4)
    assert flags["dominant_class"] == 2 and flags["dominant_share"] == pytest.approx(0.97)
    assert flags["collapsed"] and flags["lost_classes"] == [0, 1, 3]
    below = np.where(np.arange(100) % 4 == 0, y, np.where(y == 3, 3, 2))  # Gaming's share under the threshold
    assert detect_collapse(y, below, 4)["dominant_class"] is None


def test_warmup_cosine_schedule():
    t = apply_overrides(preset("cpu"), ["train.epochs=12", "train.warmup_epochs=2", "train.lr=1e-2", "train.min_lr=1e-4"]).train
    lrs = [lr_at_epoch(t, e) for e in range(t.epochs)]
    assert lrs[:2] == pytest.approx([t.lr / 2, t.lr])  # linear warm-up
    span = t.epochs - t.warmup_epochs
    for e in range(t.warmup_epochs, t.epochs):  # then the cosine from lr down towards min_lr, not a straight line
        progress = (e - t.warmup_epochs) / span
        assert lrs[e] == pytest.approx(t.min_lr + 0.5 * (t.lr - t.min_lr) * (1 + np.cos(np.pi * progress)))
    quarter = t.warmup_epochs + span // 4  # a cosine is still above the line a quarter of the way down
    assert lrs[quarter] > t.lr - (t.lr - t.min_lr) * (span // 4) / span


@pytest.mark.parametrize("args,message", [
    (["--preset", "gpu"], "preset must be one of paper, cpu, got 'gpu'."),
    (["--set", "train.lrr=1"], "unknown config key 'train.lrr'"),
    (["--set", "train.lr=fast"], "config key train.lr expects float, got 'fast'."),
    (["--members", "0"], "members must lie in [1, 1000], got 0."),
    (["--set", "train.balance=twice"], "train.balance must be one of sampler, alpha, both, none, got 'twice'."),
    (["--set", "lr"], "override 'lr' must look like key=value."),
])
def test_bad_train_parameters_are_one_line(tmp_path, smoke_dir, capsys, args, message):
    assert main(["train", str(smoke_dir), str(tmp_path / "run"), *args]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "run").exists()


def test_config_round_trip_and_paper_preset():
    paper = preset("paper")
    assert paper.train.schedule == "warm_restarts" and paper.train.balance == "both"
    assert paper.train.monitor == "val_acc" and paper.train.batch_size == 48 and paper.members == 5
    cfg = tiny_config("model.head_dims=16,8")
    assert cfg.model.head_dims == (16, 8)
    assert type(cfg).from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(ParameterError, match="must divide the attention width"):
        tiny_config("model.num_heads=3").validate()


def test_checkpoint_every_writes_the_resume_point_less_often_and_resumes_exactly(tmp_path, splits, monkeypatch):
    from vidstudy import checkpoint, train

    cfg = tiny_config("train.epochs=5", "train.patience=5")
    written = []
    real_save = checkpoint.save_last
    monkeypatch.setattr(checkpoint, "save_last", lambda member, **f: (written.append(f["epoch"]), real_save(member, **f))[1])
    train_single_model(cfg, splits["train"], splits["val"], 7, tmp_path / "full", plots=False, quiet=True, checkpoint_every=3)
    assert written == [3, 5]  # every 3 epochs, and after the last
    written.clear()
    real_validate, calls = train._validate, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # Ctrl-C in epoch 4: the resume point is epoch 2's
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(train, "_validate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_single_model(cfg, splits["train"], splits["val"], 7, tmp_path / "cut", plots=False, quiet=True, checkpoint_every=2)
    assert written == [2] and torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(train, "_validate", real_validate)
    train_single_model(cfg, splits["train"], splits["val"], 7, tmp_path / "cut", plots=False, quiet=True, resume=True,
                       checkpoint_every=2)
    assert _history(tmp_path / "cut") == _history(tmp_path / "full")
    wa, wb = _weights(tmp_path / "cut"), _weights(tmp_path / "full")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ParameterError, match=r"checkpoint_every \(--checkpoint-every\) must be at least 1, got 0"):
        train_single_model(cfg, splits["train"], splits["val"], 7, tmp_path / "x", plots=False, quiet=True, checkpoint_every=0)
