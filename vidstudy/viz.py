"""Plots: ``RealTimeTrainingVisualizer``, the functions it draws with, and the book's figures.

The same functions render a live run (after each epoch) and a finished
``history.json`` for the book, with seaborn styling. The module does not choose a
matplotlib backend: without a display matplotlib falls back to the headless Agg
backend, and in a notebook the inline backend shows the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .atomic import atomic_path

HEATMAP_DIMS = 64  # feature dimensions a frame heatmap shows


def plot_f1_progression(ax, history: dict) -> None:
    """Weighted F1 for train and val and val macro-F1 against epoch (in %)."""
    epochs = np.arange(1, len(history["train_f1"]) + 1)
    ax.plot(epochs, 100 * np.asarray(history["train_f1"]), label="train F1 (weighted)", marker="o", ms=3)
    ax.plot(epochs, 100 * np.asarray(history["val_f1"]), label="val F1 (weighted)", marker="o", ms=3)
    ax.plot(epochs, 100 * np.asarray(history["val_macro_f1"]), label="val macro-F1", linestyle="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("F1 progression")
    ax.legend(loc="lower right")


def plot_per_class_f1(ax, history: dict, epoch: int, class_names: Sequence[str]) -> None:
    """Per-class val F1 of ``epoch`` (0-based) as bars with value labels and a dashed mean line."""
    per_class = 100 * np.asarray(history["val_per_class_f1"][epoch])
    colors = sns.color_palette("tab10", len(per_class))
    bars = ax.bar(list(class_names), per_class, color=colors, alpha=0.8, edgecolor="black", linewidth=1.2)
    for bar in bars:
        h = bar.get_height()
        ax.text(bar.get_x() + bar.get_width() / 2, h, f"{h:.1f}%", ha="center", va="bottom", fontsize=9, fontweight="bold")
    mean = float(per_class.mean())
    ax.axhline(mean, color="red", linestyle="--", linewidth=2, alpha=0.7, label=f"mean: {mean:.1f}%")
    ax.set_ylim(0, 125)  # headroom above the bars and their labels for the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("val F1 (%)")
    ax.set_title(f"per-class F1, epoch {epoch + 1}")
    ax.tick_params(axis="x", labelrotation=15)
    ax.legend(loc="upper right")


def render_history(history: dict, class_names: Sequence[str], epoch: int | None = None, title: str | None = None):
    """A two-panel figure (F1 progression, per-class bars of ``epoch``, default the last)."""
    with sns.axes_style("whitegrid"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
        plot_f1_progression(left, history)
        plot_per_class_f1(right, history, len(history["train_f1"]) - 1 if epoch is None else epoch, class_names)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


class RealTimeTrainingVisualizer:
    """After each epoch, draw the member's F1 progression and per-class F1 bars.

    Saved as ``plots_dir/current.png``; with ``per_epoch=True`` also as
    ``plots_dir/epoch_{NNN}.png``.
    """

    def __init__(self, plots_dir, class_names: Sequence[str], title: str | None = None, per_epoch: bool = False):
        self.plots_dir = Path(plots_dir)
        self.class_names = list(class_names)
        self.title = title
        self.per_epoch = per_epoch

    def update(self, history: dict) -> Path:
        fig = render_history(history, self.class_names, title=self.title)
        try:
            targets = [self.plots_dir / "current.png"]
            if self.per_epoch:
                targets.append(self.plots_dir / f"epoch_{len(history['train_f1']):03d}.png")
            for target in targets:
                with atomic_path(target) as tmp:
                    fig.savefig(tmp, format="png", dpi=90)
        finally:
            plt.close(fig)
        return targets[0]


def plot_lengths(ax, lengths_by_split: dict) -> None:
    """Histogram of valid sequence lengths per split."""
    for split, lengths in lengths_by_split.items():
        ax.hist(lengths, bins=30, alpha=0.5, label=split)
    ax.set_xlabel("valid steps per video (num_frames)")
    ax.set_ylabel("videos")
    ax.set_title("sequence lengths")
    ax.legend()


def plot_projection(ax, points: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> None:
    """A 2-D projection of video-level features, coloured by class."""
    palette = sns.color_palette("tab10", len(class_names))
    for c, name in enumerate(class_names):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=8, alpha=0.6, color=palette[c], label=name)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.legend(markerscale=2)


def plot_frame_heatmap(ax, frames: np.ndarray, title: str, max_dims: int = HEATMAP_DIMS) -> int:
    """Frame features of one video (time x the first ``max_dims`` dimensions); returns how many dimensions it shows
    (fewer than ``max_dims`` when the features have fewer)."""
    shown = frames[:, :max_dims].T
    im = ax.imshow(shown, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("time step")
    ax.set_ylabel("feature dimension")
    ax.set_title(title)
    plt.colorbar(im, ax=ax, fraction=0.046)
    return int(shown.shape[0])


def plot_confusion(ax, matrix: np.ndarray, class_names: Sequence[str], title: str) -> None:
    """A confusion matrix (rows: true class, columns: predicted), counts annotated."""
    sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=[n.replace("_", "\n") for n in class_names], yticklabels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)


def plot_reliability(ax, before: dict, after: dict, title: str) -> None:
    """Reliability diagram from :func:`vidstudy.calibration.reliability` data, before and after scaling."""
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for data, label in ((before, "before"), (after, "after temperature scaling")):
        conf = [c for c, n in zip(data["confidence"], data["counts"]) if n]
        acc = [a for a, n in zip(data["accuracy"], data["counts"]) if n]
        ax.plot(conf, acc, marker="o", label=label)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left")


def plot_recipe_curves(ax, curves: dict, recipes: Sequence[str]) -> None:
    """Val macro-F1 against epoch for every seed of each recipe (one colour per recipe)."""
    palette = sns.color_palette("tab10", len(recipes))
    for colour, name in zip(palette, recipes):
        for k, f1 in enumerate(curves[name]):
            ax.plot(np.arange(1, len(f1) + 1), 100 * np.asarray(f1), color=colour, alpha=0.6,
                    label=name if k == 0 else None)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_ylabel("val macro-F1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")


def plot_frame_strip(ax, frames: np.ndarray, title: str = "") -> None:
    """Frames ``uint8 [K, H, W, 3]`` side by side, left to right in time."""
    ax.imshow(np.concatenate(list(frames), axis=1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def plot_source_positions(ax, positions: np.ndarray, scales: Sequence[float], title: str) -> None:
    """For each multi-scale step, the video frame each scale contributes (a gap where it contributes zeros)."""
    for j, s in enumerate(scales):
        ax.plot(np.arange(len(positions)), positions[:, j], marker=".", markersize=3, lw=1, label=f"scale {s:g}")
    ax.set_xlabel("multi-scale step")
    ax.set_ylabel("video frame used")
    ax.set_title(title)
    ax.legend()


def plot_step_norms(ax, curves: dict, title: str) -> None:
    """L2 norm of each multi-scale step, one line per method."""
    for name, norms in curves.items():
        ax.plot(np.arange(len(norms)), norms, label=name)
    ax.set_xlabel("multi-scale step")
    ax.set_ylabel("feature norm")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend()


def plot_sweep(ax, rows: dict, metric: str, baseline: float | None = None) -> None:
    """One line per behaviour of :func:`vidstudy.study.anomaly.robustness_sweep`: ``metric`` against the
    number of members changed; ``baseline`` (the unchanged ensemble) as a dashed line."""
    for kind in dict.fromkeys(k for _, k in rows):
        ks = [k for k, b in rows if b == kind]
        ax.plot(ks, [rows[(k, kind)][metric] for k in ks], marker="o", label=kind)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label="no member changed")
    ax.set_xlabel("members changed")
    ax.set_xticks(sorted({k for k, _ in rows}))
    ax.set_ylabel(f"ensemble {metric} (%)")
    ax.legend(loc="lower left")


def plot_forest(ax, names: Sequence[str], diffs: Sequence[Sequence[float]], adjusted: Sequence[Sequence[float]] | None = None,
                survives: Sequence[bool] | None = None) -> None:
    """A forest plot of changes against a baseline: each row's point estimate and 95 % CI
    (``diffs``: ``[diff, lo, hi]``), and optionally a wider multiplicity-adjusted interval drawn beneath it;
    rows that survive the adjustment are drawn dark."""
    y = np.arange(len(names))[::-1]
    for i, (yy, (d, lo, hi)) in enumerate(zip(y, diffs)):
        colour = "black" if survives is None or survives[i] else "grey"
        if adjusted is not None:
            ax.plot([adjusted[i][1], adjusted[i][2]], [yy, yy], color=colour, linewidth=1, alpha=0.5,
                    label="simultaneous CI (Bonferroni)" if i == 0 else None)
        ax.plot([lo, hi], [yy, yy], color=colour, linewidth=4, solid_capstyle="butt", label="95 % CI" if i == 0 else None)
        ax.plot([d], [yy], "o", color="white", markeredgecolor=colour, markersize=7)
    ax.axvline(0, color="tab:red", linestyle=":")
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlabel("change in macro-F1 against the baseline (points)")
    ax.legend(loc="lower right", fontsize="small")


def plot_half_width(ax, sizes: Sequence[int], widths: dict, target: float, current: int) -> None:
    """CI half-width of each comparison against the number of test videos; the target as a line."""
    for name, w in widths.items():
        ax.plot(sizes, w, marker=".", label=name)
    ax.axhline(target, color="tab:red", linestyle="--", label=f"target ({target:g} point)")
    ax.axvline(current, color="grey", linestyle=":", label="this test split")
    ax.set_xscale("log")
    ax.set_xlabel("test videos")
    ax.set_ylabel("95 % CI half-width (points)")
    ax.legend(fontsize="small")


def plot_recipe_distributions(ax, rows, column: str) -> None:
    """Every seed's ``column`` per recipe (points) over a box of its spread; ``rows`` from
    :func:`vidstudy.study.recipes.member_rows`."""
    order = list(dict.fromkeys(rows["recipe"]))
    values = rows.assign(**{column: 100 * rows[column]})
    sns.boxplot(data=values, y="recipe", x=column, order=order, ax=ax, color="0.9", fliersize=0, width=0.5)
    sns.stripplot(data=values, y="recipe", x=column, order=order, ax=ax, hue="collapsed",
                  palette={False: "tab:blue", True: "tab:red"}, size=6, jitter=0.15)
    ax.set_xlabel(f"{column} (%)")
    ax.set_ylabel("")


def confusion_figure(ensemble: np.ndarray, members: dict, class_names: Sequence[str], title: str = "soft vote (ensemble)"):
    """The ensemble's confusion matrix large on the left, each member's small in a grid on the right."""
    n = len(members)
    cols = 2 if n > 1 else 1
    rows = max(1, int(np.ceil(n / cols)))
    fig = plt.figure(figsize=(12, max(5.0, 2.6 * rows)))
    grid = fig.add_gridspec(rows, 1 + cols, width_ratios=[2.2] + [1] * cols)
    plot_confusion(fig.add_subplot(grid[:, 0]), ensemble, class_names, title)
    short = [n[:4] for n in class_names]
    for i, (name, matrix) in enumerate(members.items()):
        ax = fig.add_subplot(grid[i // cols, 1 + i % cols])
        sns.heatmap(matrix, annot=True, fmt="d", cmap="Greys", cbar=False, ax=ax, annot_kws={"fontsize": 7},
                    xticklabels=short, yticklabels=short)
        ax.tick_params(labelsize=7)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def plot_claims(ax, names: Sequence[str], by_data: dict) -> None:
    """Each claim's difference and 95 % CI for each dataset (``{label: [[point, lo, hi], ...]}``), rows offset
    per dataset, with 0 marked."""
    y = np.arange(len(names))[::-1].astype(float)
    n = len(by_data)
    for k, (label, cis) in enumerate(by_data.items()):
        yy = y + 0.5 * ((n - 1) / 2 - k) / max(n - 1, 1)
        colour = f"C{k}"
        for j, (d, lo, hi) in enumerate(cis):
            ax.plot([lo, hi], [yy[j]] * 2, color=colour, linewidth=3, solid_capstyle="butt", label=label if j == 0 else None)
            ax.plot([d], [yy[j]], "o", color="white", markeredgecolor=colour, markersize=6)
    ax.axvline(0, color="tab:red", linestyle=":")
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlabel("difference (points), 95 % CI")
    ax.legend(loc="lower right", fontsize="small")


def plot_source_confusion(axes, rows: Sequence[dict], class_names: Sequence[str]) -> None:
    """One panel per class (``axes``): each source's held-out clips as a bar split by the class they were given
    (rows of :func:`vidstudy.study.crosssource.per_source`), so a source taken for another class shows that
    class's colour."""
    axes = list(axes)
    for ax, name in zip(axes, class_names):
        mine = [r for r in rows if r["class"] == name]
        y = np.arange(len(mine))[::-1]
        left = np.zeros(len(mine))
        for k, other in enumerate(class_names):
            share = np.array([r["held-out as"][other] for r in mine])
            ax.barh(y, share, left=left, color=f"C{k}", label=other, height=0.8)
            left += share
        ax.set_yticks(y)
        ax.set_yticklabels([r["source"] for r in mine], fontsize=7)
        ax.set_xlim(0, 100)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("held-out clips given each class (%)", fontsize=8)
    axes[0].legend(loc="lower left", fontsize="x-small", bbox_to_anchor=(0, 1.04), ncol=len(class_names))


