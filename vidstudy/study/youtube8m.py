"""What the YouTube-8M chapter (and ``benchmarks/import_throughput.py``) needs: frame-level shards in YouTube-8M's
format, generated here, and the shipped mappings as a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Label sets the generated videos carry (2018 vocabulary): one class each, two classes, and none of them.
LABEL_SETS = ([16], [308], [1], [363], [5, 16], [640, 997], [0, 27], [289, 2211], [16, 1], [42])
#: The size of YouTube-8M's frame-level release: videos, and the frames a video has at most (one a second).
YT8M_VIDEOS, YT8M_MAX_FRAMES = 6_100_000, 300


def write_shards(folder: Path, files: int, videos: int, seed: int = 0, min_frames: int = 120,
                 max_frames: int = 300) -> list[Path]:
    """``files`` TFRecord files (``train*`` and ``validate*`` in turn) of ``videos`` frame-level records each:
    ``min_frames`` to ``max_frames`` frames (uniform), random uint8 rgb and audio, label sets from
    :data:`LABEL_SETS`. Written with protobuf and the TFRecord framing, as YouTube-8M's are."""
    from ..yt8m.example import AUDIO_BYTES, RGB_BYTES, sequence_example_class
    from ..yt8m.tfrecord import masked_crc

    rng, message = np.random.default_rng(seed), sequence_example_class()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(files):
        path = folder / (f"train{k:04d}.tfrecord" if k % 2 == 0 else f"validate{k:04d}.tfrecord")
        with open(path, "wb") as f:
            for v in range(videos):
                ex = message()
                ex.context.feature["id"].bytes_list.value.append(f"g{k:03d}{v:05d}".encode())
                ex.context.feature["labels"].int64_list.value.extend(LABEL_SETS[int(rng.integers(len(LABEL_SETS)))])
                n = int(rng.integers(min_frames, max_frames + 1))
                for name, width in (("rgb", RGB_BYTES), ("audio", AUDIO_BYTES)):
                    frames = ex.feature_lists.feature_list[name].feature
                    for row in rng.integers(0, 256, (n, width), dtype=np.uint8):
                        frames.add().bytes_list.value.append(row.tobytes())
                data = ex.SerializeToString()
                length = len(data).to_bytes(8, "little")
                f.write(length + masked_crc(length).to_bytes(4, "little") + data + masked_crc(data).to_bytes(4, "little"))
        paths.append(path)
    return paths


def mapping_table():
    """The shipped mappings, one row per class: the labels of each vocabulary version that make it."""
    import pandas as pd

    from ..yt8m.vocabulary import VERSIONS, load_mapping

    maps = {v: load_mapping(v) for v in VERSIONS}
    return pd.DataFrame([{"class": c, **{f"{v} vocabulary": ", ".join(f"{name} ({i})" for i, name in m.classes[c])
                                         for v, m in maps.items()}} for c in maps["2018"].classes])
