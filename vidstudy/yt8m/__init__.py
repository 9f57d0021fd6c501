"""YouTube-8M in: the dataset's frame-level TFRecords to the study's feature files (the ``yt8m`` extra).

``tfrecord`` (the TFRecord framing, both CRC-32Cs checked), ``example`` (the frame-level ``SequenceExample``
records, decoded without TensorFlow), ``vocabulary`` (which vocabulary labels make the study's four classes, the
multi-label rule) and ``importer`` (``vidstudy import-yt8m``: splits, parts, resume, reuse, the report). The
mappings shipped for the 2018 and 2017 vocabularies are ``mappings/yt8m-2018.json`` and ``mappings/yt8m-2017.json``.
"""
