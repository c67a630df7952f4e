"""Side files: the YAML and JSON beside a run's metrics, parsed within bounds.

A side file only ever adds metadata: Lightning's ``hparams.yaml``, MLflow's ``meta.yaml``,
``params/`` and ``tags/``, the members of a ``trainer_state.json`` or a Keras history beside
the points.  Whoever wrote the logs wrote them too, so each is read within the bounds below,
and one that breaks a bound, is not a regular file or is not YAML at all is left out with a
note saying why: the run's metrics are read exactly as if it were not there.  Every reader
parses its side files here and nowhere else, and so does the event reader with the side data
event files carry: the hyper-parameters of a TensorBoard hparams plugin session start and the
training arguments the Hugging Face Trainer writes as JSON into a text summary
(:func:`hparams_plugin_texts`, :func:`json_object_texts`), each read within the same bounds or
left as it was before (a skipped value in the event reader's note).  A Hugging Face
``config.json`` is not read at all.

What the bounds stop:

- **Size**: a side file is read up to :data:`SIDE_FILE_MAX_BYTES`; a larger one is not read
  (a value cut at the cap would pass for one that was logged).
- **Alias expansion** ("billion laughs"): PyYAML shares an aliased node instead of copying
  it, but everything downstream (flattening into ``a.b`` keys, rendering values as JSON)
  walks it once per alias, so ten aliases to ten aliases nine times over are a thousand
  million values.  Composition counts each alias as a copy of what it names and refuses a
  document past :data:`MAX_YAML_VALUES`; an alias inside the node it names (a loop) is
  refused outright, and at most :data:`MAX_YAML_ALIASES` aliases are resolved.
- **Nesting**: PyYAML's composer and Python's ``json`` recurse once per level, so a deep
  enough document raises RecursionError; nothing deeper than :data:`MAX_NESTING` is read.
- **Types**: tags are resolved by PyYAML's safe constructor only, so ``!!python/object`` and
  friends construct nothing (the file is refused); ``!!python/tuple``, which Lightning writes
  for tuple hyper-parameters, is read as the plain list it holds; timestamps are kept as the text written
  (an impossible date is not an error), ``!!binary`` as a short description, and integers
  longer than :data:`LONGEST_YAML_INTEGER` characters as their text (Python refuses to turn
  more than 4,300 digits into an int, and base-60 integers cost quadratic time).  A JSON
  integer past Python's 4,300-digit guard is read as a double, as JavaScript reads it.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rundoctor.readers import files
from rundoctor.readers.text import flatten, number_text, undecodable_line
from rundoctor.series import NoteKind, ReadNote

# The largest hparams.yaml and meta.yaml among the real logs we test on are under 1 KB and
# MLflow keeps params and tags to a few thousand characters; even a large configuration
# dumped whole is tens of kilobytes.  A quarter of a megabyte leaves room for ten times that,
# and the worst document within it (130,000 one-character values) still loads in about a
# second with libyaml.  What is larger is not read at all.
SIDE_FILE_MAX_BYTES = 256 * 1024

# Configurations nest five or six levels (trainer_state.json's stateful_callbacks, Hydra's
# groups); 64 is far above any of them and far below Python's recursion limit (1,000
# frames), which PyYAML's composer (a few frames a level) and json must stay clear of.
MAX_NESTING = 64

# Values (scalars, keys, lists and mappings) a YAML document may stand for once every alias
# is counted as a copy of what it names: as many as a file within the byte cap can hold
# written out without aliases ("0," is two bytes), so aliases never make a file stand for
# more than its size allows, and a billion-laughs document stops here.
MAX_YAML_VALUES = SIDE_FILE_MAX_BYTES // 2

# yaml.dump writes an alias for each object met a second time and people anchor a shared
# block or two: tens at most.  A hundred also bounds the merge keys (``<<: *base``) PyYAML
# resolves recursively, one level per alias in a chain.
MAX_YAML_ALIASES = 100

# An int64 has 19 digits, a SHA-1 written as a hex integer 42 characters: an integer longer
# than this is no number anyone logged, and is kept as the text written.
LONGEST_YAML_INTEGER = 64


class SideFileRefused(Exception):
    """A side file that was not read; :attr:`note` says which and why."""

    def __init__(self, path: Path, kind: NoteKind, reason: str) -> None:
        super().__init__(reason)
        self.note = ReadNote(kind, str(path), f"{path.name} not read: {reason}")


class NestedTooDeep(ValueError):
    """A JSON value nested deeper than :data:`MAX_NESTING`; ``end`` is where it ends (None when
    it never does), so that a reader can read on past it."""

    def __init__(self, end: int | None) -> None:
        super().__init__(f"nested deeper than {MAX_NESTING} levels")
        self.end = end


# --------------------------------------------------------------------------------------------
# Reading a side file's text
# --------------------------------------------------------------------------------------------


def is_present(path: Path) -> bool:
    """Whether anything is at ``path``: a side file that is there as a folder or a FIFO is
    reported as not read, one that is absent is not reported.  Never raises."""
    try:
        files.stat(path)
    except (OSError, ValueError):
        return False
    return True


def decode_text(data: bytes, path: Path, notes: list[ReadNote]) -> str:
    """UTF-8 text of a file; bytes that are not UTF-8 become replacement characters and a note
    names the first line that held one."""
    line = undecodable_line(data)
    if line is not None:
        notes.append(ReadNote(NoteKind.CORRUPT, str(path),
                              "bytes that are not UTF-8 were read as replacement characters", f"line {line}"))
    return data.decode("utf-8", errors="replace")


def read_side_text(path: Path, notes: list[ReadNote]) -> str:
    """A side file's text, read only when it is a regular file within
    :data:`SIDE_FILE_MAX_BYTES`; raises :class:`SideFileRefused` otherwise."""
    try:
        status = files.stat(path)
        if not stat.S_ISREG(status.st_mode):
            raise SideFileRefused(path, NoteKind.SKIPPED,
                                  f"it is a {_file_type(status.st_mode)}, not a regular file; not opened")
        # Its size and one byte more (a buffer of the cap for every small file would be
        # wasted); a file that grew since it was measured is read again, up to the cap.
        data = b"" if status.st_size > SIDE_FILE_MAX_BYTES else files.read_head(path, status.st_size + 1)
        if len(data) > status.st_size:
            data = files.read_head(path, SIDE_FILE_MAX_BYTES + 1)
    except OSError as error:
        raise SideFileRefused(path, NoteKind.SKIPPED, f"cannot read: {error.strerror or error}") from error
    if status.st_size > SIDE_FILE_MAX_BYTES:
        raise SideFileRefused(path, NoteKind.SKIPPED,
                              f"{status.st_size:,} bytes, more than the {SIDE_FILE_MAX_BYTES:,} read from a side file")
    if len(data) > SIDE_FILE_MAX_BYTES:
        raise SideFileRefused(path, NoteKind.SKIPPED,
                              f"it grew past the {SIDE_FILE_MAX_BYTES:,} bytes read from a side file while it was read")
    return decode_text(data, path, notes)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------


def load_yaml_bounded(path: Path, notes: list[ReadNote]) -> Any:
    """The one YAML document in ``path`` as plain data (dicts, lists, strings, numbers, bools,
    None), within the module's bounds.

    Raises :class:`SideFileRefused`: a skipped note when the file breaks a bound or is not a
    regular file, a corrupt note when it is not YAML.  ``notes`` get what was read past
    (bytes that are not UTF-8).
    """
    from rundoctor.readers import yaml_loader  # PyYAML only for runs that have YAML beside them

    text = read_side_text(path, notes)
    try:
        return yaml_loader.load_plain(text)
    except yaml_loader.Unbounded as error:
        raise SideFileRefused(path, NoteKind.SKIPPED, str(error)) from None
    except yaml_loader.NotYaml as error:
        raise SideFileRefused(path, NoteKind.CORRUPT, f"not valid YAML ({error})") from None


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------

_JSON = json.JSONDecoder()  # accepts the NaN / Infinity / -Infinity tokens Python writes


def _integer_or_double(digits: str) -> int | float:
    """A JSON integer; past Python's guard on converting long digit strings (4,300 digits by
    default), the double it stands for."""
    try:
        return int(digits)
    except ValueError:
        return float(digits)


_LONG_INTEGER_JSON = json.JSONDecoder(parse_int=_integer_or_double)
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'  # unrolled: an unclosed string costs one pass
_STRING_OR_BRACKET = re.compile(rf"{_STRING}|[\[\]{{}}]", re.DOTALL)


def decode_json_bounded(text: str, pos: int) -> tuple[Any, int]:
    """The JSON value that starts at ``pos`` and the offset after it, like
    ``JSONDecoder.raw_decode``, but never nested deeper than :data:`MAX_NESTING`.

    Raises :class:`NestedTooDeep` (with the value's end, to read on past it) instead of
    returning a deeper value or letting RecursionError out, and ``json.JSONDecodeError`` as
    ``raw_decode`` does.  The depth is measured only when the value holds a bracket after its
    first character, so flat records cost two ``str.find``.
    """
    try:
        try:
            value, end = _JSON.raw_decode(text, pos)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer past Python's 4,300-digit guard
            value, end = _LONG_INTEGER_JSON.raw_decode(text, pos)
    except RecursionError:
        raise NestedTooDeep(_measure(text, pos)[0]) from None
    nested = text.find("[", pos + 1, end) >= 0 or text.find("{", pos + 1, end) >= 0
    if nested and _measure(text, pos)[1] > MAX_NESTING:
        raise NestedTooDeep(end)
    return value, end


def _measure(text: str, pos: int) -> tuple[int | None, int]:
    """Where the container that starts at ``pos`` closes (None when it never does) and how
    deep it nests, brackets in strings not counted.  Iterative: this is how a value too deep
    for ``json`` is read past."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text, pos):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
            if depth <= 0:
                return match.end(), deepest
    return None, deepest


# --------------------------------------------------------------------------------------------
# Hyper-parameters as text
# --------------------------------------------------------------------------------------------


def flat_texts(mapping: Mapping[Any, Any]) -> dict[str, str]:
    """Nested mappings as ``{"a.b": text}``: strings as written, other values as JSON (``0.001``,
    ``true``, ``null``, ``[0.9, 0.99]``), so every logger's hyper-parameters compare as one kind."""
    return {key: value if isinstance(value, str) else json.dumps(value, default=str)
            for key, value in flatten(mapping, ".", keep_empty=True).items()}


def json_object_texts(data: bytes) -> dict[str, str] | None:
    """The JSON object ``data`` holds (a log's text value, such as the training arguments the
    Hugging Face Trainer writes into a TensorBoard text summary) as :func:`flat_texts`, within
    :data:`SIDE_FILE_MAX_BYTES` and :data:`MAX_NESTING`; None when it is larger, is not one
    JSON object, or is not JSON at all."""
    if len(data) > SIDE_FILE_MAX_BYTES:
        return None
    text = data.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip())
    try:
        value, end = decode_json_bounded(text, start)
    except (ValueError, NestedTooDeep):  # json.JSONDecodeError is a ValueError
        return None
    if not isinstance(value, dict) or text[end:].strip():
        return None
    return flat_texts(value)


def hparams_plugin_texts(content: bytes) -> dict[str, str] | None:
    """The hyper-parameters of a TensorBoard hparams plugin payload that starts a session (what
    torch's ``add_hparams`` and Lightning's and Keras' loggers write) as text, keys sorted (a
    protobuf map has no order); None for the plugin's other payloads (the experiment, the
    session end) and for one larger than :data:`SIDE_FILE_MAX_BYTES` or that does not decode.
    Numbers are written as :func:`~rundoctor.readers.text.number_text` writes them, booleans as
    JSON does; a list or struct value, which no logger writes, is left out."""
    from google.protobuf.message import DecodeError
    from tensorboard.plugins.hparams import plugin_data_pb2  # imported by event files only

    if len(content) > SIDE_FILE_MAX_BYTES:
        return None
    try:
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
    except (DecodeError, RecursionError, ValueError):
        return None
    if not data.HasField("session_start_info"):
        return None
    texts: dict[str, str] = {}
    for key, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            texts[key] = number_text(value.number_value)
        elif kind == "string_value":
            texts[key] = value.string_value
        elif kind == "bool_value":
            texts[key] = "true" if value.bool_value else "false"
    return dict(sorted(texts.items()))
