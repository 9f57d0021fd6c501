import hashlib
import json
import os
from pathlib import Path

import h5py
import nbformat
import numpy as np
import pytest

from vidstudy.features import STUDY_CATEGORIES
from vidstudy.simulate import simulate

ORIGINAL_T, ORIGINAL_D = 73, 1280


def original_arrays(n=8, t=ORIGINAL_T, d=ORIGINAL_D, seed=0):
    """Arrays shaped like the original study's files (padded with zeros after num_frames)."""
    rng = np.random.default_rng(seed)
    num_frames = rng.integers(5, t + 1, size=n).astype(np.int32)
    num_frames[0] = t
    features = np.abs(rng.standard_normal((n, t, d))).astype(np.float32)
    features[np.arange(t)[None, :] >= num_frames[:, None]] = 0.0
    labels = (np.arange(n) % 4).astype(np.int64)
    return {"features": features, "labels": labels, "num_frames": num_frames}


def write_plain_h5(path, arrays=None, attrs=None, drop=(), **array_overrides):
    """Write a file with plain h5py in the original study's schema (gzip 4), with overrides.

    ``drop`` names datasets or attributes to leave out; ``attrs`` overrides attributes.
    """
    arrays = dict(arrays or original_arrays())
    arrays.update(array_overrides)
    n, t, d = arrays["features"].shape if arrays["features"].ndim == 3 else (len(arrays["labels"]), 0, 0)
    base_attrs = {
        "num_videos": n,
        "max_frames": t,
        "feature_dim": d,
        "multi_scale": True,
        "category_mapping": json.dumps(STUDY_CATEGORIES),
    }
    base_attrs.update(attrs or {})
    with h5py.File(path, "w") as f:
        for name, data in arrays.items():
            if name in drop:
                continue
            kw = {"compression": "gzip", "compression_opts": 4} if name == "features" and np.ndim(data) > 0 else {}
            f.create_dataset(name, data=data, **kw)
        for key, value in base_attrs.items():
            if key not in drop:
                f.attrs[key] = value
    return Path(path)


def tree_digest(folder) -> dict:
    """Every file under ``folder`` with the SHA-256 of its content: what "nothing changed" means."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    """The simulated data at the tiny smoke shape (written once per test session)."""
    out = tmp_path_factory.mktemp("smoke")
    simulate(out, seed=0, shape="smoke")
    return out


@pytest.fixture(scope="session")
def default_dir(tmp_path_factory):
    """The simulated data at the default shape (a few seconds, once per session)."""
    out = tmp_path_factory.mktemp("default")
    simulate(out, seed=0, shape="default")
    return out


@pytest.fixture(scope="module")
def tiny_run(smoke_dir, tmp_path_factory):
    """One member, one epoch on the smoke data, with its predictions store and results (a few seconds, once per
    module)."""
    from vidstudy.cli import main

    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(["train", str(smoke_dir), str(out), "--members", "1", "--epochs", "1", "--quiet", "--no-plots"]) == 0
    assert main(["evaluate", str(out), "--bootstrap", "20", "--subsequences", "1"]) == 0
    return out


# --- the smoke book, built once per session (test_book, test_book_numbers) ---------------------------------

REPO = Path(__file__).resolve().parents[1]


def copy_book_sources(dst: Path) -> None:
    from vidstudy.study.book import copy_sources

    copy_sources(dst, REPO)


#: The parameters file the smoke book is built with (in its root): what it sets is what a CPU machine uses anyway,
#: so the runs are the smoke book's, and the chapters' injected parameters show that the file was read.
SMOKE_PARAMS = "smoke-params.yaml"


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The smoke book, built by ``vidstudy book --smoke --params smoke-params.yaml`` in a copy of the sources (the
    checkout the command builds is that copy), profiled into ``profile.jsonl`` there: ``(root, the lines the command
    printed)``."""
    import contextlib
    import io
    from unittest import mock

    from vidstudy import profiling
    from vidstudy.cli import main
    from vidstudy.study import book

    root = tmp_path_factory.mktemp("bookroot")
    copy_book_sources(root)
    (root / SMOKE_PARAMS).write_text("device: cpu\n")
    printed, errors = io.StringIO(), io.StringIO()
    in_copy = mock.patch.object(book, "book_root", lambda r=None, find=book.book_root: find(root if r is None else r))
    profiled = mock.patch.dict(os.environ, {profiling.PROFILE_ENV: str(root / "profile.jsonl")})
    with in_copy, profiled, contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        status = main(["book", "--smoke", "--params", str(root / SMOKE_PARAMS)])
    assert status == 0, errors.getvalue()[-3000:]
    return root, printed.getvalue().splitlines()


def main_run(runs: Path, data_name: str) -> Path:
    """The one ensemble run of a data folder (the recipe study keeps a folder of its own beside it)."""
    (run,) = [p for p in runs.glob(f"{data_name}-*") if (p / "config.json").exists()]
    return run


def glued(notebook: Path) -> dict:
    """``{name: text/plain}`` of every value a chapter glued."""
    nb = nbformat.read(notebook, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if meta:
                out[meta["name"]] = o["data"]["application/papermill.record/text/plain"]
    return out
