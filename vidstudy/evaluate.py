"""``vidstudy evaluate``: every recombination of the predictions store, with CIs, as JSON and tables.

Everything that is selected or fit (members kept, class-conditional TTA thresholds,
stacking, per-class member weights, temperatures) uses validation predictions
only; the test split is only reported. ``results.json`` holds all numbers and
:func:`format_report` prints from it, so the printed tables match the JSON.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import calibration as cal
from . import checkpoint
from .atomic import write_json
from .config import RunConfig
from .ensemble import (
    collapse_flags,
    fit_class_conditional_tta,
    hard_vote,
    leave_one_out,
    member_tta,
    select_members,
    soft_vote,
    tta_ensemble,
)
from .errors import ParameterError, VidstudyError
from .features import FeatureFile
from .metrics import bootstrap_ci, paired_comparison, per_class_table
from .predictions import STORE_DIR, Predictions, ensure_predictions, run_split_file, split_target
from .profiling import timed
from .results import SCHEMA, best_per_class
from .runs import checkpoints_key, member_checkpoints
from .stacking import fit_class_member_weights, fit_stacking
from .tta import BASE_VIEWS

MAX_BOOT = 100_000  # bootstrap resamples
MIN_VAL_PER_CLASS = 2  # the stacker's stratified cross-validation needs two videos of each class


def _report(labels, pred, names, n_boot, seed, groups=None) -> dict:
    return {"table": per_class_table(labels, pred, names),
            "ci": bootstrap_ci(labels, pred, len(names), n_boot, seed, groups=groups)}


def member_reports(val: Predictions, test: Predictions, n_boot: int = 1000, seed: int = 0, groups=None) -> dict:
    """Each member on val, on test (with CIs; over ``groups``, the test videos' sources, when given) and with its own
    TTA on test; its collapse flag and whether it is kept."""
    names, o = test.class_names, test.view_names.index("original")
    flags = collapse_flags(val.probs[:, o], val.labels)
    kept = select_members(val.probs[:, o], val.labels)
    test_member_tta = member_tta(test.probs)
    return {member: {"val": {"table": per_class_table(val.labels, val.probs[i, o].argmax(1), names)},
                     "test": _report(test.labels, test.probs[i, o].argmax(1), names, n_boot, seed, groups),
                     "test_tta": {"table": per_class_table(test.labels, test_member_tta[i].argmax(1), names)},
                     "collapse_on_val": flags[i], "kept": i in kept}
            for i, member in enumerate(test.member_names)}


def per_view(test: Predictions) -> dict:
    """Each member's and the soft vote's test table, view by view."""
    names, out = test.class_names, {}
    for v, view in enumerate(test.view_names):
        out[view] = {m: per_class_table(test.labels, test.probs[i, v].argmax(1), names) for i, m in enumerate(test.member_names)}
        out[view]["ensemble"] = per_class_table(test.labels, soft_vote(test.probs[:, v]).argmax(1), names)
    return out


def method_predictions(val: Predictions, test: Predictions, seed: int = 0) -> dict[str, tuple[str, np.ndarray, dict]]:
    """Every recombination's test predictions: ``{name: (description, predictions, extras)}``; whatever is
    selected or fit uses the validation store only."""
    names, o = test.class_names, test.view_names.index("original")
    val_orig, test_orig = val.probs[:, o], test.probs[:, o]
    kept = select_members(val_orig, val.labels)
    test_member_tta = member_tta(test.probs)
    base = [test.view_names.index(v) for v in BASE_VIEWS if v in test.view_names]
    cc = fit_class_conditional_tta(val.probs, val.labels, original_index=o)
    cc_probs, cc_views = cc.apply(test.probs, original_index=o)
    stacker = fit_stacking(val.probs, val.labels, seed=seed)
    weights = fit_class_member_weights(member_tta(val.probs), val.labels)
    return {
        "soft_vote": ("mean of all members' probabilities, original view (no TTA)", soft_vote(test_orig).argmax(1), {}),
        "hard_vote": ("majority of the members' predictions, original view", hard_vote(test_orig), {}),
        "soft_vote_selected": ("soft vote over the members not flagged as collapsed on val",
                               soft_vote(test_orig[kept]).argmax(1), {"members": [test.member_names[i] for i in kept]}),
        "ensemble_tta": ("the original's TTA: mean over each member's four views, then over members",
                         tta_ensemble(test.probs, base).argmax(1), {"views_per_video": float(len(base))}),
        "class_conditional_tta": ("all stored views only where the original view's ensemble confidence is under a "
                                  "per-class threshold fit on val",
                                  cc_probs.argmax(1), {"views_per_video": float(cc_views.mean()),
                                                       "thresholds": dict(zip(names, map(float, cc.thresholds)))}),
        "stacking": ("multinomial logistic regression on members x views probabilities, fit on val",
                     stacker.predict_proba(test.probs).argmax(1), {"cv_on_val": stacker.cv_metrics}),
        "class_member_weights": ("per-class member weights fit on val, over each member's TTA probabilities",
                                 weights.predict_proba(test_member_tta).argmax(1),
                                 {"weights": {m: dict(zip(names, map(float, weights.weights[i])))
                                              for i, m in enumerate(test.member_names)}}),
    }


def calibration_report(val: Predictions, test: Predictions, bins: int = cal.DEFAULT_BINS) -> dict:
    """Each member's and the soft vote's temperature (fit on val) and ECE on test before and after it."""
    o = test.view_names.index("original")
    systems = {m: (val.logits[i, o], test.logits[i, o]) for i, m in enumerate(test.member_names)}
    systems["ensemble"] = (cal.probs_as_logits(soft_vote(val.probs[:, o])), cal.probs_as_logits(soft_vote(test.probs[:, o])))
    out = {}
    for name, (lv, lt) in systems.items():
        t = cal.fit_temperature(lv, val.labels)
        before, after = cal.softmax(lt), cal.softmax(lt, t)
        out[name] = {"temperature": t, "bins": bins, "ece_before": cal.ece(before, test.labels, bins),
                     "ece_after": cal.ece(after, test.labels, bins),
                     "reliability_before": cal.reliability(before, test.labels, bins),
                     "reliability_after": cal.reliability(after, test.labels, bins)}
    return out


#: The accuracy the predictions called confident must reach on validation (``vidstudy classify``'s threshold).
CONFIDENT_ACCURACY = 0.95


def deployment_report(val: Predictions, test: Predictions) -> dict:
    """How ``vidstudy classify`` combines the members, fitted on val: the original's TTA (each member's mean over the
    base views, then the members' mean), a temperature on that mean, and the lowest confidence at which val
    predictions are :data:`CONFIDENT_ACCURACY` right; the test split's coverage and accuracy at it are reported."""
    views = [v for v in BASE_VIEWS if v in test.view_names and v in val.view_names]
    combined = {name: tta_ensemble(store.probs, [store.view_names.index(v) for v in views])
                for name, store in (("val", val), ("test", test))}  # each store's own order of its views
    temperature = cal.fit_temperature(cal.probs_as_logits(combined["val"]), val.labels)
    scored = {}
    for name, store in (("val", val), ("test", test)):
        p = cal.calibrated(combined[name], temperature)
        scored[name] = (p.max(1), p.argmax(1) == store.labels)
    threshold = cal.fit_confidence_threshold(*scored["val"], CONFIDENT_ACCURACY)
    return {"method": "ensemble_tta", "views": views,
            "members": list(test.member_names), "temperature": temperature,
            "confidence": {"target_accuracy": CONFIDENT_ACCURACY, "threshold": threshold,
                           **{name: cal.coverage_accuracy(*s, threshold) for name, s in scored.items()}}}


@timed("evaluation")
def recombine(val: Predictions, test: Predictions, n_boot: int = 1000, seed: int = 0, groups=None) -> dict:
    """All combinations of the stored predictions (no network runs), in the schema of :mod:`vidstudy.results`; the
    CIs resample ``groups`` (each test video's source, within its class) when given, else videos."""
    names, y_test = test.class_names, test.labels
    members = member_reports(val, test, n_boot, seed, groups)
    out: dict = {"members": members,
                 "best_per_class": {"val": best_per_class({m: r["val"]["table"] for m, r in members.items()}, names),
                                    "test": best_per_class({m: r["test"]["table"] for m, r in members.items()}, names)},
                 "methods": {}, "per_view": per_view(test)}
    methods = method_predictions(val, test, seed)
    reference = methods["soft_vote"][1]
    for name, (description, pred, extra) in methods.items():
        out["methods"][name] = {"description": description, **_report(y_test, pred, names, n_boot, seed, groups), **extra,
                                "vs_soft_vote": paired_comparison(y_test, reference, pred, len(names), n_boot, seed,
                                                                  groups=groups),
                                "test_predictions": np.asarray(pred).astype(int).tolist()}
    o = test.view_names.index("original")
    out["leave_one_out"] = {test.member_names[i]: per_class_table(y_test, probs.argmax(1), names)
                            for i, probs in enumerate(leave_one_out(test.probs[:, o]))}
    out["calibration"] = calibration_report(val, test)
    out["deployment"] = deployment_report(val, test)
    return out


def configuration_analysis(run_dir: Path, results: dict, test_file: FeatureFile) -> dict:
    """The original's ``configuration_analysis.json`` structure, plus this project's additions."""
    entries = []
    for name, path in member_checkpoints(run_dir):
        ckpt = checkpoint.load(path)
        cfg = RunConfig.from_dict(ckpt["config"])
        val = results["members"][name]["val"]["table"]
        entries.append({
            "checkpoint": str(path.relative_to(run_dir)),
            "model_config": ckpt["config"]["model"],
            "training_config": ckpt["config"]["train"],
            "preset": cfg.preset,
            "seed": ckpt["seed"],
            "epoch": ckpt["epoch"],
            "best_val_acc": 100 * ckpt["metrics"]["val_acc"],
            "metrics": {"accuracy": val["accuracy"], "weighted_f1": val["weighted_f1"],
                        "per_class_f1": [val["classes"][c]["f1"] for c in results["class_names"]]},
        })
    nf = test_file.num_frames
    return {
        "checkpoint_analysis": entries,
        "feature_file_info": {
            "file": str(test_file.path), "category_mapping": test_file.category_mapping, "feature_dim": test_file.feature_dim,
            "max_frames": test_file.max_frames, "multi_scale": test_file.multi_scale, "num_videos": len(test_file),
            "features_shape": list(test_file.shape),
            "num_frames": {"min": int(nf.min()), "max": int(nf.max()), "mean": float(nf.mean()), "median": float(np.median(nf))},
            "categories": test_file.class_names,
        },
        "vidstudy": {
            "note": "metrics in checkpoint_analysis are validation metrics at each member's best checkpoint, in percent",
            "results_file": "results.json",
            "members_kept_on_val": [m for m, r in results["members"].items() if r["kept"]],
            "collapse_on_val": {m: r["collapse_on_val"] for m, r in results["members"].items()},
        },
    }


def evaluate_run(run_dir, data_dir=None, *, n_boot: int = 1000, seed: int = 0, subsequences: int | None = None,
                 device: str = "auto") -> dict:
    """Make sure the store is current (rebuilding it on ``device``), recombine, and write ``results.json`` and
    ``configuration_analysis.json``.

    ``subsequences`` asks for a store with that many random-subsequence views; by
    default the store's own views are kept. With ``data_dir`` on other data than the
    run's own, the test predictions are those of that folder and both files are
    written beside its store (``RUN_DIR/other_data/...``); fitting still uses the
    run's own validation split.
    """
    from .tta import view_names

    if not isinstance(n_boot, int) or not 1 <= n_boot <= MAX_BOOT:
        raise ParameterError(f"n_boot (--bootstrap) must lie in [1, {MAX_BOOT}], got {n_boot}.")
    run_dir = Path(run_dir)
    views = view_names(subsequences) if subsequences is not None else None
    val_file = FeatureFile(run_split_file(run_dir, "val"))
    counts = np.bincount(val_file.labels, minlength=val_file.num_classes)
    if counts.min() < MIN_VAL_PER_CLASS:
        short = val_file.class_names[int(counts.argmin())]
        raise VidstudyError(f"{val_file.path}: evaluate fits on validation and needs at least {MIN_VAL_PER_CLASS} videos of "
                            f"every class; {short} has {int(counts.min())}.")
    store, rebuilt = ensure_predictions(run_dir, views, data_dir=data_dir, device=device)
    folder, test_file = split_target(run_dir, "test", data_dir)
    out_dir = run_dir if folder == run_dir / STORE_DIR else folder  # results on other data stay beside their store
    t0 = time.perf_counter()
    groups = FeatureFile(test_file).sources  # clips of one source are not independent: resample sources when known
    results = {"schema": SCHEMA, "run_dir": str(run_dir), "class_names": store["test"].class_names,
               "views": store["test"].view_names, "n_boot": n_boot, "seed": seed,
               "resampled": "videos" if groups is None else "sources",
               "data": {"val": str(run_split_file(run_dir, "val")), "test": str(test_file)}}
    results.update(recombine(store["val"], store["test"], n_boot=n_boot, seed=seed, groups=groups))
    results["deployment"]["checkpoints_sha256"] = checkpoints_key(run_dir)  # what classify checks it is fitted for
    seconds = time.perf_counter() - t0
    results["results_dir"] = str(out_dir)
    write_json(out_dir / "results.json", results)  # only what the inputs determine: the same inputs give the same bytes
    write_json(out_dir / "configuration_analysis.json", configuration_analysis(run_dir, results, FeatureFile(test_file)))
    return {**results, "store_rebuilt": rebuilt, "recombination_seconds": seconds}


def _cell(ci) -> str:
    return f"{ci[0]:5.1f} [{ci[1]:5.1f},{ci[2]:5.1f}]"


def format_report(results: dict) -> str:
    """Text tables of ``results.json`` (per-class F1 in %, 95 % bootstrap CIs in brackets)."""
    names = results["class_names"]
    width = max(22, *(len(n) for n in results["methods"]))
    head = f"{'':<{width}}" + "".join(f"{n[:17]:>20}" for n in names) + f"{'macro F1':>20}{'accuracy':>20}"
    lines = ["Validation per-class F1 (%) at each member's best checkpoint",
             f"{'':<{width}}" + "".join(f"{n[:17]:>20}" for n in names)]
    for m, r in results["members"].items():
        lost = ", ".join(names[c] for c in r["collapse_on_val"]["lost_classes"])
        flag = "" if r["kept"] else f"  (collapsed on val: {lost})"
        lines.append(f"{m:<{width}}" + "".join(f"{r['val']['table']['classes'][n]['f1']:>20.2f}" for n in names) + flag)
    lines.append(f"{'best per class (val)':<{width}}" + "".join(f"{results['best_per_class']['val'][n]:>20.2f}" for n in names))
    over = "test sources, resampled within each class" if results.get("resampled") == "sources" else "test videos"
    lines += ["", f"Test per-class F1 (%) with 95 % bootstrap CIs over {over}", head]
    rows = [(m, r["test"]) for m, r in results["members"].items()]
    rows += [(name, r) for name, r in results["methods"].items()]
    for name, r in rows:
        ci = r["ci"]
        lines.append(f"{name:<{width}}" + "".join(f"{_cell(c):>20}" for c in ci["per_class_f1"])
                     + f"{_cell(ci['macro_f1']):>20}{_cell(ci['accuracy']):>20}")
    lines.append(f"{'oracle: best per class':<{width}}"
                 + "".join(f"{results['best_per_class']['test'][n]:>20.1f}" for n in names))
    lines.append("(oracle: each class's best member picked on the test labels; not a system, an upper bound of picking)")
    lines += ["", "Per-class member weights (class_member_weights, fit on val; each class sums to 1 over members)",
              f"{'':<{width}}" + "".join(f"{n[:17]:>20}" for n in names)]
    for m, w in results["methods"]["class_member_weights"]["weights"].items():
        lines.append(f"{m:<{width}}" + "".join(f"{w[n]:>20.3f}" for n in names))
    cc = results["methods"]["class_conditional_tta"]
    lines += ["", f"views per video: ensemble_tta {results['methods']['ensemble_tta']['views_per_video']:.2f}, "
                  f"class_conditional_tta {cc['views_per_video']:.2f}; stacking CV macro-F1 on val "
                  f"{100 * results['methods']['stacking']['cv_on_val']['f1_macro']:.1f}",
              f"ECE ({results['calibration']['ensemble']['bins']} bins, test) before -> after temperature scaling "
              f"fit on val: " + ", ".join(f"{k} {v['ece_before']:.3f}->{v['ece_after']:.3f} (T={v['temperature']:.2f})"
                                          for k, v in results["calibration"].items())]
    return "\n".join(lines)
