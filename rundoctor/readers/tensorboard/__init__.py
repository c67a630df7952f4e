"""TensorBoard event files: every scalar point, every histogram, and what could not be read.

Scalars come as ``simple_value`` (PyTorch, tensorboardX, TF1) or as one-element numeric
tensors of the ``scalars`` plugin (TF2, Keras, JAX), any dtype, in ``tensor_content`` or
in the typed fields.  TF2 often writes the plugin metadata only on a tag's first value, so
a tag's plugin is the one named by the first metadata logged for it in the run, and it
applies to all the tag's values (should it come after values of the tag, in a later window
of the file, the file is read again knowing it).

Speed.  Decoding each record with protobuf reaches ~0.2-0.5M points/s; the fast path reads
~5M/s.  The records of one writer repeat a few layouts.  Records are grouped by length; in
each group the first record is decoded as a template by a small wire-format walker, which
finds where the wall time, the step varint and the values sit, and the walker's reading is
checked against protobuf's parse of the same bytes.  The group's records are gathered into
one ``(records, length)`` byte array (the only copy of their bytes) and compared with the
template, word by word, on every byte but those fields; records with other tags of the same
layout are told apart by a hash of those bytes, each hash bucket getting its own template,
and records of another layout wait for a later round or fall back to protobuf.  Fields are
then read for all matching records at once through strided views, and one stable sort
merges the groups back into file order.  Histogram events (HistogramProto, and TF2's
[k, 3] tensors) take the same way with templates of their own (:mod:`.histograms`): with
the same tag and bucket count, records differ only in their numbers, so a layout's bucket
edges and counts are read as ``(records, buckets)`` arrays straight from the record bytes
(their payload checksums a chunk of records at a time, as nearly every byte varies).  A template
found in one window is found again in the next by its fixed bytes, without being walked
and parsed again.  A tag's histograms are kept as :class:`rundoctor.series.HistogramColumns`
(flat edges and counts, one column per number), which make a ``Histogram`` only when a
check asks for one.  Other records (images, graphs, text, anything unusual) take the
protobuf path, which ``reference=True`` forces for every record: the tests compare the two
bit for bit.

Checksums.  Length checksums are always verified (see :mod:`rundoctor.readers.tfrecord`).
Payload checksums are verified too, always: for fast-path records from the
template's CRC and one table lookup per variable byte, for the others with ``google_crc32c``
(a dependency for this: the C crc32c with wheels for every platform; a pure-Python CRC costs
~0.13 s per MB, a third of tensorboard's own loading time without TensorFlow).
Measured on the 2M-point benchmark run (2 slow cores), verification costs ~45 ms of a
~350 ms read (CPU time): less than the fifth of the read time allowed for doing it always.

Measured (CPU time, make_logs.py workloads at scale 1): 2M simple_value points read in
~0.35 s in process (~0.9 s for a fresh interpreter, imports included) where tensorboard's
EventAccumulator takes 40 s; 0.5M TF2 tensor points in ~0.12 s (EventAccumulator 14 s).
100 layers x 1,000 steps of histograms (``bench/histograms.py``) read in ~0.15 s in process
in either encoding, where the protobuf path took ~2 s (HistogramProto) and ~3.5 s (TF2).

Memory.  A file is read in windows of 16 MiB through one reused buffer (``readinto``), not
mapped: mapped pages that were touched count in the process's memory, so a mapped 1 GB file
costs 1 GB, and a mapped file that another process truncates kills the reader (SIGBUS)
where a read just comes back short.  A record cut by a window's end is carried into the
next window; each window goes through the whole machinery above, and its points are
appended, in file order, to four growing columns (int32 tag code, int64 step, float64 wall
time and value: 28 bytes a point, nothing per point in Python objects).  A window's own
arrays are freed before the next one.  Measured on a 1 GB file of 20M points: peak RSS
645 MB for reading it (560 MB of points, 32 MB of imports), where mapping it whole and
merging at the end took 3.2 GB; the read time is unchanged.  A file that grows while it is
read is read up to the size it had when reading started.

Following a file that is still being written (``rundoctor watch``):
:func:`read_event_file_increment` reads only the bytes after an offset, leaves a record
still being written for the next read, and carries in an :class:`EventFileState` what later
records depend on.

Damage.  A file cut at any byte yields the records before the cut and a ``truncated`` note;
a corrupt header, a payload checksum mismatch or an undecodable record yields a ``corrupt``
note with its offset, and reading goes on at the next valid record.  A record whose payload
checksum fails may have lost or gained bytes, so its length is not trusted: reading resumes
at the first intact record after its header (records inside the span its length claims
included), which the decoder, finding the mismatch, has the window walked again to do.

Garbage.  Stretches of zeros or random bytes between records are passed over at close to
memory speed (a 4 GB zero-filled file, as a crashed file system leaves, is judged in about a
second of CPU: see ``bench/hostile.py``); a header claiming more than 256 MiB is damage, its
length never allocated; and a file made to be slow (headers that verify over payloads that
do not) costs a bounded amount of work (see :mod:`rundoctor.readers.tfrecord`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePath

from rundoctor.readers.base import Reader, RunSource, deferred
from rundoctor.series import Run

# Keras TF2 writes these sibling folders under one run folder: they make ONE run, each
# tag carrying its split.
KERAS_SPLITS = ("train", "validation")


def is_event_file(name: str) -> bool:
    """TensorBoard's own test: the file name contains ``tfevents`` (``*.profile-empty`` too)."""
    return "tfevents" in PurePath(name).name


def _read(source: RunSource) -> Run:
    return _read_run(source.path, source.files)


# Imported when a run is first read (protobuf and TensorBoard's protos with them).
_read_run: Callable[[Path, Sequence[tuple[Path, str]]], Run] = deferred(
    "rundoctor.readers.tensorboard.assembly", "read_tensorboard_run"
)


def _group(event_files: Sequence[Path], explicit: bool) -> list[RunSource]:
    """One run per folder of event files, Keras ``train/`` + ``validation/`` siblings merged;
    a file named on the command line is a run of its own (its folder's)."""
    if explicit:
        return [RunSource("tensorboard", path.parent, [(path, "")]) for path in event_files]
    by_folder: dict[Path, list[Path]] = {}
    for path in event_files:
        by_folder.setdefault(path.parent, []).append(path)
    groups: dict[Path, list[tuple[Path, str]]] = {}
    for directory in sorted(by_folder):
        files = sorted(by_folder[directory], key=_event_file_order)
        split = directory.name
        if split in KERAS_SPLITS and directory.parent not in by_folder:
            groups.setdefault(directory.parent, []).extend((f, f"{split}/") for f in files)
        else:
            groups.setdefault(directory, []).extend((f, "") for f in files)
    return [RunSource("tensorboard", path, files) for path, files in groups.items()]


def _event_file_order(path: Path) -> tuple[int, str]:
    """Event files sort by the creation time in their name (events.out.tfevents.<time>...)."""
    parts = path.name.split("tfevents.", 1)
    stamp = parts[1].split(".", 1)[0] if len(parts) == 2 else ""
    return (int(stamp) if stamp.isdigit() else 0, path.name)


READER = Reader(
    "tensorboard", _read, deferred("rundoctor.readers.tensorboard.follow", "follow_event_files"),
    claims_name=is_event_file, group=_group,
)
