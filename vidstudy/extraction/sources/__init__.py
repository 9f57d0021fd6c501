"""The sources of ``vidstudy realclips``: ``base`` (what a source is, where its asset comes from) and one module per
class, each a tuple of :class:`Source`: ``gaming``, ``natural``, ``screens`` (Flat_Content) and ``animation``."""

from . import animation, gaming, natural, screens
from .base import DRAWN, FPS, H, Source, W, asset_path, provenance

SOURCES: tuple[Source, ...] = (*gaming.SOURCES, *natural.SOURCES, *screens.SOURCES, *animation.SOURCES)

__all__ = ["DRAWN", "FPS", "H", "SOURCES", "Source", "W", "asset_path", "provenance"]
