"""What a reader is: a name, a content sniffer and a function from a file to a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rundoctor.series import Run


class UnreadableInput(Exception):
    """Raised by a reader when nothing at all can be read from an input; the reason is shown."""


@dataclass(frozen=True)
class FileReader:
    """A reader for formats where one file is one run (CSV, JSON, JSON lines).

    ``sniff`` decides from the file name and its first bytes whether the file is this
    format; it must be cheap and must not raise.  ``read`` returns everything readable and
    records what was not as read notes; it raises :class:`UnreadableInput` only when the
    file holds nothing of this format at all.
    """

    name: str
    description: str
    sniff: Callable[[Path, bytes], bool]
    read: Callable[[Path], Run]
