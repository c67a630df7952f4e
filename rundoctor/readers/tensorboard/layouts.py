"""Records matched to layouts: a window's records grouped by length, each group's records compared
with templates of their layout (scalar events, :mod:`.template`; histogram events,
:mod:`.histograms`) word by word outside the template's variable bytes, and the matching ones
handed over together (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rundoctor.readers.tensorboard.histograms import parse_histogram_template
from rundoctor.readers.tensorboard.template import (
    _CHUNK_RECORDS,
    _FAST_MIN_GROUP,
    _FAST_MIN_LENGTH,
    _HASH_BITS,
    _HASH_FACTOR,
    _HASH_SHIFT,
    _MAX_ROUNDS,
    _MAX_TEMPLATES_PER_ROUND,
    _parse_template,
    _RecordLayout,
)
from rundoctor.readers.tfrecord import FOOTER_BYTES, HEADER_BYTES, FileData, Records, unaligned

# Histogram events are longer than scalar events (a HistogramProto of TensorFlow's ~500
# default buckets is ~8 KB); records above 64 KB are images and graphs, never a layout.
_FAST_MAX_LENGTH = (1 << 16) - 1

# What the records of one layout are handed to: (payload length, the round's template, the
# templates of its layout that matched, the rows (payload and crc of each record of the
# group), the group's record numbers, each row's template index (-1: none), the matching rows
# (None: all)).
Emit = Callable[[int, _RecordLayout, list[_RecordLayout], np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"], None]


def parse_layout(payload: bytes) -> _RecordLayout | None:
    """The layout of a scalar or histogram event, or None for any other record."""
    return _parse_template(payload) or parse_histogram_template(payload)


class TemplateCache:
    """Templates found in earlier windows of a file, by layout, length and fixed bytes: a
    window of a file that logs 100 layers' histograms would otherwise walk and parse 100
    templates again.  A template of the same layout with the same bytes outside its variable
    ranges reads every record as a newly parsed one would.  Bounded: a file of ever new tags
    clears it now and then."""

    _MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self.templates: dict[tuple[object, ...], _RecordLayout] = {}

    def find(self, payload: bytes, layout: _RecordLayout, key: tuple[object, ...]) -> _RecordLayout | None:
        """The template of ``payload``, a record whose words outside ``layout``'s variable bytes
        are ``key``, if it has ``layout``; None otherwise."""
        full_key = (layout.layout, len(payload), key)
        found = self.templates.get(full_key)
        if found is None:
            found = parse_layout(payload)
            if found is None or found.layout != layout.layout:
                return None
            if len(self.templates) >= self._MAX_ENTRIES:
                self.templates.clear()
            self.templates[full_key] = found
        return found


def decode_layouts(data: FileData, records: Records, emit: Emit, cache: TemplateCache) -> np.ndarray:
    """Hand the records of ``data`` that share layouts to ``emit``; return the records left
    for protobuf."""
    lengths = records.lengths
    eligible = (lengths >= _FAST_MIN_LENGTH) & (lengths <= _FAST_MAX_LENGTH)
    left = [np.flatnonzero(~eligible)]
    members = np.flatnonzero(eligible)
    counts = np.bincount(lengths[members]) if members.size else np.zeros(1, np.int64)
    distinct = np.flatnonzero(counts)
    if distinct.size > 1:  # group records by length, keeping file order in each group
        # Group numbers of 16 bits sort by radix (as long as they fit, as they always do
        # in a window: 32K distinct lengths of 16 bytes and more add up to over 512 MB).
        dense = np.zeros(counts.size, np.int16 if distinct.size <= np.iinfo(np.int16).max else np.int32)
        dense[distinct] = np.arange(distinct.size, dtype=dense.dtype)
        members = members[np.argsort(dense[lengths[members]], kind="stable")]
    start = 0
    for length, count in zip(distinct.tolist(), counts[distinct].tolist()):
        group = members[start : start + count]
        start += count
        if count < _FAST_MIN_GROUP:
            left.append(group)
            continue
        for chunk in range(0, count, _CHUNK_RECORDS):
            left.append(_decode_length(data, records, length, group[chunk : chunk + _CHUNK_RECORDS], emit, cache))
    return np.sort(np.concatenate(left))


def _decode_length(
    data: FileData, records: Records, length: int, members: np.ndarray, emit: Emit, cache: TemplateCache
) -> np.ndarray:
    """Hand over the records of one payload length that equal a template outside its
    variable bytes, one round per layout; return the records left for protobuf."""
    row_bytes = length + FOOTER_BYTES  # the payload and its crc
    rows = unaligned(data, f"V{row_bytes}")[records.starts[members] + HEADER_BYTES]
    left = []
    for _ in range(_MAX_ROUNDS):
        template = parse_layout(rows[0].tobytes()[:length])
        if template is None:  # records equal to it after the wall time are no template either
            tail = unaligned(rows, f"V{length - 9}", offset=9, stride=row_bytes)
            done = tail == tail[0]
            left.append(members[done])
        else:
            done = _match_round(length, template, rows, members, emit, cache)
        if bool(done.all()):
            return np.concatenate(left) if left else members[:0]
        rows, members = rows[~done], members[~done]
    left.append(members)
    return np.concatenate(left)


def _match_round(
    length: int, template: _RecordLayout, rows: np.ndarray, members: np.ndarray, emit: Emit, cache: TemplateCache
) -> np.ndarray:
    """Hand over the records matching templates of ``template``'s layout; return which did."""
    row_bytes = length + FOOTER_BYTES
    words = template.fixed_words()
    views = [unaligned(rows, dtype, offset=offset, stride=row_bytes) for offset, dtype in words]
    # Rows whose field keys or step width differ from the template's are not candidates;
    # the others are told apart by a multiplicative hash of the bytes after the step.
    candidate = np.ones(members.size, bool)
    if template.step_width:
        mask, continued = template.step_continuation()
        candidate &= (unaligned(rows, "<u8", offset=10, stride=row_bytes) & mask) == continued
    digest = np.zeros(members.size, np.uint64)
    for view, (offset, dtype) in zip(views, words):
        if offset < template.fixed_start:
            candidate &= view == np.frombuffer(template.payload, dtype, 1, offset)[0]
        else:
            digest ^= view.astype(np.uint64, copy=False)
            digest *= _HASH_FACTOR
    no_bucket = 1 << _HASH_BITS
    buckets = np.where(candidate, (digest >> _HASH_SHIFT).astype(np.intp), no_bucket)
    firsts = np.full(no_bucket + 1, members.size)
    np.minimum.at(firsts, buckets, np.arange(members.size))
    bucket_template = np.full(no_bucket + 1, -1, np.intp)
    templates: list[_RecordLayout] = []
    occupied = np.flatnonzero(firsts[:no_bucket] < members.size)
    # Rows of another layout hash at random: parse the earliest buckets only, the rest
    # waits for a round whose template has their layout.
    occupied = occupied[np.argsort(firsts[occupied], kind="stable")[:_MAX_TEMPLATES_PER_ROUND]]
    hashed = [view for view, (offset, _) in zip(views, words) if offset >= template.fixed_start]
    for bucket in occupied.tolist():
        row = int(firsts[bucket])
        key = tuple(int(view[row]) for view in hashed)
        found = template if row == 0 else cache.find(rows[row].tobytes()[:length], template, key)
        if found is not None:
            bucket_template[bucket] = len(templates)
            templates.append(found)
    which = bucket_template.take(buckets)
    matched = which >= 0
    safe = np.maximum(which, 0)
    for view, (offset, dtype) in zip(views, words):
        if offset >= template.fixed_start:
            expected = np.array([np.frombuffer(t.payload, dtype, 1, offset)[0] for t in templates], dtype)
            matched &= view == expected.take(safe)
    picked = None if bool(matched.all()) else np.flatnonzero(matched)
    emit(length, template, templates, rows, members, which, picked)
    return matched
