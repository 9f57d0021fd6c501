"""The project's set-up files agree with each other."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for group in project["optional-dependencies"].values():
        reqs += [r for r in group if not r.startswith(project["name"] + "[")]
    return reqs


def _environment_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [r for r in pip if not r.startswith("-e")]


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert len(py) == len(set(py))
    assert sorted(py, key=str.lower) == sorted(env, key=str.lower)


def test_every_requirement_is_pinned_exactly():
    for req in _pyproject_requirements():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.]*", req), req


def _make_dry_run(*targets):
    """The commands ``make`` would run for ``targets`` (``-n``: printed, not run; ``-B``: as from scratch)."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # CI runs us in make
    return subprocess.run(["make", "--no-print-directory", "-n", "-B", *targets], cwd=ROOT, capture_output=True,
                          text=True, check=True, env=env).stdout


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## The two commands\n+```bash\n(.*?)```", readme, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make test", "make book"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ci[-1] == "make test"  # the README's test command is what CI runs, last
    assert _make_dry_run("test").strip().splitlines()[-1] == ".venv/bin/python -m pytest"


def test_makefile_installs_torch_from_the_pyproject_pin_before_the_package():
    (torch_pin,) = [r for r in _pyproject_requirements() if r.startswith("torch==")]
    commands = _make_dry_run("env").splitlines()
    torch_line = next(i for i, c in enumerate(commands) if f'install --quiet "{torch_pin}"' in c)
    package_line = next(i for i, c in enumerate(commands) if 'install --quiet -e ".[dev]"' in c)
    assert torch_line < package_line  # the CPU wheel first, so the package's requirement is already met
