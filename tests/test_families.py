"""The model registry and its families: registration, old runs, masking, published sizes, soft assignment."""

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vidstudy import models
from vidstudy.config import RunConfig, apply_overrides, build, preset
from vidstudy.errors import ParameterError
from vidstudy.features import FeatureFile, feature_file_name
from vidstudy.fingerprint import fingerprint
from vidstudy.models import blocks, build_model, count_parameters, family, list_models, register_model

OLD_RUNS = Path(__file__).parent / "data" / "old_runs"  # trained by the package before families had their own modules


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vidstudy.cli", *map(str, args)], capture_output=True, text=True)


def test_every_family_is_registered_with_the_study_model_first():
    assert list_models() == ["temporal", "meanpool", "dbof", "lstm", "netvlad", "nextvlad", "transformer"]
    for arch in list_models():
        fam = family(arch)
        assert set(fam.sizes) == {"cpu", "published"} and fam.fields()[0] == "arch"
        cfg = build("cpu", overrides=[f"model.arch={arch}"])
        assert RunConfig.from_dict(json.loads(cfg.to_json())).to_dict() == cfg.to_dict()  # its section round-trips


@dataclass
class ToyConfig:
    arch: str = "toy"
    width: int = 5


class Toy(nn.Module):
    def __init__(self, feature_dim, width, num_classes):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(feature_dim, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, features, lengths):
        return self.head(blocks.masked_mean(features, blocks.valid_mask(lengths, features.shape[1])))


@pytest.fixture
def toy_family():
    register_model("toy", ToyConfig, ranges={"width": (1, 64, False, False)}, sizes={"cpu": {"width": 3}, "published": {}})(
        lambda cfg, feature_dim, num_classes: Toy(feature_dim, cfg.width, num_classes))
    yield
    del models.registry._FAMILIES["toy"]


def test_a_family_registered_elsewhere_trains_predicts_and_is_checked_through_the_cli(toy_family, smoke_dir, tmp_path, capsys):
    from vidstudy.checkpoint import load_model
    from vidstudy.cli import main

    assert "toy" in list_models()
    run = tmp_path / "toy"
    assert main(["train", str(smoke_dir), str(run), "--members", "1", "--epochs", "1", "--quiet",
                 "--set", "model.width=7", "--set", "model.arch=toy"]) == 0  # arch first, whatever the order
    saved = json.loads((run / "config.json").read_text())["model"]
    assert saved == {"arch": "toy", "width": 7}
    model, _ = load_model(run / "members" / "ensemble_model_0" / "best.pt")
    assert isinstance(model, Toy) and model.head[0].out_features == 7
    assert main(["predict", str(run)]) == 0
    assert main(["train", str(smoke_dir), str(tmp_path / "bad"), "--set", "model.arch=toy", "--set", "model.width=65"]) != 0
    assert "model.width must lie in [1, 64], got 65." in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


TOY_MODULE = """
from dataclasses import dataclass

from torch import nn

from vidstudy.models import blocks, register_model


@dataclass
class PluginConfig:
    arch: str = "plugin"
    width: int = 4


class Plugin(nn.Module):
    def __init__(self, feature_dim, width, num_classes):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(feature_dim, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, features, lengths):
        return self.head(blocks.masked_mean(features, blocks.valid_mask(lengths, features.shape[1])))


@register_model("plugin", PluginConfig, ranges={"width": (1, 64, False, False)}, sizes={"cpu": {}, "published": {}})
def build(cfg, feature_dim, num_classes):
    return Plugin(feature_dim, cfg.width, num_classes)
"""


