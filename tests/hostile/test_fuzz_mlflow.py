"""Hostile MLflow runs: damaged metric files, meta.yaml and params; never a crash, never a lost point.

Each example writes a run folder of the MLflow file store with a metric file of
hypothesis-drawn points (any floats, NaN and infinities included, any integer steps, old
two-field lines without a step) and up to two intact ones beside it, damages the drawn file
once or twice (a junk token, a dropped or added field, a blank line, a BOM, CRLF line ends,
latin-1 bytes, a line written twice, or bytes cut, flipped, inserted, deleted or duplicated)
and reads the run.  A metric file is simple enough to be parsed here line by line
(``<timestamp> <value> [<step>]``, read with ``float`` as MLflow reads it), so the checks are
exact:

1. no exception escapes;
2. the damaged file's curve holds exactly the points of its well-formed lines, in order (the
   last line, when the file ends without a line end, may be kept or not: it may be cut);
3. the first line that is not well-formed is reported by its number: a line that is no
   point, bytes that are not UTF-8, a last line without its line end (MLflow ends every line,
   so it was cut while being written); a file without such a line gets no damage note;
4. every other metric file is read whole and without notes.

Lines are counted as MLflow's own store reads them: LF, CR and CR LF end a line.

Classes of input that once lost or invented points are also tested on their own, below, by a
fuzz test of that class and a minimal case: the general test meets them too rarely.
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rundoctor.readers.mlflow import read_mlflow_run
from rundoctor.series import Run
from tests.hostile.corpus import (
    BYTE_KINDS,
    FieldCodec,
    Point,
    assert_consistent,
    by_tag,
    fuzz_settings,
    notes_about,
    point,
    run_points,
    text_damage,
)

TIMESTAMPS = st.integers(0, 2**41)  # milliseconds
STEPS = st.integers(-(2**31), 2**53)
CODEC = FieldCodec(split=lambda line: line.split(b" "), join=b" ".join)
JUNK = [b"oops", b"1.2.3", b"--", b"0x10", b"nan nan", b"", b"1,5", b"\xe2\x80\x94"]
EXTRA = [b"7", b"0.5", b"x", b"1700000000000"]
KINDS = (*BYTE_KINDS, "junk", "drop", "add", "blank", "bom", "crlf", "latin1", "dup_line")
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class MetricFile:
    """A metric file: its key, its bytes and the points of its lines."""

    key: str
    data: bytes
    points: tuple[Point, ...]


# Metric files beside the damaged one, which must be read whole ("/" puts a key in a subfolder).
BESIDE = [
    MetricFile("lr", b"1700000000000 0.001 0\n1700000001000 0.0005 100\n",
               (point("lr", 0, 0.001), point("lr", 100, 0.0005))),
    MetricFile("system/gpu_utilization", b"1700000000000 97.0 0\n", (point("system/gpu_utilization", 0, 97.0),)),
]


@st.composite
def metric_files(draw: st.DrawFn, key: str) -> MetricFile:
    lines, points = [], []
    for _ in range(draw(st.integers(0, 8))):
        timestamp, value = draw(TIMESTAMPS), draw(st.floats())
        if draw(st.integers(0, 9)) == 0:  # written before MLflow 1.0: no step, read as step 0
            lines.append(f"{timestamp} {value!r}\n")
            points.append(point(key, 0, value))
        else:
            step = draw(STEPS)
            lines.append(f"{timestamp} {value!r} {step}\n")
            points.append(point(key, step, value))
    return MetricFile(key, "".join(lines).encode(), tuple(points))


def write_run(root: Path, files: list[MetricFile], meta: bytes = b"status: 3\n") -> Path:
    """A run folder of the file store (meta.yaml, metrics/<key>, a param and a tag), written
    over the last example's: only its metrics folder is made anew."""
    run_dir = root / "mlruns" / "1" / "0123abcd"
    shutil.rmtree(run_dir / "metrics", ignore_errors=True)
    for file in files:
        path = run_dir / "metrics" / file.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.data)
    for folder, name, text in (("params", "lr", b"0.001"), ("tags", "mlflow.runName", b"bright-fox-42")):
        (run_dir / folder).mkdir(parents=True, exist_ok=True)
        (run_dir / folder / name).write_bytes(text)
    (run_dir / "meta.yaml").write_bytes(meta)
    return run_dir


