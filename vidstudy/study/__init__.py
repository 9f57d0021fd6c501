"""What the book's chapters need: the book runner and the study built on the package's stages.

``book`` (``vidstudy book``), ``chapter`` (a chapter's data folder, config and run
folder), ``report`` (the tables), ``anomaly`` (the Animation analysis),
``experiments`` (the improvement experiments) and ``recipes`` (the recipe study).
It reads runs and predictions stores through the flat core; nothing in the core
imports it.
"""
