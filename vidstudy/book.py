"""``vidstudy book``: execute the chapters with papermill, then build the HTML book.

1. Data: with no ``--data``, the simulated default (or smoke) data is written to
   ``data/{shape}-seed0`` once.
2. Chapters ``notebooks/NN_*.ipynb`` run in order with papermill into
   ``book/executed/`` (outputs kept, this environment's kernel). A chapter is
   re-executed only when its inputs changed: its source, the parameters, the
   package source, the data files, or an earlier chapter. Each executes into a
   temporary file first, so a failing chapter leaves the previous book intact and
   is reported as ``chapter NN_name failed in cell K: error``.
3. ``jupyter-book build -W -n --keep-going .`` (``execute_notebooks: "off"``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from .errors import ParameterError, VidstudyError
from .features import SPLITS, feature_file_name
from .runs import atomic_path, write_json

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("01_data", "02_training", "03_per_class_f1", "04_animation_anomaly", "05_ensemble_tta", "06_experiments",
            "07_recipes", "08_video_features")
DEFAULT_PARAMS = {"data_dir": "", "run_dir": "runs/book", "preset": "cpu", "members": 4, "epochs": 0,
                  "seed_base": 42, "smoke": False}
SMOKE_PARAMS = {"run_dir": "runs/book-smoke", "members": 2, "epochs": 2, "smoke": True}
HIDDEN_TAGS = ("parameters", "injected-parameters")


def resolve_params(params_file: Path | None = None, data: Path | None = None, smoke: bool = False) -> dict:
    """Chapter parameters: defaults, then ``--smoke``, then the YAML file, then ``--data``."""
    params = dict(DEFAULT_PARAMS)
    if smoke:
        params.update(SMOKE_PARAMS)
    if params_file is not None:
        import yaml

        if not Path(params_file).is_file():
            raise ParameterError(f"{params_file}: parameters file does not exist.")
        loaded = yaml.safe_load(Path(params_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ParameterError(f"{params_file}: must be a YAML mapping of chapter parameters (name: value).")
        unknown = sorted(set(loaded) - set(DEFAULT_PARAMS))
        if unknown:
            raise ParameterError(f"{params_file}: unknown chapter parameters {unknown}; known: {', '.join(DEFAULT_PARAMS)}.")
        params.update(loaded)
    if data is not None:
        params["data_dir"] = str(data)
    return params


def default_data(root: Path, smoke: bool) -> Path:
    """The simulated data the book uses when no data folder is given (written once)."""
    from .simulate import simulate

    shape = "smoke" if smoke else "default"
    out = root / "data" / f"{shape}-seed0"
    if not all((out / feature_file_name(s)).exists() for s in SPLITS):
        simulate(out, seed=0, shape=shape)
    return out


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def _package_digest() -> bytes:
    return "".join(_digest(p.read_bytes()) for p in sorted((ROOT / "vidstudy").glob("*.py"))).encode()


def _data_digest(data_dir: Path) -> bytes:
    stamps = []
    for s in SPLITS:
        st = (data_dir / feature_file_name(s)).stat()
        stamps.append([str((data_dir / feature_file_name(s)).resolve()), st.st_size, st.st_mtime_ns])
    return json.dumps(stamps).encode()


def _hide_parameter_cells(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in tags for t in HIDDEN_TAGS) and "remove-cell" not in tags:
            cell.setdefault("metadata", {})["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def execute_chapter(name: str, params: dict, root: Path, out_dir: Path) -> None:
    """Run one chapter with papermill into ``out_dir/name.ipynb`` (atomically)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    src = root / "notebooks" / f"{name}.ipynb"
    target = out_dir / f"{name}.ipynb"
    with atomic_path(target) as tmp:
        tmp_nb = tmp.with_suffix(".ipynb")
        try:
            pm.execute_notebook(str(src), str(tmp_nb), parameters=params, kernel_name="python3", cwd=str(root),
                                progress_bar=False, log_output=False, extra_arguments=["--log-level=ERROR"])
        except PapermillExecutionError as exc:
            raise VidstudyError(f"chapter {name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None
        finally:
            if tmp_nb.exists():
                tmp_nb.replace(tmp)
        _hide_parameter_cells(tmp)


def build_book(params_file: Path | None = None, data: Path | None = None, smoke: bool = False, root: Path = ROOT,
               echo=print) -> dict:
    """Execute what changed, then build ``_build/html``; returns the timings."""
    params = resolve_params(params_file, data, smoke)
    data_dir = Path(params["data_dir"]) if params["data_dir"] else default_data(root, smoke)
    params["data_dir"] = str(data_dir)
    out_dir = root / "book" / "executed"
    stamps_path = out_dir / ".stamps.json"
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    chain = _digest(json.dumps(params, sort_keys=True).encode(), _package_digest(), _data_digest(data_dir))
    timings = {}
    t_all = time.perf_counter()
    for name in CHAPTERS:
        chain = _digest(chain.encode(), (root / "notebooks" / f"{name}.ipynb").read_bytes())
        if stamps.get(name) == chain and (out_dir / f"{name}.ipynb").exists():
            echo(f"[book] {name}: unchanged, not re-executed")
            continue
        t0 = time.perf_counter()
        echo(f"[book] {name}: executing ...")
        execute_chapter(name, params, root, out_dir)
        timings[name] = time.perf_counter() - t0
        stamps[name] = chain
        write_json(stamps_path, stamps)
        echo(f"[book] {name}: done in {timings[name]:.1f} s (total {time.perf_counter() - t_all:.1f} s)")
    t0 = time.perf_counter()
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "."], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise VidstudyError(f"jupyter-book build failed (exit {proc.returncode}); its last lines:\n{tail}")
    timings["jupyter-book"] = time.perf_counter() - t0
    echo(f"[book] jupyter-book build: {timings['jupyter-book']:.1f} s; open {root / '_build' / 'html' / 'index.html'}")
    return timings
