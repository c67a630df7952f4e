"""Turn report values into strict JSON: no bare NaN or Infinity, numpy scalars unwrapped, and
valid UTF-8 whatever the file names were.

A file name that is not valid UTF-8 reaches us with its undecodable bytes as lone surrogates
(Python's ``surrogateescape``); JSON text cannot hold those.  Every string is written with each
such byte as the four characters ``\\xNN`` (:func:`~rundoctor.reporters.escape.utf8_text`),
and a path that needed it also carries ``path_base64``, its bytes as the file system holds
them, so a script can still open the file (:func:`path_fields`).  Control, format and
separator characters that JSON would write raw (C1 controls, DEL, bidirectional overrides,
U+2028) are written as ``\\uXXXX`` escapes: the parsed value is the same, and the text holds
nothing a terminal or a line-reading CI runner would act on.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from rundoctor.reporters.escape import is_unsafe, is_valid_unicode, raw_bytes, utf8_text

# Where JSON text may hold a character ``json.dumps`` leaves raw (it escapes only C0, ``"`` and ``\\``).
_UNESCAPED = re.compile(r"[^\x00-\x7e]")


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as the strings "NaN", "Infinity", "-Infinity" and every
    string (dictionary keys too) encodable as UTF-8."""
    if isinstance(value, str):
        return utf8_text(value)
    if isinstance(value, dict):
        return {utf8_text(str(key)): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return [jsonable(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return value


def path_fields(path: str) -> dict[str, str]:
    """``{"path": ...}``, plus ``path_base64`` (standard alphabet, padded) when the path is not
    valid UTF-8: the display string alone would lose which bytes the name holds."""
    if is_valid_unicode(path):
        return {"path": path}
    return {"path": path, "path_base64": base64.b64encode(raw_bytes(path)).decode("ascii")}


def dumps(document: Any, *, indent: int | None = 2) -> str:
    """Deterministic, strict JSON text with a trailing newline; every unsafe character escaped.
    ``indent=None``: the whole document on one line (JSON lines)."""
    text = json.dumps(jsonable(document), indent=indent, ensure_ascii=False, allow_nan=False)
    return _UNESCAPED.sub(_json_escape, text) + "\n"


class Items:
    """A list of a document that :func:`dump_chunks` writes an item at a time, each item made
    as it is written: the list of 10,000 runs' entries is never held whole, nor its text."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


def dump_chunks(document: Mapping[str, Any]) -> Iterator[str]:
    """:func:`dumps` of a document (an object, indent 2) in pieces, the same text: a value that
    is :class:`Items` is written an item at a time, so memory holds one item, not the document."""
    yield "{"
    for number, (key, value) in enumerate(document.items()):
        yield _escaped(("," if number else "") + "\n  " + json.dumps(utf8_text(key), ensure_ascii=False) + ": ")
        if not isinstance(value, Items):
            yield _escaped(_indented(value, "  "))
            continue
        written = False
        for item in value.items:
            yield _escaped(("," if written else "[") + "\n    " + _indented(item, "    "))
            written = True
        yield "\n  ]" if written else "[]"
    yield "\n}\n"


def _indented(value: Any, margin: str) -> str:
    """``value`` as strict JSON with indent 2, its lines after the first indented by ``margin``
    (JSON text has no line break inside a string, so this is the text of a nested value)."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False, allow_nan=False).replace("\n", "\n" + margin)


def _escaped(text: str) -> str:
    return _UNESCAPED.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    """An unsafe character as JSON's ``\\u`` escape (a surrogate pair above U+FFFF), any other
    unchanged.  Such characters occur only inside strings, where the escape means the same."""
    char = match.group()
    return json.dumps(char)[1:-1] if is_unsafe(char) else char
