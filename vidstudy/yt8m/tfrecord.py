"""TFRecord files read without TensorFlow: the framing, with both CRCs checked.

A TFRecord file is a sequence of records, each ``uint64 length (little-endian) | uint32 masked CRC-32C of the
length's 8 bytes | data | uint32 masked CRC-32C of the data``, the mask being
``((crc >> 15) | (crc << 17)) + 0xa282ead8`` modulo 2**32 and the CRC the Castagnoli one (``google-crc32c``; Python's
``zlib.crc32`` is another CRC). :func:`read_records` yields each record's data, in order, and raises
:class:`RecordError` naming the file and the record's index when a record is truncated or a CRC does not match.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterator

from ..errors import VidstudyError

MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
MAX_RECORD_BYTES = 1 << 30  # a length beyond this is a damaged header, not a record to allocate


class RecordError(VidstudyError):
    """A damaged TFRecord: the file and the index of the record that cannot be read."""

    def __init__(self, path, index: int, reason: str):
        self.path, self.index, self.reason = str(path), index, reason
        super().__init__(f"{path}: record {index} {reason}.")


def _crc32c():
    try:
        import google_crc32c
    except ImportError:
        raise VidstudyError("reading TFRecords needs google-crc32c: pip install 'vidstudy[yt8m]'.") from None
    return google_crc32c.value


def masked_crc(data: bytes) -> int:
    """The masked CRC-32C that TFRecord framing stores for ``data``."""
    return _mask(_crc32c()(data))


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def read_records(path: str | os.PathLike, skip_damaged: bool = False) -> Iterator[tuple[int, bytes | RecordError]]:
    """``(index, data)`` of every record of the TFRecord file ``path``, in order. Raises :class:`RecordError` for a
    truncated record or a length or data CRC that does not match, and ``OSError`` when the file cannot be read. With
    ``skip_damaged``, a record whose data CRC does not match is yielded as ``(index, RecordError)`` and the file goes
    on (its framing still finds the next record); a damaged length or a truncation still ends it with the error."""
    crc = _crc32c()
    path = Path(path)
    with open(path, "rb") as f:
        index = 0
        while True:
            header = f.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise RecordError(path, index, f"is truncated (its header has {len(header)} of {_HEADER.size} bytes)")
            length, length_crc = _HEADER.unpack(header)
            if _mask(crc(header[:8])) != length_crc:
                raise RecordError(path, index, "has a damaged length (its CRC does not match)")
            if length > MAX_RECORD_BYTES:
                raise RecordError(path, index, f"claims {length} bytes, more than a record holds")
            data = f.read(length)
            footer = f.read(_FOOTER.size)
            if len(data) < length or len(footer) < _FOOTER.size:
                raise RecordError(path, index, f"is truncated ({len(data)} of its {length} bytes)")
            if _mask(crc(data)) != _FOOTER.unpack(footer)[0]:
                error = RecordError(path, index, "is damaged (its data CRC does not match)")
                if not skip_damaged:
                    raise error
                data = error
            yield index, data
            index += 1

