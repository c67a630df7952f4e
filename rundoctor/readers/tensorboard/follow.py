"""Following a TensorBoard run still being written (``rundoctor watch``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rundoctor.readers.base import RunSource, UnreadableInput
from rundoctor.readers.follow import FollowContext, Follower
from rundoctor.readers.tensorboard.assembly import _RunAssembly
from rundoctor.readers.tensorboard.state import EventFileState
from rundoctor.readers.tensorboard.values import _NO_HEADER_REASON, _NotAnEventFile
from rundoctor.readers.tensorboard.windows import read_event_file_increment
from rundoctor.series import NoteKind, Run


class TensorBoardFollower:
    """A TensorBoard run still being written, read a poll at a time: each poll reads only
    the bytes appended to its event files since the last one, files that appeared since
    included, and :meth:`run` builds the run from everything read so far."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.files: list[tuple[Path, str]] = []
        self.states: dict[Path, EventFileState] = {}
        self.offsets: dict[Path, int] = {}

    def poll(self, files: Sequence[tuple[Path, str]]) -> bool:
        """Read what was appended to ``files`` (the run's event files in run order, with
        their tag prefixes); whether anything new was read."""
        self.files = [(Path(path), prefix) for path, prefix in files]
        changed = False
        earlier: dict[str, str] = {}  # plugins named by the files before, as read so far
        for path, prefix in self.files:
            state = self.states.get(path)
            if state is None:
                state = self.states[path] = EventFileState(prefix, {})
                self.offsets[path] = 0
            for tag, plugin in earlier.items():
                state.run_plugins.setdefault(tag, plugin)
            offset = self.offsets[path]
            increment = read_event_file_increment(path, offset, state)
            changed |= increment.offset != offset or bool(increment.notes)
            self.offsets[path] = increment.offset
            for tag, (_, plugin) in state.first_metadata.items():
                earlier.setdefault(prefix + tag, plugin)
        return changed

    def run(self) -> Run:
        """The run as read so far; UnreadableInput while no file holds a record yet."""
        assembly = _RunAssembly()
        for path, _ in self.files:
            state = self.states[path]
            if state.not_an_event_file is not None:
                assembly.add_unreadable(path, state.not_an_event_file)
            elif state.walker.found_header:
                assembly.add(state.content())
            elif state.walker.corrupt_from is not None:
                assembly.add_unreadable(path, _NotAnEventFile(NoteKind.CORRUPT, _NO_HEADER_REASON))
            # else: nothing written yet
        return assembly.build(self.run_dir, [path for path, _ in self.files])


class _FollowedRun:
    """A TensorBoard run as ``watch`` follows it: only the bytes appended since the last poll
    are read (a record still being written is left for the next poll, never reported as
    truncation)."""

    def __init__(self, run_dir: Path) -> None:
        self.follower = TensorBoardFollower(run_dir)

    def update(self, source: RunSource) -> Run | None:
        if not self.follower.poll(source.files):
            return None
        try:
            return self.follower.run()
        except UnreadableInput:  # no file holds a record yet
            return None


def follow_event_files(context: FollowContext) -> Follower:
    """A follower for a TensorBoard run directory: reads only the event-file bytes appended since
    the last poll; a record still being written waits for the next one."""
    return _FollowedRun(context.source.path)
