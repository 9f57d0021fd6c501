"""Every number and name a chapter glues into its prose, recomputed from the run's own files, and found in its sentence
on the rendered page.

Each ``_chapter_N`` function recomputes a chapter's glued values its own way: from the predictions stores with
numpy and scikit-learn, from the runs' ``config.json``, ``summary.json`` and ``history.json``, from the feature files
read with h5py, and from the shipped record of the original study read as plain JSON. It does not call the chapter's
own expressions (``report``, ``anomaly``, ``recipes`` and ``experiments`` helpers), nor :mod:`vidstudy.metrics`: every
CI, bootstrap p-value and CI half-width is resampled here from the saved predictions (the same seeded draws of videos
the study documents, :func:`_draws`), with F1 counted here (:func:`_f1_rows`). A value that states a rule of the
package (the collapse thresholds, the suppression factor, the heatmap's width) is measured by probing the code that
applies the rule, not read from its constant.
"""

import ast
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, glued, main_run
from sklearn.metrics import f1_score, precision_score, recall_score

from vidstudy.study.book import toc_chapters

STORE_VIEW = "original"


def _value(text: str):
    """A glued value from its ``text/plain`` (``np.float64(1.5)`` reads as 1.5)."""
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        inner = re.fullmatch(r"np\.\w+\((.*)\)", text)
        assert inner, text
        return ast.literal_eval(inner.group(1))


def _values(root: Path, chapter: str) -> dict:
    return {k: _value(v) for k, v in glued(root / "book" / "executed" / f"{chapter}.ipynb").items()}


def _f1(labels, pred, c):
    """Per-class F1 in % (0 for a class absent from both), from the counts: 2 TP / (predicted + true)."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    tp = np.bincount(labels[labels == pred], minlength=c)[:c]
    both = np.bincount(labels, minlength=c)[:c] + np.bincount(pred, minlength=c)[:c]
    return 100 * np.where(both > 0, 2 * tp / np.maximum(both, 1), 0.0)


def test_the_recomputations_f1_is_sklearns():
    rng = np.random.default_rng(0)
    for c in (2, 4):
        y, p = rng.integers(0, c, 300), rng.integers(0, c - 1, 300)  # the last class never predicted
        np.testing.assert_allclose(_f1(y, p, c), 100 * f1_score(y, p, labels=list(range(c)), average=None,
                                                                zero_division=0))
    assert _f1(np.array([0, 0]), np.array([0, 0]), 3).tolist() == [100.0, 0.0, 0.0]  # absent from both: 0


N_BOOT = 1000  # the resamples behind every CI of the book (results.json records it; chapter 3 checks it)


def _draws(n: int, size: int | None = None, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``[n_boot, size]`` indices of ``n`` videos drawn with replacement, seeded as the study documents its bootstrap."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, size or n))


def _f1_rows(y: np.ndarray, p: np.ndarray, c: int) -> np.ndarray:
    """Per-class F1 in % of each row of ``[B, N]`` labels and predictions (0 for a class absent from both)."""
    tp, fp, fn = (np.stack([m.sum(-1) for m in masks], -1) for masks in (
        [(y == k) & (p == k) for k in range(c)], [(y != k) & (p == k) for k in range(c)],
        [(y == k) & (p != k) for k in range(c)]))
    denom = 2 * tp + fp + fn
    return 100 * np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def _percentile_ci(point: float, samples: np.ndarray) -> tuple[float, float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(point), float(lo), float(hi)


def _p_value(samples: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a statistic being 0 (add-one, capped at 1)."""
    return min(1.0, (2 * min(int((samples <= 0).sum()), int((samples >= 0).sum())) + 1) / (len(samples) + 1))


def _macro_ci(y, p, c) -> tuple[float, float, float]:
    """Macro-F1 (%) with its percentile-bootstrap 95 % CI over resampled videos."""
    idx = _draws(len(y))
    return _percentile_ci(_f1(y, p, c).mean(), _f1_rows(y[idx], p[idx], c).mean(-1))


def _paired(y, a, b, c, size: int | None = None) -> dict:
    """``b - a`` in macro-F1 points on the same resampled videos (``size`` per resample): CI, p-value, half-width."""
    idx = _draws(len(y), size)
    d = _f1_rows(y[idx], b[idx], c).mean(-1) - _f1_rows(y[idx], a[idx], c).mean(-1)
    ci = _percentile_ci(_f1(y, b, c).mean() - _f1(y, a, c).mean(), d)
    return {"ci": ci, "p": _p_value(d), "half_width": (ci[2] - ci[1]) / 2}


def _statistic(statistic, n: int) -> dict:
    """Bootstrap CI and p-value of ``statistic(rows)`` over ``n`` resampled videos."""
    draws = np.array([statistic(rows) for rows in _draws(n)])
    return {"ci": _percentile_ci(statistic(np.arange(n)), draws), "p": _p_value(draws)}


def _holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, in the order given."""
    order, adjusted, running = np.argsort(p_values, kind="stable"), [0.0] * len(p_values), 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - i) * p_values[k]))
        adjusted[k] = running
    return adjusted


class Between:
    """A glued value that can only be bounded here (a wall time, a threshold found by probing): ``lo <= v <= hi``."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def __repr__(self):
        return f"Between({self.lo}, {self.hi})"


class OneOf:
    """A glued value that a measurement chooses (the fastest family): one of ``options``."""

    def __init__(self, options):
        self.options = list(options)

    def __repr__(self):
        return f"OneOf({self.options})"


class Matches:
    """A glued sentence holding measured numbers: it matches ``pattern`` in full and each group equals its want (a
    value, compared as the text shows it, or a :class:`Between`)."""

    def __init__(self, pattern: str, wants: list):
        self.pattern, self.wants = pattern, wants

    def check(self, name: str, text: str) -> None:
        match = re.fullmatch(self.pattern, text)
        assert match, (name, text, self.pattern)
        for got, want in zip(match.groups(), self.wants):
            if isinstance(want, Between):
                assert want.lo <= float(got.replace(",", "")) <= want.hi, (name, got, want)
            else:
                assert got == want, (name, got, want)


def _ci_text(v, signed: bool = False) -> str:
    """A CI as the findings write it: "P (95 % CI L to H)", one decimal."""
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(v[0])} (95 % CI {f.format(v[1])} to {f.format(v[2])})"


def _class_ci(y, p, c, k, draws=None) -> tuple[float, float, float]:
    """Class ``k``'s F1 (%) with its percentile CI over ``draws`` (rows of each resample; default: videos)."""
    draws = _draws(len(y)) if draws is None else draws
    return _percentile_ci(_f1(y, p, c)[k], np.array([_f1(y[r], p[r], c)[k] for r in draws]))


class Parsed:
    """A glued sentence read back: ``sep``-separated parts, each matching ``pattern``, whose groups (converted to the
    types of ``rows``) are ``rows``; floats to the two decimals a sentence shows."""

    def __init__(self, pattern: str, sep: str, rows: list[tuple]):
        self.pattern, self.sep, self.rows = pattern, sep, rows

    def check(self, name: str, text: str) -> None:
        parts = text.split(self.sep)
        assert len(parts) == len(self.rows), (name, text)
        for part, row in zip(parts, self.rows):
            match = re.fullmatch(self.pattern, part)
            assert match, (name, part)
            for got, want in zip(match.groups(), row):
                if isinstance(want, float):
                    assert float(got) == pytest.approx(want, abs=0.005), (name, part)
                else:
                    assert type(want)(got) == want, (name, part)


