"""Tables the book shows, built from package objects (the chapters only display them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..features import FeatureFile
from ..results import class_f1, mean_member_f1, member_tables

ORIGINAL_STUDY = Path(__file__).with_name("original_study.json")  # package data


def parameters_table(params: dict, config=None) -> pd.DataFrame:
    """The chapter's parameters as a two-column table.

    Paths inside the current folder (the project root when the book runner executes a
    chapter) are shown relative to it, so no path of the build machine reaches the book;
    with ``config``, ``epochs`` 0 is shown as what it means, the preset's value.
    """
    def shown(name, value):
        if value == "":
            return "(default)"
        if name == "epochs" and value == 0 and config is not None:
            return f"0 (the preset's: {config.train.epochs})"
        if isinstance(value, (str, Path)) and Path(value).is_absolute():
            try:
                return str(Path(value).resolve().relative_to(Path.cwd().resolve()))
            except ValueError:
                return str(value)
        return str(value)

    return pd.DataFrame({"parameter": list(params), "value": [shown(k, v) for k, v in params.items()]})


def glue_ci(name: str, triple, value_suffix: str = "") -> None:
    """Glue a value with its CI, ``(value, low, high)``, as ``{name}{value_suffix}``, ``{name}_lo`` and ``{name}_hi``
    (myst-nb's ``glue``, not displayed)."""
    from myst_nb import glue

    value, low, high = triple
    for key, v in ((f"{name}{value_suffix}", value), (f"{name}_lo", low), (f"{name}_hi", high)):
        glue(key, v, display=False)


def collapse_flags(results: dict, class_names: list[str]) -> pd.DataFrame:
    """Each member's collapse check on validation (from ``results.json``): whether it collapsed, the classes it
    lost and the largest share of its predictions on one class."""
    rows = {}
    for member, r in results["members"].items():
        check = r["collapse_on_val"]
        rows[member] = {"collapsed on val": check["collapsed"],
                        "lost classes": ", ".join(class_names[c] for c in check["lost_classes"]) or "none",
                        "largest share of predictions on one class": round(check["dominant_share"], 3)}
    return pd.DataFrame(rows).T


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
    """Shape and value statistics of the valid frames of each split."""
    rows = {}
    for split, f in files.items():
        x = np.concatenate([f.frames(i) for i in range(len(f))])
        rows[split] = {"videos": len(f), "T": f.max_frames, "D": f.feature_dim, "frames": x.shape[0],
                       "mean": float(x.mean()), "std": float(x.std()), "zero fraction": float(np.mean(x == 0)),
                       "max": float(x.max())}
    return pd.DataFrame.from_dict(rows, orient="index").round(4)


def per_class_f1_frame(results: dict, split: str = "test") -> pd.DataFrame:
    """Members' per-class F1 (%) with the best-per-class column, as in the seed page.

    On test that column is an oracle (each class's best member picked by looking at test
    labels) and is labelled so; on validation it is the best member per class there.
    """
    names = results["class_names"]
    frame = pd.DataFrame({m: class_f1(t, names) for m, t in member_tables(results, split).items()}, index=names)
    label = "best member per class (oracle: picked on test)" if split == "test" else "best member per class (val)"
    frame[label] = [results["best_per_class"][split][c] for c in names]
    return frame.round(2)


def class_difficulty(results: dict) -> pd.DataFrame:
    """Classes from hardest to easiest by the soft vote's test F1, beside the members' mean test F1 (%)."""
    soft = results["methods"]["soft_vote"]["table"]["classes"]
    ranking = sorted(results["class_names"], key=lambda c: soft[c]["f1"])
    mean = mean_member_f1(results, "test")
    return pd.DataFrame({"ensemble test F1 (%)": [round(soft[c]["f1"], 2) for c in ranking],
                         "mean member test F1 (%)": [round(mean[c], 2) for c in ranking]},
                        index=pd.Index(ranking, name="hardest first"))


def ci_frame(systems: dict, class_names: list[str]) -> pd.DataFrame:
    """``{name: bootstrap_ci dict}`` -> a table of 'point [low, high]' cells (%)."""
    def cell(ci):
        return f"{ci[0]:.1f} [{ci[1]:.1f}, {ci[2]:.1f}]"

    rows = {}
    for name, ci in systems.items():
        rows[name] = {**{f"F1 {c}": cell(v) for c, v in zip(class_names, ci["per_class_f1"])},
                      "macro F1": cell(ci["macro_f1"]), "accuracy": cell(ci["accuracy"])}
    return pd.DataFrame(rows).T


def original_study() -> dict:
    """The original study's numbers on record (shipped with the book as data)."""
    return json.loads(ORIGINAL_STUDY.read_text())


def members_table(summaries: list[dict]) -> pd.DataFrame:
    """Best epoch, epochs run, wall time and best val metrics per member."""
    return pd.DataFrame([{
        "member": s["member"], "seed": s["seed"], "best epoch": s["best_epoch"], "epochs run": s["epochs_run"],
        "stopped early": s["stopped_early"], "wall time (s)": round(s["wall_time_s"], 1),
        "val acc (%)": round(100 * s["best_metrics"]["val_acc"], 2),
        "val macro-F1 (%)": round(100 * s["best_metrics"]["val_macro_f1"], 2),
        "collapsed": ", ".join(s["lost_class_names"]) or "no",
    } for s in summaries]).set_index("member")


def confusion(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(labels, pred, labels=list(range(num_classes)))


def f1_change_table(before: dict, after: dict, class_names: list[str]) -> pd.DataFrame:
    """Per-class F1 (%) of two :func:`~vidstudy.metrics.per_class_table` results side by side."""
    return pd.DataFrame({"before": [before["classes"][c]["f1"] for c in class_names] + [before["macro_f1"]],
                         "after": [after["classes"][c]["f1"] for c in class_names] + [after["macro_f1"]]},
                        index=[*class_names, "macro F1"]).round(2).assign(change=lambda d: (d["after"] - d["before"]).round(2))


def experiments_table(experiments: list[dict]) -> pd.DataFrame:
    """The closing table: each experiment's effect on macro F1 and Animation F1 against the baseline, and its cost.

    Once the family is adjusted (``vs_baseline["holm"]``), the raw McNemar p-value gives way to the adjusted
    p-values and the simultaneous CI, so that the table stays narrow enough for a page.
    """
    rows = {}
    for e in experiments:
        d = e["vs_baseline"]
        row = {"macro F1 (%)": round(e["table"]["macro_f1"], 2),
               "change [95% CI]": "{:+.2f} [{:+.2f}, {:+.2f}]".format(*d["macro_f1_diff"]),
               "Animation F1 (%)": round(e["table"]["classes"]["Animation"]["f1"], 2)}
        if "holm" in d:
            h = d["holm"]
            row.update({"simultaneous CI": "[{:+.2f}, {:+.2f}]".format(*h["simultaneous_ci"][1:]),
                        "Holm p: macro-F1 / McNemar": f"{h['macro_f1_p_value']:.3f} / {h['mcnemar_p_value']:.3f}",
                        f"survives at {h['alpha']:g}": "yes" if h["survives"] else "no"})
        else:
            row["McNemar p"] = round(d["mcnemar"]["p_value"], 4)
        rows[e["name"]] = {**row, "cost": e["cost"]}
    return pd.DataFrame(rows).T


def simulation_design() -> str:
    """The simulation's documented design (the module docstring) as Markdown."""
    import re

    from .. import simulate

    text = simulate.__doc__.replace("``", "`")
    text = re.sub(r"^(.+)\n-{3,}$", r"### \1", text, flags=re.M)  # reST section titles
    text = re.sub(r":(?:func|class|mod):`~?([^`]+)`", r"`\1`", text)
    return text


def simulation_knobs(settings: dict) -> pd.DataFrame:
    """The simulation's seed, sizes and difficulty knobs, as recorded in a simulated file."""
    return pd.DataFrame({"value": [str(v) for v in settings.values()]}, index=pd.Index(list(settings), name="simulation setting"))
