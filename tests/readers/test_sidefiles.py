"""The bounds of side-file parsing, each at its edge: just inside is read, just outside is
refused with a note.  YAML runs through both loaders, libyaml's and PyYAML's own."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rundoctor.readers import sidefiles, yaml_loader
from rundoctor.readers.sidefiles import (
    LONGEST_YAML_INTEGER,
    MAX_NESTING,
    MAX_YAML_ALIASES,
    MAX_YAML_VALUES,
    SIDE_FILE_MAX_BYTES,
    NestedTooDeep,
    SideFileRefused,
    decode_json_bounded,
)
from rundoctor.series import NoteKind, ReadNote
from tests.conftest import REAL_LOGS

LOADERS = ["python"] + (["libyaml"] if yaml.__with_libyaml__ else [])


@pytest.fixture(params=LOADERS)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "python":
        monkeypatch.setattr(yaml_loader, "_new_loader", yaml_loader._PythonLoader)
    yield request.param


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "hparams.yaml"
    path.write_text(text, encoding="utf-8")
    notes: list[ReadNote] = []
    value = sidefiles.load_yaml_bounded(path, notes)
    assert notes == []
    return value


def refusal(tmp_path: Path, text: str) -> ReadNote:
    with pytest.raises(SideFileRefused) as refused:
        load(tmp_path, text)
    return refused.value.note


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------


def test_real_side_files_read_as_safe_load_reads_them(loader: str) -> None:
    found = sorted(REAL_LOGS.glob("**/hparams.yaml")) + sorted(REAL_LOGS.glob("**/meta.yaml"))
    if not found:
        pytest.skip(f"real logs not found at {REAL_LOGS}")
    for path in found:
        assert sidefiles.load_yaml_bounded(path, []) == yaml.safe_load(path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_at_the_bound_is_read_and_one_deeper_is_not(tmp_path: Path, loader: str, style: str) -> None:
    def nested(levels: int) -> str:
        return "[" * levels + "]" * levels if style == "flow" else "- " * levels + "[]\n"

    assert load(tmp_path, nested(MAX_NESTING - 1)) is not None  # block: the innermost [] is a level
    assert "deeper than" not in str(load(tmp_path, nested(MAX_NESTING if style == "flow" else MAX_NESTING - 1)))
    note = refusal(tmp_path, nested(MAX_NESTING + 1))
    assert note.kind is NoteKind.SKIPPED and note.message == f"hparams.yaml not read: nested deeper than {MAX_NESTING} levels"


def test_aliases_up_to_the_bound_are_resolved(tmp_path: Path, loader: str) -> None:
    def aliased(count: int) -> str:
        return "shared: &s 1\nuses: [" + ", ".join(["*s"] * count) + "]\n"

    assert load(tmp_path, aliased(MAX_YAML_ALIASES)) == {"shared": 1, "uses": [1] * MAX_YAML_ALIASES}
    assert f"more than {MAX_YAML_ALIASES} aliases" in refusal(tmp_path, aliased(MAX_YAML_ALIASES + 1)).message


def test_values_are_counted_with_each_alias_expanded(tmp_path: Path, loader: str) -> None:
    """``a`` a list of n zeros, ``b`` m aliases to it, ``c`` p more zeros: 4 + (m + 1)(n + 1)
    + 2 + p values (the mapping, three keys, two lists, the zeros and their copies)."""

    def document(n: int, m: int, p: int) -> tuple[str, int]:
        text = (f"a: &a [{', '.join(['0'] * n)}]\nb: [{', '.join(['*a'] * m)}]\n"
                f"c: [{', '.join(['0'] * p)}]\n")
        return text, 4 + (m + 1) * (n + 1) + 2 + p

    at_bound, values = document(4679, 27, 26)
    assert values == MAX_YAML_VALUES
    loaded = load(tmp_path, at_bound)
    assert isinstance(loaded, dict) and len(loaded["b"]) == 27 and loaded["b"][0] is loaded["a"]
    past_bound, values = document(4679, 27, 27)
    assert values == MAX_YAML_VALUES + 1
    assert f"more than {MAX_YAML_VALUES:,} values" in refusal(tmp_path, past_bound).message


def test_an_alias_bomb_stops_early(tmp_path: Path, loader: str) -> None:
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    note = refusal(tmp_path, bomb)
    assert note.kind is NoteKind.SKIPPED and "aliases are expanded" in note.message


@pytest.mark.parametrize("text", ["&a [*a]\n", "a: &a {b: *a}\n", "a: &a {<<: *a}\n"])
def test_an_alias_inside_what_it_names_is_a_loop(tmp_path: Path, loader: str, text: str) -> None:
    assert "a loop" in refusal(tmp_path, text).message


def test_a_chain_of_merge_keys_within_the_aliases_is_read(tmp_path: Path, loader: str) -> None:
    links = MAX_YAML_ALIASES
    text = "l0: &l0 {x0: 0}\n" + "".join(f"l{i}: &l{i} {{<<: *l{i - 1}, x{i}: {i}}}\n" for i in range(1, links + 1))
    loaded = load(tmp_path, text)
    assert isinstance(loaded, dict) and loaded[f"l{links}"] == {f"x{i}": i for i in range(links + 1)}


def test_integers_longer_than_the_bound_stay_text(tmp_path: Path, loader: str) -> None:
    longest, longer = "9" * LONGEST_YAML_INTEGER, "9" * (LONGEST_YAML_INTEGER + 1)
    assert load(tmp_path, f"a: {longest}\nb: {longer}\nc: -0x{'f' * 9999}\n") == {
        "a": int(longest), "b": longer, "c": f"-0x{'f' * 9999}"}


def test_timestamps_stay_as_written_and_binary_is_described(tmp_path: Path, loader: str) -> None:
    assert load(tmp_path, "t: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\nbad: 2001-02-30\nb: !!binary AAEC\n") == {
        "t": "2001-12-14t21:59:43.10-05:00", "d": "2002-12-14", "bad": "2001-02-30", "b": "<binary data, 3 bytes>"}


def test_lightning_tuples_read_as_lists(tmp_path: Path, loader: str) -> None:
    # Lightning's save_hyperparameters writes Adam's betas as a tuple; nothing is constructed.
    assert load(tmp_path, "betas: !!python/tuple\n- 0.9\n- 0.999\nlr: 0.001\n") == {"betas": [0.9, 0.999], "lr": 0.001}


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:tuple", "!custom", "!!python/name:os.system"])
def test_tags_that_ask_for_a_type_construct_nothing(tmp_path: Path, loader: str, tag: str) -> None:
    note = refusal(tmp_path, f"a: {tag} [x]\n")
    assert note.kind is NoteKind.SKIPPED and "asks for a type" in note.message


@pytest.mark.parametrize(
    ("text", "problem"),
    [("a: [1, 2\nb: 3\n", "on line"), ("a: 0x_\n", "invalid literal"), ("a: 1\n---\nb: 2\n", "single document"),
     ("? [1]\n: x\n", "unhashable"), ("a: *nowhere\n", "undefined alias")],
)
def test_what_is_not_yaml_is_corrupt(tmp_path: Path, loader: str, text: str, problem: str) -> None:
    note = refusal(tmp_path, text)
    assert note.kind is NoteKind.CORRUPT and note.message.startswith("hparams.yaml not read: not valid YAML (")
    assert problem in note.message


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


def test_a_side_file_is_read_up_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "param"
    path.write_bytes(b"x" * SIDE_FILE_MAX_BYTES)
    assert sidefiles.read_side_text(path, []) == "x" * SIDE_FILE_MAX_BYTES
    path.write_bytes(b"x" * (SIDE_FILE_MAX_BYTES + 1))
    with pytest.raises(SideFileRefused) as refused:
        sidefiles.read_side_text(path, [])
    assert refused.value.note == ReadNote(
        NoteKind.SKIPPED, str(path),
        f"param not read: {SIDE_FILE_MAX_BYTES + 1:,} bytes, more than the {SIDE_FILE_MAX_BYTES:,} read from a side file")


@pytest.mark.parametrize(("written", "read"), [(1000, True), (SIDE_FILE_MAX_BYTES + 1, False)])
def test_a_side_file_that_grew_since_it_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: int, read: bool
) -> None:
    path = tmp_path / "meta.yaml"
    path.write_bytes(b"x" * 10)
    measured = os.stat(path)
    path.write_bytes(b"x" * written)
    monkeypatch.setattr(sidefiles.files, "stat", lambda _: measured)
    if read:
        assert sidefiles.read_side_text(path, []) == "x" * written
    else:
        with pytest.raises(SideFileRefused, match="it grew past the 262,144 bytes read from a side file"):
            sidefiles.read_side_text(path, [])


def test_what_is_no_regular_file_is_not_opened(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    assert sidefiles.is_present(tmp_path / "folder") and not sidefiles.is_present(tmp_path / "missing")
    assert not sidefiles.is_present(tmp_path / "dangling")
    with pytest.raises(SideFileRefused, match="it is a folder, not a regular file; not opened"):
        sidefiles.read_side_text(tmp_path / "folder", [])
    with pytest.raises(SideFileRefused, match="cannot read"):
        sidefiles.read_side_text(tmp_path / "missing", [])


def test_bytes_that_are_not_utf8_are_replaced_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "meta.yaml"
    path.write_bytes(b"run_name: ok\nstatus: \xff3\n")
    notes: list[ReadNote] = []
    assert sidefiles.load_yaml_bounded(path, notes) == {"run_name": "ok", "status": "\ufffd3"}
    assert notes == [ReadNote(NoteKind.CORRUPT, str(path), "bytes that are not UTF-8 were read as replacement "
                              "characters", "line 2")]


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def test_json_nesting_at_the_bound_is_decoded_and_one_deeper_is_not() -> None:
    inside = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert decode_json_bounded(f" {inside}, 1", 1) == (json.loads(inside), 1 + len(inside))
    deeper = '{"a": ' * (MAX_NESTING + 1) + "1" + "}" * (MAX_NESTING + 1)
    with pytest.raises(NestedTooDeep) as deep:
        decode_json_bounded(deeper + ", 2", 0)
    assert deep.value.end == len(deeper)


def test_json_too_deep_for_python_is_read_past_without_recursion_error() -> None:
    text = '[1, "]]", ' + "[" * 10_000 + '"[{"' + "]" * 10_000 + "]"
    with pytest.raises(NestedTooDeep) as deep:
        decode_json_bounded(text, 0)
    assert deep.value.end == len(text)
    with pytest.raises(NestedTooDeep) as never_closed:
        decode_json_bounded("[" * 10_000, 0)
    assert never_closed.value.end is None


def test_brackets_in_json_strings_do_not_nest() -> None:
    text = json.dumps({"a": "[" * 10_000, "b": ["{" * 100, "\\\"]]"]})
    assert decode_json_bounded(text, 0) == (json.loads(text), len(text))


def test_json_integers_past_pythons_guard_read_as_doubles() -> None:
    value, _ = decode_json_bounded('{"flos": ' + "9" * 5000 + ', "short": 12, "nan": NaN}', 0)
    assert value["flos"] == math.inf and value["short"] == 12 and math.isnan(value["nan"])


def test_json_that_is_not_json_raises_as_json_does() -> None:
    with pytest.raises(json.JSONDecodeError):
        decode_json_bounded('{"a": [1, 2', 0)
