"""crc32c as TFRecord uses it: masked, one message at a time, and vectorised over many
messages that differ at a few known bytes.

One message at a time is ``google_crc32c`` (the C crc32c, with wheels for every platform;
a pure-Python CRC costs ~0.13 s per MB).  Many messages of one length that differ only at
a few bytes (the records of one template, the 8-byte lengths of candidate headers) are
checked at once: a CRC is affine in the message bits, so the CRC of such a message is the
CRC of the template with those bytes zeroed, XOR one table lookup per variable byte
(:func:`crc32c_with_variable_bytes`).  Many messages of one length whose every byte varies
(histogram records) are checked a hundred kilobytes at a time (:func:`framed_rows_intact`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import google_crc32c
import numpy as np

_MASK_DELTA = 0xA282EAD8  # TFRecord's CRC masking constant
_CRC32C_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def crc32c_of(data: bytes) -> int:
    """The plain crc32c of ``data``."""
    return int(google_crc32c.value(data))


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked crc32c of ``data``."""
    crc = crc32c_of(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def mask_crcs(crcs: np.ndarray) -> np.ndarray:
    """TFRecord's masking of an array of raw crc32c values (uint32 arithmetic wraps)."""
    crcs = crcs.astype(np.uint32, copy=False)
    masked: np.ndarray = ((crcs >> np.uint32(15)) | (crcs << np.uint32(17))) + np.uint32(_MASK_DELTA)
    return masked


@lru_cache(maxsize=1)
def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_CRC32C_POLY), table >> 1).astype(np.uint32)
    return table


_BYTE_TABLES: list[np.ndarray] = []  # [d][b]: linear crc32c contribution of byte b followed by d bytes


def _byte_table(distance: int) -> np.ndarray:
    if not _BYTE_TABLES:
        _BYTE_TABLES.append(_crc_table())
    table = _BYTE_TABLES[0]
    while len(_BYTE_TABLES) <= distance:
        last = _BYTE_TABLES[-1]
        _BYTE_TABLES.append(table[last & np.uint32(0xFF)] ^ (last >> np.uint32(8)))
    return _BYTE_TABLES[distance]


def crc32c_with_variable_bytes(
    zeroed_crc: np.ndarray, length: int, columns: Sequence[tuple[int, np.ndarray]]
) -> np.ndarray:
    """Raw crc32c of records of ``length`` bytes that share every byte except some columns.

    ``zeroed_crc`` holds, for each record, the crc32c of its template with the variable
    bytes set to zero; ``columns`` holds ``(position, uint8 values)`` for each variable
    byte.  The CRC is affine in the message bits, so XORing in each variable byte's
    contribution at its distance from the end gives the record's CRC (one lookup in a
    1 KB table per byte: ~40 ms for 2M records of 16 variable bytes, measured faster than
    64K-entry tables for byte pairs).
    """
    crc = np.array(zeroed_crc, dtype=np.uint32)
    for position, values in columns:
        np.bitwise_xor(crc, _byte_table(length - position - 1).take(values), out=crc)
    return crc


def _unmask_crcs(masked: np.ndarray) -> np.ndarray:
    """The raw crc32c values of TFRecord-masked ones (the inverse of :func:`mask_crcs`)."""
    rotated = masked.astype(np.uint32, copy=False) - np.uint32(_MASK_DELTA)
    raw: np.ndarray = (rotated >> np.uint32(17)) | (rotated << np.uint32(15))
    return raw


# Rows checked at a time: a chunk's bytes object, which google_crc32c needs (it takes no
# other buffer), stays under glibc's 128 KB mmap threshold and so is recycled from the
# heap; larger chunks each map fresh pages, and the page faults cost more than the CRC.
_CHUNK_BYTES = 96 << 10


@lru_cache(maxsize=64)
def _intact_chunk_crc(length: int, rows: int) -> int:
    """The crc32c of ``rows`` intact rows of ``length`` payload bytes, each followed by its
    raw crc32c: the same for any payloads (see :func:`framed_rows_intact`)."""
    payload = bytes(length)
    row = payload + int(google_crc32c.value(payload)).to_bytes(4, "little")
    return int(google_crc32c.value(row * rows))


def framed_rows_intact(rows: np.ndarray, length: int) -> np.ndarray:
    """Whether each row (a payload of ``length`` bytes and its masked crc32c, as a TFRecord
    frames it) is intact, at close to the speed of one C call over all of them.

    A payload followed by its own raw crc32c always has the same crc32c, and a CRC carries
    through a concatenation affinely (``crc(a + b)`` is ``crc(a)`` shifted by ``len(b)``,
    XOR ``crc(b)``), so rows of one length, each with its CRC unmasked, have together a CRC
    that depends only on how many there are.  Chunks of rows are checked that way, with
    the detection power of one CRC over the chunk (damage in any row, or in several, changes
    it but for a 2**-32 chance); only a chunk that fails is checked a row at a time, to
    find which.  One call per row instead (google_crc32c has no batch call) costs three
    times as much on 100,000 histogram records of 800 bytes.
    """
    row_bytes = length + 4
    table = np.ascontiguousarray(rows).view(np.uint8).reshape(-1, row_bytes)
    count = table.shape[0]
    intact = np.ones(count, bool)
    per_chunk = max(1, _CHUNK_BYTES // row_bytes)
    scratch = np.empty((min(per_chunk, count), row_bytes), np.uint8)
    stored = scratch[:, length:].view("<u4")[:, 0]
    for start in range(0, count, per_chunk):
        size = min(per_chunk, count - start)
        scratch[:size] = table[start : start + size]
        stored[:size] = _unmask_crcs(stored[:size])
        if int(google_crc32c.value(scratch[:size].tobytes())) != _intact_chunk_crc(length, size):
            chunk = table[start : start + size]
            crcs = np.fromiter((google_crc32c.value(row[:length].tobytes()) for row in chunk), np.uint32, size)
            intact[start : start + size] = mask_crcs(crcs) == chunk[:, length:].copy().view("<u4")[:, 0]
    return intact
