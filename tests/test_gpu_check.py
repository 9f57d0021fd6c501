"""The prepared GPU check: on a machine without a CUDA GPU it says so in one line and exits 0."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here: run benchmarks/gpu_check.sh itself")
def test_the_gpu_check_skips_a_machine_without_a_gpu(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "OUT": str(tmp_path)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gpu_check: no CUDA GPU on this machine; nothing to check (run it on one with a GPU)"
    assert not any(tmp_path.iterdir())
