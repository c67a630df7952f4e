"""W&B run files (``run-*.wandb``): written by the real wandb library in offline mode once per
test run, read back point for point, then cut, flipped and mangled.

The record framing is walked here independently of the reader (:func:`_records`), so that
"every complete record before the damage" is measured, not assumed.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rundoctor import discover
from rundoctor.checks.registry import REGISTRY
from rundoctor.config import Settings
from rundoctor.engine import diagnose
from rundoctor.readers import wandb_offline
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.wandb_offline import read_wandb_run
from rundoctor.series import NoteKind, Run

REPO = Path(__file__).resolve().parents[2]
WIDE_KEYS = 1600  # keys of one row of the wide run: a record of ~36 KB, more than a 32 KiB block

# What the runs log, row by row (wandb.log(row) each); NaN and inf as Python floats.
Rows = list[dict[str, Any]]


def _healthy() -> Rows:
    rng = np.random.default_rng(1)
    rows: Rows = []
    for step in range(300):
        row: dict[str, Any] = {"train": {"loss": 2.0 * math.exp(-step / 60) + 0.1 + 0.01 * float(rng.standard_normal())},
                               "lr": 1e-3, "epoch": step // 30, "flag": True, "note": "text"}
        if step % 10 == 0:
            row["val/loss"] = 2.0 * math.exp(-step / 60) + 0.15
        rows.append(row)
    return rows


def _diverging() -> Rows:
    rows: Rows = [{"train": {"loss": 2.0 * math.exp(-step / 60) + 0.1 if step < 120 else 0.3 * math.exp((step - 120) / 15)}}
                  for step in range(200)]
    rows += [{"train": {"loss": math.nan}} for _ in range(60)]
    rows[200]["train"]["loss"] = math.inf
    rows[201]["train"]["loss"] = -math.inf
    return rows


def _wide() -> Rows:
    return [{f"w/{key:04d}": float(row * WIDE_KEYS + key) for key in range(WIDE_KEYS)} for row in range(6)]


RUNS: dict[str, tuple[dict[str, Any], Rows]] = {
    "healthy": ({"lr": 0.001, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "tags": "baseline"}, _healthy()),
    "diverging": ({"lr": 3.0, "optimizer": {"name": "sgd"}}, _diverging()),
    "wide": ({"comment": "x" * 80_000}, _wide()),  # a run record of three blocks: first, middle, last chunks
}

WRITER = """
import json, sys, wandb
runs = json.load(open(sys.argv[1]))
settings = wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True, x_save_requirements=False)
for name, (config, rows) in runs.items():
    run = wandb.init(project="rundoctor-tests", name=name, config=config, settings=settings)
    for row in rows:
        run.log(row)
    if name == "healthy":
        run.config.update({"added_later": 1, "batch": {"size": 32}})
        run.log({"histogram": wandb.Histogram([1, 2, 3])})  # not a number: left out with a note
    run.finish()
