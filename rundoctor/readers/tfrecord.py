"""TFRecord framing: where the records of an event file are, and which ones are damaged.

A TFRecord file is a sequence of ``[u64 length][u32 masked crc32c of the length][payload]
[u32 masked crc32c of the payload]``, little-endian.

Finding the records is inherently sequential: each length says where the next header is.
A Python loop over ``struct.unpack_from`` costs about 0.19 us a record (0.38 s for the 2M
records of the benchmark run on a 2-core machine), more than everything else the reader
does.  Writers log the same tags in the same order at every step, so record lengths repeat
with a short period: :func:`find_records` walks with the loop only until the last lengths
repeat, then predicts a whole block of following records (cumulative sum of the repeated
lengths) and verifies every predicted header at once with two vectorised gathers, growing
the block 4x while predictions hold and falling back to the loop at the first record that
does not fit (the 2M-record walk: ~50 ms instead of ~0.4 s).  Every header's length checksum
is verified either way: a predicted header must equal, byte for byte, a header whose
checksum the loop verified.

A file is walked one window of its bytes at a time (:class:`RecordWalker`): a record cut
by the window's end, or a corruption whose end the window does not hold, is left for the
next window, and only the file's end makes a record truncated.

After damage (a header whose length checksum fails, or a record whose payload checksum
failed when it was decoded), the walk does not trust the damaged record's length: it scans
forward for the next offset where a whole record verifies, both checksums, so that records
inside a span the damaged length claims are still read.  A verified length that runs past
the file's end is the usual sign of a writer cut short, but also what a record that lost
bytes in the middle of the file looks like: the walk scans its span the same way, and only
when no intact record lies in it is the record reported as truncated.  Payload checksums are the
decoder's to verify (it does so cheaply, vectorised), so the walk learns of a bad payload
from it: :meth:`RecordWalker.mark_bad_payloads`, and the window is walked again.

Garbage (zeros, random bytes) between records is skipped at close to memory speed
(:func:`valid_headers`), no header claims more than :data:`MAX_RECORD_BYTES`, and a file
made to be slow (headers that verify over payloads that do not, nested so that each walk
finds one more) costs a bounded number of walks and checksum bytes.  Payload checksums are
computed with ``google_crc32c`` one record at a time (:func:`payload_crc_ok`), or
vectorised (:mod:`rundoctor.readers.crc32c`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rundoctor.readers.crc32c import crc32c_of, crc32c_with_variable_bytes, mask_crcs, masked_crc32c
from rundoctor.series import NoteKind

FileData = bytes | memoryview  # a file's bytes, or a window of them

HEADER_BYTES = 12  # u64 length + u32 masked crc of the length
FOOTER_BYTES = 4  # u32 masked crc of the payload
FRAMING_BYTES = HEADER_BYTES + FOOTER_BYTES

# Period detection and block prediction in the record walk.  A period above 256 would be a
# writer logging more than 256 values per step, one per record; such files are still read,
# only by the loop.  Blocks grow 4x while predictions hold, up to 128k records (1 MB of
# offsets), and the loop walks a growing number of records between failed predictions so
# that files without a period cost little more than the plain loop (+10-25% measured on
# 200k records of random lengths).
_MAX_PERIOD = 256
_FIRST_BLOCK = 64
_MAX_BLOCK = 1 << 17
_MAX_BACKOFF = 256
# Resynchronising scans candidate offsets in numpy passes that start small (the next record
# is usually close to the damage) and grow 4x up to 1M candidates.
_FIRST_SCAN = 1 << 12
_MAX_SCAN = 1 << 20
# Above one zero 16-bit word in 64 bytes, candidate headers are found with byte masks
# rather than gathered word by word (see _plausible; the faster way at that density).
_DENSE_ZERO_WORDS = 64
# The longest record a file may hold.  An event is a few bytes (a scalar) to a few MB (an
# image, a graph); a header that claims more is treated as damage, so that no claimed length
# is ever allocated (the window grows to hold a whole record) and a length's upper 36 bits
# must be zero, which rules out all but one offset in 2^36 of random bytes before any
# checksum is computed (the scan relies on it: keep it under 2^32).
MAX_RECORD_BYTES = 1 << 28
# Payload checksums that fail while resynchronising may cost this much, plus twice the bytes
# of the file walked so far, before the search for the next record is abandoned.  Damage
# fails at most the checksums of the records it hit, each over its own bytes (less than the
# file); only a file of overlapping headers that verify, each claiming a long payload that
# does not, makes the search check the same bytes again and again (quadratic time).
_FAILED_PAYLOAD_FLOOR = 64 << 20
_LENGTH_MISMATCH = "record length checksum mismatch"
_PAYLOAD_MISMATCH = "payload checksum mismatch"


def unaligned(buffer: FileData | np.ndarray, dtype: str, *, offset: int = 0, stride: int = 1) -> np.ndarray:
    """A read-only view of ``buffer`` holding a ``dtype`` value at every ``stride`` bytes from
    ``offset``, aligned or not: fancy indexing it gathers fields at arbitrary byte offsets
    without copying the buffer."""
    size = np.dtype(dtype).itemsize
    total = buffer.nbytes if isinstance(buffer, np.ndarray) else len(buffer)
    count = (total - offset - size) // stride + 1 if total - offset >= size else 0
    if count <= 0:
        return np.empty(0, dtype)
    view: np.ndarray = np.ndarray((count,), dtype, buffer=buffer, offset=offset, strides=(stride,))
    return view


@dataclass(frozen=True)
class FrameProblem:
    """A stretch of a file that holds no readable record."""

    kind: NoteKind  # TRUNCATED or CORRUPT
    offset: int  # where the damaged record starts, in the file
    bytes_lost: int  # how many bytes from there were skipped
    reason: str


@dataclass
class PayloadAllowance:
    """What payload checksums that fail while resynchronising have cost (see
    ``_FAILED_PAYLOAD_FLOOR``); once over the allowance, no more are computed."""

    spent: int = 0
    exhausted: bool = False

    def spend(self, record_bytes: int, reached: int) -> bool:
        """Count a failed check of a record of ``record_bytes`` at file offset ``reached``;
        whether checking may go on."""
        self.spent += record_bytes
        self.exhausted = self.exhausted or self.spent > _FAILED_PAYLOAD_FLOOR + 2 * reached
        return not self.exhausted


@dataclass(frozen=True)
class Records:
    """The records of one window of a file, in file order."""

    starts: np.ndarray  # int64, offset of each record's header in the window
    lengths: np.ndarray  # int64, payload length of each record
    problems: tuple[FrameProblem, ...]  # offsets in the file
    found_header: bool  # a record header had a valid length checksum, in this window or before
    end: int = 0  # where the next window must start, in the window
    needed: int = 0  # the size of the record at ``end`` when its header is known, else 0
    finished: bool = True  # the walk reached the end of the file: nothing more to read


def find_records(data: FileData, *, predict: bool = True) -> Records:
    """Every record of ``data`` (a whole file) whose length checksum verifies, and what
    could not be read.

    ``predict=False`` walks with the plain loop only (the reference the fast walk is tested
    against).  Payload checksums are not looked at here.
    """
    return RecordWalker(predict=predict).walk(data, 0, limit=len(data))


class RecordWalker:
    """Finds the records of a file one window of its bytes at a time.

    A window ends anywhere: a record cut by its end is left for the next window, which
    starts at ``Records.end``.  What spans windows lives here: the verified length
    checksums, the latest lengths (for period detection), whether any header verified, the
    records known to hold a bad payload, and a corruption whose end has not been found yet.
    The walk reports a record as truncated only where the file ends (``limit``); with no
    known end (a file still being written) a cut record is simply left for later.
    """

    def __init__(self, *, predict: bool = True) -> None:
        self.predict = predict
        self.length_crc: dict[int, int] = {}  # payload length -> its verified masked crc
        self.recent: list[int] = []  # lengths of the latest records, for period detection
        self.found_header = False
        self.corrupt_from: int | None = None  # file offset of a corruption not yet resolved
        self.corrupt_reason = ""  # what is wrong at ``corrupt_from``
        # The record at ``corrupt_from`` runs past the file's end: a truncation unless an
        # intact record follows it.
        self.corrupt_may_be_cut = False
        self.bad_payloads: set[int] = set()  # file offsets of records whose payload checksum fails
        self.sorted_bad_payloads = np.empty(0, np.int64)  # the same, sorted, for the block predictions
        # Verify every record's payload as it is walked (slower: one checksum call a record),
        # so that one walk finds all the damage of a window (see EventFileState.feed).
        self.verify_payloads = False
        self.allowance = PayloadAllowance()

    def copy(self) -> RecordWalker:
        """The walk as it stands, to go back to (to walk a window again); the verified
        length checksums and the known bad payloads are facts about the file, shared."""
        copied = RecordWalker(predict=self.predict)
        copied.length_crc, copied.bad_payloads = self.length_crc, self.bad_payloads
        copied.sorted_bad_payloads = self.sorted_bad_payloads
        copied.recent, copied.found_header = list(self.recent), self.found_header
        copied.corrupt_from, copied.corrupt_reason = self.corrupt_from, self.corrupt_reason
        copied.corrupt_may_be_cut = self.corrupt_may_be_cut
        copied.verify_payloads, copied.allowance = self.verify_payloads, self.allowance
        return copied

    def mark_bad_payloads(self, offsets: Sequence[int]) -> None:
        """Records (file offsets) whose payload checksum fails: walks from now on report
        each and resynchronise after its header instead of trusting its length."""
        self.bad_payloads.update(offsets)
        self.sorted_bad_payloads = np.array(sorted(self.bad_payloads), np.int64)

    def walk(self, data: FileData, base: int = 0, *, limit: int | None = None) -> Records:
        """The records of ``data``, the bytes of the file from offset ``base``; ``limit`` is
        where the file ends (None: unknown, the file may still grow)."""
        return _WindowWalk(self, data, base, limit).run()


class _WindowWalk:
    def __init__(self, walker: RecordWalker, data: FileData, base: int, limit: int | None) -> None:
        self.walker = walker
        self.data = data
        self.size = len(data)
        self.base = base
        # The file's end in window offsets; None when unknown.
        self.limit = None if limit is None else limit - base
        self.at_end = self.limit is not None and self.size >= self.limit
        self.u64 = unaligned(data, "<u8")
        self.u32 = unaligned(data, "<u4")
        # Every record takes at least 16 bytes: room for all of them, written in place
        # (untouched pages of the buffers cost nothing).
        capacity = self.size // FRAMING_BYTES + 2
        self.starts = np.empty(capacity, np.int64)
        self.lengths = np.empty(capacity, np.int64)
        self.count = 0
        self.loop_starts: list[int] = []  # found by the loop, not yet in the buffers
        self.loop_lengths: list[int] = []
        self.problems: list[FrameProblem] = []
        self.end = self.size
        self.needed = 0
        self.finished = self.at_end

    def run(self) -> Records:
        walker = self.walker
        position: int | None = 0
        if walker.corrupt_from is not None:  # a corruption the last window did not see the end of
            resumed = self._resync_from(0)
            position = None if resumed is None else resumed[0]
        recent = walker.recent
        block = _FIRST_BLOCK
        backoff = 1  # loop steps to walk before the next prediction attempt
        since_attempt = 0
        while position is not None and position < self.size:
            if walker.predict and not walker.verify_payloads and since_attempt >= backoff and len(recent) >= 2:
                since_attempt = 0
                period = _period(recent)
                accepted = self._predict(position, recent[-period:], block) if period else None
                if accepted is not None:
                    position, accepted_lengths, complete = accepted
                    recent = (recent + accepted_lengths[-2 * _MAX_PERIOD :].tolist())[-2 * _MAX_PERIOD :]
                    block = min(block * 4, _MAX_BLOCK) if complete else _FIRST_BLOCK
                    backoff = 0 if complete else 1  # else the loop reads the record that broke the pattern
                    continue
                block = _FIRST_BLOCK
                backoff = min(backoff * 2, _MAX_BACKOFF)
            step = self._step(position)
            if step is None:
                break
            position, length = step
            if length >= 0:
                recent.append(length)
                if len(recent) > 2 * _MAX_PERIOD:
                    del recent[:_MAX_PERIOD]
            since_attempt += 1
        walker.recent = recent
        self._flush_loop()
        count = self.count
        return Records(
            self.starts[:count],
            self.lengths[:count],
            tuple(self.problems),
            walker.found_header,
            self.end,
            self.needed,
            self.finished,
        )

    def _flush_loop(self) -> None:
        if self.loop_starts:
            end = self.count + len(self.loop_starts)
            self.starts[self.count : end] = self.loop_starts
            self.lengths[self.count : end] = self.loop_lengths
            self.count = end
            self.loop_starts, self.loop_lengths = [], []

    def _stop(self, position: int, needed: int = 0) -> None:
        """Leave the record at ``position`` for the next window."""
        self.end, self.needed, self.finished = position, needed, False

    def _truncated(self, position: int, reason: str) -> None:
        """The file ends in the record at ``position`` (a window offset)."""
        assert self.limit is not None
        self.problems.append(FrameProblem(NoteKind.TRUNCATED, self.base + position, self.limit - position, reason))
        self.end, self.finished = self.size, True

    def _step(self, position: int) -> tuple[int, int] | None:
        """Read the record at ``position``: (next position, payload length), with length -1
        after a resynchronisation; None when the walk of this window stops there."""
        remaining = self.size - position
        if remaining < HEADER_BYTES:
            if self.at_end:
                self._truncated(position, f"the file ends {remaining} bytes into a record header")
            else:
                self._stop(position)
            return None
        length, crc = struct.unpack_from("<QI", self.data, position)
        length_crc = self.walker.length_crc
        if length_crc.get(length) != crc:
            if masked_crc32c(bytes(self.data[position : position + 8])) != crc:
                return self._corrupt(position, _LENGTH_MISMATCH, position + 1)
            if length > MAX_RECORD_BYTES:
                reason = f"a record header claims {length:,} bytes, over the {MAX_RECORD_BYTES:,} bytes a record may have"
                return self._corrupt(position, reason, position + 1)
            length_crc[length] = crc
        self.walker.found_header = True
        end = position + FRAMING_BYTES + length
        if self.limit is not None and end > self.limit:
            in_file = self.limit - position
            reason = (
                f"the file ends {in_file} bytes into a record of {length + FRAMING_BYTES} bytes "
                "(writer interrupted?)"
            )
            # Cut by the end, or damaged in the middle of the file: an intact record within
            # its span tells which.
            return self._corrupt(position, reason, position + 1, may_be_cut=True)
        if end > self.size:
            self._stop(position, FRAMING_BYTES + length)
            return None
        bad_payloads = self.walker.bad_payloads
        if (bad_payloads and self.base + position in bad_payloads) or (
            self.walker.verify_payloads and not payload_crc_ok(self.data, [position], [length])[0]
        ):
            return self._corrupt(position, _PAYLOAD_MISMATCH, position + HEADER_BYTES)
        self.loop_starts.append(position)
        self.loop_lengths.append(length)
        return end, length

    def _corrupt(
        self, position: int, reason: str, scan_from: int, *, may_be_cut: bool = False
    ) -> tuple[int, int] | None:
        """The record at ``position`` is damaged: open a corruption there and resynchronise.
        ``may_be_cut``: it is a truncation if no intact record follows."""
        walker = self.walker
        walker.corrupt_from, walker.corrupt_reason = self.base + position, reason
        walker.corrupt_may_be_cut = may_be_cut
        return self._resync_from(scan_from)

    def _resync_from(self, start: int) -> tuple[int, int] | None:
        """Look for the next intact record from ``start``, a corruption being open."""
        corrupt_from = self.walker.corrupt_from
        assert corrupt_from is not None
        allowance = self.walker.allowance
        found = None if allowance.exhausted else next_intact_record(self.data, start, self.limit, allowance, self.base)
        if found is None and not self.at_end:
            # Candidates whose header the window does not hold are scanned by the next one.
            self._stop(max(start, self.size - HEADER_BYTES + 1))
            return None
        if found is not None:
            record_bytes = FRAMING_BYTES + struct.unpack_from("<Q", self.data, found)[0]
            if found + record_bytes > self.size:
                # Its payload checksum is checked when the next window holds it all.
                self._stop(found, record_bytes)
                return None
        walker = self.walker
        walker.corrupt_from = None
        if found is None and walker.corrupt_may_be_cut and not allowance.exhausted:
            self._truncated(corrupt_from - self.base, walker.corrupt_reason)
            return None
        if found is None:
            assert self.limit is not None
            if allowance.exhausted:
                reason = (f"{walker.corrupt_reason}; the rest of the file was not searched for records: "
                          f"{allowance.spent >> 20} MiB of record headers that verify with payloads that "
                          "do not (a file made to be slow to read?)")
            else:
                reason = f"{walker.corrupt_reason}; no valid record after it"
            self.problems.append(FrameProblem(NoteKind.CORRUPT, corrupt_from, self.base + self.limit - corrupt_from, reason))
            self.end, self.finished = self.size, True
            return None
        if walker.corrupt_may_be_cut:
            reason = "record length runs past the end of the file, yet an intact record follows"
        else:
            reason = walker.corrupt_reason
        reason = f"{reason}; resumed at offset {self.base + found}"
        self.problems.append(FrameProblem(NoteKind.CORRUPT, corrupt_from, self.base + found - corrupt_from, reason))
        return found, -1

    def _predict(self, position: int, pattern: list[int], block: int) -> tuple[int, np.ndarray, bool] | None:
        """Accept the records that continue ``pattern`` from ``position``: (next position,
        their lengths, whether the whole block held), or None if the first one does not."""
        self._flush_loop()
        period = len(pattern)
        repeats = min(-(-block // period), (self.starts.size - self.count - 1) // period)
        if repeats <= 0:
            return None
        first, last = self.count, self.count + repeats * period
        lengths = self.lengths[first:last]
        lengths.reshape(repeats, period)[:] = pattern
        bounds = self.starts[first : last + 1]
        bounds[0] = position
        bounds[1:].reshape(repeats, period)[:] = [n + FRAMING_BYTES for n in pattern]
        np.cumsum(bounds, out=bounds)
        fits = int(np.searchsorted(bounds, self.size, side="right")) - 1
        # Each predicted header must equal the verified header of its length.
        starts = bounds[:fits]
        length_crc = self.walker.length_crc
        crcs = np.tile(np.asarray([length_crc[n] for n in pattern], np.uint32), repeats)
        held = (self.u64[starts] == lengths[:fits].view(np.uint64)) & (self.u32[starts + 8] == crcs[:fits])
        bad_payloads = self.walker.sorted_bad_payloads
        if bad_payloads.size:  # stop before the next known bad payload: the loop reports it
            following = int(np.searchsorted(bad_payloads, self.base + position))
            if following < bad_payloads.size:
                held &= starts < int(bad_payloads[following]) - self.base
        good = fits if bool(held.all()) else int(np.argmin(held))
        if good == 0:
            return None
        self.count += good
        return int(bounds[good]), lengths[:good], good == lengths.size


def _period(recent: list[int]) -> int:
    """The shortest period with which the latest lengths repeat (at least twice), or 0."""
    reversed_lengths = recent[::-1]
    last = reversed_lengths[0]
    limit = min(_MAX_PERIOD, len(recent) // 2)
    period = 0
    for _ in range(4):  # a few candidate periods: the distances to earlier equal lengths
        try:
            period = reversed_lengths.index(last, period + 1)
        except ValueError:
            return 0
        if period > limit:
            return 0
        if reversed_lengths[:period] == reversed_lengths[period : 2 * period]:
            return period
    return 0


def valid_headers(data: FileData, start: int, limit: int | None = None) -> np.ndarray:
    """The offsets from ``start`` on where a record header's length checksum verifies, its
    length is at most :data:`MAX_RECORD_BYTES` and the record ends by ``limit`` (the file's
    end; None: unknown): those of the first stretch that holds any, ascending (how reading
    resumes after corruption; the caller goes on after the last for more).

    Garbage is skipped at close to memory speed, not a checksum per byte: a stretch of
    zeros (what a crashed file system leaves) holds no header, because a zero length's
    checksum is not zero, and is passed over by one count of its nonzero bytes; elsewhere
    only offsets whose length has its upper bytes zero are looked at (:func:`_plausible`).
    """
    byte_view = np.frombuffer(data, np.uint8)
    last = len(data) - HEADER_BYTES  # the last offset whose header the data holds
    window, scan = start, _FIRST_SCAN
    while window <= last:
        stop = min(window + scan, last + 1)
        covered = byte_view[window : stop + HEADER_BYTES - 1]  # the bytes of these headers
        candidates = _plausible(data, byte_view, window, stop, limit) if np.count_nonzero(covered) else None
        window, scan = stop, min(scan * 4, _MAX_SCAN)
        if candidates is None or candidates.size == 0:
            continue
        valid = mask_crcs(_length_crcs(byte_view, candidates)) == unaligned(data, "<u4")[candidates + 8]
        if bool(valid.any()):
            found: np.ndarray = candidates[valid]
            return found
    return np.empty(0, np.int64)


# The masked checksum of a zero length: what a header of a record of 0 bytes holds.
_ZERO_LENGTH_CRC = masked_crc32c(bytes(8))
_ZERO_LENGTH_RAW_CRC = crc32c_of(bytes(8))


def _length_crcs(byte_view: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Raw crc32c of the 8 length bytes at each candidate, whose upper 4 are zero (see
    :func:`_plausible`): the CRC of 8 zero bytes with the 4 low bytes as variable bytes."""
    zeroed = np.full(candidates.size, _ZERO_LENGTH_RAW_CRC, np.uint32)
    return crc32c_with_variable_bytes(zeroed, 8, [(position, byte_view[candidates + position]) for position in range(4)])


