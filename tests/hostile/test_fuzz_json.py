"""Hostile JSON logs of every flavour: cut, junk, stray bytes; never a crash, never a lost record.

JSON lines (generic, detectron2, wandb, mmengine, mmdetection): each example writes a small log
from hypothesis-drawn records (any floats, NaN and infinities included, integers beyond
float64's exact range, strings, bools and nulls that are no points, a non-finite float's name
in a string, which is one, nested objects), damages it once or twice (a junk value, a dropped
or added member, a blank line, a BOM, CRLF line ends, latin-1 bytes, a line written twice, or
bytes cut, flipped, inserted, deleted or duplicated), reads it with the flavour's reader and
checks:

1. only :class:`UnreadableInput` escapes, and never while a record before the damage has points;
2. the records on lines before the first damaged line are read, exactly (tag, step, value
   bits; each tag in log order);
3. the first damaged line is reported by its number when it is no JSON object (corrupt, or
   truncated when it is a cut last line), holds bytes that are not UTF-8, or lacks a usable
   step;
4. damage that changes nothing JSON lines mean (a BOM at the start, CR before line ends,
   blank lines) reads exactly as the undamaged file, without damage notes.

Documents (Hugging Face ``trainer_state.json``, a Keras history): the same damage at the byte
level (and a BOM, CRLF, blank lines, latin-1 bytes), and:

1. only :class:`UnreadableInput` escapes, and never while a record before the damage is complete;
2. every ``log_history`` record (every history value) whose closing delimiter comes before the
   first damaged byte is read, exactly;
3. a document that no longer parses gets a corrupt or truncated note naming a line, and bytes
   that are not UTF-8 a note naming the line;
4. damage that leaves the same document (a repeated name resolved as the reader promises: a
   top-level list keeps its first copy, anything else its last) reads exactly as the
   undamaged file, without damage notes.

Damage of three classes once hid records or went unreported (a comma before a closing
bracket, a member written twice, bytes that are not UTF-8); each keeps a fuzz test of its own
class and a minimal case, below, since random damage rarely makes them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.json import READERS
from rundoctor.series import NoteKind
from tests.hostile.corpus import (
    BOM,
    BYTE_KINDS,
    DAMAGE_KINDS,
    LATIN1,
    LINE_KINDS,
    FieldCodec,
    Point,
    assert_consistent,
    assert_same_points,
    assert_tag_prefixes,
    common_prefix,
    fuzz_settings,
    note_lines,
    notes_about,
    point,
    text_damage,
)

READER = {reader.name: reader for reader in READERS}
NUMBERS = st.floats() | st.integers(-(2**70), 2**70)
NOT_POINTS = st.booleans() | st.none() | st.text(max_size=4)
NAMED = st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf"])
# A non-finite float's name in a string is a point: what a writer that cannot put NaN in JSON writes.
NON_FINITE = {f"{sign}{name}": float(f"{sign}{name}") for sign in ("", "+", "-") for name in ("nan", "inf", "infinity")}
STEPS = st.integers(-(2**31), 2**53)
JSON_SPACE = b" \t\r"  # what JSON allows around a value on a line (LF ends the line)


def as_float(value: int | float) -> float:
    """A JSON number as float64, as the readers take it (an integer beyond range is infinite)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def number(value: object) -> float | None:
    """A JSON value as a point's value, None when it is no number (bools are not numbers, a
    string is one only when it names a non-finite float)."""
    if isinstance(value, str):
        return NON_FINITE.get(value.lower())
    return as_float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def usable_step(step: float) -> bool:
    return math.isfinite(step) and step == math.floor(step) and abs(step) < 2.0**62


# ---------------------------------------------------------------------------------------------
# JSON lines
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileWide:
    """What the whole file decides for each of its records (mmdetection and mmengine): the
    epoch length, the largest iter logged, on which a train record's step depends; and the
    keys train records log, a validation record's key being named ``val/<key>`` when it is
    one of them.  Damage on a later line can change both, and so earlier records' points."""

    iters_per_epoch: float = math.nan
    train_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LineRecord:
    """One line of a log: the numbers that are points and where they go."""

    values: tuple[tuple[str, float], ...] = ()  # (tag, value)
    step: float = math.nan
    epoch_iter: tuple[float, float] | None = None  # mmdet train records: (epoch - 1) * E + iter
    on_epochs: bool = False  # a validation record of mmdetection or mmengine

    def points(self, wide: FileWide) -> list[Point]:
        step = self.step
        if self.epoch_iter is not None:
            epoch, inner = self.epoch_iter
            step = (epoch - 1) * wide.iters_per_epoch + inner
        if not usable_step(step):
            return []
        renamed = wide.train_keys if self.on_epochs else frozenset()
        return [point(f"val/{tag}" if tag in renamed else tag, int(step), value) for tag, value in self.values]


