"""What the tests of hostile files and file systems share: a guard that turns a hang into a
failure, and files built in the test (sparse where size matters: nothing large is written)."""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest

from tests.readers import tb_writer as w

requires_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")

# Long enough for a loaded machine to finish what takes a fraction of a second; short
# enough that a blocked open or an endless read fails the test instead of hanging the suite.
HANG_SECONDS = 60


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail, instead of hanging, when the block takes longer than ``seconds`` (a blocking
    open of a FIFO, an endless read); interrupts even a blocked system call."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds} s: blocked or endless")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def scalar_records(steps: Sequence[int], tag: str = "loss") -> bytes:
    """Framed scalar events, one a step (the value says the step: 1 / (step + 1))."""
    return b"".join(
        w.frame(w.scalar_event(tag, 1.0 / (step + 1), step, 1_700_000_000.0 + step).SerializeToString())
        for step in steps
    )


def header(length: int) -> bytes:
    """A record header whose length checksum verifies, claiming ``length`` payload bytes."""
    packed = struct.pack("<Q", length)
    return packed + struct.pack("<I", w.masked_crc32c(packed))


def append_hole(path: Path, size: int) -> None:
    """Extend ``path`` by ``size`` zero bytes without writing them (a sparse hole)."""
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size + size)
