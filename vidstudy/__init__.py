"""vidstudy: video category classification from per-frame CNN features."""

__version__ = "0.1.0"
