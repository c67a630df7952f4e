"""The neutraliser every reporter applies to log-controlled text."""

from __future__ import annotations

import os
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from rundoctor.reporters.escape import (
    guard_line_starts,
    html_text,
    is_unsafe,
    is_valid_unicode,
    raw_bytes,
    utf8_text,
    visible,
)


def test_terminal_and_ci_controls_are_escaped_visibly() -> None:
    assert visible("loss\x1b[2J") == "loss\\x1b[2J"
    assert visible("a\n::error::pwned") == "a\\n::error::pwned"
    assert visible("a\r\tb") == "a\\r\\tb"
    assert visible("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert visible("x\x85y\u2028z\u2029") == "x\\x85y\\u2028z\\u2029"
    assert visible("\ufeffbom") == "\\ufeffbom"


def test_printable_text_of_any_script_is_unchanged() -> None:
    for text in ("train/loss", "Verlust/Überprüfung", "損失", "loss 😀", "a\\x1b"):
        assert visible(text) == text


def test_undecodable_file_name_bytes_are_written_as_the_byte_and_recoverable() -> None:
    name = os.fsdecode(b"run-\xff\xfe")
    assert not is_valid_unicode(name)
    assert visible(name) == "run-\\xff\\xfe"
    assert utf8_text(name) == "run-\\xff\\xfe"
    assert raw_bytes(name) == b"run-\xff\xfe"
    assert utf8_text("run-\x1b") == "run-\x1b"


_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


@given(st.text(alphabet=st.characters(codec=None)))
def test_no_unsafe_character_survives(text: str) -> None:
    out = visible(text)
    assert not any(unicodedata.category(char) in _UNSAFE for char in out)
    assert "\n" not in out and "\r" not in out
    out.encode("utf-8")
    safe = [char for char in text if unicodedata.category(char) not in _UNSAFE]
    # Nothing is deleted: every safe character is still there, in order.
    iterator = iter(out)
    assert all(char in iterator for char in safe)


def test_a_line_that_would_read_as_a_workflow_command_gets_its_first_character_escaped() -> None:
    text = "::error::x\n  ::warning file=a::y\n\u3000##[error]z\nloss::val\n:x\n# h\n##x\n"
    assert guard_line_starts(text) == (
        "\\x3a:error::x\n  \\x3a:warning file=a::y\n\u3000\\x23#[error]z\nloss::val\n:x\n# h\n##x\n"
    )


def test_html_text_escapes_markup_after_control_characters() -> None:
    assert html_text('<b a="1">\x1b&\u202e\'') == "&lt;b a=&quot;1&quot;&gt;\\x1b&amp;\\u202e&#x27;"
    assert is_unsafe("\u202e") and is_unsafe("\x85") and not is_unsafe("é") and not is_unsafe(" ")