"""


@pytest.fixture(scope="session")
def wandb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The run files the real wandb library writes for :data:`RUNS`, by run name."""
    pytest.importorskip("wandb", reason="the wandb package is not installed (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("wandb")
    spec = root / "runs.json"
    spec.write_text(json.dumps(RUNS))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(root), "WANDB_SILENT": "true",
           "WANDB_CONFIG_DIR": str(root / "config"), "WANDB_CACHE_DIR": str(root / "cache")}
    subprocess.run([sys.executable, "-c", WRITER, str(spec)], check=True, env=env, timeout=300,
                   capture_output=True)
    found = sorted((root / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(found) == len(RUNS)
    return {read_wandb_run(path).metadata["run_name"]: path for path in found}


@dataclass(frozen=True)
class Chunk:
    offset: int
    kind: int
    end: int


def _chunks(data: bytes) -> Iterator[Chunk]:
    """The chunks of an intact record log, walked by the format's definition."""
    pos = 7
    while pos < len(data):
        if wandb_offline.BLOCK - pos % wandb_offline.BLOCK < 7:
            pos += wandb_offline.BLOCK - pos % wandb_offline.BLOCK
            continue
        checksum, length, kind = struct.unpack_from("<IHB", data, pos)
        assert zlib.crc32(bytes([kind]) + data[pos + 7 : pos + 7 + length]) == checksum
        yield Chunk(pos, kind, pos + 7 + length)
        pos += 7 + length


def _records(data: bytes) -> list[tuple[int, int, Any]]:
    """(start, end, Record) of every record of an intact file."""
    from wandb.proto.wandb_internal_pb2 import Record

    records, start, parts = [], 0, b""
    for chunk in _chunks(data):
        if chunk.kind in (1, 2):
            start, parts = chunk.offset, b""
        parts += data[chunk.offset + 7 : chunk.end]
        if chunk.kind in (1, 4):
            records.append((start, chunk.end, Record.FromString(parts)))
    return records


def _logged_points(rows: Rows) -> dict[str, list[tuple[int, float]]]:
    """What each numeric key was logged as, flattened as the reader flattens it."""
    points: dict[str, list[tuple[int, float]]] = {}
    for step, row in enumerate(rows):
        flat = {f"{k}/{inner}" if isinstance(v, dict) else k: x
                for k, v in row.items() for inner, x in (v.items() if isinstance(v, dict) else [(None, v)])}
        for key, value in flat.items():
            if type(value) in (int, float) and key != "epoch":
                points.setdefault(key, []).append((step, float(value)))
    return points


def test_every_point_as_logged(wandb_files: dict[str, Path]) -> None:
    for name, (_, rows) in RUNS.items():
        run = read_wandb_run(wandb_files[name])
        logged = _logged_points(rows)
        assert run.format == "wandb" and set(run.tags) == set(logged), name
        for key, points in logged.items():
            curve = run.curve(key)
            assert curve.steps.tolist() == [step for step, _ in points]
            np.testing.assert_array_equal(curve.values, [value for _, value in points])  # NaN, +inf, -inf too
            assert np.all(np.diff(curve.wall_times) >= 0) and curve.wall_times[0] > 1.6e9  # _timestamp, seconds
        assert run.metadata["run_name"] == name and run.metadata["project"] == "rundoctor-tests"
    healthy = read_wandb_run(wandb_files["healthy"])
    assert "epoch" not in healthy.tags and not any(tag.startswith("_") for tag in healthy.tags)
    assert [note.message for note in healthy.notes] == [
        "1 value of histograms, media or tables (not numbers) skipped under histogram"]


def test_config_becomes_flat_hyperparameters(wandb_files: dict[str, Path]) -> None:
    metadata = read_wandb_run(wandb_files["healthy"]).metadata
    assert {key: metadata[key] for key in ("lr", "optimizer.name", "optimizer.betas", "tags", "added_later",
                                           "batch.size")} == {
        "lr": "0.001", "optimizer.name": "adam", "optimizer.betas": "[0.9, 0.999]", "tags": "baseline",
        "added_later": "1", "batch.size": "32"}
    assert not any(key.startswith("_wandb") for key in metadata)
    assert metadata["start"].endswith("Z") and len(metadata["run_id"]) == 8


def test_findings_of_a_healthy_and_a_diverging_run(wandb_files: dict[str, Path]) -> None:
    runs, errors = discover.load_runs([wandb_files["healthy"].parents[1]])
    assert not errors or all("symlink" in error.reason for error in errors)  # wandb links logs/debug-core.log out
    by_name = {run.metadata["run_name"]: run for run in runs}
    assert set(by_name) == set(RUNS) and all(run.format == "wandb" for run in runs)
    report = diagnose(runs, [], Settings(), REGISTRY)
    found = {(by_name_of(runs, f.run), f.check, f.severity.value) for f in report.findings}
    assert ("diverging", "non-finite", "error") in found
    assert not {entry for entry in found if entry[0] == "healthy" and entry[2] != "info"}


def by_name_of(runs: list[Run], run_id: str) -> str:
    return next(run.metadata["run_name"] for run in runs if run.id == run_id)


def _history_steps(run: Run) -> int:
    """History rows read: the wide run logs every key on every row."""
    return run.point_count("w/0000")


def test_records_span_blocks(wandb_files: dict[str, Path]) -> None:
    data = wandb_files["wide"].read_bytes()
    kinds = [chunk.kind for chunk in _chunks(data)]
    assert 2 in kinds and 3 in kinds and 4 in kinds  # first, middle and last chunks
    run = read_wandb_run(wandb_files["wide"])
    assert _history_steps(run) == 6 and not run.notes
    assert run.curve(f"w/{WIDE_KEYS - 1:04d}").values.tolist() == [float(row * WIDE_KEYS + WIDE_KEYS - 1) for row in range(6)]


def _cut_cases(data: bytes) -> Iterator[int]:
    """Cuts at every record end, one byte after it, inside a chunk header, mid-payload, and at
    each chunk boundary inside a record of several chunks."""
    for start, end, _ in _records(data):
        yield from (end, end + 1, start + 3, (start + end) // 2)
    yield from (chunk.end for chunk in _chunks(data) if chunk.kind in (2, 3))


def test_cut_anywhere_keeps_every_complete_record(wandb_files: dict[str, Path], tmp_path: Path) -> None:
    for name in ("wide", "diverging"):
        data = wandb_files[name].read_bytes()
        records = _records(data)
        cuts = sorted({cut for cut in _cut_cases(data) if 7 < cut < len(data)})
        cuts = cuts[:: max(1, len(cuts) // 25)]  # an even sample of each kind of cut keeps this a few seconds
        for cut in cuts:
            path = tmp_path / f"run-{name}.wandb"
            path.write_bytes(data[:cut])
            run = read_wandb_run(path)
            complete = [record for start, end, record in records if end <= cut]
            rows = sum(record.WhichOneof("record_type") == "history" for record in complete)
            key = "w/0000" if name == "wide" else "train/loss"
            assert run.point_count(key) == rows, (name, cut)
            ends = [end for _, end, _ in records]
            damage = [note for note in run.notes if note.kind in (NoteKind.TRUNCATED, NoteKind.CORRUPT)]
            if cut in ends:
                assert not damage, (name, cut)
            else:
                started = max([end for end in ends if end <= cut], default=7)
                assert [(note.kind, note.location, note.count) for note in damage] == [
                    (NoteKind.TRUNCATED, f"offset {started}", cut - started)], (name, cut)


def test_a_flipped_byte_loses_one_record(wandb_files: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(wandb_files["diverging"].read_bytes())
    records = _records(bytes(data))
    histories = [(start, end) for start, end, record in records if record.WhichOneof("record_type") == "history"]
    start, end = histories[100]
    data[(start + end) // 2] ^= 0x40
    path = tmp_path / "run-flipped.wandb"
    path.write_bytes(bytes(data))
    run = read_wandb_run(path)
    steps = run.curve("train/loss").steps.tolist()
    assert len(steps) == len(histories) - 1 and 100 not in steps and steps[-1] == 259
    [note] = run.notes
    assert note.kind is NoteKind.CORRUPT and note.location == f"offset {start}" and note.count == end - start
    assert note.message == f"a chunk's checksum does not match; resumed at offset {end}"


def test_a_broken_length_skips_to_the_next_block(wandb_files: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(wandb_files["diverging"].read_bytes())
    records = _records(bytes(data))
    start, _, _ = next(r for r in records if r[0] > 1000 and r[2].WhichOneof("record_type") == "history")
    struct.pack_into("<H", data, start + 4, 60_000)  # the chunk's length, past its block
    path = tmp_path / "run-length.wandb"
    path.write_bytes(bytes(data))
    run = read_wandb_run(path)
    resumed = next(s for s, _, record in records if s >= wandb_offline.BLOCK)
    lost = [record for s, _, record in records if start <= s < resumed and record.WhichOneof("record_type") == "history"]
    total = sum(record.WhichOneof("record_type") == "history" for _, _, record in records)
    assert run.point_count("train/loss") == total - len(lost)
    [note] = run.notes
    assert (note.kind, note.location, note.count) == (NoteKind.CORRUPT, f"offset {start}", resumed - start)


def test_zeroed_space_skips_to_the_next_block(wandb_files: dict[str, Path], tmp_path: Path) -> None:
    """Space a file was given but never written (a crash after the file grew): zeros where a
    chunk should start; reading resumes at the first record that starts in the next block."""
    data = bytearray(wandb_files["diverging"].read_bytes())
    records = _records(bytes(data))
    assert len(data) > 2 * wandb_offline.BLOCK
    start = next(s for s, _, _ in records if s > 1000)
    data[start : wandb_offline.BLOCK] = bytes(wandb_offline.BLOCK - start)
    path = tmp_path / "run-zeros.wandb"
    path.write_bytes(bytes(data))
    run = read_wandb_run(path)
    resumed = next(s for s, _, _ in records if s >= wandb_offline.BLOCK)
    [note] = run.notes
    assert (note.kind, note.location, note.count, note.message) == (
        NoteKind.CORRUPT, f"offset {start}", resumed - start, f"zeros where a chunk should start; resumed at offset {resumed}")


def test_a_record_that_is_no_protobuf(wandb_files: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(wandb_files["diverging"].read_bytes())
    start, end, _ = next(r for r in _records(bytes(data)) if r[2].WhichOneof("record_type") == "history")
    junk = b"\xff" * (end - start - 7)
    data[start : end] = struct.pack("<IHB", zlib.crc32(bytes([1]) + junk), len(junk), 1) + junk
    path = tmp_path / "run-junk.wandb"
    path.write_bytes(bytes(data))
    run = read_wandb_run(path)
    [note] = run.notes
    assert note.kind is NoteKind.CORRUPT and note.location == f"offset {start}" and "does not decode" in note.message
    assert run.point_count("train/loss") == 259


def test_not_a_wandb_file_and_empty_ones(tmp_path: Path) -> None:
    pytest.importorskip("wandb", reason="the wandb package is not installed (pip install -e '.[test]')")
    junk = tmp_path / "run-junk.wandb"
    junk.write_bytes(b"step,loss\n0,1\n")
    with pytest.raises(UnreadableInput, match="not a W&B run file"):
        read_wandb_run(junk)
    for size in (0, 3):
        cut = tmp_path / f"run-{size}.wandb"
        cut.write_bytes(b":W&B\xe1\xbe\x00"[:size])
        run = read_wandb_run(cut)
        assert run.points == 0 and [note.kind for note in run.notes] == [NoteKind.TRUNCATED]
    newer = tmp_path / "run-newer.wandb"
    newer.write_bytes(b":W&B\xe1\xbe\x07")
    with pytest.raises(UnreadableInput, match="version 7"):
        read_wandb_run(newer)


def test_without_wandb_the_file_is_skipped_with_the_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run_dir = tmp_path / "wandb" / "offline-run-1"
    run_dir.mkdir(parents=True)
    (run_dir / "run-abc.wandb").write_bytes(b":W&B\xe1\xbe\x00")
    (tmp_path / "log.csv").write_text("step,loss\n" + "".join(f"{s},{1 / (s + 1)}\n" for s in range(20)))
    for module in ("wandb", "wandb.proto", "wandb.proto.wandb_internal_pb2"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    runs, errors = discover.load_runs([tmp_path])
    assert [run.format for run in runs] == ["wide-csv"]
    assert [(Path(error.path).name, error.reason) for error in errors] == [("run-abc.wandb", wandb_offline.INSTALL_HINT)]


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damage_anywhere_never_escapes(wandb_files: dict[str, Path], tmp_path: Path, data: st.DataObject) -> None:
    """Random cuts, flips, junk and deletions: the reader raises nothing, reads every complete
    record before the first damaged byte, and reports damage at or after that byte."""
    name = data.draw(st.sampled_from(["wide", "diverging"]))
    original = wandb_files[name].read_bytes()
    at = data.draw(st.integers(8, len(original) - 1))
    mutation = data.draw(st.sampled_from(["cut", "flip", "junk", "delete"]))
    if mutation == "cut":
        damaged = original[:at]
    elif mutation == "flip":
        damaged = original[:at] + bytes([original[at] ^ data.draw(st.integers(1, 255))]) + original[at + 1 :]
    elif mutation == "junk":
        damaged = original[:at] + data.draw(st.binary(min_size=1, max_size=200)) + original[at:]
    else:
        damaged = original[:at] + original[at + data.draw(st.integers(1, 5000)) :]
    path = tmp_path / "run-fuzz.wandb"
    path.write_bytes(damaged)
    run = read_wandb_run(path)
    records = _records(original)
    intact = [record for _, end, record in records if end <= at]
    rows = sum(record.WhichOneof("record_type") == "history" for record in intact)
    assert run.point_count("w/0000" if name == "wide" else "train/loss") >= rows
    last_intact_end = max([end for _, end, _ in records if end <= at], default=7)
    for note in run.notes:
        if note.kind in (NoteKind.TRUNCATED, NoteKind.CORRUPT):
            assert note.location is not None and int(note.location.split()[1]) >= last_intact_end


def test_claims_by_name_only() -> None:
    assert wandb_offline.is_wandb_file("run-2x9k1.wandb")
    assert not wandb_offline.is_wandb_file("run-2x9k1.wandb.bak") and not wandb_offline.is_wandb_file("wandb")


def _write_log(path: Path, records: list[Any]) -> None:
    """A record log of ``records`` framed as wandb frames it: what wandb itself would not write."""
    out = bytearray(b":W&B\xe1\xbe\x00")
    for record in records:
        payload, first = record.SerializeToString(), True
        while True:
            left = wandb_offline.BLOCK - len(out) % wandb_offline.BLOCK
            if left < 7:
                out += bytes(left)
                continue
            piece, payload = payload[: left - 7], payload[left - 7 :]
            kind = (1 if first else 4) if not payload else (2 if first else 3)
            out += struct.pack("<IHB", zlib.crc32(bytes([kind]) + piece), len(piece), kind) + piece
            first = False
            if not payload:
                break
    path.write_bytes(bytes(out))


def _history(*items: tuple[str | list[str], str], step_num: int | None = None) -> Any:
    from wandb.proto.wandb_internal_pb2 import Record

    record = Record()
    for key, value_json in items:
        item = record.history.item.add()
        if isinstance(key, list):
            item.nested_key.extend(key)
        else:
            item.key = key
        item.value_json = value_json
    if step_num is not None:
        record.history.step.num = step_num
    return record


def test_rows_wandb_would_not_write(tmp_path: Path) -> None:
    pytest.importorskip("wandb", reason="the wandb package is not installed (pip install -e '.[test]')")
    from wandb.proto.wandb_internal_pb2 import Record

    config = Record()
    for key, value in (("a", "1"), ("opt", '{"lr": 0.1}'), ("bad", "{")):
        update = config.config.update.add()
        update.key, update.value_json = key, value
    config.config.remove.add().key = "a"
    records = [
        config,
        _history((["_step"], "0"), (["_timestamp"], "1.7e9"), (["a"], "1"), (["s"], '"NaN"'), (["t"], '"text"'),
                 (["l"], "[1, 2]"), (["img", "_type"], '"image-file"'), (["img", "width"], "28"), (["b"], "true")),
        _history((["a"], "2"), step_num=5),  # no _step: the record's own step
        _history((["_step"], "1.5"), (["a"], "3")),  # not a whole number
        _history((["_step"], "1e300"), (["a"], "4")),  # past what float64 holds exactly
        _history(("_step", "7"), ("k", "-Infinity"), ("big", "1" + "0" * 400)),  # key instead of nested_key
    ]
    path = tmp_path / "run-made.wandb"
    _write_log(path, records)
    run = read_wandb_run(path)
    assert run.tags == ["a", "s", "k", "big"]
    assert run.curve("a").steps.tolist() == [0, 5] and run.curve("a").values.tolist() == [1.0, 2.0]
    assert math.isnan(run.curve("s").values[0]) and run.curve("k").values.tolist() == [-math.inf]
    assert run.curve("big").values.tolist() == [math.inf]  # an integer past any double, as json reads it
    assert run.curve("a").wall_times[0] == 1.7e9 and math.isnan(run.curve("a").wall_times[1])
    assert [(note.kind, note.message, note.count) for note in run.notes] == [
        (NoteKind.SKIPPED, "2 history rows without a whole-number _step; skipped", 2),
        (NoteKind.SKIPPED, "2 values of histograms, media or tables (not numbers) skipped under img, l", 2),
        (NoteKind.SKIPPED, "configuration values that are not JSON skipped: bad", 1),
    ]
    assert run.metadata == {"opt.lr": "0.1"}


def test_a_record_of_many_blocks_written_here(tmp_path: Path) -> None:
    pytest.importorskip("wandb", reason="the wandb package is not installed (pip install -e '.[test]')")
    rows = [_history((["_step"], str(step)), *((["k", f"{key}"], f"{step + key}") for key in range(5000)))
            for step in range(3)]
    path = tmp_path / "run-many.wandb"
    _write_log(path, rows)
    run = read_wandb_run(path)
    assert not run.notes and run.points == 15_000 and run.curve("k/4999").values.tolist() == [4999.0, 5000.0, 5001.0]
