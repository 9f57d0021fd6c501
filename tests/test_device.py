"""Devices and precision: resolution and its one-line error, checkpoints across devices, bf16 autocast, and the
ways batches reach a device (loader, resident, pinned), all on the CPU; the CUDA tests run where there is a GPU."""

import json

import numpy as np
import pytest
import torch

from vidstudy.cli import main
from vidstudy.config import apply_overrides, preset
from vidstudy.data import AugmentConfig, VideoDataset, augment_batch, make_loader
from vidstudy.device import autocast, resolve_device
from vidstudy.errors import ParameterError
from vidstudy.features import load_splits
from vidstudy.feeding import Feed, feeding_mode, split_bytes
from vidstudy.train import train_single_model

TINY = ["model.hidden_dim=16", "model.num_heads=2", "model.head_dims=16", "train.batch_size=16"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_device_resolution_and_the_one_line_error(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    with pytest.raises(ParameterError, match=r"^--device cuda: this machine has no CUDA GPU that torch can use; "
                                             r"use --device cpu or auto\.$"):
        resolve_device("cuda")
    with pytest.raises(ParameterError, match=r"^--device must be auto, cpu, cuda or cuda:N, got 'tpu'\.$"):
        resolve_device("tpu")
    with pytest.raises(ParameterError, match=r"^device must be auto, cpu, cuda or cuda:N, got 'cuda:x'\.$"):
        resolve_device("cuda:x", "device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ParameterError, match=r"^--device cuda:1: this machine has 1 CUDA GPU\(s\), numbered from 0\.$"):
        resolve_device("cuda:1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "extract"])
def test_every_command_names_device_in_one_line_when_there_is_no_gpu(smoke_dir, tmp_path, capsys, command):
    argv = {"train": ["train", str(smoke_dir), str(tmp_path / "r")], "predict": ["predict", str(tmp_path / "r")],
            "evaluate": ["evaluate", str(tmp_path / "r")], "extract": ["extract", str(tmp_path), str(tmp_path / "o")]}
    assert main(argv[command] + ["--device", "cuda"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "vidstudy: error: --device cuda: this machine has no CUDA GPU that torch can use; use --device cpu or auto."]
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_train_precision_is_checked(tmp_path):
    with pytest.raises(ParameterError, match=r"train\.precision must be one of fp32, bf16, got 'fp16'"):
        apply_overrides(preset("cpu"), ["train.precision=fp16"]).validate()


def test_bf16_autocast_runs_a_forward_pass_and_a_member_on_the_cpu(smoke_dir, tmp_path):
    from vidstudy.models import build_model

    files = load_splits(smoke_dir, ("train", "val"))
    cfg = apply_overrides(preset("cpu"), TINY + ["members=1", "train.epochs=2", "train.precision=bf16"])
    model = build_model(cfg.model, files["train"].feature_dim, 4)
    x = torch.from_numpy(files["val"].padded()[:4])
    lengths = torch.from_numpy(files["val"].num_frames[:4].astype(np.int64))
    with autocast(torch.device("cpu"), "bf16"):
        assert model(x, lengths).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert model(x, lengths).dtype == torch.float32
    summary = train_single_model(cfg, files["train"], files["val"], 42, tmp_path / "m", plots=False, quiet=True, device="cpu")
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert summary["device"] == "cpu" and len(history["train_loss"]) == 2
    assert all(np.isfinite(history["train_loss"])) and all(np.isfinite(history["val_loss"]))


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_training_and_validation_run_the_network_at_the_configured_precision(smoke_dir, tmp_path, monkeypatch,
                                                                               precision, dtype):
    import vidstudy.train as train

    seen = {True: set(), False: set()}  # the network's output dtype in training and in evaluation mode
    real = train.build_model

    def watched(*args, **kwargs):
        model = real(*args, **kwargs)
        model.register_forward_hook(lambda module, inputs, out: seen[module.training].add(out.dtype))
        return model

    monkeypatch.setattr(train, "build_model", watched)
    files = load_splits(smoke_dir, ("train", "val"))
    cfg = apply_overrides(preset("cpu"), TINY + ["members=1", "train.epochs=1", f"train.precision={precision}"])
    train_single_model(cfg, files["train"], files["val"], 42, tmp_path / "m", plots=False, quiet=True, device="cpu")
    assert seen == {True: {dtype}, False: {dtype}}


def test_the_resident_path_augments_training_batches(smoke_dir):
    from vidstudy.data import AugmentConfig

    train = load_splits(smoke_dir, ("train",))["train"]
    cpu = torch.device("cpu")

    def features(augment, seed):
        feed = Feed(VideoDataset(train, augment, seed=0), cpu, "resident")
        return [b.features.clone() for b in feed.batches(16, shuffle=True, seed=seed)]

    plain, augmented, again = features(None, 3), features(AugmentConfig(), 3), features(AugmentConfig(), 3)
    assert all(torch.equal(a, b) for a, b in zip(augmented, again))  # seeded
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(plain, augmented))  # and applied
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(augmented, features(AugmentConfig(), 4)))


def test_the_feeding_mode_follows_the_device_and_the_memory_budget(smoke_dir):
    data = VideoDataset(load_splits(smoke_dir, ("val",))["val"])
    need = split_bytes(data)
    assert need == len(data) * data.file.max_frames * data.file.feature_dim * 4
    assert feeding_mode(data, torch.device("cpu")) == "loader"
    assert feeding_mode(data, torch.device("cuda"), budget=need) == "resident"
    assert feeding_mode(data, torch.device("cuda"), budget=need - 1) == "pinned"


def _batches(feed, **kw):
    return [tuple(t.clone() for t in b) for b in feed.batches(8, **kw)]


def test_resident_batches_are_the_loaders_batches(smoke_dir):
    """Without augmentation, the device-resident path gives the same batches in the same order as the DataLoader,
    in order, shuffled by the same seed, and in a sampler's order."""
    from vidstudy.sampling import weighted_sampler

    data = VideoDataset(load_splits(smoke_dir, ("train",))["train"])
    loader, resident = Feed(data, torch.device("cpu")), Feed(data, torch.device("cpu"), mode="resident")
    assert loader.mode == "loader" and resident.mode == "resident"
    for sampler in (None, 7):  # in order; in a (seeded) weighted sampler's order
        a, b = (_batches(feed, sampler=sampler and weighted_sampler(data.labels, np.ones(4), seed=sampler))
                for feed in (loader, resident))
        assert len(a) == len(b) == -(-len(data) // 8)
        for x, y in zip(a, b):
            assert all(torch.equal(u, v) for u, v in zip(x, y))
    shuffled = _batches(resident, shuffle=True, seed=3)
    assert [b[3].tolist() for b in shuffled] == [b[3].tolist() for b in _batches(resident, shuffle=True, seed=3)]
    assert sorted(torch.cat([b[3] for b in shuffled]).tolist()) == sorted(data.labels.tolist())


def test_batched_augmentation_keeps_ordered_frames_rolls_within_the_video_and_zeroes_the_padding():
    t, d = 20, 3
    lengths = torch.tensor([20, 12, 9, 5])
    x = torch.zeros(4, t, d)
    for i, n in enumerate(lengths.tolist()):
        x[i, :n, 0] = torch.arange(1, n + 1)  # frame number, from 1, in channel 0
    gen = torch.Generator().manual_seed(0)
    cfg = AugmentConfig(subset_p=1.0, roll_p=0.0, noise_p=0.0, subset_min_frames=8)
    drawn = set()
    for _ in range(20):
        out, new = augment_batch(x, lengths, cfg, gen)
        drawn.add(tuple(out[0, : new[0], 0].long().tolist()))
        for i, n in enumerate(lengths.tolist()):
            frames = out[i, : new[i], 0].tolist()
            low = max(8, int(np.ceil(0.7 * n)))
            assert (low <= new[i] <= n) if n > 8 else new[i] == n  # 5 frames: too short to thin
            assert frames == sorted(set(frames)) and set(frames) <= set(range(1, n + 1))  # an ordered subset
            assert out[i, new[i]:].abs().sum() == 0  # zero after the new length
    assert len(drawn) > 10 and any(20 in f and f[0] > 1 for f in drawn)  # random subsets, not the first frames
    rolled, same = augment_batch(x, lengths, AugmentConfig(subset_p=0, roll_p=1.0, roll_max=3, noise_p=0), gen)
    assert torch.equal(same, lengths)
    for i, n in enumerate(lengths.tolist()):
        frames = rolled[i, :n, 0].long().tolist()
        shift = (1 - frames[0]) % n  # out[k] = in[(k - s) mod n]
        assert min(shift, n - shift) <= 3 and frames == [((k - shift) % n) + 1 for k in range(n)]
    noisy, _ = augment_batch(x, lengths, AugmentConfig(subset_p=0, roll_p=0, noise_p=1.0, noise_std=0.5), gen)
    for i, n in enumerate(lengths.tolist()):
        assert not torch.equal(noisy[i, :n], x[i, :n]) and noisy[i, n:].abs().sum() == 0


def test_a_member_trains_through_the_resident_path_deterministically(smoke_dir, tmp_path):
    files = load_splits(smoke_dir, ("train", "val"))
    cfg = apply_overrides(preset("cpu"), TINY + ["members=1", "train.epochs=2"])
    runs = [train_single_model(cfg, files["train"], files["val"], 42, tmp_path / f"m{k}", plots=False, quiet=True,
                               device="cpu", feeding="resident") for k in range(2)]
    histories = [json.loads((tmp_path / f"m{k}" / "history.json").read_text()) for k in range(2)]
    for key in ("train_loss", "val_loss", "val_macro_f1"):
        assert histories[0][key] == histories[1][key] and all(np.isfinite(histories[0][key]))
    assert runs[0]["best_metrics"] == runs[1]["best_metrics"]


def test_checkpoints_are_written_from_the_cpu_and_loaded_onto_the_device_asked_for(smoke_dir, tmp_path):
    from vidstudy import checkpoint

    files = load_splits(smoke_dir, ("train", "val"))
    cfg = apply_overrides(preset("cpu"), TINY + ["members=1", "train.epochs=1"])
    train_single_model(cfg, files["train"], files["val"], 42, tmp_path / "m", plots=False, quiet=True, device="cpu")
    stored = torch.load(tmp_path / "m" / "best.pt", weights_only=True)  # no map_location: as written
    assert {t.device.type for t in stored["model_state"].values()} == {"cpu"}
    model, _ = checkpoint.load_model(tmp_path / "m" / "best.pt", device="meta")  # any device torch knows
    assert {p.device.type for p in model.parameters()} == {"meta"}


@cuda
def test_a_run_trained_on_the_gpu_predicts_on_the_cpu_and_back(smoke_dir, tmp_path):
    from vidstudy.predictions import build_predictions, load_predictions

    for trained, predicted in (("cuda", "cpu"), ("cpu", "cuda")):
        run = tmp_path / trained
        assert main(["train", str(smoke_dir), str(run), "--members", "1", "--epochs", "1", "--quiet", "--no-plots",
                     "--device", trained, "--set", "train.precision=bf16"]) == 0
        summary = json.loads((run / "members" / "ensemble_model_0" / "summary.json").read_text())
        assert summary["device"].startswith(trained)
        build_predictions(run, device=predicted)
        here = load_predictions(run, "test").probs
        build_predictions(run, device=trained)
        np.testing.assert_allclose(load_predictions(run, "test").probs, here, atol=2e-2)  # bf16 on either side


@cuda
@pytest.mark.parametrize("arch", ["temporal", "meanpool", "dbof", "lstm", "netvlad", "nextvlad", "transformer"])
def test_every_family_runs_on_the_gpu_as_on_the_cpu_and_trains_in_bf16(arch):
    """No CPU-only operation in a forward pass: the GPU's fp32 logits are the CPU's; a bf16 step gives finite
    gradients on the device."""
    import copy

    from vidstudy.models import build_model, family

    torch.manual_seed(0)
    model = build_model(family(arch).sized("cpu"), 32, 4).eval()
    x, lengths = torch.randn(6, 20, 32), torch.tensor([20, 3, 11, 20, 1, 7])
    x = x * (torch.arange(20)[None, :, None] < lengths[:, None, None])
    gpu = copy.deepcopy(model).cuda()
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda(), lengths.cuda()).cpu(), model(x, lengths), rtol=1e-3, atol=1e-3)
    gpu.train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = gpu(x.cuda(), lengths.cuda())
    logits.float().logsumexp(1).mean().backward()
    grads = [p.grad for p in gpu.parameters() if p.grad is not None]
    assert grads and all(g.device.type == "cuda" and torch.isfinite(g).all() for g in grads)


@cuda
def test_gpu_feeding_modes_give_the_same_batches(smoke_dir):
    data = VideoDataset(load_splits(smoke_dir, ("val",))["val"])
    dev = torch.device("cuda")
    resident, pinned = Feed(data, dev, budget=split_bytes(data)), Feed(data, dev, budget=0)
    assert (resident.mode, pinned.mode) == ("resident", "pinned")
    for a, b in zip(resident.batches(8), pinned.batches(8)):
        assert a.features.device.type == b.features.device.type == "cuda"
        assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert make_loader(data, 4, pin_memory=True).pin_memory


def test_inference_attention_takes_the_plain_path_on_the_cpu_only_and_agrees_with_the_fused_one():
    from vidstudy.device import inference_attention
    from vidstudy.models import TemporalClassifier

    assert torch.backends.mha.get_fastpath_enabled()
    with inference_attention(torch.device("cpu")):
        assert not torch.backends.mha.get_fastpath_enabled()
    assert torch.backends.mha.get_fastpath_enabled()
    with inference_attention(torch.device("cuda")):  # a device name only: nothing runs there
        assert torch.backends.mha.get_fastpath_enabled()
    torch.manual_seed(0)
    model = TemporalClassifier(16, hidden_dim=8, num_lstm_layers=1, num_heads=2, head_dims=(8,)).eval()
    x, lengths = torch.randn(6, 10, 16), torch.tensor([10, 9, 7, 5, 3, 1])
    x[torch.arange(10)[None] >= lengths[:, None]] = 0
    with torch.no_grad():
        fused = model(x, lengths)
        with inference_attention(torch.device("cpu")):
            plain = model(x, lengths)
    torch.testing.assert_close(plain, fused, rtol=1e-5, atol=1e-6)
