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

from .runs import atomic_path


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


def plot_frame_heatmap(ax, frames: np.ndarray, title: str, max_dims: int = 64) -> None:
    """Frame features of one video (time x the first ``max_dims`` dimensions)."""
    im = ax.imshow(frames[:, :max_dims].T, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("time step")
    ax.set_ylabel("feature dimension")
    ax.set_title(title)
    plt.colorbar(im, ax=ax, fraction=0.046)


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
