"""Lines for a terminal or a CI log: words flowed to a width, never broken inside a path, and
every line led by text rundoctor wrote.

Two rules make a report safe to print where its lines are parsed (a CI runner reads a line
that starts, after its indentation, with ``::error::`` or ``##vso[`` as a command; GitHub's
runner trims leading spaces first, so indentation alone does not protect):

- Log-controlled text is passed through :func:`~rundoctor.reporters.escape.visible` by the
  caller, so it holds no line break of its own.
- A line the flow breaks starts with :data:`GUTTER` on its continuation lines: whatever word
  lands at the start of a continuation line (a tag name, a path) follows a character we wrote.

A :class:`Span` marked ``whole`` (a path, a step range) is never broken at its spaces: a path
longer than the room left overflows the width rather than being cut in two, so it can be
copied from the terminal.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

GUTTER = "│"  # leads every continuation line (see the module docstring)
GUTTER_STYLE = "dim"

_SPACES = re.compile(r"( +)")


@dataclass(frozen=True)
class Span:
    """A piece of a line: ``text`` in a rich ``style``; ``whole`` text is never broken at its spaces."""

    text: str
    style: str = ""
    whole: bool = False


def gutter(column: int) -> Text:
    """The lead of a continuation line: :data:`GUTTER` at ``column``, then a space."""
    return Text.assemble(" " * column, (GUTTER, GUTTER_STYLE), " ")


def flow(spans: Sequence[Span], width: int, hang: Text, lead: Text | None = None) -> list[Text]:
    """``spans`` as lines of at most ``width`` cells, broken only at spaces between words; the
    first line starts with ``lead`` (nothing by default), each line after it with ``hang`` (a
    :func:`gutter`).  A word that does not fit on a line of its own (a long path) overflows
    instead of being cut."""
    lines: list[Text] = []
    line = Text() if lead is None else lead.copy()
    used, empty = cell_len(line.plain), True
    for separator, fragments in _words(spans):
        size = sum(cell_len(text) for text, _ in fragments)
        if not empty and used + cell_len(separator) + size > width:
            lines.append(line)
            line, used, separator = hang.copy(), cell_len(hang.plain), ""
        line.append(separator)
        for text, style in fragments:
            line.append(text, style)
        used += cell_len(separator) + size
        empty = False
    lines.append(line)
    return lines


def _words(spans: Sequence[Span]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Words with the spaces before each: a word is the text between two runs of spaces, made
    of fragments of one or more spans (``error:`` may join a styled ``error`` to a plain ``:``)."""
    words: list[tuple[str, list[tuple[str, str]]]] = []
    pending: str | None = None
    for span in spans:
        for part in [span.text] if span.whole else _SPACES.split(span.text):
            if not part:
                continue
            if not span.whole and part[0] == " ":
                pending = (pending or "") + part
            elif pending is None and words:
                words[-1][1].append((part, span.style))
            else:
                words.append((pending or "", [(part, span.style)]))
                pending = None
    return words


def export(lines: Iterable[Text], color: bool) -> str:
    """The lines as a string, with ANSI styles only when ``color`` is on; trailing spaces dropped.
    Lines are printed as laid out: the console never wraps or crops them, and its width is
    set (wide enough for the longest) so that no COLUMNS in the environment changes them."""
    lines = list(lines)
    console = Console(
        file=io.StringIO(),
        record=True,
        width=max((cell_len(line.plain) for line in lines), default=0) + 1,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )
    for line in lines:
        console.print(line, soft_wrap=True)
    text = console.export_text(styles=color)
    return "".join(line.rstrip() + "\n" for line in text.splitlines())