def frame_mosaic(frames: dict, title: str, cols: int = 8):
    """A figure of frames (``{label: HxWx3 uint8}``), ``cols`` to a row, each titled with its label."""
    rows = -(-len(frames) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.45 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, frame) in zip(axes.flat, frames.items()):
        ax.imshow(frame)
        ax.set_title(label, fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_accuracy_cost(axes, rows_by_data: dict[str, list[dict]], costs: dict[str, dict]) -> None:
    """Macro-F1 (with its CI) of every family against its parameters and its inference videos/s, one marker style per
    dataset: ``rows_by_data`` is ``{dataset: rows of vidstudy.study.families.compare}``, ``costs`` ``{family: ...}``."""
    for ax, key, label in zip(axes, ("parameters", "inference videos/s"), ("parameters", "inference videos/s (this machine)")):
        for (dataset, rows), marker in zip(rows_by_data.items(), "os^"):
            rows = [r for r in rows if r["system"] in costs]
            x = [costs[r["system"]][key] for r in rows]
            f1 = np.array([r["ci"]["macro_f1"] for r in rows])
            ax.errorbar(x, f1[:, 0], yerr=[f1[:, 0] - f1[:, 1], f1[:, 2] - f1[:, 0]], fmt=marker, capsize=3, label=dataset)
            for xi, yi, r in zip(x, f1[:, 0], rows):
                ax.annotate(r["system"], (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("macro-F1 (%), 95 % CI")
    axes[0].legend(fontsize="small")


def plot_timeline(ax, result, class_names: Sequence[str], segments: Sequence[dict]) -> None:
    """Each category's probability window by window (a :func:`vidstudy.classify` result with windows), over bands
    marking the true category of each joined clip (``segments``: ``{category, start_s, end_s}``)."""
    colours = dict(zip(class_names, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for s in segments:
        ax.axvspan(s["start_s"], s["end_s"], color=colours[s["category"]], alpha=0.12, lw=0)
        ax.text((s["start_s"] + s["end_s"]) / 2, 1.04, s["category"], ha="center", va="bottom", fontsize=8,
                color=colours[s["category"]])
    mids = [(w.start_s + w.end_s) / 2 for w in result.windows]
    for c in class_names:
        ax.plot(mids, [w.probabilities[c] for w in result.windows], marker="o", ms=4, color=colours[c], label=c)
    for w in result.windows:
        if not w.confident:
            ax.plot((w.start_s + w.end_s) / 2, -0.05, marker="x", color="0.3", ms=5)
    ax.set(xlim=(0, segments[-1]["end_s"]), ylim=(-0.1, 1.12), xlabel="time in the joined video (s)",
           ylabel="probability (window)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
