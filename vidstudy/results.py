"""The schema of ``results.json`` (written by :func:`vidstudy.evaluate.evaluate_run`) and its readers.

Every reader goes through the functions below rather than spelling key paths.
All F1 values, accuracies and CIs are in percent; a *table* is
:func:`vidstudy.metrics.per_class_table` output and a *CI* is
:func:`vidstudy.metrics.bootstrap_ci` output.

.. code-block:: text

    schema             3
    run_dir, results_dir, data {val, test}, class_names, views, n_boot, seed
    resampled          "videos", or "sources" when the test file records each video's source: what every CI resamples
    members            {member: {"val":      {"table"},          # at the member's best checkpoint, original view
                                 "test":     {"table", "ci"},    # original view
                                 "test_tta": {"table"},          # mean of the member's four base views
                                 "collapse_on_val": {collapsed, lost_classes, dominant_class, dominant_share},
                                 "kept": bool}}                   # not flagged as collapsed on val
    best_per_class     {"val": {class: F1}, "test": {class: F1}}  # test: an oracle, picked on test labels
    methods            {name: {"description", "table", "ci", "vs_soft_vote", "test_predictions", ...extras}}
    per_view           {view: {member or "ensemble": table}}     # test
    leave_one_out      {member: table}                           # soft vote without that member, test
    calibration        {member or "ensemble": {temperature, ece_before, ece_after, bins,
                                               reliability_before, reliability_after}}
    deployment         {method: "ensemble_tta", views, members, temperature,   # what vidstudy classify applies
                        checkpoints_sha256,                                    # the members it was fitted for
                        confidence: {target_accuracy, threshold,               # threshold fitted on val (None:
                                     val: {coverage, accuracy, count},         #   no confidence reaches the target)
                                     test: {coverage, accuracy, count}}}       # reported only

The file holds only what the run, the data and the parameters determine, so the
same inputs give the same bytes. What one call did is returned by
:func:`~vidstudy.evaluate.evaluate_run` beside it and not written: ``store_rebuilt``
(whether the predictions store was predicted again) and ``recombination_seconds``.
"""

from __future__ import annotations

from pathlib import Path

SCHEMA = 3
MEMBER_SPLITS = ("val", "test", "test_tta")


def member_tables(results: dict, split: str = "test") -> dict[str, dict]:
    """``{member: table}`` for ``split`` (``val``, ``test`` or ``test_tta``)."""
    if split not in MEMBER_SPLITS:
        raise ValueError(f"split must be one of {', '.join(MEMBER_SPLITS)}, got {split!r}")
    return {m: r[split]["table"] for m, r in results["members"].items()}


def member_cis(results: dict) -> dict[str, dict]:
    """``{member: CI}`` of each member on test (original view)."""
    return {m: r["test"]["ci"] for m, r in results["members"].items()}


def class_f1(table: dict, class_names) -> list[float]:
    """The per-class F1 of a table, in the order of ``class_names``."""
    return [table["classes"][c]["f1"] for c in class_names]


def mean_member_f1(results: dict, split: str = "test") -> dict[str, float]:
    """Each class's F1 averaged over the members."""
    tables = list(member_tables(results, split).values())
    return {c: sum(t["classes"][c]["f1"] for t in tables) / len(tables) for c in results["class_names"]}


def best_per_class(tables: dict[str, dict], class_names) -> dict[str, float]:
    """Each class's best F1 over ``tables`` (on test that is an oracle: picked by looking at the labels)."""
    return {c: max(t["classes"][c]["f1"] for t in tables.values()) for c in class_names}


def read_results(path) -> dict:
    """``results.json`` from a run folder or file; one-line errors for a missing, damaged or older file."""
    from .atomic import read_json
    from .errors import VidstudyError

    path = Path(path)
    path = path / "results.json" if path.is_dir() else path
    results = read_json(path, "results of vidstudy evaluate")
    if results.get("schema") != SCHEMA:
        raise VidstudyError(f"{path}: results written by another version of vidstudy (schema {results.get('schema')}, "
                            f"expected {SCHEMA}); run vidstudy evaluate again.")
    return results


def deployment(results: dict) -> dict:
    """How ``vidstudy classify`` combines the run's members (``results["deployment"]``, fitted on val)."""
    return results["deployment"]
