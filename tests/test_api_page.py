"""The "use it from Python" page runs as printed, in a clean folder, and writes only where it says."""

import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "book" / "python.md"


def test_python_page_runs_as_printed(tmp_path):
    pipeline, classify = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len([line for line in pipeline.splitlines() if line.strip()]) <= 12  # "a dozen lines"
    code = pipeline + "\nprint('=== classify ===')\n" + classify
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Test per-class F1 (%) with 95 % bootstrap CIs" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "runs", "videos"]
    (line,) = proc.stdout.split("=== classify ===\n")[1].splitlines()  # one video, its call and its two windows
    assert line.startswith("videos/noise.mp4 [(") and re.search(r"(True|False) \['\w+', '\w+'\]$", line), line
    assert (tmp_path / "runs" / "smoke" / "results.json").is_file()
    assert sorted(p.name for p in (tmp_path / "data" / "smoke").iterdir()) == [
        "test_features_multiscale.h5", "train_features_multiscale.h5", "val_features_multiscale.h5"]