def _heatmap_rows(frames: np.ndarray) -> int:
    """How many feature dimensions :func:`vidstudy.viz.plot_frame_heatmap` draws for ``frames`` (measured on the
    image it makes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidstudy import viz

    fig, ax = plt.subplots()
    try:
        viz.plot_frame_heatmap(ax, frames, "probe")
        return int(ax.images[0].get_array().shape[0])
    finally:
        plt.close(fig)


def _store(run: Path, split: str, folder: str = "predictions") -> dict:
    with np.load(run / folder / f"{split}.npz", allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["views"] = [str(v) for v in d["view_names"]]
    d["names"] = [str(c) for c in d["class_names"]]
    d["original"] = d["probs"][:, d["views"].index(STORE_VIEW)]  # [M, N, C]
    return d


def _json(path: Path):
    return json.loads(path.read_text())


def _members(run: Path) -> list[Path]:
    n = _json(run / "config.json")["members"]
    return [run / "members" / f"ensemble_model_{i}" for i in range(n)]


@pytest.fixture(scope="module")
def book(built):
    root, _ = built
    runs = root / "runs" / "book-smoke"
    run = main_run(runs, "smoke-seed0")
    (study,) = runs.glob("*/recipes")
    return {"root": root, "run": run, "study": study, "data": root / "data" / "smoke-seed0",
            "test": _store(run, "test"), "val": _store(run, "val"), "results": _json(run / "results.json"),
            "original": _json(REPO / "vidstudy" / "study" / "original_study.json")}


def _chapter_1(b):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from vidstudy.features import FeatureFile, feature_file_name

    train, val = (FeatureFile(b["data"] / feature_file_name(s)) for s in ("train", "val"))
    first = _h5(b["data"] / feature_file_name("train"))
    i = int(np.flatnonzero(first["y"] == 0)[0])  # the figure's first video
    # the probe as the book describes it: a logistic regression on each video's time-averaged frames
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    probe.fit(train.mean_features(), train.labels)
    f1 = _f1(val.labels, probe.predict(val.mean_features()), val.num_classes)
    return {"probe_val_macro_f1": f1.mean(), "probe_hardest": val.class_names[int(np.argmin(f1))],
            "heatmap_dims": _heatmap_rows(first["x"][i, :first["nf"][i]])}


def _chapter_2(b):
    finished = sorted(p for p in (b["run"] / "members").iterdir() if (p / "summary.json").is_file() and (p / "best.pt").is_file())
    epochs = sum(sum(_json(m / "history.json")["epoch_times"]) for m in finished)
    # the members' wall time: at least their epochs, and at most a minute more each (building, checkpoints, files)
    return {"n_members": len(finished), "train_minutes": Between(epochs / 60, epochs / 60 + len(finished))}


def _chapter_3(b):
    t = b["test"]
    f1 = _f1(t["labels"], t["original"].mean(0).argmax(1), len(t["names"]))
    order = np.argsort(f1, kind="stable")
    # the count the chapter names is the one behind its CIs: resampling the store that many times gives them
    assert _macro_ci(t["labels"], t["original"].mean(0).argmax(1), len(t["names"])) == pytest.approx(
        b["results"]["methods"]["soft_vote"]["ci"]["macro_f1"], abs=1e-9)
    y, soft, c = t["labels"], t["original"].mean(0).argmax(1), len(t["names"])
    finding = (f"On the simulated test split the study's ensemble (soft vote) reaches a macro-F1 of "
               f"{_ci_text(_macro_ci(y, soft, c))} %; its hardest class is {t['names'][order[0]]}, F1 "
               f"{_ci_text(_class_ci(y, soft, c, order[0]))} %.")
    return {"n_boot": f"{N_BOOT:,}", "soft_vote_macro_f1": f1.mean(),
            "hardest_class": t["names"][order[0]], "hardest_class_f1": f1[order[0]],
            "easiest_class": t["names"][order[-1]], "finding_ensemble": finding}


def _collapse_rule() -> dict:
    """The collapse rule as :func:`vidstudy.metrics.detect_collapse` applies it, found by probing it: the F1 (%) under
    which a class is lost and the share (%) of predictions on one class that means collapse, each as the interval
    between the last value that passes and the first that does not."""
    from vidstudy.metrics import detect_collapse

    def first(n, flagged):  # the smallest k in [0, n] with flagged(k) False (flagged is monotone)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if flagged(mid) else (lo, mid)
        return lo

    n = 2000
    y = np.repeat(np.arange(4), n)

    def class_1_right(k):  # class 1: k of n right (F1 2k / (n + k)), its misses spread over classes 2 and 3
        p = y.copy()
        miss = np.flatnonzero(y == 1)[k:]
        p[miss] = 2 + np.arange(len(miss)) % 2
        return p

    k = first(n, lambda k: 1 in detect_collapse(y, class_1_right(k), 4)["lost_classes"])
    f1 = lambda k: 100 * 2 * k / (n + k)  # noqa: E731

    def on_class_0(j):  # the first j videos (class 0's first) predicted class 0, the rest right
        p = y.copy()
        p[:j] = 0
        return p

    j = first(4 * n, lambda j: detect_collapse(y, on_class_0(j), 4)["dominant_class"] is None)
    return {"collapse_f1": Between(f1(k - 1), f1(k)), "collapse_share": Between(100 * (j - 1) / (4 * n), 100 * j / (4 * n))}


def _chapter_4(b):
    from vidstudy.study import anomaly

    o, t, v = b["original"], b["test"], b["val"]
    a_orig = o["classes"].index("Animation")
    record = sorted(f[a_orig] for f in o["validation_per_class_f1_percent"].values())
    probs, a = t["original"].astype(np.float64), t["names"].index("Animation")
    other = (a + 1) % len(t["names"])
    hit = probs[0].argmax(1) == a
    assert hit.any(), "member 0 calls no test video Animation"
    suppressed = anomaly.suppress_class(probs, 0, a)[0]  # measured: the odds of Animation, after over before
    odds = (suppressed[:, a] / suppressed[:, other]) / (probs[0][:, a] / probs[0][:, other])
    wrong = anomaly.confidently_wrong(probs, 0, a, other)[0][hit, other]  # measured: what the wrong class is given
    assert np.allclose(odds, odds[0]) and np.allclose(wrong, wrong[0])
    rule = _collapse_rule()
    out = {"orig_min_animation": record[0], "orig_other_low": record[1], "orig_other_high": record[-1],
           "orig_vote_animation": o["five_member_soft_vote"]["per_class_f1"][a_orig], **rule,
           "suppress_factor": float(odds[0]), "wrong_confidence": float(wrong[0])}
    c, a = len(t["names"]), t["names"].index("Animation")
    collapsed = 0
    for member in v["original"]:  # the collapse rule on each member's validation predictions
        pred = member.argmax(1)
        share = np.bincount(pred, minlength=c).max() / len(pred)
        present = np.unique(v["labels"])
        collapsed += bool((_f1(v["labels"], pred, c)[present] < rule["collapse_f1"].hi).any()
                          or share >= rule["collapse_share"].hi / 100)
    out["n_collapsed"] = collapsed
    out["finding_collapse"] = (f"{collapsed} of the study's {len(v['original'])} members collapsed on validation, where "
                               f"the original's collapsed member scored an Animation F1 of {record[0]:.1f} %.")
    labels, probs = t["labels"], t["original"]
    out["ensemble_animation_prob"] = probs.mean(0)[labels == a, a].mean()
    broken = probs.copy()
    broken[0, :, a] *= out["suppress_factor"]
    broken[0] /= broken[0].sum(1, keepdims=True)
    before, after = probs.mean(0).argmax(1), broken.mean(0).argmax(1)
    out["suppressed_member_animation_f1"] = _f1(labels, broken[0].argmax(1), c)[a]
    out["suppress_macro_change"] = _f1(labels, after, c).mean() - _f1(labels, before, c).mean()
    moved = before != after
    out["suppress_changed"] = int(moved.sum())
    out["suppress_fixed"] = int((moved & (before == a) & (labels != a) & (after == labels)).sum())
    out["suppress_broken"] = int((moved & (before == a) & (labels == a)).sum())
    out["suppress_other"] = out["suppress_changed"] - out["suppress_fixed"] - out["suppress_broken"]
    for name, pred in (("before", before), ("after", after)):
        out[f"suppress_precision_{name}"] = 100 * precision_score(labels == a, pred == a, zero_division=0)
        out[f"suppress_recall_{name}"] = 100 * recall_score(labels == a, pred == a, zero_division=0)
    wrong = before[(labels == a) & (before != a)]
    if wrong.size:
        out["wrong_class"] = t["names"][int(np.bincount(wrong, minlength=c).argmax())]
    else:
        lean = probs.mean(0)[labels == a].mean(0)
        lean[a] = -1
        out["wrong_class"] = t["names"][int(lean.argmax())]
    return out


def _chapter_5(b):
    from vidstudy.tta import BASE_VIEWS

    t, r = b["test"], b["results"]
    y, c = t["labels"], len(t["names"])
    tta = t["probs"][:, [t["views"].index(v) for v in BASE_VIEWS]].mean((0, 1)).argmax(1)
    gain = _paired(y, t["original"].mean(0).argmax(1), tta, c)["ci"]
    reliability = r["calibration"]["ensemble"]["reliability_before"]
    bins = len(reliability["counts"])  # the bins the diagram shows; the chapter's ECE is computed with as many
    assert sum(reliability["counts"]) == len(y)
    # (the study scores the soft vote through its logits: float32 rounding, far below what another bin count moves)
    assert _ece(t["original"].mean(0), y, bins) == pytest.approx(r["calibration"]["ensemble"]["ece_before"], abs=1e-6)
    verdict = "helps" if gain[1] > 0 else "hurts" if gain[2] < 0 else "not resolved"
    return {"tta_gain": gain[0], "tta_gain_lo": gain[1], "tta_gain_hi": gain[2], "ece_bins": bins,
            "finding_tta": f"The original's four-view TTA changes the ensemble's macro-F1 by {_ci_text(gain, True)} points "
                           f"on the simulated test split: {verdict}."}


def _experiment_predictions(b) -> dict:
    """The six test prediction sets chapter 6 compares with the soft vote, rebuilt from the stores."""
    from vidstudy.tta import BASE_VIEWS

    t, m = b["test"], b["results"]["methods"]
    a = t["names"].index("Animation")
    base4 = t["probs"][:, [t["views"].index(v) for v in BASE_VIEWS]].mean((0, 1))
    every = t["probs"].mean((0, 1))
    top2 = np.argsort(-base4, axis=1)[:, :2]
    extra = (top2 == a).any(1)
    return {
        "(a) Animation fine-tuning":
            _store(b["run"] / "experiments" / "animation_finetune", "test")["original"].mean(0).argmax(1),
        "(b) subcategory sampling":
            _store(b["run"] / "experiments" / "subcategory_sampling", "test")["original"].mean(0).argmax(1),
        "(c) subsequence TTA for Animation": np.where(extra[:, None], every, base4).argmax(1),
        "(d) class-conditional TTA": np.array(m["class_conditional_tta"]["test_predictions"]),
        "(e) stacking": np.array(m["stacking"]["test_predictions"]),
        "(e) per-class member weights": np.array(m["class_member_weights"]["test_predictions"]),
    }


def _chapter_6(b):
    from vidstudy.study.experiments import ANIMATION_BOOST, FORMER_TEST_SIZE, TARGET_HALF_WIDTH

    t = b["test"]
    labels, c = t["labels"], len(t["names"])
    base = t["original"].mean(0).argmax(1)
    preds = _experiment_predictions(b)
    gains = {n: _f1(labels, p, c).mean() - _f1(labels, base, c).mean() for n, p in preds.items()}
    adjusted = dict(zip(preds, _holm([_paired(labels, base, p, c)["p"] for p in preds.values()])))
    best = max(gains, key=gains.get)
    survivors = [n for n in preds if adjusted[n] < 0.05]
    widths = {size: max(_paired(labels, base, p, c, size)["half_width"] for p in preds.values())
              for size in (len(labels), FORMER_TEST_SIZE)}
    up = [n for n in survivors if gains[n] > 0]
    down = [n for n in survivors if gains[n] < 0]
    listed = lambda names: f", {_and(names)}," if names else ""  # noqa: E731
    finding = (f"Of the {len(preds)} improvement experiments, after Holm's adjustment {len(up)} improve the ensemble"
               f"{listed(up)} and {len(down)} make it worse{listed(down)}; the largest gain, {best}'s, is "
               f"{_ci_text(_paired(labels, base, preds[best], c)['ci'], True)} points (Holm-adjusted p {adjusted[best]:.3f}).")
    return {"finding_experiments": finding,
            "animation_boost": f"{ANIMATION_BOOST:g}", "best_experiment": best, "best_experiment_gain": gains[best],
            "best_experiment_holm_p": adjusted[best], "n_comparisons": len(preds), "holm_alpha": 0.05,
            "n_survivors": len(survivors), "survivors": ", ".join(survivors) or "none of them",
            "target_half_width": TARGET_HALF_WIDTH, "n_test_videos": f"{len(labels):,}",
            "former_test_size": f"{FORMER_TEST_SIZE:,}", "half_width_now": widths[len(labels)],
            "half_width_former": widths[FORMER_TEST_SIZE]}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _time_to_95(history: dict) -> float:
    f1 = history["val_macro_f1"]
    first = next(i for i, x in enumerate(f1) if x >= 0.95 * max(f1))
    return sum(history["epoch_times"][:first + 1])


def _chapter_7(b):
    from vidstudy.features import FeatureFile

    o = b["original"]
    failed = [m for m in o["test_members"] if m["note"]]
    worst = min(o["test_members"], key=lambda m: m["macro_f1"])
    out = {"orig_members": len(o["test_members"]), "orig_failed": len(failed),
           "orig_failures": Parsed(r"seed (\d+) (.+?) \(best epoch (\d+) of (\d+), ([\d.]+) % test accuracy\)", "; ",
                                   [(m["seed"], m["note"], m["best_epoch"], m["epochs_run"], m["test_acc"]) for m in failed]),
           "orig_worst_seed": worst["seed"], "orig_worst_best_epoch": worst["best_epoch"],
           "orig_worst_epochs": worst["epochs_run"], "orig_worst_acc": worst["test_acc"]}
    study = b["study"]
    runs = {p.name: p for p in study.iterdir() if (p / "config.json").exists() and p.name != "collapse_attempt"}
    assert sorted(runs) == ["improved", "original", "original_plus_masking", "original_plus_schedule",
                            "original_plus_single_rebalancer"]
    configs = {n: _flat(_json(p / "config.json")) for n, p in runs.items()}
    improved = configs["improved"]
    out.update(study_hidden=improved["model.hidden_dim"], study_layers=improved["model.num_lstm_layers"],
               study_heads=improved["model.num_heads"], study_head="-".join(map(str, improved["model.head_dims"])),
               study_seeds=improved["members"],
               study_seed_base=improved["seed_base"], study_epochs=improved["train.epochs"],
               study_videos=len(FeatureFile(_json(runs["improved"] / "data.json")["files"]["train"]["path"])))
    differs = [k for k in configs["original"] if configs["original"][k] != improved[k]]
    ablated = {k for n, cfg in configs.items() if n.startswith("original_plus") for k in cfg if cfg[k] != configs["original"][k]}
    bundled = [k for k in differs if k not in ablated]
    assert {"train.lr", "train.weight_decay", "train.batch_size", "train.monitor"} <= set(bundled)
    out.update(n_differences=len(differs), n_bundled=len(bundled), bundled_settings=bundled)
    members = {n: [(_json(m / "summary.json"), _json(m / "history.json")) for m in _members(p)] for n, p in runs.items()}
    for key in ("original", "improved"):
        out[f"collapse_{key}"] = (100 * np.mean([s["collapsed"] for s, _ in members[key]]), 0.05)  # the table rounds
        out[f"t95_{key}"] = (np.mean([_time_to_95(h) for _, h in members[key]]), 5e-4)
    out["t95_ratio"] = (out["t95_original"][0] / out["t95_improved"][0], 0.02 * out["t95_original"][0] / out["t95_improved"][0])
    ratio = out["t95_ratio"][0]
    out["finding_recipe"] = Matches(  # the rates as the chapter's table rounds them; the ratio of its rounded times
        re.escape(f"The original recipe collapsed {out['collapse_original'][0]:.0f} % of its seeds and this project's "
                  f"{out['collapse_improved'][0]:.0f} %; the original took ") + r"([\d.]+)"
        + re.escape(" times as long to reach 95 % of its best validation score."),
        [Between(0.97 * ratio - 0.05, 1.03 * ratio + 0.05)])
    every = [m for ms in members.values() for m in ms]
    out.update(study_members=len(every), study_collapsed=sum(s["collapsed"] for s, _ in every),
               study_epochs_collapsed=sum(sum(1 for lost in h["collapsed_classes"] if lost) for _, h in every))
    attempt = study / "collapse_attempt"
    cfg = _flat(_json(attempt / "config.json"))
    tried = [(_json(m / "summary.json"), _json(m / "history.json")) for m in _members(attempt)]
    entered = sum(any(h["collapsed_classes"]) for _, h in tried)
    stayed = sum(s["collapsed"] for s, _ in tried)
    out.update(attempt_layers=cfg["model.num_lstm_layers"], attempt_heads=cfg["model.num_heads"],
               attempt_head="-".join(map(str, cfg["model.head_dims"])), attempt_hidden=cfg["model.hidden_dim"],
               attempt_seeds=cfg["members"], attempt_epochs=cfg["train.epochs"],
               attempt_videos=len(FeatureFile(_json(attempt / "data.json")["files"]["train"]["path"])),
               attempt_collapse_rate=100 * stayed / len(tried), attempt_collapsed_members=entered,
               attempt_epochs_collapsed_max=max(sum(1 for lost in h["collapsed_classes"] if lost) for _, h in tried),
               attempt_member_seconds=np.mean([s["wall_time_s"] for s, _ in tried]),
               attempt_verdict=("it did not reproduce the collapsed state at all" if entered == 0 else
                                "it reproduced the collapsed state during training, but not the failure to leave it"
                                if stayed == 0 else f"it reproduced the failure: {stayed} member(s) were still "
                                                    f"collapsed at their best checkpoint"))
    out["finding_collapse_attempt"] = (f"Given the original's recipe at the paper model's depth, the attempt to reproduce "
                                       f"its collapse: {out['attempt_verdict']}.")
    assert (out["attempt_layers"], out["attempt_heads"], out["attempt_head"]) == (4, 12, "768-512-256")  # the paper model
    return out


FAMILIES = ["temporal", "meanpool", "dbof", "lstm", "netvlad", "nextvlad", "transformer"]  # the chapter's order


def _systems(y, preds: dict, c: int, draws) -> list[dict]:
    """Each system's macro-F1 CI; against the study's model (temporal) the paired difference, Holm-adjusted, judged."""
    ref = preds["temporal"]
    rows = []
    for name, p in preds.items():
        rows.append({"name": name, "macro": _percentile_ci(_f1(y, p, c).mean(), [_f1(y[r], p[r], c).mean() for r in draws])})
        if name != "temporal":
            d = np.array([_f1(y[r], p[r], c).mean() - _f1(y[r], ref[r], c).mean() for r in draws])
            rows[-1].update(diff=_f1(y, p, c).mean() - _f1(y, ref, c).mean(), p=_p_value(d))
    others = [r for r in rows if "p" in r]
    for r, q in zip(others, _holm([r["p"] for r in others])):
        r["verdict"] = "not resolved" if q >= 0.05 or r["diff"] == 0 else "better" if r["diff"] > 0 else "worse"
    return rows


def _and(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _family_sentence(rows: list[dict], dataset: str) -> str:
    best = max(rows, key=lambda r: r["macro"][0])
    text = f"On {dataset}, {best['name']} scores the highest macro-F1 ({best['macro'][0]:.1f} %, 95 % CI " \
           f"{best['macro'][1]:.1f} to {best['macro'][2]:.1f})"
    text += ", and it is the study's model" if best["name"] == "temporal" else ""
    by = {v: [r["name"] for r in rows if r.get("verdict") == v] for v in ("better", "worse", "not resolved")}
    parts = ([f"{_and(by['better'])} beat{'s' if len(by['better']) == 1 else ''} the study's model"] if by["better"] else []) \
        + ([f"{_and(by['worse'])} {'is' if len(by['worse']) == 1 else 'are'} worse than the study's model"]
           if by["worse"] else []) \
        + ([f"{_and(by['not resolved'])} cannot be told apart from the study's model"] if by["not resolved"] else [])
    return text + ". After Holm's adjustment (at 0.05), " + "; ".join(parts) + "." if parts else text + "."


def _parameters(run: Path) -> int:
    """Weights of member 0 (its checkpoint's tensors, batch-norm statistics left out)."""
    import torch

    state = torch.load(run / "members" / "ensemble_model_0" / "best.pt", weights_only=False)["model_state"]
    return sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))


