"""One neutraliser for log-controlled text: every character that could change how a report is
displayed or parsed is written as a visible escape, never deleted.

Tag names, run directories, file names, JSON keys, hparams values and note texts come from the
logs, and logs may be written by someone hostile (a pull request's artifacts, a shared bucket).
A raw ESC repaints a terminal, a raw newline starts a line that a CI runner reads as a workflow
command (``::error::``), U+202E reverses what a reviewer sees.  Escaping (``\\x1b``, ``\\n``,
``\\u202e``) rather than deleting keeps the name recognisable and shows that something was there.

Escaped: Unicode categories Cc (C0, DEL, C1), Cf (format characters: bidirectional overrides and
isolates, zero-width characters, the byte-order mark), Zl and Zp (line and paragraph separators)
and Cs.  Lone surrogates U+DC80..U+DCFF are the bytes of a file name that is not valid UTF-8 (as
Python's ``surrogateescape`` decodes them) and are written as the byte they stand for,
``\\xff``; :func:`raw_bytes` recovers the name's original bytes.
"""

from __future__ import annotations

import html
import os
import re
import unicodedata
from functools import lru_cache

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


@lru_cache(maxsize=4096)
def is_unsafe(char: str) -> bool:
    """Whether :func:`visible` escapes ``char``: a control, format, separator or surrogate character."""
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


# Everything outside printable ASCII is looked at more closely; the common all-ASCII name passes
# through one regular-expression search without a per-character loop.
_SUSPECT = re.compile(r"[^\x20-\x7e]")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` with every control, format, separator or surrogate character written as a visible
    escape: the result holds no line break and nothing a terminal, a CI runner or a bidirectional
    renderer would act on."""
    if _SUSPECT.search(text) is None:
        return text
    return "".join(_escape_char(char) if is_unsafe(char) else char for char in text)


def is_valid_unicode(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8: false when it carries lone surrogates, as a file name
    that was not valid UTF-8 does once decoded with ``surrogateescape``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_text(text: str) -> str:
    """``text`` made encodable as UTF-8: each lone surrogate written as :func:`visible` writes it
    (``\\xff`` for an undecodable byte), everything else unchanged."""
    if is_valid_unicode(text):
        return text
    return "".join(_escape_char(char) if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)


def raw_bytes(path: str) -> bytes:
    """The bytes of a file name as the file system holds them (the inverse of ``surrogateescape``
    decoding), for names that are not valid UTF-8."""
    return os.fsencode(path)


def html_text(text: str) -> str:
    """Log text as HTML (and SVG) character data or an attribute value: :func:`visible`, then
    ``& < > " '`` as entities, so it can neither add markup nor end an attribute."""
    return html.escape(visible(text), quote=True)


# A line a CI runner reads as a command: GitHub's workflow commands in both syntaxes (``::name``
# and the older ``##[name]``), after the white space the runner skips (any Unicode white space:
# it trims with .NET's String.TrimStart).
_COMMAND_START = re.compile(r"^([^\S\n]*)(:(?=:)|#(?=#\[))", re.MULTILINE)


def guard_line_starts(text: str) -> str:
    """``text`` (any number of lines) with the first character of every line that would read as a
    workflow command written as a visible escape (``\\x3a:error::``), for output whose lines may
    start with log text: a table whose first column is a tag name, a name folded onto a new
    line.  Lines of a report are never commands of ours, so nothing else changes."""
    return _COMMAND_START.sub(lambda match: f"{match.group(1)}\\x{ord(match.group(2)):02x}", text)
