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


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_makefile_installs_torch_from_the_pyproject_pin():
    makefile = (ROOT / "Makefile").read_text()
    assert "pyproject.toml" in makefile and '"$(TORCH)"' in makefile
    assert any(r.startswith("torch==") for r in _pyproject_requirements())
