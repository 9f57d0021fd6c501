"""The inference stage: a trained run applied to a user's video files.

``deployed`` (a run as a classifier: its members, the combination its evaluation fitted on validation, and the
backbone and settings that make its features), ``classify`` (``vidstudy classify``: videos, folders and lists in,
one result per video, with a timeline of windows) and ``output`` (the terminal table, JSON Lines and CSV). It
decodes and embeds through :mod:`vidstudy.extraction` and writes only the results files it is given.
"""
