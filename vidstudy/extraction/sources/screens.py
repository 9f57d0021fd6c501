"""Flat_Content sources: screen recordings of real documents, code and data that the installed packages ship (a
scanned page, data set descriptions, source code, CSV tables, stock prices, an EEG recording, handwritten digits),
each shown by the kind of program that shows it: a reader, a browser, slides, an editor, a spreadsheet, a chart,
a monitor, a terminal, a labelling tool."""

from __future__ import annotations

import ast
import codecs
import gzip
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from ..democlips import default_font
from .base import H, Source, W, asset_image, asset_path, asset_text

SKL = "BSD-3-Clause"
PSF = "PSF-2.0"
MPL = "matplotlib licence"


def _rgb(*v) -> tuple[int, int, int]:
    return tuple(int(x) for x in v)


@lru_cache(maxsize=None)
def text_lines(package: str, asset: str) -> tuple[str, ...]:
    if asset.endswith("this.py"):  # the Zen of Python, as the module stores it (ROT13)
        tree = ast.parse(asset_text(package, asset))
        text = next(n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "s")
        return tuple(codecs.decode(text, "rot13").splitlines())
    if asset.endswith(".gz"):
        with gzip.open(asset_path(package, asset), "rt") as f:
            return tuple(f.read().splitlines())
    return tuple(line.expandtabs(4) for line in asset_text(package, asset).splitlines())


def _table(package: str, asset: str) -> list[list[str]]:
    rows = [line.replace(",", " ").split() for line in text_lines(package, asset) if line and not line.startswith("#")]
    return [r for r in rows if r]


