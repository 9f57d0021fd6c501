"""Which YouTube-8M labels make the study's classes: a mapping from vocabulary ids to the four classes.

A mapping is a JSON file: ``vocabulary`` (``"2018"``, 3,862 labels, or ``"2017"``, 4,716: their ids differ),
``vocabulary_size`` and ``classes``, each of the study's four classes a list of ``[id, name]`` pairs (the name, the
vocabulary's ``Name``, for reading; the id decides). One per vocabulary version ships in ``vidstudy/yt8m/mappings/``
(:func:`mapping_path`); a user's own (``--mapping FILE.json``) is read by the same rules. A ``vocabulary.csv`` (the
dataset's: ``Index``, ``Name``, ...) given as ``--vocabulary FILE.csv`` gives the size and is checked against the
mapping's names.

The multi-label rule (:meth:`Mapping.assign`): a video is kept when the labels it carries that the mapping lists all
name one class; a video none of whose labels is listed, or whose labels name several classes, is dropped and counted.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ParameterError
from ..features import STUDY_CATEGORIES

VERSIONS = {"2018": 3862, "2017": 4716}  # vocabulary version: its number of labels
DROP_REASONS = ("no_class", "several_classes")


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: ``classes[name]`` is its ``[(id, label name)]``; ``source`` the file it came from."""

    vocabulary: str
    size: int
    classes: dict[str, list[tuple[int, str]]]
    source: str

    def assign(self, labels) -> tuple[int | None, str]:
        """``(class id, the subcategory: the first listed label's name)`` of a video's labels, or ``(None, reason)``
        with a reason of :data:`DROP_REASONS`."""
        by_id = self._by_id()
        hits = [by_id[label] for label in labels if label in by_id]
        classes = {c for c, _ in hits}
        if not classes:
            return None, "no_class"
        if len(classes) > 1:
            return None, "several_classes"
        return STUDY_CATEGORIES[hits[0][0]], hits[0][1]

    def _by_id(self) -> dict[int, tuple[str, str]]:
        return {i: (c, name) for c, pairs in self.classes.items() for i, name in pairs}

    def as_json(self) -> dict:
        return {"vocabulary": self.vocabulary, "vocabulary_size": self.size,
                "classes": {c: [list(p) for p in pairs] for c, pairs in self.classes.items()}}


def mapping_path(version: str) -> Path:
    """The shipped mapping of a vocabulary version (``"2018"`` or ``"2017"``)."""
    return Path(str(resources.files("vidstudy.yt8m") / "mappings" / f"yt8m-{version}.json"))


def read_vocabulary(path: Path) -> dict[int, str]:
    """``{Index: Name}`` of a YouTube-8M ``vocabulary.csv``."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ParameterError(f"{path}: vocabulary (--vocabulary) cannot be read ({exc.strerror or exc}).") from None
    if not rows or not {"Index", "Name"} <= set(rows[0]):
        raise ParameterError(f"{path}: vocabulary (--vocabulary) must be a CSV with 'Index' and 'Name' columns.")
    try:
        return {int(r["Index"]): r["Name"] for r in rows}
    except (TypeError, ValueError):
        raise ParameterError(f"{path}: vocabulary (--vocabulary) has an 'Index' that is not an integer.") from None


def load_mapping(vocabulary: str = "2018", mapping: str | Path | None = None) -> Mapping:
    """The mapping to import with: ``mapping`` (a file) or the shipped one of ``vocabulary`` (a version, or a
    ``vocabulary.csv`` whose size names its version), checked: the four classes, ids inside the vocabulary, no id
    in two classes, and, against a CSV, the names."""
    names = None
    if vocabulary in VERSIONS:
        version, size = vocabulary, VERSIONS[vocabulary]
    else:
        names = read_vocabulary(Path(vocabulary))
        size = max(names) + 1
        version = next((v for v, n in VERSIONS.items() if n == size), None)
        if mapping is None and version is None:
            raise ParameterError(f"{vocabulary}: a vocabulary of {size} labels is neither YouTube-8M's 2018 (3862) nor "
                                 f"its 2017 (4716) one; pass the mapping to use as --mapping FILE.json.")
    path = Path(mapping) if mapping is not None else mapping_path(version)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"{path}: mapping (--mapping) cannot be read as JSON ({exc}).") from None
    return _checked(raw, path, size, names, version)


def _checked(raw, path: Path, size: int, names: dict[int, str] | None, version: str | None) -> Mapping:
    where = f"{path}: mapping (--mapping)"
    if not isinstance(raw, dict) or not isinstance(raw.get("classes"), dict):
        raise ParameterError(f"{where} must be a JSON object with 'classes'.")
    if names is None and raw.get("vocabulary") != version:
        raise ParameterError(f"{where} is for the {raw.get('vocabulary')!r} vocabulary, not {version!r}; ids differ "
                             f"between versions.")
    if set(raw["classes"]) != set(STUDY_CATEGORIES):
        raise ParameterError(f"{where} must list exactly the classes {', '.join(STUDY_CATEGORIES)}, got "
                             f"{', '.join(sorted(raw['classes']))}.")
    classes, seen = {}, {}
    for cls in STUDY_CATEGORIES:
        pairs = raw["classes"][cls]
        if not isinstance(pairs, list) or not pairs:
            raise ParameterError(f"{where}: class {cls} must be a non-empty list of [id, name] pairs.")
        classes[cls] = []
        for pair in pairs:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int)
                    and not isinstance(pair[0], bool) and isinstance(pair[1], str)):
                raise ParameterError(f"{where}: class {cls} has {pair!r:.60}, expected an [id, name] pair.")
            label, name = pair
            if not 0 <= label < size:
                raise ParameterError(f"{where}: class {cls} lists id {label}, outside the vocabulary's 0..{size - 1}.")
            if label in seen:
                raise ParameterError(f"{where}: id {label} is listed under both {seen[label]} and {cls}.")
            if names is not None and names.get(label) != name:
                raise ParameterError(f"{where}: id {label} is named {name!r} but the vocabulary names it "
                                     f"{names.get(label)!r}.")
            seen[label] = cls
            classes[cls].append((label, name))
    return Mapping(version or str(raw.get("vocabulary")), size, classes, str(path))
