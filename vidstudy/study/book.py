"""``vidstudy book``: execute the chapters with papermill, then build the HTML book.

It needs the project checkout (``notebooks/``, ``book/``, ``_config.yml``,
``_toc.yml``): the one the package lives in, else the current folder. An
installed package alone refuses with one sentence and writes nothing.

1. Data: with no ``--data``, the simulated data of the ``shape`` parameter (``default``,
   or ``paper`` for the GPU configuration; ``smoke`` with ``--smoke``) is written to
   ``data/{shape}-seed0`` once (again only if its files record other settings).
2. Chapters ``notebooks/NN_*.ipynb`` run in order with papermill into
   ``book/executed/`` (outputs kept, this environment's kernel). A chapter is
   re-executed only when its inputs changed (:mod:`vidstudy.fingerprint`): its
   source, the parameters, the package source, the content of the data files, or
   an earlier chapter; the log says which. Each executes into a temporary file
   first, so a failing chapter leaves the previous book intact and is reported as
   ``chapter NN_name failed in cell K: error``. The chapters keep the runs of each
   data folder and config in their own folder under ``run_dir``
   (:func:`vidstudy.study.chapter.run_folder`).
3. ``jupyter-book build -W -n --keep-going .`` (``execute_notebooks: "off"``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from .. import profiling
from ..atomic import atomic_path, write_json
from ..errors import ParameterError, VidstudyError
from ..features import SPLITS, feature_file_name
from ..fingerprint import difference, file_digest, fingerprint, input_key
from .chapter import SMOKE, default_data, make_params

PACKAGE = Path(__file__).resolve().parents[1]  # vidstudy/
BOOK_SOURCES = ("notebooks", "book", "_config.yml", "_toc.yml")
HIDDEN_TAGS = ("parameters", "injected-parameters")
CHAPTER_PREFIX = "book/executed/"  # where _toc.yml lists the executed chapters


def toc_chapters(root: Path | None = None) -> tuple[str, ...]:
    """The chapters in the order ``_toc.yml`` lists them (the notebooks ``notebooks/{name}.ipynb``)."""
    import yaml

    toc = book_root(root) / "_toc.yml"

    def files(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                yield node["file"]
            for value in node.values():
                yield from files(value)
        elif isinstance(node, list):
            for item in node:
                yield from files(item)

    names = tuple(f[len(CHAPTER_PREFIX):] for f in files(yaml.safe_load(toc.read_text(encoding="utf-8")))
                  if f.startswith(CHAPTER_PREFIX))
    if not names:
        raise VidstudyError(f"{toc}: lists no chapter under {CHAPTER_PREFIX}.")
    return names


def resolve_params(params_file: Path | None = None, data: Path | None = None, smoke: bool = False) -> dict:
    """Chapter parameters: the defaults of :class:`~vidstudy.study.chapter.Params`, then ``--smoke``
    (:data:`~vidstudy.study.chapter.SMOKE`), then the YAML file, then ``--data``; validated."""
    values = dict(SMOKE) if smoke else {}
    if params_file is not None:
        values.update(_read_params_file(Path(params_file)))
    if data is not None:
        values["data_dir"] = str(data)
    return dataclasses.asdict(make_params(values, str(params_file) if params_file is not None else "parameters").validate())


def _read_params_file(path: Path) -> dict:
    """The mapping a YAML parameters file holds, or one sentence naming the file and what is wrong."""
    import yaml

    if not path.is_file():
        raise ParameterError(f"{path}: parameters file does not exist.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ParameterError(f"{path}: not a UTF-8 text file.") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ParameterError(f"{path}: not valid YAML ({problem}{at}).") from None
    if not isinstance(loaded, dict):
        raise ParameterError(f"{path}: must be a YAML mapping of chapter parameters (name: value).")
    return loaded


def is_checkout(folder: Path) -> bool:
    """Whether ``folder`` holds the book's sources (a clone of the project)."""
    return all((Path(folder) / name).exists() for name in BOOK_SOURCES)


def copy_sources(dst: Path, src: Path | None = None) -> None:
    """The book's sources of the checkout ``src`` (:func:`book_root`'s by default) into ``dst``: not its executed
    chapters, runs or data, so that a build there starts cold."""
    src = book_root(src)
    for name in BOOK_SOURCES:
        if (src / name).is_dir():
            shutil.copytree(src / name, Path(dst) / name, ignore=shutil.ignore_patterns("executed", "__pycache__"))
        else:
            shutil.copy(src / name, Path(dst) / name)