def _plausible(data: FileData, byte_view: np.ndarray, window: int, stop: int, limit: int | None) -> np.ndarray:
    """The offsets in ``window..stop`` that may hold a valid header, before checksums: its
    length at most the cap (so bytes 4..7 are zero), a zero length only with its own
    checksum, and the record ending by ``limit``.

    Four zero bytes at any offset hold a zero 16-bit word at an even offset, so one compare
    of the aligned words with zero finds where candidates may be (one word in 65,536 of
    random bytes): offsets ``q - 6 .. q - 4`` for each zero word at ``q``.  Where zero
    words are common (small integers, sparse data) the candidates come from byte masks
    over the whole stretch instead, without gathering.
    """
    low = (window + 4) & ~1
    high = min(stop + 8, len(data))
    high -= (high - low) & 1
    pairs = np.flatnonzero(byte_view[low:high].view(np.uint16) == 0) * 2 + low
    if pairs.size == 0:
        return pairs
    span = stop - window
    if pairs.size * _DENSE_ZERO_WORDS < span:
        marked = np.zeros(span, bool)
        for shift in (4, 5, 6):
            at = pairs - shift - window
            marked[at[(at >= 0) & (at < span)]] = True
    else:
        zero = byte_view[window : stop + HEADER_BYTES - 1] == 0
        marked = zero[4 : 4 + span] & zero[5 : 5 + span]
        marked &= zero[6 : 6 + span]
        marked &= zero[7 : 7 + span]
        zero_length = zero[:span] & zero[1 : 1 + span]
        zero_length &= zero[2 : 2 + span]
        zero_length &= zero[3 : 3 + span]
        # A zero length needs its own checksum, whose first byte rules out 255 in 256.
        zero_length &= byte_view[window + 8 : window + 8 + span] != _ZERO_LENGTH_CRC & 0xFF
        marked &= ~zero_length
    candidates = np.flatnonzero(marked) + window
    lengths = unaligned(data, "<u8")[candidates]
    plausible = (lengths <= MAX_RECORD_BYTES) & (
        (lengths != 0) | (unaligned(data, "<u4")[candidates + 8] == _ZERO_LENGTH_CRC)
    )
    if limit is not None:
        plausible &= lengths.astype(np.int64) <= limit - FRAMING_BYTES - candidates
    found: np.ndarray = candidates[plausible]
    return found


