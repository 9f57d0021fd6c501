"""Which model for frame features: every family of :mod:`vidstudy.models` and both probes, under one set of rules.

Rules, the same for every family: the chapters' recipe (the ``cpu`` preset's training, or ``paper``'s on a GPU),
``MEMBERS`` seeds from the chapter's ``seed_base``, the preset's epoch budget with early stopping on validation
macro-F1, and a soft vote over the members. Each family's size and learning rate are chosen on validation only:
every candidate of :func:`candidates` (two sizes, ``cpu`` = the family's CPU size and ``half`` = about half its
width (a family without a ``HALF`` entry has only the first), times the learning rates ``LRS``; at the ``paper``
scale the published size where it fits ``MAX_PARAMETERS``, times ``LRS``) trains one seed on a class-stratified
subset of ``SELECTION_VIDEOS`` training videos for ``SELECTION_EPOCHS`` epochs, and the candidate with the best
validation macro-F1 is the family's (:func:`select`); the test split plays no part.

Two datasets: the simulated default data (its test videos resampled), and the real features of ``realclips``,
where every source is held out once by the leave-sources-out folds of :mod:`~vidstudy.study.crosssource` and each
family's fold ensembles predict the sources they never saw (:func:`held_out`); there the CIs resample sources. Each
family's macro-F1 difference from the study's model (``temporal``) is a paired bootstrap with Holm's adjustment
over the families and probes of one dataset (:func:`compare`), judged as :func:`vidstudy.study.claims.verdict`
judges a claim. Cost (:func:`costs`): parameters, training seconds per epoch (the members' own wall time, side by
side on the chapter's executor) and inference videos/s (one member over a split, timed here).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import best_path, load_model
from ..config import RunConfig, build
from ..data import VideoDataset
from ..device import resolve_device
from ..feeding import Feed
from ..metrics import bootstrap_ci, holm, paired_comparison
from ..models import build_model, count_parameters, family, list_models
from ..predictions import build_predictions, is_current, load_predictions
from ..probe import PROBES, run_probe
from ..runs import member_dir, read_summary
from ..train import Ensemble, train_ensembles
from .claims import ALPHA, verdict
from .crosssource import fold_files, folds, pooled
from .recipes import training_subset

MEMBERS = 2  # seeds per family
LRS = (1e-3, 2e-3)  # the cpu preset's and half of it
SELECTION_VIDEOS = 600
SELECTION_EPOCHS = 5
REFERENCE = "temporal"  # the study's model
MAX_PARAMETERS = 100_000_000  # at the paper scale, the published sizes that fit this many parameters
# The half candidate of each family: about half the CPU size's width (the CPU size is the largest two cores afford).
HALF = {"temporal": {"hidden_dim": 32, "head_dims": (32, 16)}, "meanpool": {"hidden_dim": 32},
        "dbof": {"cluster_size": 128, "hidden_dim": 64}, "lstm": {"hidden_dim": 32},
        "netvlad": {"clusters": 8, "hidden_dim": 64}, "nextvlad": {"clusters": 8, "hidden_dim": 64},
        "transformer": {"hidden_dim": 32, "ff_dim": 64}}


def _sets(values: dict) -> list[str]:
    return [f"model.{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in values.items()]


def published_fit(arch: str, feature_dim: int, limit: int = MAX_PARAMETERS) -> dict:
    """The fields of ``arch``'s published size at ``feature_dim``, its clusters halved until the model holds at most
    ``limit`` parameters (NetVLAD's 256 clusters hold 335 M weights at D=1280); ``{}`` when it fits as published."""
    fam = family(arch)
    fields: dict = {}
    while True:
        with torch.device("meta"):
            n = count_parameters(build_model(fam.sized("published", **fields), feature_dim, 4))
        key = next((k for k in ("clusters", "cluster_size") if k in fam.fields()), None)
        if n <= limit or key is None:
            return fields
        fields[key] = max(1, getattr(fam.sized("published", **fields), key) // 2)


def candidates(preset: str = "cpu", feature_dim: int = 256) -> list[dict]:
    """``{"family", "size", "lr", "fields"}`` of every candidate: per family, each size times each of ``LRS`` (at the
    ``paper`` scale the published size, fitted to ``feature_dim`` by :func:`vidstudy.study.families.published_fit`)."""
    rows = []
    for arch in list_models():
        sizes = ({"published": published_fit(arch, feature_dim)} if preset == "paper"
                 else {**({"half": HALF[arch]} if arch in HALF else {}), "cpu": {}})
        rows += [{"family": arch, "size": size, "lr": lr, "fields": fields} for size, fields in sizes.items() for lr in LRS]
    return rows


def family_config(candidate: dict, preset: str, members: int, epochs: int | None, seed_base: int) -> RunConfig:
    """The run config of ``candidate`` (a row of :func:`candidates`) on ``preset``'s recipe."""
    overrides = [f"model.arch={candidate['family']}", *_sets(candidate["fields"]), f"train.lr={candidate['lr']}"]
    return build(preset, members=members, epochs=epochs, seed_base=seed_base, overrides=overrides)


def _best_val_f1(run: Path) -> float:
    return 100 * float(read_summary(member_dir(run, 0))["best_metrics"]["val_macro_f1"])


def select(files: dict, study_dir, preset: str = "cpu", seed_base: int = 42, device: str = "auto", executor=None,
           videos: int = SELECTION_VIDEOS, epochs: int = SELECTION_EPOCHS) -> list[dict]:
    """Train every candidate (one seed, ``videos`` training videos, ``epochs`` epochs) into ``study_dir/selection`` as
    one batch on ``executor``; each row of :func:`candidates` gains ``val_macro_f1`` (%) and ``chosen`` (the best of
    its family on validation)."""
    folder = Path(study_dir) / "selection"
    subset = training_subset(files["train"], folder, videos)
    rows = candidates(preset, files["train"].feature_dim)
    runs = [folder / f"{r['family']}-{r['size']}-lr{r['lr']:g}" for r in rows]
    train_ensembles([Ensemble(family_config(r, preset, 1, epochs, seed_base), subset, files["val"], run)
                     for r, run in zip(rows, runs)], resume=True, plots=False, quiet=True, device=device, executor=executor)
    for r, run in zip(rows, runs):
        r["val_macro_f1"] = _best_val_f1(run)
    for arch in list_models():
        mine = [r for r in rows if r["family"] == arch]
        best = max(mine, key=lambda r: r["val_macro_f1"])
        for r in mine:
            r["chosen"] = r is best
    return rows


def chosen(rows: list[dict], preset: str, epochs: int | None, seed_base: int, members: int = MEMBERS) -> dict[str, RunConfig]:
    """``{family: the run config of its chosen candidate}`` with ``members`` seeds and the preset's epoch budget."""
    return {r["family"]: family_config(r, preset, members, epochs, seed_base) for r in rows if r["chosen"]}


def train_families(configs: dict[str, RunConfig], files: dict, study_dir, device: str = "auto", executor=None) -> dict:
    """Train (or reuse) each family's ensemble on the full training split into ``study_dir/{family}`` as one batch,
    then store its test predictions (original view). Returns ``{family: run folder}``."""
    runs = {arch: Path(study_dir) / arch for arch in configs}
    train_ensembles([Ensemble(cfg, files["train"], files["val"], runs[arch]) for arch, cfg in configs.items()],
                    resume=True, plots=False, quiet=True, device=device, executor=executor)
    for run in runs.values():
        if not is_current(run, "test", ["original"]):
            build_predictions(run, views=["original"], splits=("test",), device=device)
    return runs


def member_probs(run) -> np.ndarray:
    """Each member's test probabilities (original view), ``[M, N, C]``."""
    return load_predictions(run, "test", views=["original"]).view("original")


def held_out(real_data, study_dir, configs: dict[str, RunConfig], seed: int = 0, device: str = "auto",
             executor=None) -> dict:
    """Each family's ensemble trained per leave-sources-out fold of ``real_data`` into ``study_dir/fold_K/{family}``
    (all folds and families as one batch); returns ``{"labels", "sources", "probs": {family: [M, N, C]},
    "probes": {kind: predicted classes}}`` over the held-out clips of every fold, each source as predicted by the fold
    that held it out (the probes fitted on that fold's training clips)."""
    pool = pooled(real_data)
    held = folds(pool["sources"], pool["labels"], seed=seed)
    fold_dirs = [Path(study_dir) / f"fold_{k}" for k in range(len(held))]
    fold_data = [fold_files(pool, h, d, seed) for h, d in zip(held, fold_dirs)]
    train_ensembles([Ensemble(cfg, f["train"], f["val"], d / arch) for f, d in zip(fold_data, fold_dirs)
                     for arch, cfg in configs.items()], resume=True, plots=False, quiet=True, device=device,
                    executor=executor)
    out = {"labels": [], "sources": [], "probs": {a: [] for a in configs}, "probes": {k: [] for k in PROBES}}
    for h, d, f in zip(held, fold_dirs, fold_data):
        rows = np.flatnonzero(np.isin(f["test"].sources, h))
        out["labels"].append(f["test"].labels[rows])
        out["sources"] += [f["test"].sources[i] for i in rows]
        for arch in configs:
            if not is_current(d / arch, "test", ["original"]):
                build_predictions(d / arch, views=["original"], splits=("test",), device=device)
            out["probs"][arch].append(member_probs(d / arch)[:, rows])
        for kind in PROBES:
            out["probes"][kind].append(np.asarray(run_probe(f["train"], f["test"], kind)["predictions"])[rows])
    return {"labels": np.concatenate(out["labels"]), "sources": out["sources"],
            "probs": {a: np.concatenate(p, axis=1) for a, p in out["probs"].items()},
            "probes": {k: np.concatenate(v) for k, v in out["probes"].items()}}


def compare(labels, predictions: dict[str, np.ndarray], num_classes: int, groups=None, n_boot: int = 1000,
            seed: int = 0) -> list[dict]:
    """Per system (``{name: predicted classes}``, the study's model among them): ``ci`` (:func:`vidstudy.metrics.bootstrap_ci`)
    and, for every other system, ``diff`` (macro-F1 minus the study's model's, points, ``[point, low, high]``),
    ``p_value``, ``p_holm`` (over the others) and ``verdict`` ("holds" = better, "contradicted" = worse)."""
    ref = predictions[REFERENCE]
    rows = [{"system": name, "ci": bootstrap_ci(labels, pred, num_classes, n_boot, seed, groups=groups)}
            for name, pred in predictions.items()]
    others = [r for r in rows if r["system"] != REFERENCE]
    for r in others:
        d = paired_comparison(labels, ref, predictions[r["system"]], num_classes, n_boot, seed, groups=groups)
        r["diff"], r["p_value"] = d["macro_f1_diff"], d["macro_f1_p_value"]
    for r, p in zip(others, holm([r["p_value"] for r in others])):
        r["p_holm"] = p
        r["verdict"] = {"holds": "better", "contradicted": "worse"}.get(verdict(r["diff"][0], p, 1), "not resolved")
    return rows


def inference_rate(run, test_file, device: str = "cpu", batch_size: int = 64, repeats: int = 2) -> float:
    """Videos/s of member 0 of ``run`` over every video of ``test_file`` (eval forwards, batches of ``batch_size``;
    the best of ``repeats`` passes after a warm-up)."""
    model, _ = load_model(best_path(member_dir(run, 0)), resolve_device(device))
    batches = list(Feed(VideoDataset(test_file), next(model.parameters()).device).batches(batch_size))
    best = float("inf")
    with torch.no_grad():
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            for batch in batches:
                model(batch.features, batch.lengths)
            if i:
                best = min(best, time.perf_counter() - t0)
    return len(test_file) / best


def costs(runs: dict, test_file, device: str = "cpu") -> dict[str, dict]:
    """``{family: {"parameters", "train s/epoch", "inference videos/s"}}`` (inference timed over ``test_file``)."""
    out = {}
    for arch, run in runs.items():
        model, _ = load_model(best_path(member_dir(run, 0)))
        summaries = [read_summary(member_dir(run, i)) for i in range(MEMBERS)]
        out[arch] = {"parameters": count_parameters(model),
                     "train s/epoch": float(np.mean([s["wall_time_s"] / s["epochs_run"] for s in summaries])),
                     "inference videos/s": inference_rate(run, test_file, device)}
    return out


def verdict_sentence(rows: list[dict], dataset: str) -> str:
    """What the numbers say on one dataset, in one or two sentences chosen by them."""
    best = max(rows, key=lambda r: r["ci"]["macro_f1"][0])
    better = [r["system"] for r in rows if r.get("verdict") == "better"]
    worse = [r["system"] for r in rows if r.get("verdict") == "worse"]
    open_ = [r["system"] for r in rows if r.get("verdict") == "not resolved"]
    f1 = best["ci"]["macro_f1"]
    lead = (f"On {dataset}, {best['system']} scores the highest macro-F1 ({f1[0]:.1f} %, 95 % CI {f1[1]:.1f} to "
            f"{f1[2]:.1f})")
    if best["system"] == REFERENCE:
        lead += ", and it is the study's model"
    parts = []
    if better:
        parts.append(f"{_names(better)} beat{'s' if len(better) == 1 else ''} the study's model")
    if worse:
        parts.append(f"{_names(worse)} {'is' if len(worse) == 1 else 'are'} worse than the study's model")
    if open_:
        parts.append(f"{_names(open_)} cannot be told apart from the study's model")
    return (lead + ". After Holm's adjustment (at " + f"{ALPHA:g}" + "), " + "; ".join(parts) + "."
            if parts else lead + ".")


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _cell(v) -> str:
    return f"{v[0]:.1f} [{v[1]:.1f}, {v[2]:.1f}]"


def table(rows: list[dict], class_names: list[str]):
    """The rows of :func:`compare` as one table: per-class and macro F1 with CIs, the difference from the study's model
    with its CI, the Holm-adjusted p-value and the verdict."""
    import pandas as pd

    out = {}
    for r in rows:
        ci = r["ci"]
        row = {f"{n} F1": _cell(v) for n, v in zip(class_names, ci["per_class_f1"])}
        row["macro-F1"] = _cell(ci["macro_f1"])
        d = r.get("diff")
        row["vs the study's model"] = "reference" if d is None else f"{d[0]:+.1f} [{d[1]:+.1f}, {d[2]:+.1f}]"
        row["p (Holm)"] = f"{r['p_holm']:.3f}" if "p_holm" in r else ""
        row["verdict"] = r.get("verdict", "")
        out[r["system"]] = row
    return pd.DataFrame(out).T


def seed_table(probs: dict[str, np.ndarray], labels, num_classes: int):
    """Per family: each seed's test macro-F1 (%) and the soft vote's (``probs``: ``{family: [M, N, C]}``)."""
    import pandas as pd

    from ..metrics import macro_f1

    rows = {}
    for arch, p in probs.items():
        seeds = [100 * macro_f1(labels, m.argmax(1), num_classes) for m in p]
        rows[arch] = {**{f"seed {i}": s for i, s in enumerate(seeds)}, "spread (max - min)": max(seeds) - min(seeds),
                      "soft vote": 100 * macro_f1(labels, p.mean(0).argmax(1), num_classes)}
    return pd.DataFrame(rows).T


def recommendation(rows_by_data: dict[str, list[dict]], cost: dict[str, dict]) -> str:
    """The chapter's answer, chosen by the numbers: of the families not worse than the study's model on any dataset,
    the one with the highest macro-F1 averaged over the datasets, with its cost beside the study's model's."""
    fams = [a for a in cost if all(next(r for r in rows if r["system"] == a).get("verdict") != "worse"
                                   for rows in rows_by_data.values())]
    mean = {a: float(np.mean([next(r for r in rows if r["system"] == a)["ci"]["macro_f1"][0]
                              for rows in rows_by_data.values()])) for a in fams}
    best = max(fams, key=mean.get)
    ref = cost[REFERENCE]
    better_on = [d for d, rows in rows_by_data.items() if next(r for r in rows if r["system"] == best).get("verdict") == "better"]
    text = (f"Of the families no worse than the study's model on either dataset, {best} has the highest macro-F1 averaged "
            f"over the two ({mean[best]:.1f} %)")
    text += (f", and it is the study's model itself ({ref['parameters']:,} parameters, "
             f"{ref['inference videos/s']:,.0f} videos/s at inference here)." if best == REFERENCE else
             f", with {cost[best]['parameters']:,} parameters and {cost[best]['inference videos/s']:,.0f} videos/s at "
             f"inference here against the study's model's {ref['parameters']:,} and {ref['inference videos/s']:,.0f}.")
    if best != REFERENCE:
        text += (f" It beats the study's model significantly on {_names(better_on)}." if better_on else
                 " Its lead over the study's model is not significant on either dataset, so the choice between them is "
                 "one of cost.")
    return text


def at_grid_edge(rows: list[dict]) -> list[str]:
    """The families whose chosen candidate (rows of :func:`select`) has the grid's largest size and highest learning
    rate: the search's bound, not the data, stopped them."""
    out = []
    for arch in dict.fromkeys(r["family"] for r in rows):
        mine = [r for r in rows if r["family"] == arch]
        pick = next(r for r in mine if r["chosen"])
        if pick["size"] == mine[-1]["size"] and pick["lr"] == max(r["lr"] for r in mine):
            out.append(arch)
    return out


def edge_sentence(edge: list[str], n: int) -> str:
    """What :func:`at_grid_edge` says about the search, in a sentence."""
    if not edge:
        return (f"None of the {n} families chose the edge of the grid (its largest size and highest learning rate), so "
                f"the search does not bound them.")
    who = "all of them, the study's model among them" if len(edge) == n else _names(edge)
    return (f"{len(edge)} of the {n} families ({who}) chose the largest size and the highest learning rate on offer, the "
            f"edge of the grid: there the grid, not the data, bounds them, and with more CPU time (or on a GPU, at the "
            f"published sizes) a wider search could raise them. The comparisons below are between families at the same "
            f"bound.")