def book_root(root: Path | None = None) -> Path:
    """The checkout to build: ``root``, else the one this package lives in, else the current folder."""
    for candidate in ([Path(root)] if root is not None else [PACKAGE.parent, Path.cwd()]):
        if is_checkout(candidate):
            return candidate
    where = root if root is not None else Path.cwd()
    raise VidstudyError(f"{where}: vidstudy book needs the project checkout ({', '.join(BOOK_SOURCES)}), which an "
                        f"installed package does not ship; run it from a clone of the repository.")


def _package_digest() -> str:
    return input_key(fingerprint(values={str(p.relative_to(PACKAGE)): file_digest(p) for p in sorted(PACKAGE.rglob("*"))
                                         if p.is_file() and "__pycache__" not in p.parts}))


def chapter_inputs(name: str, params: dict, root: Path, data_dir: Path, package: str, previous: str) -> dict:
    """The fingerprint of what an executed chapter is made from."""
    files = {s: data_dir / feature_file_name(s) for s in SPLITS}
    return fingerprint({**files, "notebook": root / "notebooks" / f"{name}.ipynb"}, params=params, package=package,
                       previous_chapter=previous)


def _read_stamps(path: Path) -> dict:
    """The recorded inputs of each executed chapter; a missing or unreadable record means none."""
    try:
        stamps = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _hide_parameter_cells(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in tags for t in HIDDEN_TAGS) and "remove-cell" not in tags:
            cell.setdefault("metadata", {})["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Remove the temporary notebooks a killed build left beside the executed chapters (``.NAME.ipynb.*``)."""
    if out_dir.is_dir():
        for stale in out_dir.glob(".*.ipynb.*"):
            stale.unlink(missing_ok=True)


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


@contextlib.contextmanager
def _profiled_as(chapter: str):
    """Name ``chapter`` to the steps its kernel times (:mod:`vidstudy.profiling`), while it executes."""
    before = os.environ.get(profiling.CHAPTER_ENV)
    os.environ[profiling.CHAPTER_ENV] = chapter
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(profiling.CHAPTER_ENV, None)
        else:
            os.environ[profiling.CHAPTER_ENV] = before


def build_book(params_file: Path | None = None, data: Path | None = None, smoke: bool = False, root: Path | None = None,
               echo=print, *, chapters: Sequence[str] | None = None, html: bool = True) -> dict:
    """Execute what changed among the chapters (``chapters``: those of them), then (with ``html``) build ``_build/html``;
    returns the timings."""
    root = book_root(root)
    params = resolve_params(params_file, data, smoke)
    data_dir = (Path(params["data_dir"]).resolve() if params["data_dir"]
                else default_data(root / "data", params["smoke"], params["shape"]))
    params["data_dir"] = str(data_dir)
    for split in SPLITS:
        if not (data_dir / feature_file_name(split)).is_file():
            raise ParameterError(f"{data_dir / feature_file_name(split)}: feature file does not exist (--data must hold "
                                 f"{', '.join(feature_file_name(s) for s in SPLITS)}).")
    out_dir = root / "book" / "executed"
    _remove_stale_temporaries(out_dir)
    stamps_path = out_dir / ".stamps.json"
    stamps = _read_stamps(stamps_path)
    package, previous = _package_digest(), ""
    timings = {}
    t_all = time.perf_counter()
    for name in chapters if chapters is not None else toc_chapters(root):
        inputs = chapter_inputs(name, params, root, data_dir, package, previous)
        previous = input_key(inputs)
        changed = difference(stamps.get(name), inputs) if (out_dir / f"{name}.ipynb").exists() else "not executed yet"
        if changed is None:
            echo(f"[book] {name}: unchanged, not re-executed")
            continue
        t0 = time.perf_counter()
        echo(f"[book] {name}: executing ({changed}) ...")
        with _profiled_as(name):
            execute_chapter(name, params, root, out_dir)
        timings[name] = time.perf_counter() - t0
        profiling.record("chapter", timings[name], chapter=name)
        stamps[name] = inputs
        write_json(stamps_path, stamps)
        echo(f"[book] {name}: done in {timings[name]:.1f} s (total {time.perf_counter() - t_all:.1f} s)")
    if not html:
        return timings
    t0 = time.perf_counter()
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "."], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise VidstudyError(f"jupyter-book build failed (exit {proc.returncode}); its last lines:\n{tail}")
    timings["jupyter-book"] = time.perf_counter() - t0
    profiling.record("jupyter-book", timings["jupyter-book"], chapter="")
    echo(f"[book] jupyter-book build: {timings['jupyter-book']:.1f} s; open {root / '_build' / 'html' / 'index.html'}")
    return timings
