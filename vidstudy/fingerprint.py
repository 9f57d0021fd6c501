"""The fingerprint of an artifact's inputs: what it was made from, and whether that still holds.

Every artifact that is reused instead of being made again (a run's members, a
predictions store, an executed chapter, an extracted split file, the recipe
study's training subset) records a fingerprint of its inputs when it is made,
and is reused only when the fingerprint of its inputs *now* is the same:

``files``    role -> identity of each input file: its SHA-256 over the whole content
             and its size (the path is recorded for the reader and to find the
             file again, but a moved or copied file with the same content is the
             same input, and a file rewritten in place is not, whatever its size
             and modification time)
``values``   everything else the artifact depends on, as plain JSON values (the
             resolved config, views, seeds, settings)

:func:`fingerprint` makes one, :func:`difference` compares a recorded one with
the current one and returns the first difference as a phrase naming it (or
``None``). Hashing reads each file once per process: SHA-256 runs at about
1.7 GB/s on this project's reference machine, so the paper-shaped feature files
(about 600 MB) cost about half a second. A digest is remembered within a process
while the file's inode, size, modification and change times stay the same, except
for files changed in the last two seconds (whose timestamps may not yet tell a
rewrite apart).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

_CHUNK = 8 * 1024**2
_RACY_NS = 2 * 10**9
_memo: dict[tuple, str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the whole content of ``path``."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _memo:
        return _memo[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
        _memo[key] = digest
    return digest


def forget() -> None:
    """Drop the digests remembered in this process (the next check reads every file again)."""
    _memo.clear()


def file_identity(path: str | os.PathLike) -> dict:
    """``{"path", "size", "sha256"}`` of one input file."""
    path = Path(path)
    return {"path": str(path.resolve()), "size": path.stat().st_size, "sha256": file_digest(path)}


def plain(value: Any) -> Any:
    """``value`` as plain JSON values (tuples become lists, paths strings), so saved and fresh compare equal."""
    return json.loads(json.dumps(value, default=str))


def fingerprint(files: Mapping[str, str | os.PathLike | None] | None = None, **values: Any) -> dict:
    """The fingerprint of an artifact's inputs: the identity of each file (``None`` entries are left out) and the values."""
    return {"files": {role: file_identity(p) for role, p in (files or {}).items() if p is not None},
            "values": plain(values)}


def digest_of(value: Any) -> str:
    """SHA-256 (hex) of a JSON value (keys sorted): a short stand-in for a whole fingerprint."""
    return hashlib.sha256(json.dumps(plain(value), sort_keys=True).encode()).hexdigest()


def input_key(fp: Mapping) -> str:
    """A digest of a fingerprint's content alone (file digests and sizes, values; not paths): a folder key."""
    return digest_of({"files": {r: [f["sha256"], f["size"]] for r, f in fp["files"].items()}, "values": fp["values"]})


def same_content(recorded: Mapping, path: str | os.PathLike) -> bool:
    """Whether ``path`` holds the content a recorded identity describes."""
    path = Path(path)
    return path.is_file() and path.stat().st_size == recorded.get("size") and file_digest(path) == recorded.get("sha256")


def _first_value_difference(old: Any, new: Any, where: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            if key not in old or key not in new:
                return f"{where}{key}" + (" was not set" if key not in old else " is no longer set")
            found = _first_value_difference(old[key], new[key], f"{where}{key}.")
            if found:
                return found
        return None
    if old != new:
        return f"{where.rstrip('.')} was {_short(old)}, is now {_short(new)}"
    return None


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= width else text[:width - 4] + " ..."


def difference(recorded: Mapping | None, current: Mapping) -> str | None:
    """The first way ``current`` differs from ``recorded``, as a phrase naming it; ``None`` when they are the same.

    Files are compared by content (SHA-256 and size); paths may differ.
    """
    if not isinstance(recorded, Mapping) or not isinstance(recorded.get("files", {}), Mapping):
        return "no record of its inputs"
    old_files, new_files = recorded.get("files", {}), current.get("files", {})
    for role in list(old_files) + [r for r in new_files if r not in old_files]:
        if role not in new_files:
            return f"it was made with a {role} file ({old_files[role].get('path')}) and now has none"
        new = new_files[role]
        if role not in old_files:
            return f"the {role} file {new['path']} was not among its inputs"
        old = old_files[role]
        if not isinstance(old, Mapping) or (old.get("sha256"), old.get("size")) != (new["sha256"], new["size"]):
            old_path = old.get("path") if isinstance(old, Mapping) else None
            was = "its content changed" if old_path == new["path"] else f"it was made from {old_path}, whose content differs"
            return f"the {role} file {new['path']} is not the one it was made from ({was})"
    return _first_value_difference(recorded.get("values", {}), current.get("values", {}))
