"""Side files cannot take the metrics down.

For each format family that keeps files or data beside its metrics (Lightning's CSV with
``hparams.yaml``, an MLflow run's ``meta.yaml``, params and tags, a Hugging Face
``trainer_state.json``'s members and the ``config.json`` beside it, TensorBoard's hparams
plugin payloads), the side data is made hostile here, at test time: an alias bomb, 10,000
levels of nesting, 50 MB, tags that ask for Python objects, bytes that are not UTF-8, a
folder where a file belongs.  Every case must read every metric point, say what happened to
the side file in a note, and raise nothing; the bounds keep each case quick (the whole module
runs in a few seconds), so no time is asserted.  FIFOs and other special files named like a
side file belong to the tests of files that are not regular.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from rundoctor.discover import load_runs
from rundoctor.readers import reader_named, sidefiles, yaml_loader
from rundoctor.readers.csv.flavours import read_lightning
from rundoctor.readers.mlflow import is_mlflow_run_dir, read_mlflow_run
from rundoctor.readers.sidefiles import MAX_NESTING, SIDE_FILE_MAX_BYTES, SideFileRefused
from rundoctor.readers.tensorboard.assembly import read_tensorboard_run
from rundoctor.series import NoteKind, ReadNote, Run
from tests.hostile.corpus import fuzz_settings
from tests.readers import tb_writer

FIFTY_MB = 50 << 20
DEEP = 10_000


def billion_laughs() -> str:
    """Ten aliases to ten aliases, nine times over: 10**9 values once expanded, 1 KB written."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Hostile YAML side files: (how to write it at a path, note kind, words of the note).
# --------------------------------------------------------------------------------------------

WriteSideFile = Callable[[Path], object]


def _text(text: str) -> WriteSideFile:
    return lambda path: path.write_text(text, encoding="utf-8")


def _fifty_megabytes(path: Path) -> None:
    with path.open("wb") as handle:
        handle.write(b"lr: 0.1\nnotes: ")
        handle.write(b"x" * FIFTY_MB)


HOSTILE_YAML: dict[str, tuple[WriteSideFile, NoteKind, str]] = {
    "billion laughs": (_text(billion_laughs()), NoteKind.SKIPPED, "once its aliases are expanded"),
    "alias loop": (_text("model: &a [layers, *a]\n"), NoteKind.SKIPPED, "a loop"),
    "10,000 deep flow list": (_text("[" * DEEP + "]" * DEEP), NoteKind.SKIPPED, f"deeper than {MAX_NESTING}"),
    "10,000 deep flow mapping": (_text("{a: " * DEEP + "1" + "}" * DEEP), NoteKind.SKIPPED, "deeper than"),
    "10,000 deep block list": (_text("- " * DEEP + "x\n"), NoteKind.SKIPPED, "deeper than"),
    "50 MB": (_fifty_megabytes, NoteKind.SKIPPED, f"more than the {SIDE_FILE_MAX_BYTES:,} read"),
    "python object": (_text("model: !!python/object/apply:os.system ['touch pwned']\n"), NoteKind.SKIPPED,
                      "asks for a type"),
    "python name": (_text("hook: !!python/name:os.system\n"), NoteKind.SKIPPED, "asks for a type"),
    "python new": (_text("obj: !!python/object/new:subprocess.Popen [['touch', 'pwned']]\n"), NoteKind.SKIPPED,
                   "asks for a type"),
    "broken yaml": (_text("lr: [0.1, 0.2\nopt: {\n"), NoteKind.CORRUPT, "not valid YAML"),
    "NUL byte": (_text("lr: 0.1\x00\n"), NoteKind.CORRUPT, "not valid YAML"),
    "hex integer without digits": (_text("seed: 0x_\n"), NoteKind.CORRUPT, "not valid YAML"),
    "folder": (lambda path: path.mkdir(), NoteKind.SKIPPED, "it is a folder, not a regular file"),
}


def side_note(run: Run, path: Path) -> ReadNote:
    (note,) = [note for note in run.notes if note.source == str(path)]
    return note


def assert_hostile_yaml_noted(run: Run, path: Path, case: str) -> None:
    _, kind, words = HOSTILE_YAML[case]
    note = side_note(run, path)
    assert note.kind is kind and note.message.startswith(f"{path.name} not read: ") and words in note.message


