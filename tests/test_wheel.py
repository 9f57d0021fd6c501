"""The package built as a wheel and installed away from the checkout works, and writes only where it is told to."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_digest

from vidstudy.extraction.video import write_video

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the sources (so the checkout gets no build/), installed with its dependencies
    and the ``extract`` extra by pip into a new virtual environment: ``(environment, its site-packages)``.

    The environment sees the packages of the one running the tests through a path file, so pip resolves every
    declared dependency offline (``--no-index``: a requirement this environment cannot satisfy fails the install)."""
    import sysconfig

    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "vidstudy", src / "vidstudy", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("vidstudy-*.whl")
    env_dir = tmp / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, capture_output=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(pip + ["--python", str(python), "install", "--no-index", "--no-compile", f"{wheel}[extract]"],
                          capture_output=True, text=True, cwd=tmp)
    assert done.returncode == 0, done.stderr
    return env_dir, site


def test_pip_installs_the_dependencies_and_the_console_script(installed):
    env_dir, site = installed
    script = env_dir / "bin" / "vidstudy"
    assert script.is_file()
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: vidstudy"), proc.stderr
    import importlib.metadata as md

    dist = next(md.distributions(path=[str(site)], name="vidstudy"))
    assert any(r.startswith("torch==") for r in dist.requires)


def test_installed_wheel_runs_the_pipeline_from_an_empty_folder(installed, tmp_path):
    env_dir, site = installed
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    installed_package = site / "vidstudy"
    site_before, repo_before = tree_digest(installed_package), tree_digest(REPO / "vidstudy")

    def vidstudy(*args, ok=True):
        proc = subprocess.run([env_dir / "bin" / "vidstudy", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert (proc.returncode == 0) == ok, (args, proc.stdout, proc.stderr)
        return proc

    where = subprocess.run([env_dir / "bin" / "python", "-c", "import vidstudy; print(vidstudy.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(installed_package / "__init__.py")  # the installed copy, not the checkout

    vidstudy("simulate", "data", "--shape", "smoke")
    assert "features (D)  32" in vidstudy("inspect", "data/test_features_multiscale.h5").stdout
    assert "mean probe on test" in vidstudy("probe", "data").stdout
    vidstudy("train", "data", "run", "--members", "2", "--epochs", "1", "--set", "model.hidden_dim=8",
             "--set", "model.num_heads=2", "--set", "model.head_dims=8", "--no-plots", "--quiet")
    vidstudy("predict", "run")
    assert "wrote run/results.json" in vidstudy("evaluate", "run", "--bootstrap", "20").stdout
    for split, cat, colour in (("train", "Animation", 40), ("train", "Gaming", 200), ("val", "Animation", 90),
                               ("val", "Gaming", 160)):
        frames = np.full((6, 32, 32, 3), colour, np.uint8)
        frames[:, :, ::4] = 255 - colour
        write_video(work / "videos" / split / cat / "sub" / "clip.mp4", frames)
    vidstudy("extract", "videos", "feats", "--frames", "3", "--quiet")
    assert "features (D)  1280" in vidstudy("inspect", "feats/val_features_multiscale.h5").stdout

    refused = vidstudy("book", ok=False).stderr.strip().splitlines()
    assert len(refused) == 1 and "vidstudy book needs the project checkout" in refused[0], refused

    assert sorted(p.name for p in work.iterdir()) == ["data", "feats", "run", "videos"]  # only the folders it was given
    assert tree_digest(installed_package) == site_before  # nothing written into the installed package
    assert tree_digest(REPO / "vidstudy") == repo_before
    assert not (REPO / "build").exists()
