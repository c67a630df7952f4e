"""The CRCs TFRecord frames records with: checked one record at a time and many at once."""

from __future__ import annotations

from unittest import mock

import google_crc32c
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rundoctor.readers import crc32c


def framed_rows(payloads: np.ndarray) -> np.ndarray:
    """Rows as a TFRecord frames payloads of one length: each followed by its masked crc32c."""
    count, length = payloads.shape
    table = np.empty((count, length + 4), np.uint8)
    table[:, :length] = payloads
    table[:, length:] = np.array([crc32c.masked_crc32c(row.tobytes()) for row in payloads], "<u4").view(np.uint8).reshape(-1, 4)
    return table.view(f"V{length + 4}").ravel()


def one_at_a_time(rows: np.ndarray, length: int) -> np.ndarray:
    """The reference: each row's payload CRC computed on its own and compared with its stored one."""
    table = rows.view(np.uint8).reshape(rows.size, length + 4)
    return np.array([crc32c.masked_crc32c(row[:length].tobytes()) == int(row[length:].view("<u4")[0]) for row in table])


def test_masking_round_trips() -> None:
    raw = np.array([0, 1, 0xFFFFFFFF, 0x12345678, google_crc32c.value(b"rundoctor")], np.uint32)
    assert np.array_equal(crc32c._unmask_crcs(crc32c.mask_crcs(raw)), raw)


@pytest.mark.parametrize("chunk_bytes", [1, 100, 1000, 96 << 10])
def test_intact_rows_pass_in_chunks_of_any_size(chunk_bytes: int) -> None:
    payloads = np.random.default_rng(0).integers(0, 256, (301, 45), dtype=np.uint8)
    with mock.patch.object(crc32c, "_CHUNK_BYTES", chunk_bytes):
        assert crc32c.framed_rows_intact(framed_rows(payloads), 45).all()


@settings(max_examples=80, deadline=None)
@given(
    count=st.integers(1, 120),
    length=st.integers(0, 60),
    chunk_bytes=st.sampled_from([1, 64, 500, 96 << 10]),
    damage=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 255)), max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_damaged_rows_are_found_as_one_at_a_time_finds_them(
    count: int, length: int, chunk_bytes: int, damage: list[tuple[int, int, int]], seed: int
) -> None:
    payloads = np.random.default_rng(seed).integers(0, 256, (count, length), dtype=np.uint8)
    rows = framed_rows(payloads)
    table = rows.view(np.uint8).reshape(count, length + 4)
    for row, byte, mask in damage:  # payload or stored CRC, in one row or several
        table[row % count, byte % (length + 4)] ^= mask
    with mock.patch.object(crc32c, "_CHUNK_BYTES", chunk_bytes):
        assert np.array_equal(crc32c.framed_rows_intact(rows, length), one_at_a_time(rows, length))


def test_the_same_damage_in_two_rows_of_a_chunk_does_not_cancel_out() -> None:
    payloads = np.zeros((8, 32), np.uint8)
    rows = framed_rows(payloads)
    table = rows.view(np.uint8).reshape(8, 36)
    table[2, 5] ^= 1
    table[6, 5] ^= 1  # same bytes, same error: an XOR of rows would not see it
    assert crc32c.framed_rows_intact(rows, 32).tolist() == [True, True, False, True, True, True, False, True]


def test_rows_are_read_not_changed() -> None:
    rows = framed_rows(np.random.default_rng(1).integers(0, 256, (50, 20), dtype=np.uint8))
    before = rows.copy()
    crc32c.framed_rows_intact(rows, 20)
    assert rows.tobytes() == before.tobytes()
