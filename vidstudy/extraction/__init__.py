"""The extraction stage: from video files to the study's feature files.

``video`` (decoding and frame sampling), ``backbone`` (the frozen frame CNN),
``extract`` (``vidstudy extract``: a folder of videos to split files, through an executor),
``democlips`` (the book's demonstration clips), ``realclips`` (``vidstudy realclips``: real frames in the four
classes, source-disjoint splits) and ``sources`` (what ``realclips`` renders: one asset and its renderer per source).
The only code that needs the ``extract`` extra (PyAV and the
EfficientNet-Lite0 weights; ``realclips`` also its own extra); it writes through
:mod:`vidstudy.features` and knows nothing of training.
"""