def test_a_family_in_a_module_of_ones_own_trains_through_the_vidstudy_command(smoke_dir, tmp_path):
    import os

    (tmp_path / "my_family.py").write_text(TOY_MODULE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "VIDSTUDY_MODELS": "my_family"}
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "vidstudy.cli", "train", str(smoke_dir), str(run), "--members", "1",
                        "--epochs", "1", "--quiet", "--set", "model.arch=plugin", "--set", "model.width=9"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["model"] == {"arch": "plugin", "width": 9}
    r = subprocess.run([sys.executable, "-m", "vidstudy.cli", "evaluate", str(run), "--bootstrap", "20"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "vidstudy.cli", "models"], capture_output=True, text=True, env=env)
    assert "plugin:" in r.stdout
    env["VIDSTUDY_MODELS"] = "no_such_family_module"
    r = subprocess.run([sys.executable, "-m", "vidstudy.cli", "train", str(smoke_dir), str(tmp_path / "x"),
                        "--set", "model.arch=plugin"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith(
        "vidstudy: error: VIDSTUDY_MODELS names the module 'no_such_family_module', which cannot be imported")
    assert not (tmp_path / "x").exists()


def _old_run(name, smoke_dir, tmp_path):
    """A copy of an old run whose data record names this session's smoke files (the same simulated data)."""
    run = tmp_path / name
    shutil.copytree(OLD_RUNS / name, run)
    files = {s: smoke_dir / feature_file_name(s) for s in ("train", "val", "test")}
    (run / "data.json").write_text(json.dumps(fingerprint(files)))
    return run


@pytest.mark.parametrize("name", ["temporal", "meanpool"])
def test_an_old_run_opens_and_gives_the_same_logits(name, smoke_dir):
    from vidstudy.checkpoint import load_model

    config = RunConfig.from_dict(json.loads((OLD_RUNS / name / "config.json").read_text())).validate()
    assert config.model.arch == name
    model, _ = load_model(OLD_RUNS / name / "members" / "ensemble_model_0" / "best.pt")
    test = FeatureFile(smoke_dir / feature_file_name("test"))
    with torch.no_grad():
        logits = model(torch.from_numpy(test.padded()), torch.from_numpy(np.asarray(test.num_frames))).numpy()
    np.testing.assert_allclose(logits, np.load(OLD_RUNS / name / "expected_logits.npy"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["temporal", "meanpool"])
def test_an_old_run_resumes_predicts_and_evaluates_with_its_own_command(name, smoke_dir, tmp_path):
    run = _old_run(name, smoke_dir, tmp_path)
    sets = (OLD_RUNS / name / "command.txt").read_text().split()
    r = run_cli("train", smoke_dir, run, "--members", "2", "--epochs", "2", "--resume", "--quiet", *sets)
    assert r.returncode == 0, r.stderr
    assert (run / "members" / "ensemble_model_1" / "best.pt").is_file()
    r = run_cli("evaluate", run, "--bootstrap", "20")
    assert r.returncode == 0, r.stderr
    assert len(json.loads((run / "results.json").read_text())["members"]) == 2


def _short_and_padded(feature_dim, seed=1):
    torch.manual_seed(seed)
    short, long = torch.rand(5, feature_dim), torch.rand(20, feature_dim)
    batch = torch.zeros(3, 20, feature_dim)
    batch[0, :5], batch[1], batch[2, :9] = short, long, long[:9]
    return short, batch, torch.tensor([5, 20, 9])


@pytest.mark.parametrize("arch", ["temporal", "meanpool", "dbof", "lstm", "netvlad", "nextvlad", "transformer"])
def test_a_videos_logits_do_not_depend_on_its_batchs_padding(arch):
    torch.manual_seed(0)
    model = build_model(family(arch).sized("cpu"), 12, 4)
    model.train()
    model(*_short_and_padded(12, seed=2)[1:])  # one training step's statistics, so batch norm is not the identity
    model.eval()
    short, batch, lengths = _short_and_padded(12)
    garbage = batch.clone()
    garbage[0, 5:] = 7.0  # whatever lies beyond a video's length
    with torch.no_grad():
        alone = model(short[None], torch.tensor([5]))[0]
        padded, dirty = model(batch, lengths)[0], model(garbage, lengths)[0]
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dirty, alone, rtol=1e-5, atol=1e-5)


def _weights(*tensors):
    return sum(t.numel() for t in tensors)


def _meta(arch, feature_dim, num_classes=4, **values):
    with torch.device("meta"):
        return build_model(family(arch).sized("published", **values), feature_dim, num_classes)


def test_netvlad_weights_follow_the_papers_formula():
    n, k, h = 1024, 128, 2048
    m = _meta("netvlad", n, clusters=k, hidden_dim=h)
    assert _weights(m.pool.assign.weight, m.pool.centres, m.hidden.weight) == n * k * (h + 2) == 268_697_600
    m = _meta("netvlad", 1024)  # published: K=256, hidden 1024
    assert m.pool.centres.shape == (1024, 256) and m.hidden.out_features == 1024


def test_nextvlad_weights_follow_the_papers_formula():
    n, k, h, g, lam = 1024, 128, 2048, 8, 2
    m = _meta("nextvlad", n)  # the published size is the formula's
    p = m.pool
    counted = _weights(p.expand.weight, p.group_attention.weight, p.assign.weight, p.centres, m.hidden.weight)
    assert counted == lam * n * (n + g + k * (g + (h + 1) / g)) == 71_352_320
    assert m.gating.squeeze[0].out_features == h // 8  # SE reduction r = 8


def test_starter_models_weights_follow_their_definitions():
    d, c = 1024, 4
    m = _meta("dbof", d)  # 8,192 clusters, hidden 1,024
    bn = 2 * (d + 8192 + 1024)
    assert count_parameters(m) == d * 8192 + 8192 * 1024 + bn + 1024 * c + c
    m = _meta("lstm", d)  # 2 layers of 1,024 cells
    h = 1024
    assert count_parameters(m) == 4 * h * (d + h) + 8 * h + 4 * h * (h + h) + 8 * h + h * c + c
    assert abs(count_parameters(_meta("temporal", 1280)) - 65.3e6) / 65.3e6 < 0.01


def test_soft_assignment_sums_to_one_over_clusters_and_gives_padding_no_weight():
    torch.manual_seed(0)
    _, batch, lengths = _short_and_padded(12)
    mask = blocks.valid_mask(lengths, batch.shape[1])
    net = build_model(family("netvlad").sized("cpu", clusters=6), 12, 4).eval()
    a = net.pool.assignment(batch, mask)
    torch.testing.assert_close(a.sum(-1)[mask], torch.ones(int(mask.sum())))
    assert (a[~mask] == 0).all() and (a[mask] > 0).all()
    nxt = build_model(family("nextvlad").sized("cpu", clusters=5, groups=4), 12, 4).eval()
    x = nxt.pool.expand(batch)
    a = nxt.pool.assignment(x, mask)  # [B, T, G, K]: softmax over clusters times the group's attention
    attention = torch.sigmoid(nxt.pool.group_attention(x))
    torch.testing.assert_close(a.sum(-1)[mask], attention[mask])
    assert (a[~mask] == 0).all()
    residual = blocks.vlad(a.flatten(1, 2), x.reshape(3, -1, nxt.pool.group_size), nxt.pool.centres)
    torch.testing.assert_close(residual.norm(dim=2), torch.ones(3, 5))  # intra-normalised with L2, not L1


@pytest.mark.parametrize("arch", ["temporal", "meanpool", "dbof", "lstm", "netvlad", "nextvlad", "transformer"])
def test_one_cli_epoch_per_family(arch, smoke_dir, tmp_path):
    run = tmp_path / arch
    r = run_cli("train", smoke_dir, run, "--members", "1", "--epochs", "1", "--quiet", "--set", f"model.arch={arch}")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["model"]["arch"] == arch
    r = run_cli("predict", run)
    assert r.returncode == 0, r.stderr


def test_arch_overrides_come_first_and_take_the_presets_size():
    cfg = apply_overrides(preset("cpu"), ["model.clusters=64", "model.arch=nextvlad"])
    assert (cfg.model.arch, cfg.model.clusters, cfg.model.hidden_dim) == ("nextvlad", 64, 128)
    assert build("paper", overrides=["model.arch=nextvlad"]).model.hidden_dim == 2048  # the published size
    with pytest.raises(ParameterError, match=r"the temporal model has the fields hidden_dim, .*model.arch chooses"):
        apply_overrides(preset("cpu"), ["model.clusters=64"])
    with pytest.raises(ParameterError, match=r"^model.arch must be one of temporal, meanpool, .*got 'vlad'\.$"):
        apply_overrides(preset("cpu"), ["model.arch=vlad"])
    with pytest.raises(ParameterError, match=r"model.num_heads \(3\) must divide model.hidden_dim \(64\)"):
        build("cpu", overrides=["model.arch=transformer", "model.num_heads=3"])
    with pytest.raises(ParameterError, match=r"model.clusters must lie in \[1, 4096\], got 0"):
        build("cpu", overrides=["model.arch=netvlad", "model.clusters=0"])


def test_a_family_rule_on_the_feature_dimension_is_refused_in_one_line_and_leaves_no_run(smoke_dir, tmp_path):
    r = run_cli("train", smoke_dir, tmp_path / "run", "--set", "model.arch=nextvlad", "--set", "model.groups=7")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].endswith("model.groups (7) must divide model.expansion times the feature "
                                                       "dimension (2 x 32 = 64).")
    assert not (tmp_path / "run").exists()


def test_masked_pooling_blocks_see_only_valid_steps():
    x = -torch.arange(12.0).view(2, 3, 2) - 1
    mask = torch.tensor([[True, True, False], [True, False, False]])
    x[~mask] = 100.0  # what lies beyond a video's length would win a plain max and move a plain mean
    torch.testing.assert_close(blocks.masked_max(x, mask), torch.tensor([[-1.0, -2.0], [-7.0, -8.0]]))
    torch.testing.assert_close(blocks.masked_mean(x, mask), torch.tensor([[-2.0, -3.0], [-7.0, -8.0]]))


@pytest.mark.parametrize("arch", ["temporal", "meanpool", "dbof", "lstm", "netvlad", "nextvlad", "transformer"])
def test_every_family_takes_youtube8ms_shape(arch):
    """YouTube-8M's frame-level shape (T=300; D=1024 rgb, 1152 with audio): each family builds at its published size
    and trains a step at its CPU size on values in the dequantized range [-2, 2]."""
    for d in (1024, 1152):
        assert count_parameters(_meta(arch, d)) > 0
    torch.manual_seed(0)
    model = build_model(family(arch).sized("cpu"), 1152, 4)
    x = torch.rand(2, 300, 1152) * 4 - 2
    logits = model(x, torch.tensor([300, 137]))
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
