"""Writing files atomically and reading JSON strictly: the leaf every module that writes a file uses.

Every file the project writes goes through :func:`atomic_path`: the content is
written to a temporary file in the destination folder and renamed over the
destination only when complete, so a crash or an error never leaves a partial
file behind. :func:`read_json` reads a JSON file or raises one
:class:`~vidstudy.errors.VidstudyError` naming it and what is wrong.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import VidstudyError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The caller writes the whole file to the yielded path. If the ``with`` body
    raises, the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only or full folder: name the target, not the temporary file never made
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.filename in (str(tmp_path), tmp_path):  # name the target, not a temporary file the user never sees
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by ``None`` (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` (what ``numpy.load`` reads) to ``path`` atomically.

    Unlike ``numpy.savez``, which stamps each member with the current time, the
    archive's members carry a fixed date, so the same arrays give the same bytes.
    """
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                with archive.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)
    return Path(path)


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip member can carry


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strictly valid JSON to ``path`` atomically (NaN and infinities become null)."""
    return write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, what: str, *, required: tuple[str, ...] = (), kind: type = dict) -> Any:
    """Read a run file, or raise one :class:`~vidstudy.errors.VidstudyError` naming it and what is wrong.

    ``what`` says what the file is (``"the run's config"``); ``kind`` is the JSON type
    it must hold (an object by default) and ``required`` the keys an object must have.
    """
    path = Path(path)
    if not path.is_file():
        raise VidstudyError(f"{path}: missing ({what}).")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise VidstudyError(f"{path}: not a text file ({what}).") from None
    except json.JSONDecodeError as exc:
        raise VidstudyError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); it should hold {what}.") from None
    if not isinstance(value, kind):
        wanted = "object" if kind is dict else "list"
        raise VidstudyError(f"{path}: holds a JSON {type(value).__name__}, not the {wanted} of {what}.")
    missing = [k for k in required if k not in value] if kind is dict else []
    if missing:
        raise VidstudyError(f"{path}: lacks {', '.join(repr(k) for k in missing)} ({what}).")
    return value
