"""The extraction stage: from video files to the study's feature files.

``video`` (decoding and frame sampling), ``backbone`` (the frozen frame CNN),
``extract`` (``vidstudy extract``: a folder of videos to split files) and
``democlips`` (the book's demonstration clips). The only code that needs the
``extract`` extra (PyAV and the EfficientNet-Lite0 weights); it writes through
:mod:`vidstudy.features` and knows nothing of training.
"""
