"""Tables the book shows, built from package objects (the chapters only display them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .features import FeatureFile

ORIGINAL_STUDY = Path(__file__).resolve().parents[1] / "book" / "data" / "original_study.json"


def parameters_table(params: dict) -> pd.DataFrame:
    """The chapter's parameters as a two-column table."""
    return pd.DataFrame({"parameter": list(params), "value": [str(v) if v != "" else "(default)" for v in params.values()]})


def videos_per_class(files: dict[str, FeatureFile]) -> pd.DataFrame:
    names = next(iter(files.values())).class_names
    table = pd.DataFrame({split: [int(np.sum(f.labels == c)) for c in range(len(names))] for split, f in files.items()},
                         index=names)
    table.loc["total"] = table.sum()
    return table


def videos_per_subcategory(files: dict[str, FeatureFile]) -> pd.DataFrame | None:
    if any(f.subcategories is None for f in files.values()):
        return None
    rows = {}
    for split, f in files.items():
        for label, sub in zip(f.labels, f.subcategories):
            key = (f.class_names[label], sub)
            rows.setdefault(key, {s: 0 for s in files})[split] += 1
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    table.index = pd.MultiIndex.from_tuples(table.index, names=["class", "subcategory"])
    return table


def feature_statistics(files: dict[str, FeatureFile]) -> pd.DataFrame:
    rows = {}
    for split, f in files.items():
        x = np.concatenate([f.frames(i) for i in range(len(f))])
        rows[split] = {"videos": len(f), "T": f.max_frames, "D": f.feature_dim, "frames": x.shape[0],
                       "mean": float(x.mean()), "std": float(x.std()), "zero fraction": float(np.mean(x == 0)),
                       "max": float(x.max())}
    return pd.DataFrame(rows).T


def per_class_f1_frame(results: dict, split: str = "test") -> pd.DataFrame:
    """Members' per-class F1 (%) with the best-per-class column, as in the seed page."""
    names = results["class_names"]
    cols = {}
    for m, r in results["members"].items():
        table = r["val"] if split == "val" else r["test"]["table"]
        cols[m] = [table["classes"][c]["f1"] for c in names]
    frame = pd.DataFrame(cols, index=names)
    frame["best"] = [results["best_per_class"][split][c] for c in names]
    return frame.round(2)


def ci_frame(systems: dict) -> pd.DataFrame:
    """``{name: bootstrap_ci dict}`` -> a table of 'point [low, high]' cells (%)."""
    def cell(ci):
        return f"{ci[0]:.1f} [{ci[1]:.1f}, {ci[2]:.1f}]"

    rows = {}
    for name, ci in systems.items():
        rows[name] = {**{f"F1 {c}": cell(v) for c, v in zip(ci["classes"], ci["per_class_f1"])},
                      "macro F1": cell(ci["macro_f1"]), "accuracy": cell(ci["accuracy"])}
    return pd.DataFrame(rows).T


def original_study() -> dict:
    """The original study's numbers on record (shipped with the book as data)."""
    return json.loads(ORIGINAL_STUDY.read_text())