def _choice(rows_by_data: dict, study: Path) -> Matches:
    fams = [f for f in FAMILIES if all(next(r for r in rows if r["name"] == f).get("verdict") != "worse"
                                       for rows in rows_by_data.values())]
    mean = {f: np.mean([next(r for r in rows if r["name"] == f)["macro"][0] for rows in rows_by_data.values()]) for f in fams}
    best = max(fams, key=mean.get)
    head = (f"Of the families no worse than the study's model on either dataset, {best} has the highest macro-F1 averaged "
            f"over the two ({mean[best]:.1f} %)")
    speed, ref = r"([\d,]+)", _parameters(study / "temporal")
    if best == "temporal":
        return Matches(re.escape(head + f", and it is the study's model itself ({ref:,} parameters, ") + speed
                       + re.escape(" videos/s at inference here)."), [Between(1, 1e9)])
    better = [d for d, rows in rows_by_data.items() if next(r for r in rows if r["name"] == best).get("verdict") == "better"]
    tail = (f" It beats the study's model significantly on {_and(better)}." if better else
            " Its lead over the study's model is not significant on either dataset, so the choice between them is one of cost.")
    return Matches(re.escape(head + f", with {_parameters(study / best):,} parameters and ") + speed
                   + re.escape(f" videos/s at inference here against the study's model's {ref:,} and ") + speed
                   + re.escape("." + tail), [Between(1, 1e9), Between(1, 1e9)])