def next_intact_record(
    data: FileData, start: int, limit: int | None = None, allowance: PayloadAllowance | None = None, base: int = 0
) -> int | None:
    """The first offset at or after ``start`` where a record's length checksum verifies, the
    record ends by ``limit`` and its payload checksum verifies (where reading resumes after
    damage).  A record that runs past the end of ``data`` is returned unchecked: its
    payload is checked once the data holds it.  Each failed payload check is charged to
    ``allowance`` (``base``: the file offset of ``data``); None once it is exhausted."""
    while (headers := valid_headers(data, start, limit)).size:
        for found in headers.tolist():
            length = struct.unpack_from("<Q", data, found)[0]
            if found + FRAMING_BYTES + length > len(data) or payload_crc_ok(data, [found], [length])[0]:
                return int(found)
            if allowance is not None and not allowance.spend(FRAMING_BYTES + length, base + found):
                return None
        start = int(headers[-1]) + 1
    return None


def payload_crc_ok(data: FileData, starts: Sequence[int], lengths: Sequence[int]) -> list[bool]:
    """Whether each record's payload checksum verifies, one C call per record."""
    unpack = struct.unpack_from
    result = []
    for start, length in zip(starts, lengths):
        payload_start = start + HEADER_BYTES
        end = payload_start + length
        result.append(masked_crc32c(bytes(data[payload_start:end])) == unpack("<I", data, end)[0])
    return result