def document(package: str, asset: str, theme: str) -> Callable:
    """A text document scrolled at a steady speed: a white page on a grey desktop (``paper``), a sepia reader
    (``sepia``) or a web page in a browser window with an address bar (``browser``). Underlined reST titles become
    headings."""
    page, ink, back = {"paper": ((255, 255, 255), (30, 30, 30), (90, 90, 96)),
                       "sepia": ((244, 236, 216), (70, 50, 30), (60, 50, 40)),
                       "browser": ((255, 255, 255), (20, 20, 20), (230, 230, 235))}[theme]

    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        lines = [line for line in text_lines(package, asset) if not set(line.strip()) <= set("-=~^*")] or [""]
        titles = {i for i, line in enumerate(text_lines(package, asset)[1:]) if line[:3] in ("---", "===", "~~~")}
        first, speed = int(rng.integers(0, max(1, len(lines) - 10))), rng.uniform(0.15, 0.6)
        body, head = default_font(8), default_font(11)
        frames = []
        for t in range(n):
            img = Image.new("RGB", (W, H), back)
            d = ImageDraw.Draw(img)
            top = 14 if theme == "browser" else 4
            if theme == "browser":
                d.rectangle((0, 0, W, 13), fill=(210, 210, 216))
                d.rounded_rectangle((20, 2, W - 6, 11), 3, fill="white")
                d.text((24, 2), f"file://{asset.split('/')[-1]}", font=default_font(7), fill=(60, 60, 60))
            x0 = 4 if theme == "browser" else 14
            d.rectangle((x0, top, W - x0, H), fill=page)
            pos = first + speed * t
            for row in range(12):
                k = int(pos) + row
                if k >= len(lines):
                    break
                text = lines[k].strip(" *:")
                is_title = (k + 1) in titles or lines[k].startswith(".. _")
                colour = (20, 60, 170) if theme == "browser" and ("http" in text or "`" in text) else ink
                d.text((x0 + 4, top + 2 + 9 * row - 9 * (pos % 1)), text[:40],
                       font=head if is_title else body, fill=colour)
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def scanned_page(package: str, asset: str) -> Callable:
    """A scanned page in a document viewer: a toolbar, the page zoomed and scrolled, now and then zoomed again."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        page = Image.fromarray(asset_image(package, asset))
        frames, zoom, y = [], rng.uniform(1.0, 1.6), rng.uniform(0, 0.5)
        for t in range(n):
            if rng.random() < 0.03:
                zoom = rng.uniform(1.0, 1.6)
            y = (y + 0.004) % 0.6
            pw = int(W * zoom)
            scaled = page.resize((pw, int(page.height * pw / page.width)), Image.BILINEAR)
            img = Image.new("RGB", (W, H), (80, 80, 84))
            img.paste(scaled, ((W - pw) // 2, 12 - int(y * scaled.height)))
            d = ImageDraw.Draw(img)
            d.rectangle((0, 0, W, 10), fill=(45, 45, 50))
            d.text((4, 1), f"page.png  {int(100 * zoom)} %", font=default_font(7), fill=(220, 220, 220))
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def slides(package: str, asset: str) -> Callable:
    """Slides made from a real document's paragraphs: a title bar and the lines as bullets, a hard cut every 1 to
    3 s."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        lines = [line.strip(" *:-") for line in text_lines(package, asset) if len(line.strip(" *:-=")) > 3]
        frames, k, until = [], int(rng.integers(len(lines))), 0
        colour = _rgb(*rng.integers(20, 120, 3))
        for t in range(n):
            if t >= until:
                k, until = (k + 5) % len(lines), t + int(rng.integers(12, 36))
            img = Image.new("RGB", (W, H), "white")
            d = ImageDraw.Draw(img)
            d.rectangle((0, 0, W, 24), fill=colour)
            d.text((6, 5), lines[k][:26], font=default_font(12), fill="white")
            for row in range(1, 5):
                d.ellipse((8, 32 + 20 * row - 18, 12, 36 + 20 * row - 18), fill=colour)
                d.text((16, 28 + 20 * row - 18), lines[(k + row) % len(lines)][:30], font=default_font(8), fill=(30, 30, 30))
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def editor(package: str, asset: str, theme: str) -> Callable:
    """A code editor scrolling through real source code, with line numbers and a little syntax colouring."""
    back, gutter, plain, keyword, comment = {
        "dark": ((30, 30, 36), (40, 40, 48), (220, 220, 210), (200, 120, 220), (120, 190, 120)),
        "light": ((252, 252, 250), (235, 235, 235), (30, 30, 30), (0, 0, 200), (0, 128, 0)),
        "solarized": ((0, 43, 54), (7, 54, 66), (131, 148, 150), (181, 137, 0), (88, 110, 117))}[theme]
    keywords = ("def ", "class ", "return", "if ", "for ", "import ", "from ", "#define", "typedef", "struct", "#if",
                "static", "while ")

    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        lines = text_lines(package, asset)
        first, speed = int(rng.integers(0, max(1, len(lines) - 40))), rng.uniform(0.2, 1.2)  # lines per frame
        font = default_font(9)
        frames = []
        for t in range(n):
            top = first + int(speed * t)
            img = Image.new("RGB", (W, H), back)
            d = ImageDraw.Draw(img)
            d.rectangle((0, 0, 18, H), fill=gutter)
            for row in range(12):
                k = (top + row) % len(lines)
                text = lines[k][:34]
                s = text.strip()
                colour = comment if s.startswith(("#", "//", "/*", "*")) and not s.startswith(keywords) else (
                    keyword if s.startswith(keywords) else plain)
                d.text((1, 2 + 10 * row), f"{k + 1:3d}", font=font, fill=(110, 110, 120))
                d.text((22, 2 + 10 * row), text, font=font, fill=colour)
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def spreadsheet(package: str, asset: str) -> Callable:
    """A spreadsheet of a real table: a header row, the rows scrolled, a cursor moving from cell to cell."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        table = _table(package, asset)[1:]
        cols, rows = min(5, len(table[0])), 10
        c0 = int(rng.integers(0, max(1, len(table[0]) - cols + 1)))
        first = int(rng.integers(0, max(1, len(table) - rows)))
        font = default_font(8)
        frames, cursor = [], [1, 1]
        for t in range(n):
            if t % 3 == 0:
                cursor = [int(np.clip(cursor[0] + rng.integers(-1, 2), 1, rows)),
                          int(np.clip(cursor[1] + rng.integers(-1, 2), 0, cols - 1))]
            if cursor[0] == rows:
                first = (first + 1) % max(1, len(table) - rows)
            img = Image.new("RGB", (W, H), "white")
            d = ImageDraw.Draw(img)
            cw, rh = (W - 14) // cols, H // (rows + 1)
            d.rectangle((0, 0, W, rh), fill=(220, 230, 240))
            d.rectangle((0, 0, 13, H), fill=(220, 230, 240))
            for r in range(rows + 1):
                d.text((1, r * rh + 1), "" if r == 0 else str(first + r), font=default_font(6), fill=(60, 60, 60))
                for c in range(cols):
                    box = (14 + c * cw, r * rh, 14 + c * cw + cw - 1, r * rh + rh - 1)
                    d.rectangle(box, outline=(30, 120, 30) if [r, c] == cursor else (200, 200, 200),
                                width=2 if [r, c] == cursor else 1)
                    row = table[(first + r - 1) % len(table)]
                    text = "ABCDEFGH"[c] if r == 0 else row[(c0 + c) % len(row)]
                    d.text((box[0] + 2, box[1] + 1), text[:7], font=font, fill=(20, 20, 20))
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


@lru_cache(maxsize=None)
def _series(package: str, asset: str, column: int) -> np.ndarray:
    values = []
    for row in text_lines(package, asset)[1:]:
        parts = row.split(",")
        try:
            values.append(float(parts[column]))
        except (ValueError, IndexError):
            continue
    return np.asarray(values[::-1] if "msft" in asset else values)  # msft.csv lists the newest day first


def chart(package: str, asset: str, columns: tuple[int, ...], theme: str) -> Callable:
    """Price charts of real stock series drawn as the window moves along the dates, with axes and grid lines."""
    back, grid, palette = {"light": ((255, 255, 255), (225, 225, 225), ((31, 119, 180), (255, 127, 14), (44, 160, 44))),
                           "dark": ((18, 22, 30), (45, 50, 60), ((0, 200, 120), (240, 80, 80), (240, 200, 0)))}[theme]

    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        series = [_series(package, asset, c) for c in columns]
        length = min(len(s) for s in series)
        span = int(rng.integers(length // 4, length // 2))
        start, speed = int(rng.integers(0, length - span)), rng.uniform(0.2, 1.0)  # days per frame, wrapping round
        frames = []
        for t in range(n):
            img = Image.new("RGB", (W, H), back)
            d = ImageDraw.Draw(img)
            for k in range(5):
                d.line((20, 10 + 24 * k, W - 4, 10 + 24 * k), fill=grid)
            first = int(start + speed * t) % (length - span)
            for s, colour in zip(series, palette):
                w = s[first:first + span]
                w = w[np.isfinite(w)]
                if len(w) < 2:
                    continue
                lo, hi = w.min(), max(w.max(), w.min() + 1e-6)
                pts = [(20 + (W - 24) * i / (len(w) - 1), 106 - 96 * (v - lo) / (hi - lo)) for i, v in enumerate(w)]
                d.line(pts, fill=colour, width=1)
                d.text((W - 40, 2), f"{w[-1]:.2f}", font=default_font(7), fill=colour)
            d.line((20, 10, 20, 108, W - 4, 108), fill=(128, 128, 128))
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def monitor(package: str, asset: str) -> Callable:
    """A recording monitor: the channels of a real EEG recording sweeping across a dark screen."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        data = np.fromfile(asset_path(package, asset), dtype=float).reshape(-1, 4)
        data = (data - data.mean(0)) / (data.std(0) + 1e-9)
        start, speed = int(rng.integers(0, len(data))), int(rng.integers(2, 6))
        frames = []
        for t in range(n):
            img = Image.new("RGB", (W, H), (0, 10, 0))
            d = ImageDraw.Draw(img)
            idx = (start + speed * t + np.arange(W - 20)) % len(data)
            for ch in range(4):
                y0 = 18 + 28 * ch
                d.text((1, y0 - 5), f"C{ch + 1}", font=default_font(7), fill=(120, 200, 120))
                d.line([(20 + i, y0 - 6 * v) for i, v in enumerate(data[idx, ch])], fill=(60, 240, 90))
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def terminal(package: str, asset: str, command: str) -> Callable:
    """A terminal: a command typed, then a real file's lines printed and scrolling up, monospace-looking text on
    black."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        text = list(text_lines(package, asset))
        font = default_font(8)
        k, shown, frames = int(rng.integers(0, len(text))), [f"$ {command}"], []
        for t in range(n):
            if rng.random() < 0.6:
                shown.append(text[k % len(text)])
                k += 1
            img = Image.new("RGB", (W, H), (5, 5, 5))
            d = ImageDraw.Draw(img)
            for row, line in enumerate(shown[-12:]):
                d.text((3, 2 + 9 * row), line[:36], font=font, fill=(90, 230, 90) if line.startswith("$") else (210, 210, 210))
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def gallery(package: str, asset: str) -> Callable:
    """A labelling tool over real handwritten digits: a grid of images with their labels, a selection moving and
    the grid paging on."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        table = np.array([[float(v) for v in row] for row in _table(package, asset)])
        images, labels = (table[:, :64].reshape(-1, 8, 8) * 16).clip(0, 255).astype(np.uint8), table[:, 64].astype(int)
        first, frames, sel = int(rng.integers(0, len(images) - 24)), [], 0
        for t in range(n):
            if t % 4 == 0:
                sel = (sel + 1) % 18
            if t % 36 == 35:
                first = (first + 18) % (len(images) - 24)
            img = Image.new("RGB", (W, H), (240, 240, 244))
            d = ImageDraw.Draw(img)
            d.rectangle((0, 0, W, 10), fill=(60, 90, 160))
            d.text((3, 1), f"digits  {first + sel + 1}/{len(images)}", font=default_font(7), fill="white")
            for j in range(18):
                x, y = 6 + 26 * (j % 6), 14 + 35 * (j // 6)
                tile = Image.fromarray(255 - images[first + j]).resize((22, 22), Image.NEAREST).convert("RGB")
                img.paste(tile, (x, y))
                d.rectangle((x - 1, y - 1, x + 22, y + 22), outline=(230, 120, 0) if j == sel else (180, 180, 180))
                d.text((x + 8, y + 23), str(labels[first + j]), font=default_font(7), fill=(20, 20, 20))
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def _source(name, sub, why, renderer, package, asset, licence, render) -> Source:
    return Source(name, "Flat_Content", sub, 7, render, why, renderer, package, asset, licence)


DESCR = "sklearn/datasets/descr"
DATA = "sklearn/datasets/data"
SAMPLE = "matplotlib/mpl-data/sample_data"
SOURCES = (
    _source("screen:scanned_page", "documents", "a scanned page in a document viewer", "viewer", "scikit-image",
            "skimage/data/page.png", "no known restrictions",
            scanned_page("scikit-image", "skimage/data/page.png")),
    _source("doc:iris", "documents", "a data set's description scrolled on a page", "document", "scikit-learn",
            f"{DESCR}/iris.rst", SKL, document("scikit-learn", f"{DESCR}/iris.rst", "paper")),
    _source("doc:diabetes", "documents", "a data set's description in a sepia reader", "document", "scikit-learn",
            f"{DESCR}/diabetes.rst", SKL, document("scikit-learn", f"{DESCR}/diabetes.rst", "sepia")),
    _source("web:linnerud", "web_pages", "a web page in a browser", "document", "scikit-learn", f"{DESCR}/linnerud.rst",
            SKL, document("scikit-learn", f"{DESCR}/linnerud.rst", "browser")),
    _source("slides:wine", "presentations", "slides of a data set's description", "slides", "scikit-learn",
            f"{DESCR}/wine_data.rst", SKL, slides("scikit-learn", f"{DESCR}/wine_data.rst")),
    _source("code:json_encoder", "code", "Python source in a dark editor", "editor", "python", "json/encoder.py", PSF,
            editor("python", "json/encoder.py", "dark")),
    _source("code:textwrap", "code", "Python source in a light editor", "editor", "python", "textwrap.py", PSF,
            editor("python", "textwrap.py", "light")),
    _source("code:ndarraytypes", "code", "a C header in an editor", "editor", "numpy",
            "numpy/_core/include/numpy/ndarraytypes.h", "BSD-3-Clause",
            editor("numpy", "numpy/_core/include/numpy/ndarraytypes.h", "solarized")),
    _source("sheet:iris", "spreadsheets", "a data table in a spreadsheet", "spreadsheet", "scikit-learn",
            f"{DATA}/iris.csv", SKL, spreadsheet("scikit-learn", f"{DATA}/iris.csv")),
    _source("sheet:wine", "spreadsheets", "a data table in a spreadsheet", "spreadsheet", "scikit-learn",
            f"{DATA}/wine_data.csv", SKL, spreadsheet("scikit-learn", f"{DATA}/wine_data.csv")),
    _source("sheet:diabetes", "spreadsheets", "a data table in a spreadsheet", "spreadsheet", "scikit-learn",
            f"{DATA}/diabetes_data_raw.csv.gz", SKL, spreadsheet("scikit-learn", f"{DATA}/diabetes_data_raw.csv.gz")),
    _source("chart:msft", "charts", "a stock chart on a dark trading screen", "chart", "matplotlib",
            f"{SAMPLE}/msft.csv", MPL, chart("matplotlib", f"{SAMPLE}/msft.csv", (4,), "dark")),
    _source("chart:stocks", "charts", "three stock prices on one chart", "chart", "matplotlib", f"{SAMPLE}/Stocks.csv",
            MPL, chart("matplotlib", f"{SAMPLE}/Stocks.csv", (1, 3, 9), "light")),
    _source("monitor:eeg", "charts", "an EEG recording on a monitor", "monitor", "matplotlib", f"{SAMPLE}/eeg.dat", MPL,
            monitor("matplotlib", f"{SAMPLE}/eeg.dat")),
    _source("terminal:zen", "terminals", "a terminal printing the Zen of Python", "terminal", "python", "this.py", PSF,
            terminal("python", "this.py", "python -m this")),
    _source("terminal:breast_cancer", "terminals", "a terminal printing a CSV file", "terminal", "scikit-learn",
            f"{DATA}/breast_cancer.csv", SKL, terminal("scikit-learn", f"{DATA}/breast_cancer.csv", "cat breast_cancer.csv")),
    _source("tool:digits", "tools", "a labelling tool over handwritten digits", "gallery", "scikit-learn",
            f"{DATA}/digits.csv.gz", SKL, gallery("scikit-learn", f"{DATA}/digits.csv.gz")),
)
