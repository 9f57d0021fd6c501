"""YouTube-8M's frame-level records: ``tf.train.SequenceExample`` messages, decoded without TensorFlow.

The messages are declared here at run time from TensorFlow's ``feature.proto`` and ``example.proto`` field numbers
(``Feature { bytes_list = 1; float_list = 2; int64_list = 3 }``, ``Features { map<string, Feature> feature = 1 }``,
``FeatureList { repeated Feature feature = 1 }``, ``FeatureLists { map<string, FeatureList> feature_list = 1 }``,
``SequenceExample { Features context = 1; FeatureLists feature_lists = 2 }``) and parsed by protobuf's C
implementation. A record's context holds ``id`` (bytes) and ``labels`` (int64, several per video); its feature lists
``rgb`` (one 1,024-byte string per frame) and ``audio`` (one 128-byte string per frame), uint8 at one frame a second.
:func:`decode_video` checks all of it and names the file and the record when something is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import VidstudyError
from .tfrecord import RecordError

RGB_BYTES, AUDIO_BYTES = 1024, 128
MAX_FRAMES = 300  # YouTube-8M keeps at most 300 frames (seconds) of a video
#: YouTube-8M's quantization: ``x = q * 4 / 255 + (4 / 512 - 2)``, between -2 and 2.
QUANTIZATION = {"scale": 4 / 255, "offset": 4 / 512 - 2}


@dataclass(frozen=True)
class Video:
    """One video of a frame-level record."""

    video_id: str
    labels: tuple[int, ...]  # vocabulary ids, as the record lists them
    frames: np.ndarray  # uint8 [T, 1024] (rgb) or [T, 1152] (rgb, then audio)


@lru_cache(maxsize=1)
def sequence_example_class():
    """The ``SequenceExample`` message class (declared once per process)."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        raise VidstudyError("reading YouTube-8M's records needs protobuf: pip install 'vidstudy[yt8m]'.") from None

    field = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="vidstudy_yt8m_example.proto", package="vidstudy_tf", syntax="proto3")
    for name, kind in (("BytesList", field.TYPE_BYTES), ("FloatList", field.TYPE_FLOAT), ("Int64List", field.TYPE_INT64)):
        fd.message_type.add(name=name).field.add(name="value", number=1, type=kind, label=field.LABEL_REPEATED)
    feature = fd.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, kind) in enumerate((("bytes_list", "BytesList"), ("float_list", "FloatList"),
                                           ("int64_list", "Int64List")), start=1):
        feature.field.add(name=name, number=number, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                          type_name=f".vidstudy_tf.{kind}", oneof_index=0)

    def map_message(name: str, key: str, value: str) -> None:
        message = fd.message_type.add(name=name)
        entry = message.nested_type.add(name=f"{name}Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                        type_name=f".vidstudy_tf.{value}")
        message.field.add(name=key, number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                          type_name=f".vidstudy_tf.{name}.{name}Entry")

    map_message("Features", "feature", "Feature")
    fd.message_type.add(name="FeatureList").field.add(name="feature", number=1, type=field.TYPE_MESSAGE,
                                                      label=field.LABEL_REPEATED, type_name=".vidstudy_tf.Feature")
    map_message("FeatureLists", "feature_list", "FeatureList")
    example = fd.message_type.add(name="SequenceExample")
    example.field.add(name="context", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                      type_name=".vidstudy_tf.Features")
    example.field.add(name="feature_lists", number=2, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                      type_name=".vidstudy_tf.FeatureLists")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("vidstudy_tf.SequenceExample"))


def _frames(lists, name: str, width: int, path, index: int) -> np.ndarray:
    if name not in lists.feature_list:
        raise RecordError(path, index, f"has no '{name}' feature list")
    features = lists.feature_list[name].feature
    if not features:
        raise RecordError(path, index, f"has an empty '{name}' feature list")
    values = [v for feature in features for v in feature.bytes_list.value]
    if len(values) != len(features):
        raise RecordError(path, index, f"has an '{name}' frame that is not one byte string")
    if len(features) > MAX_FRAMES:
        raise RecordError(path, index, f"has {len(features)} '{name}' frames, more than YouTube-8M's {MAX_FRAMES}")
    joined = b"".join(values)
    if len(joined) != width * len(values):  # then find the frame
        bad = next(k for k, v in enumerate(values) if len(v) != width)
        raise RecordError(path, index, f"has an '{name}' frame of {len(values[bad])} bytes (frame {bad}), expected {width}")
    return np.frombuffer(joined, np.uint8).reshape(len(values), width)


def decode_video(data: bytes, path, index: int, audio: bool = False) -> Video:
    """The video of one record's bytes; ``audio`` appends each frame's 128 audio bytes to its 1,024 rgb ones.
    Raises :class:`~vidstudy.yt8m.tfrecord.RecordError` for a record that is not a SequenceExample, has no ``id``
    or no ``labels`` (YouTube-8M's test records have none), no ``rgb`` (or ``audio``) list, an empty list, a frame
    of the wrong byte length, or rgb and audio of different lengths."""
    from google.protobuf.message import DecodeError

    try:
        message = sequence_example_class().FromString(data)
    except DecodeError:
        raise RecordError(path, index, "is not a SequenceExample") from None
    context = message.context.feature
    if "id" not in context or len(context["id"].bytes_list.value) != 1:
        raise RecordError(path, index, "has no video 'id'")
    video_id = context["id"].bytes_list.value[0].decode("utf-8", "replace")
    if "labels" not in context or context["labels"].WhichOneof("kind") != "int64_list":
        raise RecordError(path, index, f"(video {video_id}) has no 'labels' (YouTube-8M's test records are unlabelled)")
    frames = _frames(message.feature_lists, "rgb", RGB_BYTES, path, index)
    if audio:
        sound = _frames(message.feature_lists, "audio", AUDIO_BYTES, path, index)
        if len(sound) != len(frames):
            raise RecordError(path, index, f"has {len(frames)} rgb frames but {len(sound)} audio frames")
        frames = np.concatenate([frames, sound], axis=1)
    return Video(video_id, tuple(int(v) for v in context["labels"].int64_list.value), frames)