@dataclass(frozen=True)
class LineLog:
    """A generated JSON-lines log: its bytes and what each line holds."""

    name: str
    data: bytes
    records: tuple[LineRecord, ...]  # one per line
    step_key: str | None  # the key every record must have a usable step under (None: mmdet)


def _members(draw: st.DrawFn, names: Sequence[str]) -> dict[str, Any]:
    """Some of ``names`` with numbers, and maybe a member that is no point.  Which ones is one
    draw (a bit mask), not one per name: drawing is most of an example's cost."""
    present = draw(st.integers(0, 2 ** (len(names) + 1) - 1))
    members: dict[str, Any] = {name: draw(NUMBERS) for bit, name in enumerate(names) if present >> bit & 1}
    if present >> len(names) & 1:
        members["note"] = draw(NOT_POINTS | NAMED)
    return members


def _numbers_of(members: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """The members that are points: numbers (not bools) and names of non-finite floats."""
    return tuple((key, value) for key, value in ((key, number(value)) for key, value in members.items())
                 if value is not None)


# Each flavour's file name and the key every record needs a usable step under (mmdetection's
# steps come from epoch and iter).
LINE_FILES: dict[str, tuple[str, str | None]] = {
    "jsonl": ("log.jsonl", "step"),
    "detectron2-json": ("metrics.json", "iteration"),
    "wandb-jsonl": ("wandb-history.jsonl", "_step"),
    "mmengine-json": ("scalars.json", "step"),
    "mmdet-json": ("None.log.json", None),
}


@st.composite
def line_logs(draw: st.DrawFn, flavour: str) -> LineLog:
    """Up to eight records of one flavour (mmdetection's after its environment record)."""
    lines: list[dict[str, Any]] = []
    records: list[LineRecord] = []
    count = draw(st.integers(0, 8))
    if flavour == "mmdet-json":
        lines.append({"env_info": "sys.platform: linux", "config": "model = dict()", "seed": 42})
        records.append(LineRecord())
        per_epoch = draw(st.integers(1, 500))
        for _ in range(count):
            epoch = draw(st.integers(1, 12))
            if draw(st.booleans()):
                inner = draw(st.integers(1, per_epoch))
                members = _members(draw, ["lr", "loss", "loss_cls", "time"])
                lines.append({"mode": "train", "epoch": epoch, "iter": inner, **members})
                records.append(LineRecord(_numbers_of(members), epoch_iter=(epoch, inner)))
            else:  # validation: iter is the epoch length; points on the epoch axis
                members = _members(draw, ["bbox_mAP", "bbox_mAP_50"])
                lines.append({"mode": "val", "epoch": epoch, "iter": per_epoch, **members})
                records.append(LineRecord(_numbers_of(members), float(epoch), on_epochs=True))
        return _line_log(*LINE_FILES[flavour], lines, records)
    for _ in range(count):
        step = draw(STEPS)
        if flavour == "jsonl":
            members = _members(draw, ["loss", "acc", "lr", "grad_norm"])
            if draw(st.booleans()):
                members["val"] = {"loss": draw(NUMBERS), "acc": draw(NOT_POINTS)}
            record = {"step": step, **members}
            flat = {**{k: v for k, v in members.items() if k != "val"},
                    **{f"val/{k}": v for k, v in members.get("val", {}).items()}}
            lines.append(record)
            records.append(LineRecord(_numbers_of(flat), float(step)))
        elif flavour == "detectron2-json":
            members = _members(draw, ["total_loss", "loss_cls", "lr", "data_time", "bbox/AP"])
            lines.append({"iteration": step, **members})
            records.append(LineRecord(_numbers_of(members), float(step)))
        elif flavour == "wandb-jsonl":
            members = _members(draw, ["loss", "val/acc", "lr"])
            lines.append({"_step": step, "_timestamp": 1.7e9 + step % 1000, "_runtime": 1.5, "epoch": 1, **members})
            records.append(LineRecord(_numbers_of(members), float(step)))
        else:  # mmengine: train records have lr or loss; validation records count epochs in step
            train = draw(st.booleans())
            if train:
                members = {"lr": draw(NUMBERS), **_members(draw, ["loss", "data_time", "time"])}
                lines.append({**members, "epoch": 1, "iter": step, "step": step})
            else:
                members = _members(draw, ["coco/bbox_mAP", "coco/bbox_mAP_50"])
                lines.append({**members, "step": step})
            records.append(LineRecord(_numbers_of(members), float(step), on_epochs=not train))
    return _line_log(*LINE_FILES[flavour], lines, records)


def _line_log(name: str, step_key: str | None, lines: list[dict[str, Any]], records: list[LineRecord]) -> LineLog:
    return LineLog(name, "".join(json.dumps(line) + "\n" for line in lines).encode(), tuple(records), step_key)


def _split_members(line: bytes) -> list[bytes] | None:
    """A JSON line's members as ``"key": value`` pieces (None: not an object any more)."""
    try:
        record = json.loads(line.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    if type(record) is not dict:
        return None
    return [json.dumps({key: value})[1:-1].encode() for key, value in record.items()]


MEMBERS = FieldCodec(split=_split_members, join=lambda members: b"{" + b", ".join(members) + b"}")
# A junk member: a value that is no JSON, or a member that is not one.
JUNK = [b'"loss": 0.5.5', b'"loss": tru', b'"loss": NaNa', b'"loss": 1e', b'"lr": --1', b'"acc": [1, 2', b'"x" 1',
        b'"step": "12"', b'"loss": {"a": ']
EXTRA = [b'"extra_metric": 7.5', b'"flag": true', b'"extra_metric": NaN', b'"nested": {"a": 1}']


def json_lines(data: bytes) -> list[bytes]:
    """The lines of a JSON-lines file as the reader numbers them (LF ends a line)."""
    lines = data.removeprefix(BOM).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def lines_meaning(data: bytes) -> list[bytes]:
    return [line.strip(JSON_SPACE) for line in json_lines(data) if line.strip(JSON_SPACE)]


def first_changed_line(original: bytes, damaged: bytes) -> int | None:
    before, after = json_lines(original), json_lines(damaged)
    for number, (old, new) in enumerate(zip(before, after, strict=False), start=1):
        if old.strip(JSON_SPACE) != new.strip(JSON_SPACE):
            return number
    return None if len(before) == len(after) else min(len(before), len(after)) + 1


def file_wide(data: bytes, flavour: str) -> FileWide:
    """What the damaged file decides for each record, by the rules the readers document: an
    mmdetection record with a mode counts toward the epoch length and is a train record when
    the mode is "train"; an mmengine record is a train record when it logs lr or loss."""
    records = []
    for line in json_lines(data):
        try:
            record = json.loads(line.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            continue
        if type(record) is dict:
            records.append(record)
    if flavour == "mmdet-json":
        moded = [record for record in records if type(record.get("mode")) is str]
        iters = [_number_or_nan(record, "iter") for record in moded]
        per_epoch = max((inner for inner in iters if math.isfinite(inner)), default=math.nan)
        train = [record for record in moded if record["mode"] == "train"
                 and usable_step((_number_or_nan(record, "epoch") - 1) * per_epoch + _number_or_nan(record, "iter"))]
        axis_keys = {"epoch", "iter"}
    elif flavour == "mmengine-json":
        per_epoch = math.nan
        train = [record for record in records if (number(record.get("lr")) is not None
                 or number(record.get("loss")) is not None) and usable_step(_number_or_nan(record, "step"))]
        axis_keys = {"step", "epoch", "iter"}
    else:
        return FileWide()
    keys = {key for record in train for key, value in record.items() if number(value) is not None} - axis_keys
    return FileWide(per_epoch, frozenset(keys))


def _number_or_nan(record: dict[str, Any], key: str) -> float:
    value = number(record.get(key))
    return math.nan if value is None else value


def line_problem(log: LineLog, raw: bytes) -> str | None:
    """Why a damaged line cannot be read as a record (a reader must say so), or None."""
    if not raw.strip():
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    try:
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return "no JSON"
    if type(record) is not dict:
        return "not an object"
    if log.step_key is None:
        return None
    step = number(record.get(log.step_key))
    if step is None or not usable_step(step):
        return "no usable step"
    return None


LINE_FLAVOURS = ("jsonl", "detectron2-json", "wandb-jsonl", "mmengine-json", "mmdet-json")


@pytest.mark.parametrize("flavour", LINE_FLAVOURS)
@fuzz_settings(examples=400)
@given(case=st.data())
def test_damaged_json_lines(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(line_logs(flavour), label="log")
    _, damaged = case.draw(text_damage(log.data, MEMBERS, BYTE_KINDS + LINE_KINDS, JUNK, EXTRA), label="damage")
    path = tmp_path / log.name
    path.write_bytes(damaged)
    wide = file_wide(damaged, flavour)
    first = first_changed_line(log.data, damaged)
    before = [p for record in log.records[: (first or len(log.records) + 1) - 1] for p in record.points(wide)]

    # 1. Only UnreadableInput escapes, and only when no record before the damage has points.
    try:
        run = READER[flavour].read_file(path)
    except UnreadableInput as error:
        assert str(error) and not before, f"records before the damage, yet nothing was read: {error}"
        return
    assert_consistent(run, format=flavour, source=path, lines=len(json_lines(damaged)))

    # 4. Damage that means nothing to JSON lines changes nothing.
    if lines_meaning(damaged) == lines_meaning(log.data):
        assert_same_points(run, [p for record in log.records for p in record.points(wide)])
        assert notes_about(run, path) == [], "an intact file reported as damaged"
        return

    # 2. Every record before the first damaged line, exactly.
    assert_tag_prefixes(run, before)

    # 3. The first damaged line reported by its number when it is no readable record.
    lines = json_lines(damaged)
    if first is not None and first <= len(lines):
        why = line_problem(log, lines[first - 1])
        if why is not None:
            kinds = (*DAMAGE_KINDS, NoteKind.INFO) if why == "not UTF-8" else DAMAGE_KINDS
            assert any(first in note_lines(note.location) for note in notes_about(run, path, kinds)), (
                f"line {first} ({why}) is not reported: {run.notes}")


# ---------------------------------------------------------------------------------------------
# Documents: trainer_state.json and a Keras history
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentLog:
    """A generated document and its items (log_history records, history values): a reader
    may count an item only once the delimiter after it is read."""

    name: str
    data: bytes
    items: tuple[tuple[tuple[Point, ...], int], ...]  # (points, offset of the delimiter closing it)


def _indented(value: Any, indent: str) -> str:
    return json.dumps(value, indent=2).replace("\n", "\n" + indent)


@st.composite
def trainer_states(draw: st.DrawFn) -> DocumentLog:
    """A trainer_state.json as the Trainer writes it: indent 2, log_history records over lines."""
    text = '{\n  "best_metric": null,\n  "epoch": 1.5,\n  "global_step": 30,\n  "log_history": ['
    items = []
    count = draw(st.integers(0, 8))
    for index in range(count):
        step = draw(STEPS)
        names = draw(st.sampled_from([["learning_rate", "loss", "grad_norm"], ["eval_loss", "eval_runtime"],
                                      ["train_loss", "train_runtime", "total_flos"]]))
        members = _members(draw, names)
        record = {"epoch": draw(NUMBERS), **members, "step": step}
        text += ("\n    " if index == 0 else " ") + _indented(record, "    ")
        delimiter = len(text.encode())
        text += "," if index < count - 1 else "\n  ]"
        if index == count - 1:
            delimiter = len(text.encode()) - 1
        items.append((tuple(point(tag, step, value) for tag, value in _numbers_of(members)), delimiter))
    text += ("]" if not count else "") + ',\n  "max_steps": 30,\n  "total_flos": 1e15\n}\n'
    return DocumentLog("trainer_state.json", text.encode(), tuple(items))


@st.composite
def keras_histories(draw: st.DrawFn) -> DocumentLog:
    """``json.dump(history.history, f)``, with or without an indent."""
    keys = draw(st.lists(st.sampled_from(["loss", "accuracy", "val_loss", "val_accuracy", "lr"]), min_size=1,
                         max_size=4, unique=True))
    indent = draw(st.booleans())
    text, items = "{", []
    for number, key in enumerate(keys):
        values = draw(st.lists(NUMBERS, max_size=6))
        text += ("\n    " if indent else "" if number == 0 else " ") + json.dumps(key) + ": ["
        for index, value in enumerate(values):
            text += ("\n        " if indent else "" if index == 0 else " ") + json.dumps(value)
            last = index == len(values) - 1
            text += ("\n    ]" if indent else "]") if last else ","
            items.append(((point(key, index, as_float(value)),), len(text.encode()) - 1))
        if not values:
            text += "]"
        text += "," if number < len(keys) - 1 else ("\n}" if indent else "}")
    return DocumentLog("history.json", text.encode(), tuple(items))


class _Members(list):
    """An object's (name, value) pairs as written, repeats included."""


def _document_as_read(value: Any, *, top: bool = False) -> Any:
    """A parsed value with repeated names resolved as JSON does (the last wins), except a
    top-level list written again, which keeps its first copy: points already read are never
    replaced by a later copy (what the reader promises)."""
    if isinstance(value, _Members):
        members: dict[str, Any] = {}
        for name, member in value:
            if not (top and isinstance(members.get(name), list)):
                members[name] = _document_as_read(member)
        return members
    if isinstance(value, list):
        return [_document_as_read(item) for item in value]
    return value


def same_document(original: bytes, damaged: bytes) -> bool:
    """Whether the damaged bytes still spell the original JSON document."""
    try:
        documents = [json.loads(data.removeprefix(BOM).decode("utf-8"), object_pairs_hook=_Members)
                     for data in (original, damaged)]
        first, second = (json.dumps(_document_as_read(document, top=True)) for document in documents)
    except (ValueError, RecursionError):
        return False
    return first == second


def parses(damaged: bytes) -> bool:
    """Whether the damaged bytes are still one JSON document (bytes not UTF-8 replaced)."""
    try:
        json.loads(damaged.removeprefix(BOM).decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return False
    return True


DOCUMENT_KINDS = (*BYTE_KINDS, "blank", "bom", "crlf", "latin1")
NO_FIELDS = FieldCodec(split=lambda line: None, join=b"".join)
DOCUMENTS = {"hf-trainer": trainer_states, "keras-history-json": keras_histories}
# Tokens a JSON document breaks on, as an editor or a crash leaves them.
DOCUMENT_GARBAGE = st.sampled_from([b"}", b"]", b",", b"{", b'"', b"NaN", b"oops", b"\x00", b":", b"[1,"]) | st.binary(
    min_size=1, max_size=8)


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_document(path: Path, flavour: str, log: DocumentLog, damaged: bytes) -> None:
    """Read a damaged document and check what must hold of it."""
    path.write_bytes(damaged)
    start = common_prefix(log.data, damaged)
    before = [p for points, delimiter in log.items if delimiter < start for p in points]
    complete_before = any(delimiter < start for _, delimiter in log.items)

    # 1. Only UnreadableInput escapes, and only when no record before the damage is complete.
    try:
        run = READER[flavour].read_file(path)
    except UnreadableInput as error:
        assert str(error) and not complete_before, f"complete records before the damage, yet nothing was read: {error}"
        return
    assert_consistent(run, format=flavour, source=path, lines=damaged.count(b"\n") + 1)

    # 4. The same document, however spelt, reads the same.
    if same_document(log.data, damaged):
        assert_same_points(run, [p for points, _ in log.items for p in points])
        assert notes_about(run, path) == [], "an intact file reported as damaged"
        return

    # 2. Every record closed before the damage, exactly.
    assert_tag_prefixes(run, before)

    # 3. A document that no longer parses, or holds bytes that are not UTF-8, is reported by line
    # (a file cut to nothing is an empty file, and says so).
    if not damaged.removeprefix(BOM).strip():
        assert any("empty" in note.message for note in run.notes), run.notes
    elif not parses(damaged):
        damage = notes_about(run, path, (NoteKind.CORRUPT, NoteKind.TRUNCATED))
        assert any(note_lines(note.location) for note in damage), f"an unreadable document is not reported: {run.notes}"
    if not is_utf8(damaged):
        assert any("UTF-8" in note.message and note_lines(note.location) for note in run.notes), run.notes


@pytest.mark.parametrize("flavour", DOCUMENTS)
@fuzz_settings(examples=1000)
@given(case=st.data())
def test_damaged_json_document(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(DOCUMENTS[flavour](), label="document")
    _, damaged = case.draw(text_damage(log.data, NO_FIELDS, DOCUMENT_KINDS, [b""], [b""], DOCUMENT_GARBAGE),
                           label="damage")
    check_document(tmp_path / log.name, flavour, log, damaged)


@pytest.mark.parametrize("flavour", DOCUMENTS)
@fuzz_settings(examples=20)
@given(case=st.data())
def test_bytes_that_are_not_utf8_are_located_by_line(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(DOCUMENTS[flavour](), label="document")
    at = case.draw(st.integers(0, len(log.data)), label="offset")
    damaged = log.data[:at] + case.draw(st.sampled_from(LATIN1), label="bytes") + log.data[at:]
    check_document(tmp_path / log.name, flavour, log, damaged)


def test_a_latin1_byte_in_trainer_state_is_located_by_line(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_bytes(b'{\n  "log_history": [{"loss": 1.0, "step": 1}],\n  "run_name": "caf\xe9"\n}\n')

    run = READER["hf-trainer"].read_file(path)

    assert run.curve("loss").values.tolist() == [1.0]
    (note,) = [note for note in run.notes if "UTF-8" in note.message]
    assert note.location == "line 3"


# ---------------------------------------------------------------------------------------------
# Damage that leaves valid values around it: read past, and reported.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", DOCUMENTS)
@fuzz_settings(examples=20)
@given(case=st.data())
def test_a_comma_before_a_closing_bracket_is_reported(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(DOCUMENTS[flavour](), label="document")
    at = case.draw(st.sampled_from([match.start() for match in re.finditer(rb"\s*[\]}]", log.data)]), label="offset")
    check_document(tmp_path / log.name, flavour, log, log.data[:at] + b"," + log.data[at:])


@pytest.mark.parametrize("flavour, data", [
    ("keras-history-json", b'{"loss": [0.5, 0.4,], "acc": [0.1, 0.2]}'),
    ("hf-trainer", b'{"log_history": [{"loss": 0.5, "step": 1}, {"loss": 0.4, "step": 2},]}'),
])
def test_a_value_deleted_before_a_closing_bracket_is_reported(tmp_path: Path, flavour: str, data: bytes) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(data)

    run = READER[flavour].read_file(path)

    assert run.curve("loss").values.tolist() == [0.5, 0.4]
    (note,) = notes_about(run, path)
    assert (note.kind, note.location) == (NoteKind.CORRUPT, "line 1") and "',' before ']'" in note.message


@fuzz_settings(examples=20)
@given(case=st.data())
def test_a_second_log_history_keeps_the_first(tmp_path: Path, case: st.DataObject) -> None:
    log = case.draw(trainer_states().filter(lambda log: log.items), label="document")
    copy = log.data[log.data.index(b'  "log_history"') :]
    at = log.data.index(b'  "max_steps"')
    cut = case.draw(st.integers(1, len(copy) - 1), label="cut")  # the copy was being written
    check_document(tmp_path / log.name, "hf-trainer", log, log.data[:at] + copy[:cut])


def test_a_second_cut_log_history_keeps_the_records_of_the_first(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    first = b'{"log_history": [{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}],\n'
    path.write_bytes(first + b' "log_history": [{"loss": 1.0, "st')

    run = READER["hf-trainer"].read_file(path)

    assert run.curve("loss").values.tolist() == [1.0, 0.5]
    (cut,) = notes_about(run, path)
    assert (cut.kind, cut.location) == (NoteKind.TRUNCATED, "line 2")


def test_a_second_complete_log_history_is_reported_and_the_first_kept(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_bytes(b'{"log_history": [{"loss": 1.0, "step": 1}],\n "log_history": [{"eval_loss": 2.0}]}')

    run = READER["hf-trainer"].read_file(path)

    assert run.tag_names == ["loss"] and run.curve("loss").values.tolist() == [1.0]
    (note,) = notes_about(run, path)
    assert (note.kind, note.location) == (NoteKind.CORRUPT, "line 2") and "other values" in note.message


def test_a_list_written_twice_alike_and_a_repeated_number_change_nothing(tmp_path: Path) -> None:
    """The same JSON document as without the copies: read alike, nothing to report."""
    path = tmp_path / "trainer_state.json"
    path.write_bytes(b'{"epoch": null, "epoch": 1.5, "log_history": [{"loss": NaN, "step": 1}],\n'
                     b' "log_history": [{"loss": NaN, "step": 1}]}')

    run = READER["hf-trainer"].read_file(path)

    assert run.points == 1 and notes_about(run, path) == []
    assert run.metadata["epoch"] == "1.5"