def _chapter_8(b):
    from vidstudy.features import FeatureFile

    study = Path(f"{b['run']}-families")
    t = b["test"]
    y, c = t["labels"], len(t["names"])
    selection = {p.name: p for p in (study / "selection").iterdir() if (p / "config.json").exists()}
    val = {n: 100 * _json(p / "members" / "ensemble_model_0" / "summary.json")["best_metrics"]["val_macro_f1"]
           for n, p in selection.items()}
    configs = {f: _json(study / f / "config.json") for f in FAMILIES}
    for f, cfg in configs.items():  # each family's run is a candidate with its family's best validation score
        mine = [n for n in selection if _json(selection[n] / "config.json")["model"]["arch"] == f]
        assert len(mine) >= 2, f
        best = max(val[n] for n in mine)
        assert any(val[n] == best and _json(selection[n] / "config.json")["model"] == cfg["model"]
                   and _json(selection[n] / "config.json")["train"]["lr"] == cfg["train"]["lr"] for n in mine), f
    some = next(iter(selection.values()))
    first = _json(some / "config.json")
    edge = []
    for f in FAMILIES:  # the chosen candidate at the grid's largest size (the family's CPU size) and highest rate
        mine = {n: _json(selection[n] / "config.json") for n in selection if n.startswith(f + "-")}
        top_lr = max(cfg["train"]["lr"] for cfg in mine.values())
        order = sorted(mine, key=lambda n: (n.startswith(f"{f}-cpu-"), mine[n]["train"]["lr"]))  # the grid's order
        pick = max(order, key=lambda n: val[n])  # the first of the best, as the grid is searched
        if pick.startswith(f"{f}-cpu-") and mine[pick]["train"]["lr"] == top_lr:
            edge.append(f)
    if not edge:
        edge_text = (f"None of the {len(FAMILIES)} families chose the edge of the grid (its largest size and highest "
                     f"learning rate), so the search does not bound them.")
    else:
        who = "all of them, the study's model among them" if len(edge) == len(FAMILIES) else _and(edge)
        edge_text = (f"{len(edge)} of the {len(FAMILIES)} families ({who}) chose the largest size and the highest learning "
                     f"rate on offer, the edge of the grid: there the grid, not the data, bounds them, and with more CPU "
                     f"time (or on a GPU, at the published sizes) a wider search could raise them. The comparisons below "
                     f"are between families at the same bound.")
    data = {s: _h5(b["data"] / f"{s}_features_multiscale.h5") for s in ("train", "test")}
    preds = {f: _store(study / f, "test")["original"].mean(0).argmax(1) for f in FAMILIES}
    preds.update({f"{k} probe": _probe_pred(data["train"], data["test"], k) for k in ("mean", "temporal")})
    sim = _systems(y, preds, c, _draws(len(y)))
    real_y, real_src, real_preds = [], [], {k: [] for k in preds}
    by_source = Path(f"{study}-by-source")
    for k in range(len(list(by_source.glob("fold_*")))):
        fold = by_source / f"fold_{k}"
        d = {s: _h5(fold / "data" / f"{s}_features_multiscale.h5") for s in ("train", "val", "test")}
        held = ~np.isin(d["test"]["sources"], list(set(d["train"]["sources"]) | set(d["val"]["sources"])))
        real_y.append(d["test"]["y"][held])
        real_src += list(np.array(d["test"]["sources"])[held])
        for f in FAMILIES:
            real_preds[f].append(_store(fold / f, "test")["original"].mean(0).argmax(1)[held])
        for kind in ("mean", "temporal"):
            real_preds[f"{kind} probe"].append(_probe_pred(d["train"], d["test"], kind)[held])
    ry, rsrc = np.concatenate(real_y), np.array(real_src)
    real = _systems(ry, {k: np.concatenate(v) for k, v in real_preds.items()}, c, _source_draws(ry, rsrc))
    return {"fam_members": configs["temporal"]["members"],
            "fam_lrs": " and ".join(f"{lr:g}" for lr in sorted({_json(p / "config.json")["train"]["lr"]
                                                                for p in selection.values()})),
            "fam_selection_videos": len(FeatureFile(_json(some / "data.json")["files"]["train"]["path"])),
            "fam_selection_epochs": first["train"]["epochs"], "fam_sim_test": len(y), "fam_comparisons": len(preds) - 1,
            "fam_fastest": OneOf(FAMILIES), "fam_fastest_ratio": Between(1.0, 1e7), "fam_edge": edge_text,
            "fam_real_sources": len(set(real_src)), "fam_real_clips": len(ry),
            "finding_model_simulated": _family_sentence(sim, "the simulated data"),
            "finding_model_real": _family_sentence(real, "held-out real sources"),
            "finding_model_choice": _choice({"the simulated data": sim, "held-out real sources": real}, study)}


