"""L002 truncated-log: read notes of kind truncated or corrupt become one finding per file."""

from __future__ import annotations

import pytest

from rundoctor.checks.truncated_log import CHECK
from rundoctor.findings import Confidence, Severity
from rundoctor.series import NoteKind, ReadNote
from tests import curves as c

TRUNCATED = ReadNote(
    NoteKind.TRUNCATED, "events.out.tfevents.1", "the file ends inside a record", "offset 18432", 37
)
CORRUPT = ReadNote(NoteKind.CORRUPT, "metrics.json", "line is not valid JSON", "line 17", 1)
SECOND_CORRUPT = ReadNote(NoteKind.CORRUPT, "metrics.json", "line is not valid JSON", "line 40", 1)


def findings(notes, series=None):
    run = c.make_run(series if series is not None else {"loss": (c.steps(100), c.decay(100))})
    run.notes.extend(notes)
    found = c.run_check(CHECK, run)
    for finding in found:
        c.assert_well_formed(finding)
    return found


def test_a_truncated_file_fires_with_where_and_how_much():
    [finding] = findings([TRUNCATED])
    assert (finding.code, finding.severity, finding.confidence) == (
        "L002",
        Severity.WARNING,
        Confidence.HIGH,
    )
    assert finding.tags == () and finding.first_step is None
    assert finding.evidence["source"] == "events.out.tfevents.1"
    assert finding.evidence["locations"] == ["offset 18432"]
    assert finding.evidence["lost"] == 37
    assert finding.evidence["points_read"] == 100 and finding.evidence["last_step_read"] == 99
    assert finding.message == (
        "events.out.tfevents.1: truncated at offset 18432 (37 lost): the file ends inside a record "
        "(100 points read up to step 99 from the run)"
    )


def test_one_finding_per_file():
    produced = findings([CORRUPT, TRUNCATED, SECOND_CORRUPT])
    assert [f.evidence["source"] for f in produced] == ["metrics.json", "events.out.tfevents.1"]
    corrupt = produced[0]
    assert corrupt.evidence["problems"] == 2
    assert corrupt.evidence["locations"] == ["line 17", "line 40"]
    assert corrupt.evidence["kinds"] == ["corrupt"]
    assert "1 more problem in this file" in corrupt.message


@pytest.mark.parametrize(
    "kind", [NoteKind.SKIPPED, NoteKind.DUPLICATED, NoteKind.OVERLAP, NoteKind.INFO]
)
def test_other_notes_are_not_findings(kind):
    assert findings([ReadNote(kind, "events.out.tfevents.1", "skipped 5 images")]) == []


def test_a_clean_run_has_no_finding():
    assert findings([]) == []


def test_a_note_without_location_or_count_still_reads_well():
    [finding] = findings(
        [ReadNote(NoteKind.CORRUPT, "results.csv", "3 lines could not be parsed")], series={}
    )
    assert finding.evidence["lost"] is None and finding.evidence["last_step_read"] is None
    assert (
        finding.message
        == "results.csv: corrupt: 3 lines could not be parsed (0 points read from the run)"
    )


def test_the_message_names_the_file_within_the_run_directory():
    run = c.make_run({"loss": (c.steps(10), c.decay(10))})
    run.path = "/logs/exp1"
    run.notes.append(
        ReadNote(
            NoteKind.TRUNCATED, "/logs/exp1/train/events.out.tfevents.2", "ends early", "offset 9"
        )
    )
    [finding] = c.run_check(CHECK, run)
    assert finding.message.startswith(
        "train/events.out.tfevents.2: truncated at offset 9: ends early"
    )
    assert finding.evidence["source"] == "/logs/exp1/train/events.out.tfevents.2"


@pytest.mark.parametrize("name", sorted(c.HOSTILE))
def test_hostile_series_do_not_raise(name):
    assert findings([TRUNCATED], series={"loss": c.HOSTILE[name]})[0].code == "L002"


def test_truncated_event_file_read_from_disk(tmp_path, real_logs):
    # A real event file cut in the middle of its last record: the reader notes it, the check reports it.
    source = real_logs / "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run4"
    [event_file] = sorted(source.glob("*tfevents*"))
    data = event_file.read_bytes()
    (tmp_path / event_file.name).write_bytes(data[: len(data) - 7])
    produced = c.run_check(CHECK, c.real_run(tmp_path))
    assert len(produced) == 1
    assert produced[0].evidence["source"].endswith(event_file.name)
    assert produced[0].evidence["points_read"] > 100


@pytest.mark.parametrize("relative", c.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative):
    for run in c.real_runs(real_logs, relative):
        assert [f.message for f in c.run_check(CHECK, run) if f.severity is not Severity.INFO] == [], run.id
