"""vidstudy: video category classification from per-frame CNN features.

The flat core, which every stage shares (dependencies point down this list's groups):

- ``errors`` (the errors a user can cause), ``atomic`` (atomic writes, strict JSON reads), ``fingerprint``
  (the identity of an artifact's inputs), ``executor`` (jobs here or on a Ray cluster), ``device`` (where
  networks run), ``profiling`` (the costly steps timed by phase);
- ``models`` (the registry of model families), ``config`` (run configuration as data), ``features`` (the HDF5 files),
  ``multiscale`` (the time-aligned scales), ``simulate`` (the default data), ``data`` (datasets, padding,
  augmentation), ``sampling`` (class weights, samplers), ``feeding`` (batches to a device), ``losses`` (focal
  loss), ``probe`` (the logistic-regression floor);
- ``checkpoint`` (a member's checkpoints), ``runs`` (a run folder's layout), ``train`` (a member's loop and the
  ensemble), ``tta`` (test-time views), ``predictions`` (the predictions store);
- ``ensemble``, ``stacking``, ``calibration``, ``metrics`` (combining saved probabilities, tables, CIs),
  ``evaluate`` (``vidstudy evaluate``), ``results`` (``results.json``'s schema), ``viz`` (figures);
- ``cli`` (the ``vidstudy`` command).

The stages: ``extraction`` (videos to feature files), ``yt8m`` (YouTube-8M's TFRecords to feature files:
``vidstudy import-yt8m``), ``inference`` (a trained run applied to video files: ``vidstudy classify``, also
``vidstudy.classify``) and ``study`` (what the book's chapters need).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``vidstudy.classify``: :func:`vidstudy.inference.classify.classify`, imported when first used."""
    if name == "classify":
        from .inference.classify import classify

        return classify
    raise AttributeError(f"module 'vidstudy' has no attribute {name!r}")
