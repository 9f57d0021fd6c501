"""The book's headline findings, one sentence each with its number, CI and verdict, composed from a chapter's own
results and glued by that chapter as ``finding_KEY`` (:func:`record`); the Findings page (``book/findings.md``)
pastes them from the executed chapters, so nothing on it is typed. :data:`PAGE` lists them in the page's order with
the chapter that glues each.

A difference is **resolved** when its 95 % CI excludes zero (:func:`direction`); where a chapter adjusts several
comparisons (Holm), its sentence says so and uses the adjusted verdict.
"""

from __future__ import annotations

PREFIX = "finding_"

#: ``(chapter, key)`` of every finding, in the page's order.
PAGE = (("03_per_class_f1", "ensemble"), ("04_animation_anomaly", "collapse"), ("05_ensemble_tta", "tta"),
        ("06_experiments", "experiments"), ("07_recipes", "recipe"), ("07_recipes", "collapse_attempt"),
        ("08_models", "model_simulated"), ("08_models", "model_real"), ("08_models", "model_choice"),
        ("10_real_features", "held_out"), ("10_real_features", "claim_animation_hardest"),
        ("10_real_features", "claim_beats_mean_probe"), ("10_real_features", "claim_beats_temporal_probe"),
        ("10_real_features", "claim_tta_helps"), ("10_real_features", "claim_stacking_helps"),
        ("10_real_features", "claim_members_miscalibrated"))


def record(key: str, text: str) -> None:
    """Glue ``text`` as ``finding_{key}`` (not displayed)."""
    from myst_nb import glue

    glue(PREFIX + key, text, display=False)


def ci(v, signed: bool = False) -> str:
    """``[point, low, high]`` as "P (95 % CI L to H)"."""
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(v[0])} (95 % CI {f.format(v[1])} to {f.format(v[2])})"


def direction(v, up: str = "helps", down: str = "hurts") -> str:
    """``up`` when the CI lies above zero, ``down`` below, else "not resolved"."""
    return up if v[1] > 0 else down if v[2] < 0 else "not resolved"


def ensemble(results: dict) -> str:
    """The study's ensemble on the simulated test split (chapter 3)."""
    names, soft = results["class_names"], results["methods"]["soft_vote"]["ci"]
    hardest = min(range(len(names)), key=lambda c: soft["per_class_f1"][c][0])
    return (f"On the simulated test split the study's ensemble (soft vote) reaches a macro-F1 of {ci(soft['macro_f1'])} %; "
            f"its hardest class is {names[hardest]}, F1 {ci(soft['per_class_f1'][hardest])} %.")


def collapse(n_collapsed: int, members: int, original_animation_f1: float) -> str:
    """The collapse check (chapter 4)."""
    return (f"{n_collapsed} of the study's {members} members collapsed on validation, where the original's collapsed "
            f"member scored an Animation F1 of {original_animation_f1:.1f} %.")


def tta(diff) -> str:
    """The original's TTA against the soft vote (chapter 5)."""
    return (f"The original's four-view TTA changes the ensemble's macro-F1 by {ci(diff, signed=True)} points on the "
            f"simulated test split: {direction(diff)}.")


def experiments(exps: list[dict]) -> str:
    """The improvement experiments after Holm's adjustment (chapter 6): those that change macro-F1 significantly, by
    the sign of the change, and the largest gain."""
    changed = [e for e in exps if e["vs_baseline"]["holm"]["survives"]]
    up = [e["name"] for e in changed if e["vs_baseline"]["macro_f1_diff"][0] > 0]
    down = [e["name"] for e in changed if e["vs_baseline"]["macro_f1_diff"][0] < 0]
    best = max(exps, key=lambda e: e["vs_baseline"]["macro_f1_diff"][0])
    return (f"Of the {len(exps)} improvement experiments, after Holm's adjustment {len(up)} improve the ensemble"
            f"{_listed(up)} and {len(down)} make it worse{_listed(down)}; the largest gain, {best['name']}'s, is "
            f"{ci(best['vs_baseline']['macro_f1_diff'], signed=True)} points (Holm-adjusted p "
            f"{best['vs_baseline']['holm']['macro_f1_p_value']:.3f}).")


def _listed(names: list[str]) -> str:
    """", A and B," after a count (nothing for none)."""
    if not names:
        return ""
    return ", " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + ","


def recipe(summary) -> str:
    """The original recipe against this project's (chapter 7; ``summary`` indexed by recipe)."""
    o, i = summary.loc["original"], summary.loc["improved"]
    return (f"The original recipe collapsed {100 * o['collapse rate']:.0f} % of its seeds and this project's "
            f"{100 * i['collapse rate']:.0f} %; the original took {o['time to 95% (s)'] / i['time to 95% (s)']:.1f} times "
            f"as long to reach 95 % of its best validation score.")


def collapse_attempt(verdict: str) -> str:
    """The attempt to reproduce the original's collapse (chapter 7; ``verdict`` is the chapter's clause)."""
    return f"Given the original's recipe at the paper model's depth, the attempt to reproduce its collapse: {verdict}."


def held_out(held, in_source) -> str:
    """The ensemble on real sources it never saw (chapter 10)."""
    return (f"On real sources it never saw, the study's ensemble reaches a macro-F1 of {ci(held)} % over sources, "
            f"against {ci(in_source)} % on unseen clips of the sources it trained on.")


def claims(by_data: dict[str, list[dict]]) -> dict[str, str]:
    """``{claim_KEY: sentence}``: each claim of :mod:`vidstudy.study.claims` on every dataset, its difference with CI and
    its Holm-adjusted verdict (chapter 10)."""
    out = {}
    keys = [r["key"] for r in next(iter(by_data.values()))]
    for j, key in enumerate(keys):
        parts = [f"{label} {ci(rows[j]['ci'], signed=True)}, {rows[j]['verdict']}" for label, rows in by_data.items()]
        claim = next(iter(by_data.values()))[j]["claim"]
        out[f"claim_{key}"] = f"{claim} (Holm-adjusted): " + "; ".join(parts) + "."
    return out