# ---------------------------------------------------------------------------------------------
# A metric file parsed here, line by line
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    points: list[Point]  # of the well-formed lines, the cut last line left out
    cut_point: list[Point]  # the cut last line's point, when it parses
    problems: list[int]  # the lines a reader must report: not UTF-8, not a point
    cut_line: int | None  # the last line, when the file does not end with a line end


def parse_metric_file(key: str, data: bytes) -> Parsed:
    text = data.decode("utf-8", errors="replace")
    problems = []
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        problems.append(len(_LINE_END.findall(data[: error.start])) + 1)
    lines = re.split(r"\r\n|\r|\n", text)
    cut = lines[-1] != ""
    if not cut:
        lines.pop()
    points, cut_point = [], []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        parsed = _point(key, fields)
        if number == len(lines) and cut:
            cut_point = [parsed] if parsed else []
        elif parsed is None:
            problems.append(number)
        else:
            points.append(parsed)
    return Parsed(points, cut_point, problems, len(lines) if cut else None)


def _point(key: str, fields: list[str]) -> Point | None:
    if len(fields) == 2:
        fields = [*fields, "0"]
    if len(fields) != 3:
        return None
    try:
        _, value, step = (float(field) for field in fields)
    except ValueError:
        return None
    if not (math.isfinite(step) and step == math.floor(step) and abs(step) <= 2.0**53):
        return None
    return point(key, int(step), value)


def curve(run: Run, key: str) -> list[tuple[int, int]]:
    return by_tag(run_points(run)).get(key, [])


def assert_read_exactly(run: Run, path: Path, key: str, damaged: bytes) -> None:
    """The curve of a damaged metric file holds exactly the points of its well-formed lines,
    in order (a cut last line may be kept or dropped); its first malformed line, or its cut last
    line, is reported by number; a clean file is not reported at all."""
    parsed = parse_metric_file(key, damaged)
    expected = by_tag(parsed.points).get(key, [])
    assert curve(run, key) in (expected, expected + by_tag(parsed.cut_point).get(key, [])), "points lost or invented"
    reported = notes_about(run, path)
    problems = parsed.problems + ([parsed.cut_line] if parsed.cut_line else [])
    if not problems:
        assert reported == [], "an intact file reported as damaged"
    else:
        first = min(problems)
        assert any(note.location == f"line {first}" for note in reported), f"line {first} is not reported: {run.notes}"


@pytest.mark.parametrize("damaged_key", ["loss", "val/acc"])
@fuzz_settings(examples=950)
@given(case=st.data())
def test_damaged_metric_file(tmp_path: Path, damaged_key: str, case: st.DataObject) -> None:
    target = case.draw(metric_files(damaged_key), label="metric file")
    beside = BESIDE[: case.draw(st.integers(0, len(BESIDE)), label="files beside it")]
    _, damaged = case.draw(text_damage(target.data, CODEC, KINDS, JUNK, EXTRA), label="damage")
    run_dir = write_run(tmp_path, [MetricFile(damaged_key, damaged, ()), *beside])
    path = run_dir / "metrics" / damaged_key

    # 1. No exception escapes.
    run = read_mlflow_run(run_dir)
    assert_consistent(run, format="mlflow", source=path, lines=max(len(_LINE_END.findall(damaged)) + 1, 1))

    # 2. and 3. Exactly the well-formed lines' points, and the first malformed line reported.
    assert_read_exactly(run, path, damaged_key, damaged)

    # 4. The other metric files, whole and without notes.
    for file in beside:
        assert curve(run, file.key) == by_tag(file.points).get(file.key, [])
        assert notes_about(run, run_dir / "metrics" / file.key) == []


