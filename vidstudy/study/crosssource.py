"""Generalisation across sources: leave sources out, every one exactly once, and say how much it costs.

A dataset whose files record each video's ``sources`` (``vidstudy realclips``) is pooled
over its three splits. Its sources are dealt into ``FOLDS`` folds stratified by class:
each class's sources are shuffled by the seed and dealt in turn, so every source is held
out exactly once and every fold holds out sources of all four classes.

The clips of the other sources are split, source by source, into an in-source test
(``IN_SOURCE_FRACTION``), a validation set of the same size (early stopping and the
checkpoint, every recombination) and training. The chapter's ensemble is trained per fold and
evaluated as the main split is, and the two probes are fitted on the same training clips. Each fold's test file
holds its in-source test clips and its held-out sources' clips, so one prediction pass
scores both: the gap between them is what meeting a new source costs.

Clips of one source are not independent (the same game, the same photograph), so the
scores' CIs come from a bootstrap over **sources**, resampled within each class
(:func:`source_bootstrap`), not over clips.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..errors import VidstudyError
from ..evaluate import evaluate_run
from ..features import FeatureFile, feature_file_name, load_splits, write_feature_file
from ..fingerprint import difference, fingerprint, input_key
from ..metrics import macro_f1, source_draws
from ..probe import PROBES, run_probe
from ..train import Ensemble, train_ensembles

FOLDS = 5  # every class needs at least this many sources
POWER_SOURCES = (3, 5, 10, 15, 20, 30, 50, 100)  # sources per class the power analyses ask about
TARGET_HALF_WIDTH = 4.0  # points: the held-out macro-F1 CI this study wants
IN_SOURCE_FRACTION = 0.15  # of each kept source's clips, for the in-source test (and as much again for val)
SYSTEMS = ("model", *PROBES)  # the fold's trained model, then the probes


def pooled(data_dir) -> dict:
    """The three split files of ``data_dir`` as one set of arrays (features padded to one length)."""
    files = load_splits(data_dir)
    if any(f.sources is None for f in files.values()):
        lacking = next(f.path for f in files.values() if f.sources is None)
        raise VidstudyError(f"{lacking}: has no 'sources' dataset; leaving sources out needs each video's source "
                            f"(vidstudy realclips writes it).")
    t = max(f.max_frames for f in files.values())
    feats = [np.pad(f.padded(), ((0, 0), (0, t - f.max_frames), (0, 0))) for f in files.values()]
    first = next(iter(files.values()))
    return {"features": np.concatenate(feats), "labels": np.concatenate([f.labels for f in files.values()]),
            "num_frames": np.concatenate([f.num_frames for f in files.values()]),
            "sources": [s for f in files.values() for s in f.sources],
            "subcategories": [s for f in files.values() for s in (f.subcategories or [""] * len(f))],
            "video_ids": [v for f in files.values() for v in (f.video_ids or [f"{f.path.stem}-{i}" for i in range(len(f))])],
            "mapping": first.category_mapping, "multi_scale": first.multi_scale,
            "key": input_key(fingerprint({split: f.path for split, f in files.items()}))}  # content, not paths


def class_sources(sources, labels) -> dict[int, list[str]]:
    """``{class: its sources, sorted}``."""
    out: dict[int, set] = {}
    for s, y in zip(sources, labels):
        out.setdefault(int(y), set()).add(s)
    return {c: sorted(v) for c, v in sorted(out.items())}


def folds(sources, labels, k: int = FOLDS, seed: int = 0) -> list[list[str]]:
    """The held-out sources of each of ``k`` folds (sorted): each class's sources shuffled by ``seed`` and dealt to
    the folds in turn, so every source is held out exactly once and every fold holds out every class."""
    per_class = class_sources(sources, labels)
    short = [c for c, v in per_class.items() if len(v) < k]
    if short:
        raise VidstudyError(f"class {short[0]} has {len(per_class[short[0]])} sources; {k} folds stratified by class "
                            f"need at least {k} sources in every class.")
    rng = np.random.default_rng([seed, 11])
    out: list[list[str]] = [[] for _ in range(k)]
    start = 0
    for names in per_class.values():
        for i, j in enumerate(rng.permutation(len(names))):
            out[(start + i) % k].append(names[j])
        start += len(names)  # the next class begins where this one stopped: the folds stay within one source in size
    return [sorted(f) for f in out]


def fold_indices(pool: dict, held_out: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """``train``, ``val`` and ``test`` row indices of one fold; ``test`` is the in-source test clips then the held-out
    sources' clips. Each kept source gives ``ceil(IN_SOURCE_FRACTION * n)`` clips to the in-source test and as many
    to val (drawn by ``seed``)."""
    sources = np.asarray(pool["sources"])
    rng = np.random.default_rng([seed, 7])
    train, val, test_in = [], [], []
    for source in sorted(set(pool["sources"]) - set(held_out)):
        rows = np.flatnonzero(sources == source)[rng.permutation(int(np.sum(sources == source)))]
        n = min(math.ceil(IN_SOURCE_FRACTION * len(rows)), len(rows) // 2)
        test_in += rows[:n].tolist()
        val += rows[n:2 * n].tolist()
        train += rows[2 * n:].tolist()
    out = np.flatnonzero(np.isin(sources, held_out))
    return {"train": np.sort(train), "val": np.sort(val), "test": np.concatenate([np.sort(test_in), out])}


def _write_split(pool: dict, rows: np.ndarray, path: Path, key: dict) -> FeatureFile:
    """One fold file, written only when it records other inputs (the pooled files' content key, its rows)."""
    wanted = fingerprint(source=key, rows=rows.tolist())
    if path.is_file() and difference(FeatureFile(path).subset, wanted) is None:
        return FeatureFile(path)
    write_feature_file(path, pool["features"][rows], pool["labels"][rows], pool["num_frames"][rows], pool["mapping"],
                       multi_scale=pool["multi_scale"], provenance={"subset": wanted},
                       subcategories=[pool["subcategories"][i] for i in rows],
                       video_ids=[pool["video_ids"][i] for i in rows], sources=[pool["sources"][i] for i in rows])
    return FeatureFile(path)


def fold_files(pool: dict, held_out: list[str], folder, seed: int = 0) -> dict[str, FeatureFile]:
    """The split files of the fold that holds ``held_out`` out, in ``folder/data`` (each written only when it records
    other inputs)."""
    idx = fold_indices(pool, held_out, seed)
    return {split: _write_split(pool, rows, Path(folder) / "data" / feature_file_name(split), pool["key"])
            for split, rows in idx.items()}


def score_fold(held_out: list[str], folder, files: dict[str, FeatureFile], device: str = "auto",
               subsequences: int = 4) -> dict:
    """Evaluate a fold whose ensemble ``folder/run`` is trained (:func:`vidstudy.evaluate.evaluate_run`: its test
    clips over the TTA views and ``subsequences`` random subsequences, every recombination fitted on the fold's
    validation clips), and fit and score the probes.

    Returns ``{"held_out", "run", "files", "labels", "sources", "held" (bool per test clip), "model", "mean",
    "temporal"}``, the last three the test predictions (``model``: the soft vote of the fold's members)."""
    run = Path(folder) / "run"
    results = evaluate_run(run, subsequences=subsequences, device=device)
    out = {"held_out": list(held_out), "run": run, "files": files, "labels": files["test"].labels,
           "sources": files["test"].sources, "held": np.isin(files["test"].sources, held_out),
           "model": np.asarray(results["methods"]["soft_vote"]["test_predictions"])}
    for kind in PROBES:
        out[kind] = np.asarray(run_probe(files["train"], files["test"], kind)["predictions"])
    return out


def run_folds(data_dir, out_dir, config: RunConfig, seed: int = 0, device: str = "auto", executor=None,
              subsequences: int = 4) -> list[dict]:
    """Every fold of ``data_dir`` under ``out_dir/fold_K``: its files (:func:`fold_files`), its ensemble of ``config``
    in ``fold_K/run`` (trained or reused; all folds' members go to ``executor``, from :mod:`vidstudy.executor`, as
    one batch), then its scores (:func:`score_fold`)."""
    pool = pooled(data_dir)
    held = folds(pool["sources"], pool["labels"], seed=seed)
    folders = [Path(out_dir) / f"fold_{k}" for k in range(len(held))]
    files = [fold_files(pool, h, folder, seed) for h, folder in zip(held, folders)]
    train_ensembles([Ensemble(config, f["train"], f["val"], folder / "run") for f, folder in zip(files, folders)],
                    resume=True, plots=False, quiet=True, device=device, executor=executor)
    return [score_fold(h, folder, f, device, subsequences) for h, folder, f in zip(held, folders, files)]


def clip_table(results: list[dict], system: str) -> dict[str, np.ndarray]:
    """Every scored clip of every fold: ``labels``, ``pred``, ``sources``, ``held`` (held out in that fold)."""
    return {"labels": np.concatenate([r["labels"] for r in results]), "pred": np.concatenate([r[system] for r in results]),
            "sources": np.concatenate([np.asarray(r["sources"]) for r in results]),
            "held": np.concatenate([r["held"] for r in results])}


def source_bootstrap(results: list[dict], system: str, num_classes: int, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Macro-F1 (%) on held-out sources and on in-source clips, and the gap (in-source minus held-out), each
    ``[point, low, high]``; the CI resamples sources with replacement within each class
    (:func:`vidstudy.metrics.source_draws`), a drawn source bringing its held-out and its in-source clips."""
    t = clip_table(results, system)

    def scores(rows: np.ndarray) -> tuple[float, float]:
        held, kept = rows[t["held"][rows]], rows[~t["held"][rows]]
        return (100 * macro_f1(t["labels"][held], t["pred"][held], num_classes),
                100 * macro_f1(t["labels"][kept], t["pred"][kept], num_classes))

    point = scores(np.arange(len(t["labels"])))
    draws = np.array([scores(rows) for rows in source_draws(t["labels"], t["sources"], n_boot, np.random.default_rng(seed))])
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def ci(p, samples):
        return [float(p), *map(float, np.percentile(samples, q))]

    return {"held_out": ci(point[0], draws[:, 0]), "in_source": ci(point[1], draws[:, 1]),
            "gap": ci(point[1] - point[0], draws[:, 1] - draws[:, 0]), "n_boot": n_boot,
            "sources": len(set(t["sources"]))}


def per_source(results: list[dict], system: str, class_names: list[str]) -> list[dict]:
    """Per source: its held-out clips, held-out recall (%), the class its misclassified clips went to most, its
    in-source recall, and ``held-out as``: the share (%) of its held-out clips given to each class."""
    t = clip_table(results, system)
    out = []
    for c, sources in class_sources(t["sources"], t["labels"]).items():
        for s in sources:
            held = (t["sources"] == s) & t["held"]
            kept = (t["sources"] == s) & ~t["held"]
            wrong = t["pred"][held & (t["pred"] != c)]
            shares = 100 * np.bincount(t["pred"][held], minlength=len(class_names)) / max(int(held.sum()), 1)
            out.append({"class": class_names[c], "source": str(s), "held-out predictions": int(held.sum()),
                        "held-out recall (%)": 100 * float(np.mean(t["pred"][held] == c)),
                        "mistaken for": class_names[int(np.bincount(wrong).argmax())] if wrong.size else "",
                        "in-source recall (%)": 100 * float(np.mean(t["pred"][kept] == c)) if kept.any() else float("nan"),
                        "held-out as": dict(zip(class_names, map(float, shares)))})
    return out


def held_out_power(results: list[dict], system: str, num_classes: int, sizes=POWER_SOURCES, n_boot: int = 500,
                   seed: int = 0, level: float = 0.95) -> list[float]:
    """Half-width (points) of the source-bootstrap CI of held-out macro-F1 that ``m`` held-out sources per class
    drawn like these would give, for each ``m`` in ``sizes`` (:func:`vidstudy.metrics.source_draws`)."""
    t = clip_table(results, system)
    y, pred, sources = t["labels"][t["held"]], t["pred"][t["held"]], t["sources"][t["held"]]
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = []
    for m in sizes:
        draws = source_draws(y, sources, n_boot, np.random.default_rng([seed, m]), m)
        lo, hi = np.percentile([100 * macro_f1(y[d], pred[d], num_classes) for d in draws], q)
        out.append(float((hi - lo) / 2))
    return out
