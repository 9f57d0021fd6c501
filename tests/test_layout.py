"""The package is laid out by stage: each stage's subpackage imports on its own, and each format has one owner."""

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vidstudy"


@pytest.mark.parametrize("stage, other", [("extraction", "study"), ("study", "extraction")])
def test_each_stage_imports_without_the_other(stage, other):
    modules = sorted(p.stem for p in (PACKAGE / stage).glob("*.py") if p.stem != "__init__")
    code = "; ".join(f"import vidstudy.{stage}.{m}" for m in modules)
    code += f"; import sys; print(sorted(k for k in sys.modules if k.startswith('vidstudy.{other}')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"vidstudy.{stage} imports vidstudy.{other}: {out}"


def test_the_core_imports_neither_stage():
    core = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "cli"))
    code = "; ".join(f"import vidstudy.{m}" for m in core)
    code += "; import sys; print(sorted(k for k in sys.modules if k.startswith(('vidstudy.study', 'vidstudy.extraction'))))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_checkpoint_layout_is_named_in_one_module():
    naming = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "best.pt" in p.read_text())
    assert naming == ["checkpoint.py"]