def _chapter_9(b):
    import nbformat

    from vidstudy.extraction.backbone import lite0_backbone
    from vidstudy.extraction.extract import DEFAULT_BATCH, REPORT_NAME
    from vidstudy.extraction.video import Sampling, count_packets, read_frames
    from vidstudy.features import FeatureFile, feature_file_name
    from vidstudy.multiscale import multiscale, source_positions

    demo = b["root"] / "runs" / "book-smoke" / "video_demo"
    report = _json(demo / "features" / REPORT_NAME)
    settings, split = report["settings"], report["splits"]["demo"]
    ff = FeatureFile(demo / "features" / feature_file_name("demo"))
    scales = settings["scales"]
    frames = read_frames(demo / "videos" / "demo" / "Natural_Content" / "street" / "bikes.mp4",
                         Sampling(num_frames=settings["sampling"]["num_frames"]))
    assert len(frames) == min(settings["sampling"]["num_frames"], count_packets(
        demo / "videos" / "demo" / "Natural_Content" / "street" / "bikes.mp4"))
    per_frame = np.asarray(lite0_backbone()(frames))
    combined = {mode: np.linalg.norm(multiscale(per_frame, scales, mode)[0], axis=1) for mode in ("original", "aligned")}
    spread = {}
    for mode in ("original", "aligned"):
        pos = source_positions(len(frames), scales, mode)
        spread[mode] = max(np.nanmax(row) - np.nanmin(row) for row in pos)
    tail = slice(len(frames), None)  # the steps after the 1.0 scale's last frame
    assert split["resumed"] == 0 and not split["skipped"]
    sampling = Sampling(**settings["sampling"])  # every frame the CNN saw, counted by decoding the videos again
    decoded = sum(len(read_frames(v, sampling)) for v in sorted((demo / "videos" / "demo").rglob("*.mp4")))
    chapter = nbformat.read(b["root"] / "book" / "executed" / "09_video_features.ipynb", as_version=4)
    return {"frames_per_video": settings["sampling"]["num_frames"], "frame_size": settings["sampling"]["frame_size"],
            "cnn_batch": DEFAULT_BATCH, "scales": ", ".join(f"{s:g}" for s in scales),
            # timed inside the chapter's run, so within the chapter's own wall time (papermill's record)
            "extract_seconds": Between(0.001, chapter.metadata["papermill"]["duration"]),
            "extract_fps": (decoded / split["seconds"], 0.01 + 1e-3 * decoded / split["seconds"]),
            "extract_frames": decoded, "feature_dim": ff.feature_dim,
            "heatmap_dims": _heatmap_rows(ff.frames(0)),
            "ms_frames": len(frames),  # and its steps are the length extract wrote for that video:
            "ms_steps": int(ff.num_frames[[v.rsplit("/", 1)[1] for v in ff.video_ids].index("bikes")]),
            "spread_original": spread["original"], "spread_aligned": spread["aligned"],
            "tail_ratio": (combined["original"][tail].mean() / combined["aligned"][tail].mean(), 1e-4)}


# --- chapter 10: the real-features dataset, its run, the claims, the folds, the statistics ---------------------------