# --------------------------------------------------------------------------------------------
# Lightning: metrics.csv and hparams.yaml
# --------------------------------------------------------------------------------------------

LIGHTNING_ROWS = [(epoch, step, 2.0 / (step + 1)) for step in range(40) for epoch in [step // 10]]


def lightning_run(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "lightning_logs" / "version_0"
    folder.mkdir(parents=True)
    metrics = folder / "metrics.csv"
    metrics.write_text("epoch,step,train_loss\n" + "".join(f"{e},{s},{v!r}\n" for e, s, v in LIGHTNING_ROWS))
    return metrics, folder / "hparams.yaml"


def assert_lightning_metrics(run: Run) -> None:
    curve = run.curve("train_loss")
    assert curve.steps.tolist() == [step for _, step, _ in LIGHTNING_ROWS]
    assert curve.values.tolist() == [value for _, _, value in LIGHTNING_ROWS]


@pytest.mark.parametrize("case", HOSTILE_YAML)
def test_lightning_metrics_survive_a_hostile_hparams_yaml(tmp_path: Path, case: str) -> None:
    metrics, hparams = lightning_run(tmp_path)
    HOSTILE_YAML[case][0](hparams)
    run = read_lightning(metrics)
    assert_lightning_metrics(run)
    assert_hostile_yaml_noted(run, hparams, case)
    assert run.metadata == {} and run.sources == [str(metrics)]
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


def test_hparams_with_odd_types_are_read_as_plain_text(tmp_path: Path) -> None:
    metrics, hparams = lightning_run(tmp_path)
    hex_digits = "f" * 5000  # a valid YAML int, and past Python's 4,300-digit guard in decimal
    hparams.write_text(
        "lr: 1.0e-3\n"
        "started: 2001-02-30 25:61:61\n"  # a timestamp by YAML's pattern, no real date
        "day: 2024-05-01\n"
        "blob: !!binary aGVsbG8gd29ybGQ=\n"
        f"seed: 0x{hex_digits}\n"
        f"sexagesimal: {':'.join(['59'] * 3000)}\n"  # base 60, quadratic to turn into an int
        "overflow: 1.0e+99999\n"
        "ok_int: 123456789012345678901234567890\n",
        encoding="utf-8",
    )
    run = read_lightning(metrics)
    assert_lightning_metrics(run)
    assert run.metadata == {
        "lr": "0.001", "started": "2001-02-30 25:61:61", "day": "2024-05-01",
        "blob": "<binary data, 11 bytes>", "seed": f"0x{hex_digits}", "sexagesimal": ":".join(["59"] * 3000),
        "overflow": "Infinity", "ok_int": "123456789012345678901234567890",
    }
    assert not run.notes


def test_hparams_not_utf8_are_read_with_a_note(tmp_path: Path) -> None:
    metrics, hparams = lightning_run(tmp_path)
    hparams.write_bytes(b"lr: 0.1\nname: caf\xe9 \xff\xfe\nbatch_size: 32\n")
    run = read_lightning(metrics)
    assert_lightning_metrics(run)
    assert run.metadata == {"lr": "0.1", "name": "caf\ufffd \ufffd\ufffd", "batch_size": "32"}
    note = side_note(run, hparams)
    assert note.kind is NoteKind.CORRUPT and "not UTF-8" in note.message and note.location == "line 2"


# --------------------------------------------------------------------------------------------
# MLflow: meta.yaml, params and tags beside metrics/
# --------------------------------------------------------------------------------------------

MLFLOW_METRICS = {
    "loss": [(1_700_000_000_000 + i, 1.0 / (i + 1), i) for i in range(30)],
    "val/acc": [(1_700_000_100_000 + i, i / 30, i * 10) for i in range(30)],
}


def mlflow_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "mlruns" / "0" / "0123456789abcdef"
    for key, points in MLFLOW_METRICS.items():
        path = run_dir / "metrics" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{t} {v!r} {s}\n" for t, v, s in points))
    for folder, key, value in (("params", "lr", "0.001"), ("tags", "mlflow.runName", "sweep-3")):
        (run_dir / folder).mkdir()
        (run_dir / folder / key).write_text(value)
    (run_dir / "meta.yaml").write_text("run_name: sweep-3\nstatus: 3\nstart_time: 1700000000000\n")
    return run_dir


def assert_mlflow_metrics(run: Run) -> None:
    for key, points in MLFLOW_METRICS.items():
        curve = run.curve(key)
        assert curve.steps.tolist() == [s for _, _, s in points] and curve.values.tolist() == [v for _, v, _ in points]


@pytest.mark.parametrize("case", HOSTILE_YAML)
def test_mlflow_metrics_survive_a_hostile_meta_yaml(tmp_path: Path, case: str) -> None:
    run_dir = mlflow_run(tmp_path)
    (run_dir / "meta.yaml").unlink()
    HOSTILE_YAML[case][0](run_dir / "meta.yaml")
    assert is_mlflow_run_dir(run_dir)  # a meta.yaml that is a folder still marks the run
    run = read_mlflow_run(run_dir)
    assert_mlflow_metrics(run)
    assert_hostile_yaml_noted(run, run_dir / "meta.yaml", case)
    assert run.metadata == {"params.lr": "0.001", "tags.mlflow.runName": "sweep-3"}


def test_mlflow_params_and_tags_are_read_within_bounds(tmp_path: Path) -> None:
    run_dir = mlflow_run(tmp_path)
    _fifty_megabytes(run_dir / "params" / "config")
    deep_json = "[" * DEEP + "]" * DEEP  # a param is text: kept as written, never parsed
    (run_dir / "params" / "layers").write_text(deep_json)
    (run_dir / "tags" / "note").write_bytes(b"caf\xe9")
    (run_dir / "tags" / "big").write_text("x" * SIDE_FILE_MAX_BYTES)  # at the cap: read
    run = read_mlflow_run(run_dir)
    assert_mlflow_metrics(run)
    assert run.metadata["params.layers"] == deep_json and run.metadata["tags.note"] == "caf\ufffd"
    assert len(run.metadata["tags.big"]) == SIDE_FILE_MAX_BYTES and "params.config" not in run.metadata
    refused = side_note(run, run_dir / "params" / "config")
    assert refused.kind is NoteKind.SKIPPED and f"{FIFTY_MB + 15:,} bytes" in refused.message
    assert side_note(run, run_dir / "tags" / "note").kind is NoteKind.CORRUPT


# --------------------------------------------------------------------------------------------
# Hugging Face: trainer_state.json's members beside log_history, config.json beside it
# --------------------------------------------------------------------------------------------

HF_RECORDS = [{"loss": 2.0 / (i + 1), "learning_rate": 5e-5, "epoch": i / 10, "step": 10 * (i + 1)}
              for i in range(30)]
DEEP_ARRAY = "[" * DEEP + "]" * DEEP
DEEP_OBJECT = '{"a": ' * DEEP + "1" + "}" * DEEP
JUST_TOO_DEEP = '{"a": ' * (MAX_NESTING + 1) + "1" + "}" * (MAX_NESTING + 1)

# Members beside log_history, as (before it, after it), and what the note says.
HOSTILE_MEMBERS: dict[str, tuple[str, str, str]] = {
    "10,000 deep array before": (f'"trial_params": {DEEP_ARRAY}, ', "", "'trial_params' is nested deeper"),
    "10,000 deep object after": ("", f', "stateful_callbacks": {DEEP_OBJECT}', "'stateful_callbacks' is nested"),
    "deep, brackets in strings": (f'"a": ["]]]]", {DEEP_ARRAY}, "[[[["], ', "", "'a' is nested deeper"),
    "just too deep": (f'"trial_params": {JUST_TOO_DEEP}, ', "", "nested deeper"),
    "deep and never closed": ("", ', "trial_params": ' + "[" * DEEP, "never closed"),
}


def trainer_state(before: str = "", after: str = "") -> str:
    records = ",\n    ".join(json.dumps(record) for record in HF_RECORDS)
    return f'{{{before}"global_step": 300, "log_history": [\n    {records}\n  ]{after}}}\n'


def assert_hf_metrics(run: Run) -> None:
    for key in ("loss", "learning_rate"):
        curve = run.curve(key)
        assert curve.steps.tolist() == [record["step"] for record in HF_RECORDS]
        assert curve.values.tolist() == [record[key] for record in HF_RECORDS]


def read_hf(path: Path) -> Run:
    return reader_named("hf-trainer").read_file(path)


@pytest.mark.parametrize("case", HOSTILE_MEMBERS)
def test_trainer_state_metrics_survive_hostile_members(tmp_path: Path, case: str) -> None:
    before, after, words = HOSTILE_MEMBERS[case]
    path = tmp_path / "trainer_state.json"
    path.write_text(trainer_state(before, after))
    run = read_hf(path)
    assert_hf_metrics(run)
    (note,) = [note for note in run.notes if note.kind in (NoteKind.CORRUPT, NoteKind.TRUNCATED)]
    assert words in note.message and note.source == str(path)
    assert run.metadata["global_step"] == "300"


def test_trainer_state_odd_members_are_read(tmp_path: Path) -> None:
    """A 5,000-digit integer (past Python's guard) reads as a double; 50 MB of text is read
    past (the file is the metrics: no cap applies) and is no metadata."""
    path = tmp_path / "trainer_state.json"
    path.write_text(trainer_state(f'"total_flos": {"9" * 5000}, "trial_name": "{"x" * FIFTY_MB}", '))
    run = read_hf(path)
    assert_hf_metrics(run)
    assert run.metadata == {"total_flos": "inf", "global_step": "300"} and not run.notes


def test_a_log_history_record_nested_too_deeply_is_skipped_alone(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    text = trainer_state().replace('"log_history": [\n', f'"log_history": [\n    {DEEP_OBJECT},\n')
    path.write_text(text)
    run = read_hf(path)
    assert_hf_metrics(run)
    (note,) = run.notes
    assert note.kind is NoteKind.CORRUPT and "an element of 'log_history' is nested deeper" in note.message
    assert note.location == "line 2"


HOSTILE_CONFIG: dict[str, WriteSideFile] = {
    "10,000 deep": _text(DEEP_OBJECT),
    "50 MB": lambda path: path.write_bytes(b'{"vocab": "' + b"x" * FIFTY_MB + b'"}'),
    "not UTF-8": lambda path: path.write_bytes(b'{"name": "caf\xe9"}'),
    "not JSON": _text('{"architectures": ["Bert'),
    "folder": lambda path: path.mkdir(),
}


@pytest.mark.parametrize("case", HOSTILE_CONFIG)
def test_a_hostile_config_json_beside_trainer_state_is_never_read(tmp_path: Path, case: str) -> None:
    """rundoctor does not read config.json: whatever it holds, the run is its trainer_state.json."""
    checkpoint = tmp_path / "out" / "checkpoint-300"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(trainer_state())
    HOSTILE_CONFIG[case](checkpoint / "config.json")
    runs, errors = load_runs([tmp_path / "out"])
    (run,) = runs
    assert run.format == "hf-trainer" and not errors and not run.notes
    assert_hf_metrics(run)


# --------------------------------------------------------------------------------------------
# TensorBoard: hparams plugin payloads between the scalars
# --------------------------------------------------------------------------------------------


def hparams_event(content: bytes, tag: str = "_hparams_/session_start_info") -> event_pb2.Event:
    """What torch's add_hparams and Lightning write: plugin data and no value."""
    value = summary_pb2.Summary.Value(tag=tag)
    value.metadata.plugin_data.plugin_name = "hparams"
    value.metadata.plugin_data.content = content
    event = event_pb2.Event(wall_time=1_700_000_000.0, step=0)
    event.summary.value.append(value)
    return event


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    return bytes(out) + bytes([number])


def _deep_groups(depth: int) -> bytes:
    """An unknown field 99 opened as a group ``depth`` times, then closed as often."""
    return _varint(99 << 3 | 3) * depth + _varint(99 << 3 | 4) * depth


def _real_hparams() -> bytes:
    data = plugin_data_pb2.HParamsPluginData(version=0)
    data.session_start_info.hparams["lr"].number_value = 0.001
    return data.SerializeToString()


# The record between the scalars, and the note it leaves (none: its hyper-parameters were read).
HOSTILE_HPARAMS: dict[str, tuple[bytes, NoteKind | None, str]] = {
    "real": (hparams_event(_real_hparams()).SerializeToString(), None, ""),
    "50 MB payload": (hparams_event(b"x" * FIFTY_MB).SerializeToString(), NoteKind.SKIPPED, "1 hparams plugin value"),
    "garbage payload": (hparams_event(bytes(range(256)) * 16).SerializeToString(), NoteKind.SKIPPED, "hparams plugin"),
    "10,000 deep event": (hparams_event(b"").SerializeToString() + _deep_groups(DEEP), NoteKind.CORRUPT,
                          "undecodable event"),
    "tag not UTF-8": (hparams_event(b"", tag="\x01").SerializeToString().replace(b"\n\x01\x01", b"\n\x01\xff"),
                      NoteKind.CORRUPT, "undecodable event"),
}


@pytest.mark.parametrize("case", HOSTILE_HPARAMS)
def test_tensorboard_scalars_survive_hostile_hparams_payloads(tmp_path: Path, case: str) -> None:
    record, kind, words = HOSTILE_HPARAMS[case]
    path = tmp_path / "run" / "events.out.tfevents.1700000000.host.1.0"
    scalars = [tb_writer.scalar_event("loss", 1.0 / (step + 1), step, 1_700_000_000.0 + step) for step in range(20)]
    tb_writer.write_event_file(path, [tb_writer.header_event(), *scalars[:10], record, *scalars[10:]])
    run = read_tensorboard_run(path.parent, [(path, "")])
    curve = run.curve("loss")
    assert curve.steps.tolist() == list(range(20)) and curve.values.tolist() == [
        float(summary_pb2.Summary.Value(simple_value=1.0 / (step + 1)).simple_value) for step in range(20)
    ]
    if kind is None:
        assert not run.notes and run.hparams == {"lr": "0.001"}
        return
    (note,) = run.notes
    assert note.kind is kind and words in note.message and run.hparams == {}


# --------------------------------------------------------------------------------------------
# End to end: a tree of every family with hostile side files, through the command line
# --------------------------------------------------------------------------------------------


def test_the_command_line_reads_every_run_beside_hostile_side_files(tmp_path: Path) -> None:
    _, hparams = lightning_run(tmp_path / "lightning")
    hparams.write_text(billion_laughs())
    meta = mlflow_run(tmp_path / "mlflow") / "meta.yaml"
    meta.write_text("[" * DEEP + "]" * DEEP)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "trainer_state.json").write_text(trainer_state(f'"trial_params": {DEEP_OBJECT}, '))
    result = subprocess.run([sys.executable, "-m", "rundoctor", "check", str(tmp_path), "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    points = {run["format"]: run["points"] for run in report["runs"]}
    assert points == {"lightning-csv": 40, "mlflow": 60, "hf-trainer": 60} and not report["errors"]
    notes = [note["message"] for run in report["runs"] for note in run["notes"]]
    assert any(message.startswith("hparams.yaml not read") for message in notes)
    assert any(message.startswith("meta.yaml not read") for message in notes)
    assert any("'trial_params' is nested deeper" in message for message in notes)


# --------------------------------------------------------------------------------------------
# Any YAML at all: read as plain data or refused with a note, by either loader
# --------------------------------------------------------------------------------------------

YAML_PIECES = st.sampled_from([
    *"ab01:-[]{},&*!?|>'\"#%@` \n\t.\\\x85\ufeff", "!!python/tuple ", "!!binary ", "!!timestamp ", "!!int ",
    "!!float ", "!!bool ", "!!str ", "!!null ", "!!seq ", "!!map ", "!!pairs ", "!!set ", "!!omap ", "!!merge ", "<<: ", "0x", "0b", "0o", "1:2", "&a ", "*a", "&b ", "*b",
    "--- ", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "2001-02-30", "1e9", ".inf", "~",
])


@fuzz_settings(examples=300)
@given(text=st.lists(YAML_PIECES, max_size=60).map("".join))
def test_any_yaml_is_read_as_plain_data_or_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hparams.yaml"
    path.write_text(text, encoding="utf-8")
    for loader in (yaml_loader._PythonLoader, yaml_loader._new_loader):
        with patch.object(yaml_loader, "_new_loader", loader):
            try:
                value = sidefiles.load_yaml_bounded(path, [])
            except SideFileRefused as refused:
                assert refused.note.kind in (NoteKind.SKIPPED, NoteKind.CORRUPT)
                continue
        json.dumps(value, default=str)  # what the Lightning reader does with it: no loop, no giant int