# meta.yaml as damage and hostile hands leave it: unclosed, not UTF-8, out of range, not a
# mapping, a tag asking for code, an alias loop.
HOSTILE_META = [b"status: [unclosed\n", b"\xff\xfe", b"start_time: 1e400\n", b"end_time: -99999999999999999\n",
                b"status: 99\n", b"- 1\n- 2\n", b"run_name: !!python/object:os.system x\n", b"&a [*a]\n"]
METADATA_KEYS = {"run_name", "status", "start", "end", "params.lr", "params.name", "tags.mlflow.runName"}


@fuzz_settings(examples=100)
@given(meta=st.binary(max_size=80) | st.sampled_from(HOSTILE_META), param=st.binary(max_size=40),
       file=metric_files("loss"))
def test_damaged_meta_yaml_and_params_leave_the_metrics_alone(
    tmp_path: Path, meta: bytes, param: bytes, file: MetricFile
) -> None:
    run_dir = write_run(tmp_path, [file], meta=meta)
    (run_dir / "params" / "name").write_bytes(param)  # written by every example: never stale

    run = read_mlflow_run(run_dir)

    assert curve(run, "loss") == by_tag(file.points).get("loss", [])
    assert set(run.metadata) <= METADATA_KEYS
    assert all(isinstance(value, str) for value in run.metadata.values())
    assert notes_about(run, run_dir / "metrics" / "loss") == []
    assert_consistent(run, format="mlflow", source=run_dir / "meta.yaml")


# ---------------------------------------------------------------------------------------------
# Classes of input that once lost or invented points: a fuzz test and a minimal case each.
# ---------------------------------------------------------------------------------------------


def check_exactly_read(tmp_path: Path, damaged: bytes) -> Run:
    """Read a damaged ``loss`` file alone, and check it is read exactly."""
    run_dir = write_run(tmp_path, [MetricFile("loss", damaged, ())])
    run = read_mlflow_run(run_dir)
    assert_read_exactly(run, run_dir / "metrics" / "loss", "loss", damaged)
    return run


@fuzz_settings(examples=30)
@given(case=st.data())
def test_a_cut_last_line_is_reported(tmp_path: Path, case: st.DataObject) -> None:
    file = case.draw(metric_files("loss").filter(lambda file: file.data), label="file")
    last_line_start = file.data.rstrip(b"\n").rfind(b"\n") + 1
    at = case.draw(st.integers(last_line_start + 1, len(file.data) - 1), label="cut")  # before its line end
    check_exactly_read(tmp_path, file.data[:at])


@pytest.mark.parametrize("cut", [b"1700000001000 0.25 1", b"1700000001000 0.2"])
def test_a_line_cut_while_being_written(tmp_path: Path, cut: bytes) -> None:
    run = check_exactly_read(tmp_path, b"1700000000000 0.5 12\n" + cut)  # the line was "... 0.25 13\n"
    assert curve(run, "loss")[0][0] == 12


@fuzz_settings(examples=30)
@given(case=st.data())
def test_lines_with_two_and_four_fields_are_not_misread(tmp_path: Path, case: st.DataObject) -> None:
    file = case.draw(metric_files("loss").filter(lambda file: file.data.count(b"\n") >= 2), label="file")
    lines = file.data.split(b"\n")[:-1]
    longer, shorter = case.draw(st.permutations(range(len(lines))), label="lines")[:2]
    lines[longer] = lines[longer] + b" " + case.draw(st.sampled_from([b"7", b"0", b"1700000000000"]), label="extra")
    lines[shorter] = b" ".join(lines[shorter].split(b" ")[:2])
    check_exactly_read(tmp_path, b"\n".join(lines) + b"\n")


def test_an_extra_field_beside_an_old_line_invents_no_point(tmp_path: Path) -> None:
    run = check_exactly_read(tmp_path, b"1700000000000 1.0 10 7\n1700000001000 2.0\n1700000002000 3.0 30\n")
    assert run.values.tolist() == [2.0, 3.0]


def test_line_numbers_count_line_ends_only(tmp_path: Path) -> None:
    data = b"1700000000000 0.5 1\n1700000001000 0.25 2\x0c\n1700000002000 0.125 3\nbad\n"
    run = check_exactly_read(tmp_path, data)
    assert run.notes[0].location == "line 4"