def _h5(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        d = {"x": f["features"][()], "y": f["labels"][()].astype(int), "nf": f["num_frames"][()].astype(int)}
        d["sources"] = [s.decode() if isinstance(s, bytes) else s for s in f["sources"][()]] if "sources" in f else None
    return d


def _probe_x(d: dict, kind: str) -> np.ndarray:
    """A probe's video statistics as chapter 1 describes them: the mean frame; for the temporal probe also the mean
    absolute change between frames and each dimension's lag-1 autocorrelation."""
    rows = []
    for x, n in zip(d["x"], d["nf"]):
        f = x[:n].astype(np.float64)
        parts = [f.mean(0)]
        if kind == "temporal":
            c = f - f.mean(0)
            parts += [np.abs(np.diff(f, axis=0)).mean(0), (c[1:] * c[:-1]).mean(0) / (c.var(0) + 1e-8)] if n > 1 else \
                [np.zeros(f.shape[1])] * 2
        rows.append(np.concatenate(parts))
    return np.stack(rows)


def _probe_pred(train: dict, test: dict, kind: str) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    return probe.fit(_probe_x(train, kind), train["y"]).predict(_probe_x(test, kind))


def _ece(probs, labels, bins=15):
    conf, right = probs.max(1), probs.argmax(1) == labels
    which = np.clip(np.digitize(conf, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    return sum((which == k).mean() * abs(right[which == k].mean() - conf[which == k].mean())
               for k in range(bins) if (which == k).any())


def _temperature(logits, labels):
    from scipy.optimize import minimize_scalar

    def nll(log_t):
        z = logits / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        return -np.mean(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(1)))
    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded", options={"xatol": 1e-4}).x))


def _source_draws(y, src, n_boot: int = N_BOOT, rng=None, per_class: int | None = None) -> list[np.ndarray]:
    """Rows of each source-bootstrap draw: per class (in label order), ``per_class`` of its sources (sorted, default
    all) drawn with replacement, each bringing all its rows."""
    rng = np.random.default_rng(0) if rng is None else rng
    classes = sorted(set(y.tolist()))
    names = [sorted(set(src[y == k].tolist())) for k in classes]
    picks = [rng.integers(0, len(n), size=(n_boot, per_class or len(n))) for n in names]
    rows = [[np.flatnonzero((src == s) & (y == k)) for s in n] for k, n in zip(classes, names)]
    return [np.concatenate([rows[i][j] for i in range(len(classes)) for j in picks[i][b]]) for b in range(n_boot)]


def _draw_rows(y, src, n: int):
    return [rows for rows in _draws(n)] if src is None else _source_draws(y, src)


def _claim_part(run: Path, train: dict, test: dict, rows=None) -> dict:
    """One evaluated run's share of the claims' test set: its test rows ``rows`` (default all)."""
    from vidstudy.tta import BASE_VIEWS

    t, v, r = _store(run, "test"), _store(run, "val"), _json(run / "results.json")
    rows = np.arange(len(t["labels"])) if rows is None else rows
    o = t["views"].index(STORE_VIEW)
    temps = [_temperature(v["logits"][m, o].astype(np.float64), v["labels"]) for m in range(len(t["original"]))]
    after = []
    for m, temp in enumerate(temps):
        z = t["logits"][m, o].astype(np.float64) / temp
        e = np.exp(z - z.max(1, keepdims=True))
        after.append(e / e.sum(1, keepdims=True))
    return {"names": t["names"], "y": t["labels"][rows], "soft": t["original"].mean(0).argmax(1)[rows],
            "tta": t["probs"][:, [t["views"].index(x) for x in BASE_VIEWS]].mean((0, 1)).argmax(1)[rows],
            "stacking": np.array(r["methods"]["stacking"]["test_predictions"])[rows],
            "mean": _probe_pred(train, test, "mean")[rows], "temporal": _probe_pred(train, test, "temporal")[rows],
            "before": t["original"][:, rows], "after": np.stack(after)[:, rows],
            "src": None if test["sources"] is None else np.array(test["sources"])[rows]}


def _claim_statistics(parts: list[dict]) -> dict:
    cat = {k: np.concatenate([p[k] for p in parts], axis=1 if k in ("before", "after") else 0)
           for k in ("y", "soft", "tta", "stacking", "mean", "temporal", "before", "after")}
    y, c = cat["y"], len(parts[0]["names"])
    a = parts[0]["names"].index("Animation")
    src = None if parts[0]["src"] is None else np.concatenate([p["src"] for p in parts])

    def gap(rows):
        f1 = _f1(y[rows], cat["soft"][rows], c)
        return f1[a] - np.delete(f1, a).min()

    def ece_drop(rows):
        return 100 * np.mean([_ece(b[rows], y[rows]) - _ece(f[rows], y[rows]) for b, f in zip(cat["before"], cat["after"])])

    def diff(p, q):
        return lambda rows: _f1(y[rows], q[rows], c).mean() - _f1(y[rows], p[rows], c).mean()

    return {"y": y, "src": src, "c": c, "pairs": [(cat["mean"], cat["soft"]), (cat["temporal"], cat["soft"]),
                                                  (cat["soft"], cat["tta"]), (cat["soft"], cat["stacking"])],
            "stats": [gap, diff(cat["mean"], cat["soft"]), diff(cat["temporal"], cat["soft"]),
                      diff(cat["soft"], cat["tta"]), diff(cat["soft"], cat["stacking"]), ece_drop],
            "directions": [-1, 1, 1, 1, 1, 1]}


def _verdicts(s: dict) -> list[str]:
    """The verdicts of the six claims on one test set: clip resamples for simulated videos, source resamples when
    the test set records sources."""
    return [v for _, v in _judged(s)]


def _judged(s: dict) -> list[tuple]:
    """``(CI, verdict)`` of each of the six claims on one test set (see :func:`_verdicts`)."""
    y, src, c = s["y"], s["src"], s["c"]
    rows = []
    for k, (f, direction) in enumerate(zip(s["stats"], s["directions"])):
        if 1 <= k <= 4 and src is None:  # the paired macro-F1 claims, over resampled videos
            p = _paired(y, *s["pairs"][k - 1], c)
            rows.append((p["ci"], p["p"], direction))
            continue
        draws = np.array([f(r) for r in _draw_rows(y, src, len(y))])
        rows.append((_percentile_ci(f(np.arange(len(y))), draws), _p_value(draws), direction))
    adjusted = _holm([p for _, p, _ in rows])
    return [(ci, "not resolved" if q >= 0.05 or ci[0] == 0 else "holds" if np.sign(ci[0]) == sg else "contradicted")
            for (ci, _, sg), q in zip(rows, adjusted)]


def _claims(run: Path, data: Path) -> list[tuple]:
    """``(CI, verdict)`` of the six claims on a run's test split, each measured from the stores and the data files."""
    train, test = _h5(data / "train_features_multiscale.h5"), _h5(data / "test_features_multiscale.h5")
    return _judged(_claim_statistics([_claim_part(run, train, test)]))


def _macro(y, p, c):
    return float(_f1(y, p, c).mean())


def _folds(loso: Path) -> list[dict]:
    out = []
    for k in range(len(list(loso.glob("fold_*")))):
        fold = loso / f"fold_{k}"
        d = {s: _h5(fold / "data" / f"{s}_features_multiscale.h5") for s in ("train", "val", "test")}
        seen = set(d["train"]["sources"]) | set(d["val"]["sources"])
        test = d["test"]
        out.append({"y": test["y"], "sources": np.array(test["sources"]), "held": ~np.isin(test["sources"], list(seen)),
                    "model": _store(fold / "run", "test")["original"].mean(0).argmax(1),
                    "mean": _probe_pred(d["train"], test, "mean"), "temporal": _probe_pred(d["train"], test, "temporal"),
                    "run": fold / "run", "train": d["train"], "test": test})
    return out


def _source_ci(folds: list[dict], system: str, c: int):
    y = np.concatenate([f["y"] for f in folds])
    p = np.concatenate([f[system] for f in folds])
    src = np.concatenate([f["sources"] for f in folds])
    held = np.concatenate([f["held"] for f in folds])

    def score(rows):
        h, i = rows[held[rows]], rows[~held[rows]]
        return _macro(y[h], p[h], c), _macro(y[i], p[i], c)

    point = score(np.arange(len(y)))
    draws = np.array([score(rows) for rows in _source_draws(y, src)])
    ci = lambda pt, d: (pt, *np.percentile(d, [2.5, 97.5]))  # noqa: E731
    return {"held": ci(point[0], draws[:, 0]), "in": ci(point[1], draws[:, 1]),
            "gap": ci(point[1] - point[0], draws[:, 1] - draws[:, 0]), "y": y, "p": p, "src": src, "isheld": held}


def _stats(train: dict, test: dict) -> dict:
    valid = np.concatenate([x[:n] for x, n in zip(train["x"], train["nf"])])
    acs = []
    for x, n in zip(train["x"], train["nf"]):
        if n < 3:
            continue
        f = x[:n].astype(np.float64)
        cen = f - f.mean(0)
        var = (cen**2).mean(0)
        keep = var > 1e-12
        if keep.any():
            acs.append(((cen[1:] * cen[:-1]).mean(0)[keep] / var[keep]).mean())
    return {"sparsity": 100 * np.mean(valid == 0), "scale": np.sqrt(np.mean(valid.astype(np.float64) ** 2)),
            "autocorrelation": np.mean(acs), "separability": _macro(test["y"], _probe_pred(train, test, "mean"), 4)}


CLAIM_NAMES = ["Animation is the hardest class", "The temporal model beats the mean-feature probe",
               "The temporal model beats the temporal probe", "The original's TTA helps", "Stacking helps",
               "Members need recalibrating"]
CLAIM_KEYS = ["animation_hardest", "beats_mean_probe", "beats_temporal_probe", "tta_helps", "stacking_helps",
              "members_miscalibrated"]


def _power(s: dict, sizes, n_boot: int = 500, level: float = 1 - 0.05 / 6) -> list:
    """Per claim, the smallest number of sources per class whose CI half-width is under the measured difference."""
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = []
    for f in s["stats"]:
        point = f(np.arange(len(s["y"])))
        needed = None
        for m in sizes:
            rows = _source_draws(s["y"], s["src"], n_boot, np.random.default_rng([0, m]), m)
            lo, hi = np.percentile([f(r) for r in rows], q)
            if (hi - lo) / 2 < abs(point):
                needed = m
                break
        out.append(needed)
    return out


def _chapter_10(b):
    from vidstudy.extraction.extract import REPORT_NAME
    from vidstudy.extraction.sources import SOURCES
    from vidstudy.simulate import shape_config, simulate_split
    from vidstudy.study.claims import ALPHA
    from vidstudy.study.crosssource import IN_SOURCE_FRACTION, POWER_SOURCES, TARGET_HALF_WIDTH
    from vidstudy.study.simcompare import CALIBRATION_SIZES, KNOBS

    runs = b["root"] / "runs" / "book-smoke"
    real = runs / "realclips"
    run = main_run(runs, "realclips")
    split = {s: _h5(real / f"{s}_features_multiscale.h5") for s in ("train", "val", "test")}
    stamp = _json(real / "videos" / ".realclips.json")["inputs"]["values"]["settings"]
    sources = _json(real / "videos" / "sources.json")  # {split: {Category/Sub/stem: source}}
    category = {src: key.split("/")[0] for per in sources.values() for key, src in per.items()}
    per_class = {k: sorted({s for s, c in category.items() if c == k}) for k in sorted(set(category.values()))}
    real_asset = {s.name: s.package != "vidstudy" for s in SOURCES}
    test_per_class = {k: len({s for key, s in sources["test"].items() if key.startswith(k + "/")}) for k in per_class}
    assert len(set(test_per_class.values())) == 1
    out = {"rc_clips": len(list((real / "videos").rglob("*.mp4"))), "rc_sources": len(category),
           "rc_min_sources": min(map(len, per_class.values())),
           "rc_real_sources": sum(real_asset[s] for s in category),
           "rc_per_class": ", ".join(f"{k} {len(v)} ({sum(real_asset[s] for s in v)} real)" for k, v in per_class.items()),
           "rc_animation_real": sum(real_asset[s] for s in per_class["Animation"]),
           "rc_animation_sources": len(per_class["Animation"]), "rc_test_sources": test_per_class["Animation"],
           "rc_frames": _json(real / REPORT_NAME)["settings"]["sampling"]["num_frames"],
           "rc_min_seconds": stamp["min_seconds"], "rc_max_seconds": stamp["max_seconds"],
           **{f"rc_{s}": len(d["y"]) for s, d in split.items()}}
    t = _store(run, "test")
    y, c = t["labels"], len(t["names"])
    test_src = np.array(split["test"]["sources"])
    soft = t["original"].mean(0).argmax(1)
    f1 = _f1(y, soft, c)
    hardest = int(np.argsort(f1, kind="stable")[0])
    ci = _percentile_ci(f1.mean(), [_f1(y[r], soft[r], c).mean() for r in _source_draws(y, test_src)])
    out.update({"real_members": len(_members(run)), "real_soft_f1": f1.mean(), "real_soft_f1_lo": ci[1],
                "real_soft_f1_hi": ci[2], "real_hardest": t["names"][hardest], "real_hardest_f1": f1[hardest],
                **{f"real_{k}_probe_f1": _macro(y, _probe_pred(split["train"], split["test"], k), c)
                   for k in ("mean", "temporal")}})
    folds = _folds(runs / f"{run.name}-by-source")
    model = _source_ci(folds, "model", c)
    half = (model["held"][2] - model["held"][1]) / 2
    hy, hp, hs = model["y"][model["isheld"]], model["p"][model["isheld"]], model["src"][model["isheld"]]
    enough = None
    for m in POWER_SOURCES:
        lo, hi = np.percentile([_macro(hy[r], hp[r], c) for r in
                                _source_draws(hy, hs, 500, np.random.default_rng([0, m]), m)], [2.5, 97.5])
        if (hi - lo) / 2 <= TARGET_HALF_WIDTH:
            enough = m
            break
    out.update({"loso_folds": len(folds), "in_source_pct": 100 * IN_SOURCE_FRACTION,
                **{f"loso_{k}_{part}": model[k][i] for k in ("held", "in", "gap") for i, part in enumerate(("f1", "lo", "hi"))},
                "loso_half_width": half, "loso_target": TARGET_HALF_WIDTH,
                "loso_target_sources": str(enough) if enough else f"more than {POWER_SOURCES[-1]}",
                **{f"loso_{k}_probe_held": _source_ci(folds, k, c)["held"][0] for k in ("mean", "temporal")}})
    missed = []
    for k in range(c):
        for s in sorted(set(hs[hy == k].tolist())):
            p = hp[hs == s]
            if np.mean(p == k) < 0.5:
                wrong = p[p != k]
                missed.append(f"{s} (as {t['names'][int(np.bincount(wrong).argmax())]})")
    recalls = [np.mean(hp[hs == s] == k) for k in range(c) for s in set(hs[hy == k].tolist())]
    out.update({"loso_missed": len(missed), "loso_missed_list": "; ".join(missed) or "none",
                "loso_all_or_none": 100 * np.mean([r in (0.0, 1.0) for r in recalls])})
    held_parts = [_claim_part(f["run"], f["train"], f["test"], np.flatnonzero(f["held"])) for f in folds]
    held_stats = _claim_statistics(held_parts)
    judged = {"simulated": _claims(b["run"], b["data"]), "real, test sources": _claims(run, real),
              "real, held-out sources": _judged(held_stats)}
    sim_verdicts, test_verdicts, held_verdicts = ([v for _, v in rows] for rows in judged.values())
    for j, key in enumerate(CLAIM_KEYS):
        out[f"finding_claim_{key}"] = f"{CLAIM_NAMES[j]} (Holm-adjusted): " + "; ".join(
            f"{label} {_ci_text(rows[j][0], True)}, {rows[j][1]}" for label, rows in judged.items()) + "."
    # a difference in ECE carries the temperatures, fitted here by a search of their own, and a video whose confidence
    # sits on a bin edge moves with the last digits of its temperature: within a point and a half, verdicts exact
    number = r"([+-]\d+\.\d)"
    out["finding_claim_members_miscalibrated"] = Matches(
        re.escape(f"{CLAIM_NAMES[5]} (Holm-adjusted): ") + "; ".join(
            re.escape(f"{label} ") + number + re.escape(" (95 % CI ") + number + " to " + number + re.escape(f"), {rows[5][1]}")
            for label, rows in judged.items()) + re.escape("."),
        [Between(v - 1.5, v + 1.5) for rows in judged.values() for v in rows[5][0]])
    out["finding_held_out"] = (f"On real sources it never saw, the study's ensemble reaches a macro-F1 of "
                               f"{_ci_text(model['held'])} % over sources, against {_ci_text(model['in'])} % on unseen "
                               f"clips of the sources it trained on.")
    differ = [f"{n.lower()} ({s} simulated, {r} on held-out sources)"
              for n, s, r in zip(CLAIM_NAMES, sim_verdicts, held_verdicts) if s != r]
    needed = _power(held_stats, POWER_SOURCES)
    points = [f(np.arange(len(held_stats["y"]))) for f in held_stats["stats"]]
    beyond = [(n, abs(d)) for n, d, m in zip(CLAIM_NAMES, points, needed) if m is None]
    out.update({"claims_same": sum(s == r for s, r in zip(sim_verdicts, held_verdicts)), "claims_n": 6,
                "claims_alpha": ALPHA, "claims_differ": "; ".join(differ) or "none",
                "claims_unresolved_test": test_verdicts.count("not resolved"),
                "claims_unresolved_held": held_verdicts.count("not resolved"),
                "sim_test_n": len(_h5(b["data"] / "test_features_multiscale.h5")["y"]),
                "power_level": 100 * (1 - ALPHA / 6),
                "power_summary": "; ".join(f"{n.lower()}: {m or f'more than {POWER_SOURCES[-1]}'}"
                                           for n, v, m in zip(CLAIM_NAMES, held_verdicts, needed)
                                           if v == "not resolved") or "none",
                "power_beyond": "; ".join(n.lower() for n, _ in beyond) or "none",
                # a difference in ECE carries the temperatures, fitted here by a search of their own
                "power_beyond_max": (max((d for _, d in beyond), default=0.0), 0.01)})
    sim = {s: _h5(b["data"] / f"{s}_features_multiscale.h5") for s in ("train", "test")}
    stats = {"real": _stats(split["train"], split["test"]), "sim": _stats(sim["train"], sim["test"])}
    for key in stats:
        out.update({f"{key}_{k}": v for k, v in stats[key].items()})
    grid = []  # the calibration grid, simulated at a quarter of its size as the smoke chapter asks
    n = {k: max(8, int(round(v * 0.25 / 4)) * 4) for k, v in CALIBRATION_SIZES.items()}
    for tn in KNOBS["texture_noise"]:
        for ss in KNOBS["style_spread"]:
            cfg = shape_config("default", split_sizes={**n, "val": 4}, texture_noise=tn, style_spread=ss,
                               fixed_class_counts={"test": (n["test"] // 4,) * 4, "val": (1, 1, 1, 1)})
            tr, te = (simulate_split(cfg, s, 0) for s in ("train", "test"))
            st = _stats({"x": tr["features"], "y": tr["labels"], "nf": tr["num_frames"]},
                        {"x": te["features"], "y": te["labels"], "nf": te["num_frames"]})
            dist = sum(abs(st[k] - stats["real"][k]) / abs(stats["real"][k]) for k in ("autocorrelation", "separability"))
            grid.append((dist, tn, ss))
    best = min(grid)
    default = shape_config("default")
    out.update({"cal_texture": best[1], "cal_style": best[2], "cal_distance": (best[0], 1e-9),
                "default_distance": (next(d for d, tn, ss in grid if (tn, ss) == (default.texture_noise,
                                                                                  default.style_spread)), 1e-9),
                "default_texture": default.texture_noise, "default_style": default.style_spread})
    return out


def _confidence_threshold(conf: np.ndarray, right: np.ndarray, target: float) -> float | None:
    """The lowest confidence ``t`` at which the calls of confidence >= ``t`` are ``target`` right, by trying each."""
    ok = [t for t in np.unique(conf) if right[conf >= t].mean() >= target]
    return float(min(ok)) if ok else None


def _frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def _chapter_11(b):
    """The real run's deployment refitted here from its stores; the joined video's windows from ``vidstudy classify
    --json`` run on it, with its clips' segments counted from their own frames."""
    import tempfile

    from vidstudy.cli import main
    from vidstudy.extraction.sources import FPS
    from vidstudy.tta import BASE_VIEWS

    runs = b["root"] / "runs" / "book-smoke"
    run, videos = main_run(runs, "realclips"), runs / "realclips" / "videos"
    dep = _json(run / "results.json")["deployment"]
    target = dep["confidence"]["target_accuracy"]
    combined = {}
    for split in ("val", "test"):
        d = _store(run, split)
        combined[split] = (d["probs"][:, [d["views"].index(v) for v in BASE_VIEWS]].astype(np.float64).mean((0, 1)),
                           d["labels"], [str(v) for v in d["video_ids"]], d["names"])
    logits = np.log(np.clip(combined["val"][0], 1e-12, None))
    temperature = _temperature(logits, combined["val"][1])
    z = logits / temperature
    val_p = np.exp(z - z.max(1, keepdims=True))
    val_p /= val_p.sum(1, keepdims=True)
    threshold = _confidence_threshold(val_p.max(1), val_p.argmax(1) == combined["val"][1], target)
    if threshold is None:
        sentence = Matches(r"no confidence threshold makes the calls (\d+) % right, so no call is marked confident",
                           [f"{100 * target:.0f}"])
    else:
        sentence = Matches(r"the calls with a top probability of at least ([0-9.]+) are (\d+) % right or more \(the "
                           r"lowest such threshold\), and those are the calls marked confident",
                           [Between(threshold - 1e-3, threshold + 1e-3), f"{100 * target:.0f}"])
    probs, labels, ids, names = combined["test"]
    z = np.log(np.clip(probs, 1e-12, None)) / temperature
    test_p = np.exp(z - z.max(1, keepdims=True))
    test_p /= test_p.sum(1, keepdims=True)
    first = {}
    for vid, source in sorted(_json(videos / "sources.json")["test"].items()):
        first.setdefault(source, vid)
    rows = [ids.index(v) for v in first.values()]
    right = test_p[rows].argmax(1) == labels[rows]
    confident = test_p[rows].max(1) >= (np.inf if threshold is None else threshold - 1e-9)

    clips = {}  # the longest (on disk) first clip of each category's test sources, in the categories' order
    for vid in first.values():
        (path,) = (videos / "test").glob(f"{vid}.*")
        category = vid.split("/")[0]
        if category not in clips or path.stat().st_size > clips[category].stat().st_size:
            clips[category] = path
    ends = np.cumsum([_frame_count(clips[c]) for c in names]) / FPS
    segments = list(zip(names, np.concatenate([[0.0], ends[:-1]]), ends))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "joined.jsonl"
        assert main(["classify", str(run), str(runs / "classify" / "joined.mp4"), "--window", "1", "--json", str(out),
                     "--quiet", "--device", "cpu"]) == 0
        (joined,) = [json.loads(line) for line in out.read_text().splitlines()]
    inside = [(c, w["top_k"][0]["category"]) for w in joined["windows"] for c, a, e in segments
              if a - 1e-6 <= w["start_s"] and w["end_s"] <= e + 1e-6]
    share = Between(0, 100)
    return {"cl_threshold": sentence, "cl_temperature": Between(temperature - 2e-3,
                                                                                            temperature + 2e-3),
            "cl_clips": len(rows), "cl_right": int(right.sum()), "cl_confident": int(confident.sum()),
            "cl_confident_right": int((right & confident).sum()), "cl_max_difference": Between(0, 1e-4),
            "cl_window_s": 1.0, "cl_joined_s": Between(ends[-1] - 1e-6, ends[-1] + 1e-6),
            "cl_windows": len(joined["windows"]), "cl_windows_inside": len(inside),
            "cl_windows_right": sum(c == call for c, call in inside), "cl_whole_call": joined["top_k"][0]["category"],
            "cl_decode_share": share, "cl_cnn_share": share, "cl_members_share": share}


def _chapter_12(b):
    """The generated shards' records counted from their framing, their labels mapped by the shipped 2018 mapping
    read as plain JSON, the rates from the import report's seconds, the disk from the split files."""
    from vidstudy.yt8m.example import decode_video

    work = b["root"] / "runs" / "book-smoke" / "yt8m-cost"
    shards = sorted((work / "shards").glob("*.tfrecord"))
    records = []
    for path in shards:
        data, at = path.read_bytes(), 0
        while at < len(data):
            n = int.from_bytes(data[at:at + 8], "little")
            records.append((path, len(records), data[at + 12:at + 12 + n]))
            at += 12 + n + 4
    mapping = _json(REPO / "vidstudy" / "yt8m" / "mappings" / "yt8m-2018.json")["classes"]
    class_of = {i: c for c, pairs in mapping.items() for i, _ in pairs}
    reasons = {"kept": 0, "several": 0, "none": 0}
    for path, k, data in records:
        classes = {class_of[label] for label in decode_video(data, path, k).labels if label in class_of}
        reasons["kept" if len(classes) == 1 else "several" if classes else "none"] += 1
    seconds = _json(work / "imported" / "import_report.json")["seconds"]
    size = sum(p.stat().st_size for p in shards)
    out = sum(p.stat().st_size for p in (work / "imported").glob("*.h5"))
    return {"yt_records": len(records), "yt_input_mb": size / 1e6, "yt_records_per_s": len(records) / seconds,
            "yt_mb_per_s": size / 1e6 / seconds, "yt_kept": reasons["kept"], "yt_several": reasons["several"],
            "yt_none": reasons["none"], "yt_gb_per_1000": out / reasons["kept"] * 1000 / 1e9,
            "yt_full_hours": 6_100_000 / (len(records) / seconds) / 3600}


EXPECTED = {"01_data": _chapter_1, "02_training": _chapter_2, "03_per_class_f1": _chapter_3,
            "04_animation_anomaly": _chapter_4, "05_ensemble_tta": _chapter_5, "06_experiments": _chapter_6,
            "07_recipes": _chapter_7, "08_models": _chapter_8, "09_video_features": _chapter_9,
            "10_real_features": _chapter_10, "11_classify": _chapter_11,
            "12_youtube8m": _chapter_12}


def _same(name, got, want):
    if isinstance(want, Between):
        assert want.lo <= got <= want.hi, (name, got, want)
    elif isinstance(want, (Parsed, Matches)):
        want.check(name, got)
    elif isinstance(want, OneOf):
        assert got in want.options, (name, got, want)
    elif isinstance(want, tuple):  # (value, absolute tolerance)
        want, tol = want
        assert got == pytest.approx(want, abs=tol), name
    elif name == "bundled_settings":
        assert got == ", ".join(f"`{k}`" for k in want), name
    elif isinstance(want, float) or isinstance(got, float):
        assert got == pytest.approx(float(want), rel=1e-9, abs=1e-9), name
    else:
        assert got == want, name
        assert type(got) is type(want) or isinstance(want, (int, np.integer)), name


@pytest.mark.parametrize("chapter", toc_chapters())
def test_every_glued_value_equals_its_recomputation(book, chapter):
    glued_values = _values(book["root"], chapter)
    expected = EXPECTED[chapter](book)
    assert set(glued_values) == set(expected), f"{chapter}: glued and checked names differ"
    for name, want in expected.items():
        _same(name, glued_values[name], want)


# --- what the pages show -----------------------------------------------------------------------------------------

ROLE = re.compile(r"\{glue:text\}`([^`]+)`")


def _shown(value, spec: str) -> str:
    """How a ``{glue:text}`` role shows a value (MyST-NB: ``str`` without a format, else ``format``)."""
    if not spec:
        return str(value)
    kind = spec[-1]
    return format(int(value) if kind in "bcdoxX" else float(value) if kind in "eEfFgGn%" else str(value), spec)


def _letters(text: str) -> str:
    """Only what survives both Markdown and HTML rendering: letters, digits and the signs numbers use."""
    return re.sub(r"[^A-Za-z0-9_.,%+\-()=;:]", "", text)


def _page_text(path: Path) -> str:
    page = path.read_text()
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return _letters(html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.parametrize("chapter", toc_chapters())
def test_each_sentence_with_glued_values_is_on_the_page_with_those_values(book, chapter):
    """Every paragraph that glues a value is found on the rendered page with the value formatted as its role asks;
    the values put in are the glued ones, which the test above checks against the recomputation."""
    import nbformat

    root = book["root"]
    values = _values(root, chapter)
    page = _page_text(root / "_build" / "html" / "book" / "executed" / f"{chapter}.html")
    nb = nbformat.read(root / "book" / "executed" / f"{chapter}.ipynb", as_version=4)
    shown = set()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for paragraph in re.split(r"\n\s*\n", cell.source):
            if not ROLE.search(paragraph):
                continue

            def fill(match):
                name, _, spec = match.group(1).partition(":")
                shown.add(name)
                return _shown(values[name], spec)

            text = ROLE.sub(fill, paragraph)
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link shows its text
            text = re.sub(r"(?m)^\s*(#+|[-*]|\d+\.)\s+", "", text)  # headings and list markers
            assert _letters(text) in page, f"{chapter}: not on the page as written:\n{text}"
    assert shown == set(values), f"{chapter}: glued but never shown: {sorted(set(values) - shown)}"
