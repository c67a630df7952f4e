"""One event file being decoded: what its records so far hold and what later records depend on."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2, tensor_pb2

from rundoctor.readers.crc32c import crc32c_with_variable_bytes, framed_rows_intact, mask_crcs
from rundoctor.readers.tensorboard.columns import (
    _EMPTY,
    _Batch,
    _Checkpoint,
    _FileContent,
    _FileScalars,
    _place,
    _PointColumns,
    _SlowPoints,
)
from rundoctor.readers.tensorboard.histograms import (
    HistogramBlock,
    HistogramStore,
    _HistogramTemplate,
    gather,
)
from rundoctor.readers.tensorboard.hparams import read_hparams
from rundoctor.readers.tensorboard.layouts import TemplateCache, decode_layouts
from rundoctor.readers.tensorboard.template import _RecordLayout, _Template, steps_of
from rundoctor.readers.tensorboard.values import (
    _EVENT_SKIP_KIND,
    _PLUGIN_SKIP_KIND,
    HISTOGRAMS_PLUGIN,
    SCALARS_PLUGIN,
    _as_float64,
    _NotAnEventFile,
    _proto_histogram,
    _scalar_of,
    _SkipTally,
    _storage_dtype,
    _tensor_histogram,
)
from rundoctor.readers.tfrecord import (
    FOOTER_BYTES,
    FRAMING_BYTES,
    HEADER_BYTES,
    FileData,
    Records,
    RecordWalker,
    payload_crc_ok,
    unaligned,
)
from rundoctor.series import NoteKind, ReadNote

# A window whose decoding finds bad payloads is walked again, resynchronising after each; one
# walked again this many times is walked verifying every payload as it goes (nested damage,
# each walk revealing one more bad record, would cost a walk per record).  Damage needs one.
_MAX_REWALKS = 2


class EventFileState:
    """What reading one event file has learnt so far, window after window: the record
    walk, the tags with their plugins and first appearances, what was skipped or damaged,
    the histograms and the points kept.

    ``run_plugins`` maps prefixed tags to the plugin named by earlier files of the run.
    """

    def __init__(self, prefix: str = "", run_plugins: dict[str, str] | None = None, *, reference: bool = False) -> None:
        self.prefix = prefix
        self.run_plugins = {} if run_plugins is None else run_plugins
        self.reference = reference
        self.path: Path | None = None
        self.walker = RecordWalker(predict=not reference)
        self.points = _PointColumns()
        self.tags: list[str] = []  # tags of the kept points' codes (unprefixed), first-logged order
        self.tag_codes: dict[str, int] = {}  # unprefixed tag -> local code
        self.final_codes: list[int] = []  # local code -> index in ``tags``, -1 before its first point
        self.first_metadata: dict[str, tuple[int, str]] = {}  # tag -> (record, plugin)
        self.first_seen: dict[str, tuple[int, int]] = {}  # tag -> (record, slot) of its first value
        self.histograms = HistogramStore()
        self.templates = TemplateCache()  # of the fast path, found in earlier windows
        self.hparams: dict[str, str] = {}  # logged hyper-parameters (see readers.tensorboard.hparams)
        self.tally = _SkipTally()
        # Tensors dropped while their tag had no plugin yet: scalars and other tensors, by tag.
        self.unresolved_scalars: dict[str, int] = {}
        self.unresolved_tensors: dict[str, int] = {}
        self.damage: list[tuple[int, ReadNote]] = []  # (offset, note)
        self.not_an_event_file: _NotAnEventFile | None = None
        # The window being decoded; record numbers in it are local, ``first_record`` +
        # local in the file.
        self.data: FileData = b""
        self.base = 0
        self.first_record = 0
        self.records: Records | None = None
        self.batches: list[_Batch] = []
        self.slow = _SlowPoints()
        self.pending_tensors: list[tuple[int, str, int, float, tensor_pb2.TensorProto]] = []
        # Fast-path TF2 histograms of the window: (tag, record numbers in the file, histograms).
        self.pending_tensor_blocks: list[HistogramBlock] = []
        self.bad_payloads: list[int] = []  # file offsets of the window's records with a bad payload

    def bind(self, path: Path) -> None:
        """The file this state reads (notes name it); one state reads one file."""
        if self.path is not None and self.path != path:
            raise ValueError(f"this state reads {self.path}, not {path}")
        self.path = path

    def feed(self, data: FileData, base: int, limit: int | None) -> Records:
        """Decode the records of ``data``, the file's bytes from offset ``base`` (``limit``:
        where the file ends, None if unknown); the caller goes on at ``Records.end``.
        Bad payloads make the window walked again (see ``_MAX_REWALKS``)."""
        self.walker.verify_payloads = False
        rewalks = 0
        while True:
            before = self._checkpoint()
            records = self.walker.walk(data, base, limit=limit)
            for problem in records.problems:
                self._damaged(problem.offset, problem.kind, problem.reason, problem.bytes_lost)
            if not records.starts.size:
                return records
            bad_payloads = self._decode_window(data, base, records)
            if not bad_payloads:
                self.first_record += int(records.starts.size)
                return records
            # The walk trusted the lengths of records whose payload is bad, and may have
            # skipped intact records inside them: forget this window's decoding and walk it
            # again, resynchronising after each (only damaged windows pay for this).
            self._restore(before)
            self.walker.mark_bad_payloads(bad_payloads)
            rewalks += 1
            self.walker.verify_payloads = rewalks > _MAX_REWALKS

    def _decode_window(self, data: FileData, base: int, records: Records) -> list[int]:
        """Decode and keep the records of a window; when some have a bad payload, keep
        nothing and return their file offsets."""
        self.data, self.base, self.records = data, base, records
        try:
            slow = np.arange(records.starts.size) if self.reference else self._decode_fast()
            self._decode_slow(slow)
            bad_payloads = self.bad_payloads
            if not bad_payloads:
                self._keep_window()
            return bad_payloads
        finally:
            self.data, self.records, self.bad_payloads = b"", None, []
            self.batches, self.slow, self.pending_tensors = [], _SlowPoints(), []
            self.pending_tensor_blocks = []

    def _checkpoint(self) -> _Checkpoint:
        """What decoding a window changes before its points are kept, to go back to."""
        return _Checkpoint(
            self.walker.copy(),
            dict(self.tag_codes),
            len(self.final_codes),
            dict(self.first_metadata),
            dict(self.first_seen),
            self.histograms.mark(),
            self.tally.copy(),
            len(self.damage),
            dict(self.hparams),
        )

    def _restore(self, checkpoint: _Checkpoint) -> None:
        """Go back to ``checkpoint`` (taken over: it is used once)."""
        self.walker = checkpoint.walker
        self.tag_codes = checkpoint.tag_codes
        del self.final_codes[checkpoint.codes:]
        self.first_metadata = checkpoint.first_metadata
        self.first_seen = checkpoint.first_seen
        self.histograms.restore(checkpoint.histogram_counts)
        self.tally = checkpoint.tally
        del self.damage[checkpoint.damage :]
        self.hparams = checkpoint.hparams

    def stopped(self, offset: int, error: OSError) -> None:
        """Reading failed at ``offset``: say so once (a followed file is read again and again)."""
        message = f"reading stopped: {error.strerror or error}"
        if not any(note.message == message for _, note in self.damage):
            self._note(offset, NoteKind.SKIPPED, message, None)

    def shrunk(self, offset: int, size: int) -> None:
        """A followed file became shorter than what was read of it (rewritten?)."""
        message = f"the file shrank to {size} bytes after {offset} had been read; the points read are kept"
        if not any(note.message == message for _, note in self.damage):
            self._note(size, NoteKind.INFO, message, None)

    def resolved_late(self) -> dict[str, str]:
        """Plugins that, known from the start, would have kept tensors this read dropped:
        prefixed tag -> plugin."""
        late = {tag: self._plugin_of(tag) for tag in self.unresolved_scalars}
        resolved = {tag: plugin for tag, plugin in late.items() if plugin == SCALARS_PLUGIN}
        for tag in self.unresolved_tensors:
            if self._plugin_of(tag) == HISTOGRAMS_PLUGIN:
                resolved[tag] = HISTOGRAMS_PLUGIN
        return {self.prefix + tag: plugin for tag, plugin in resolved.items()}

    def content(self, *, final: bool = False) -> _FileContent:
        """Everything read so far.  ``final``: reading is over, the columns are handed over
        (not copied) and the state is done."""
        assert self.path is not None
        codes, steps, wall_times, values = self.points.columns
        tags = self.tags
        order = sorted(range(len(tags)), key=lambda code: self.first_seen[tags[code]])
        if order != list(range(len(tags))):
            # A tag first seen among dropped tensors got its code when it had its first
            # point: recode so tags go in first-seen order.
            renumber = np.empty(len(tags), np.int32)
            renumber[order] = np.arange(len(tags), dtype=np.int32)
            codes, tags = renumber[codes], [tags[code] for code in order]
        scalars = _FileScalars(self.path, [self.prefix + tag for tag in tags], codes, steps, wall_times, values)
        if final:
            self.points = _PointColumns()
        histograms = self.histograms.columns(self.prefix, final=final)
        notes = [note for _, note in sorted(self.damage, key=lambda item: item[0])]
        skipped = self._tally_with_unresolved().note(self.path)
        if skipped is not None:
            notes.append(skipped)
        plugins = {self.prefix + tag: plugin for tag, (_, plugin) in self.first_metadata.items()}
        return _FileContent(scalars, histograms, plugins, notes, dict(self.hparams))

    def _tally_with_unresolved(self) -> _SkipTally:
        """The skip tally, with the tensors dropped for want of a plugin counted under the
        plugin their tag has now."""
        tally = self.tally.copy()
        for tag, count in self.unresolved_scalars.items():
            plugin = self._plugin_of(tag)
            tally.add(_PLUGIN_SKIP_KIND.get(plugin, plugin), tag, count)
        for tag, count in self.unresolved_tensors.items():
            plugin = self._plugin_of(tag)
            if plugin in (HISTOGRAMS_PLUGIN, SCALARS_PLUGIN):
                tally.add("malformed", tag, count)
            else:
                tally.add(_PLUGIN_SKIP_KIND.get(plugin, plugin), tag, count)
        return tally

    # -- helpers -------------------------------------------------------------------------

    def _code(self, tag: str) -> int:
        code = self.tag_codes.setdefault(tag, len(self.tag_codes))
        if code == len(self.final_codes):
            self.final_codes.append(-1)
        return code

    def _saw_point(self, tag: str, record: int, slot: int) -> None:
        seen = (self.first_record + record, slot)
        if tag not in self.first_seen or seen < self.first_seen[tag]:
            self.first_seen[tag] = seen

    def _saw_template(self, template: _Template, record: int) -> None:
        for slot, value in enumerate(template.slots):
            self._saw_point(value.tag, record, slot)
            self._saw_metadata(value.tag, record, value.plugin)

    def _saw_metadata(self, tag: str, record: int, plugin: str) -> None:
        record += self.first_record
        if plugin and (tag not in self.first_metadata or record < self.first_metadata[tag][0]):
            self.first_metadata[tag] = (record, plugin)

    def _note(self, offset: int, kind: NoteKind, reason: str, count: int | None) -> None:
        assert self.path is not None
        self.damage.append((offset, ReadNote(kind, str(self.path), reason, location=f"offset {offset}", count=count)))

    def _damaged(self, offset: int, kind: NoteKind, reason: str, bytes_lost: int) -> None:
        self._note(offset, kind, reason, bytes_lost)

    def _bad_payload(self, record: int) -> None:
        assert self.records is not None
        self.bad_payloads.append(self.base + int(self.records.starts[record]))

    def _corrupt_record(self, record: int, reason: str) -> None:
        assert self.records is not None
        start = self.base + int(self.records.starts[record])
        length = int(self.records.lengths[record])
        self._damaged(start, NoteKind.CORRUPT, f"{reason}; record skipped", length + FRAMING_BYTES)

    def _plugin_of(self, tag: str) -> str:
        """The plugin of an unprefixed tag: named by earlier files of the run, else by this
        one so far; "" while none is known."""
        earlier = self.run_plugins.get(self.prefix + tag)
        if earlier is not None:
            return earlier
        return self.first_metadata[tag][1] if tag in self.first_metadata else ""

    def _skip_tensor(self, tag: str, count: int = 1) -> None:
        plugin = self._plugin_of(tag)
        self.tally.add(_PLUGIN_SKIP_KIND.get(plugin, plugin), tag, count)

    # -- the fast path -------------------------------------------------------------------

    def _decode_fast(self) -> np.ndarray:
        """Decode the events that share layouts; return the records left for protobuf."""
        assert self.records is not None
        return decode_layouts(self.data, self.records, self._emit_layout, self.templates)

    def _emit_layout(
        self,
        length: int,
        template: _RecordLayout,
        templates: list[_RecordLayout],
        rows: np.ndarray,
        members: np.ndarray,
        which: np.ndarray,
        picked: np.ndarray | None,
    ) -> None:
        """The records of one layout round, to the reader of their kind (scalars or histograms)."""
        if isinstance(template, _Template):
            self._emit(length, template, cast(list[_Template], templates), rows, members, which, picked)
        else:
            self._emit_histograms(length, cast(list[_HistogramTemplate], templates), rows, members, which, picked)

    def _emit(
        self,
        length: int,
        template: _Template,
        templates: list[_Template],
        rows: np.ndarray,
        members: np.ndarray,
        which: np.ndarray,
        picked: np.ndarray | None,
    ) -> None:
        """Read wall time, step and values of the matched rows, check their CRCs, keep them."""
        row_bytes = length + FOOTER_BYTES

        def column(offset: int, dtype: str) -> np.ndarray:
            view = unaligned(rows, dtype, offset=offset, stride=row_bytes)
            return view if picked is None else view[picked]

        if picked is not None:
            members, which = members[picked], which[picked]
        if members.size == 0:
            return
        variable = [(position, column(position, "u1")) for position in template.variable_bytes()]
        zeroed = np.array([t.zeroed_crc() for t in templates], np.uint32).take(which)
        crcs = mask_crcs(crc32c_with_variable_bytes(zeroed, length, variable))
        intact = crcs == column(length, "<u4")
        keep = None
        if not bool(intact.all()):
            for record in members[~intact].tolist():
                self._bad_payload(record)
            keep = np.flatnonzero(intact)
            members, which = members[keep], which[keep]
            if members.size == 0:
                return
        for index, found in enumerate(templates):
            first = int(np.argmax(which == index))
            if first < which.size and which[first] == index:
                self._saw_template(found, int(members[first]))

        def kept(values: np.ndarray) -> np.ndarray:
            return values if keep is None else values[keep]

        if template.step_width:
            steps = steps_of(kept(column(10, "<u8")), template.step_width)
        else:
            steps = np.zeros(members.size, np.int64)
        wall_times = kept(column(1, "<f8")).astype(np.float64)
        for index, slot in enumerate(template.slots):
            codes = np.array([self._code(t.slots[index].tag) for t in templates], np.int32)
            values = _as_float64(kept(column(slot.offset, _storage_dtype(slot.dtype))), slot.dtype)
            self.batches.append(
                _Batch(members, index, codes.take(which), steps, wall_times, values, slot.is_tensor)
            )

    def _emit_histograms(
        self,
        length: int,
        templates: list[_HistogramTemplate],
        rows: np.ndarray,
        members: np.ndarray,
        which: np.ndarray,
        picked: np.ndarray | None,
    ) -> None:
        """Read the histograms of the matched rows, check their CRCs (a chunk of rows at a time:
        most of their bytes vary), keep them by tag (tensors wait for their tag's plugin)."""
        assert self.records is not None
        if picked is not None:
            rows, members, which = rows[picked], members[picked], which[picked]
        if members.size == 0:
            return
        intact = framed_rows_intact(rows, length)
        if not bool(intact.all()):
            for record in members[~intact].tolist():
                self._bad_payload(record)
            rows, members, which = rows[intact], members[intact], which[intact]
            if members.size == 0:
                return
        present, firsts = np.unique(which, return_index=True)
        for index, first in zip(present.tolist(), firsts.tolist()):
            self._saw_metadata(templates[index].tag, int(members[first]), templates[index].plugin)
        block = HistogramBlock(members + self.first_record, which, [t.tag for t in templates],
                               gather(templates[0], rows, length + FOOTER_BYTES))
        if templates[0].is_tensor:
            self.pending_tensor_blocks.append(block)
        else:
            self.histograms.add_block(block)

    # -- the protobuf path ---------------------------------------------------------------

    def _decode_slow(self, indices: np.ndarray) -> None:
        assert self.records is not None
        starts = self.records.starts[indices].tolist()
        lengths = self.records.lengths[indices].tolist()
        intact = payload_crc_ok(self.data, starts, lengths)
        data = self.data
        for record, start, length, ok in zip(indices.tolist(), starts, lengths, intact):
            if not ok:
                self._bad_payload(record)
                continue
            payload = bytes(data[start + HEADER_BYTES : start + HEADER_BYTES + length])
            try:
                event = event_pb2.Event.FromString(payload)
            except (DecodeError, RecursionError, ValueError):
                self._corrupt_record(record, "undecodable event (not an Event protobuf)")
                continue
            self._decode_event(record, event)

    def _decode_event(self, record: int, event: event_pb2.Event) -> None:
        what = event.WhichOneof("what")
        if what != "summary":
            if what in _EVENT_SKIP_KIND:
                self.tally.add(_EVENT_SKIP_KIND[what])
            return
        step, wall_time = event.step, event.wall_time
        slot = 0
        for value in event.summary.value:
            tag = value.tag
            if value.HasField("metadata"):
                self._saw_metadata(tag, record, value.metadata.plugin_data.plugin_name)
                if read_hparams(self.hparams, value):
                    continue
            kind = value.WhichOneof("value")
            scalar = _scalar_of(value)
            if scalar is not None:
                self.slow.add(record, self._code(tag), step, wall_time, scalar, kind == "tensor")
                self._saw_point(tag, record, slot)
                slot += 1
            elif kind == "tensor":
                self.pending_tensors.append((record, tag, step, wall_time, value.tensor))
            elif kind == "histo":
                self.histograms.add(tag, self.first_record + record, _proto_histogram(step, wall_time, value.histo))
            elif kind in ("image", "audio"):
                self.tally.add("images" if kind == "image" else "audio")
            elif kind is None:  # plugin data without a value (hparams, ...)
                plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
                self.tally.add(plugin or "empty", tag)
            else:
                self.tally.add(kind, tag)

    # -- keeping a window's points -------------------------------------------------------

    def _keep_window(self) -> None:
        """Append the window's points to the columns in file order, tensors of tags outside
        the scalars plugin left out, and resolve its other tensors."""
        scalar_tag = np.array([self._plugin_of(tag) == SCALARS_PLUGIN for tag in self.tag_codes], bool)
        # Values of a record in summary order: fast batches by slot, then the protobuf path's
        # points (already in record and slot order; no record is in both).
        batches = [self._kept(batch, scalar_tag) for batch in sorted(self.batches, key=lambda b: b.slot)]
        batches.append(self._kept(self._slow_batch(), scalar_tag))
        self.batches = []
        batches = [batch for batch in batches if batch.records.size]
        if batches:
            self._append(batches)
        self._resolve_tensors()

    def _append(self, batches: list[_Batch]) -> None:
        def joined(name: str) -> np.ndarray:
            """One column of all batches; the batches let go of it (so a column's parts
            are freed once it is placed, whichever batches shared them)."""
            parts = [getattr(batch, name) for batch in batches]
            for batch in batches:
                setattr(batch, name, _EMPTY)
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        # One stable sort merges the batches (each sorted by record) into file order.
        order = None if len(batches) == 1 else np.argsort(joined("records"), kind="stable")
        local_codes = joined("codes")
        # Tags with their first points in this window take the next codes, in first-seen order.
        local_tags = list(self.tag_codes)
        present = np.flatnonzero(np.bincount(local_codes, minlength=len(local_tags))).tolist()
        new = [code for code in present if self.final_codes[code] < 0]
        for code in sorted(new, key=lambda code: self.first_seen[local_tags[code]]):
            self.final_codes[code] = len(self.tags)
            self.tags.append(local_tags[code])
        codes = np.array(self.final_codes, np.int32).take(local_codes)
        del local_codes
        # Column by column, so that the transient arrays of one column exist at a time.
        slots = self.points.grow(codes.size)
        _place(codes, order, slots[0])
        del codes
        for name, out in zip(("steps", "wall_times", "values"), slots[1:]):
            _place(joined(name), order, out)

    def _kept(self, batch: _Batch, scalar_tag: np.ndarray) -> _Batch:
        """The batch without tensor values of tags outside the scalars plugin: counted as
        skipped, or as unresolved while their tag has no plugin yet."""
        if batch.is_tensor is False:
            return batch
        keep = scalar_tag.take(batch.codes)
        if batch.is_tensor is not True:  # a mask: the protobuf path's mix of both
            keep |= ~batch.is_tensor
        if bool(keep.all()):
            return batch
        local_tags = list(self.tag_codes)
        for code, count in enumerate(np.bincount(batch.codes[~keep], minlength=len(local_tags)).tolist()):
            if not count:
                continue
            tag = local_tags[code]
            if self._plugin_of(tag):
                self._skip_tensor(tag, count)
            else:
                self.unresolved_scalars[tag] = self.unresolved_scalars.get(tag, 0) + count
        return _Batch(
            batch.records[keep],
            batch.slot,
            batch.codes[keep],
            batch.steps[keep],
            batch.wall_times[keep],
            batch.values[keep],
            True,
        )

    def _slow_batch(self) -> _Batch:
        """The protobuf path's points as one batch."""
        slow = self.slow
        return _Batch(
            np.frombuffer(slow.records, np.int64),
            0,
            np.frombuffer(slow.codes, np.int64).astype(np.int32),
            np.frombuffer(slow.steps, np.int64),
            np.frombuffer(slow.wall_times, np.float64),
            np.frombuffer(slow.values, np.float64),
            np.frombuffer(slow.is_tensor, np.int8).astype(bool),
        )

    def _resolve_tensors(self) -> None:
        """Histograms (TF2 tensor form) of the window; other tensors are counted as skipped,
        or as unresolved while their tag has no plugin yet.  The tags of fast-path blocks and
        single tensors are judged in file order, so that the skip note names tags as the
        protobuf path alone would."""
        units: list[tuple[int, str, int, Callable[[], None]]] = [  # (first record, tag, tensors, keep)
            (self.first_record + record, tag, 1, partial(self._keep_tensor, self.first_record + record, tag, step,
                                                         wall_time, tensor))
            for record, tag, step, wall_time, tensor in self.pending_tensors
        ]
        kept: list[np.ndarray] = []  # per block, whether each of its tags is kept
        for block in self.pending_tensor_blocks:
            kept.append(np.zeros(len(block.tags), bool))
            present, firsts, counts = np.unique(block.codes, return_index=True, return_counts=True)
            for code, first, count in zip(present.tolist(), firsts.tolist(), counts.tolist()):
                units.append((int(block.records[first]), block.tags[code], count,
                              partial(kept[-1].__setitem__, code, True)))
        for _, tag, count, keep in sorted(units, key=lambda unit: unit[0]):
            plugin = self._plugin_of(tag)
            if not plugin:
                self.unresolved_tensors[tag] = self.unresolved_tensors.get(tag, 0) + count
            elif plugin == HISTOGRAMS_PLUGIN:
                keep()
            elif plugin == SCALARS_PLUGIN:
                self.tally.add("malformed", tag, count)
            else:
                self._skip_tensor(tag, count)
        for block, kept_tags in zip(self.pending_tensor_blocks, kept):
            if bool(kept_tags.all()):
                self.histograms.add_block(block)
            elif kept_tags.any():
                self.histograms.add_block(block.subset(kept_tags.take(block.codes)))

    def _keep_tensor(self, record: int, tag: str, step: int, wall_time: float, tensor: tensor_pb2.TensorProto) -> None:
        """A single tensor of a tag of the histograms plugin: its histogram, or a malformed one."""
        histogram = _tensor_histogram(step, wall_time, tensor)
        if histogram is None:
            self.tally.add("malformed", tag)
        else:
            self.histograms.add(tag, record, histogram)
