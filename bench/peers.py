"""The tools a user would reach for instead of rundoctor, each run in a fresh process.

    python bench/peers.py PEER PATH [COLUMN ...]

Every peer imports what it needs inside its function (so the whole-process time includes
its imports, as a user pays them), does the least work that still hands the user every
point, and prints ``{"points": N}`` as its last line so that the harness can check it got
them all.  Doing the least work favours the peers: EventAccumulator's events are counted,
not converted to arrays.

Peers:
  ea-scalars PATH        tensorboard EventAccumulator keeping every scalar, .Scalars(tag)
  ea-tensors PATH        EventAccumulator keeping every tensor, .Tensors(tag) decoded to
                         numbers (TF2 scalars are tensors: .Scalars() returns none of them)
  tbparse PATH           tbparse.SummaryReader(PATH).scalars (recursive over runs)
  read-bytes PATH        the floor: import numpy and pandas, read every event file's bytes
  pandas-csv FILE COL..  pandas.read_csv (C engine); points = non-null cells outside COLs
  polars-ndjson FILE COL..
                         polars.read_ndjson(infer_schema_length=None); points as above
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable


def ea_scalars(path: str) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(path, size_guidance={"scalars": 0})
    accumulator.Reload()
    return sum(len(accumulator.Scalars(tag)) for tag in accumulator.Tags()["scalars"])


def ea_tensors(path: str) -> int:
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(path, size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    points = 0
    for tag in accumulator.Tags()["tensors"]:
        events = accumulator.Tensors(tag)
        # The fastest honest decoding: one np.frombuffer over the joined float32 payloads
        # (what TF's writer emits); anything else goes through tensorboard's own converter.
        packed = [e.tensor_proto.tensor_content for e in events
                  if e.tensor_proto.dtype == 1 and e.tensor_proto.tensor_content]
        values = [np.frombuffer(b"".join(packed), dtype="<f4")]
        if len(packed) < len(events):
            values += [tensor_util.make_ndarray(e.tensor_proto).ravel() for e in events
                       if not (e.tensor_proto.dtype == 1 and e.tensor_proto.tensor_content)]
        points += sum(v.size for v in values)
    return points


def tbparse_scalars(path: str) -> int:
    from tbparse import SummaryReader

    return len(SummaryReader(path).scalars)


def read_bytes(path: str) -> int:
    """The floor for reading event files: the imports every Python reader pays, and the bytes."""
    import numpy  # noqa: F401  (the import cost is the point)
    import pandas  # noqa: F401

    total = 0
    for directory, _, names in os.walk(path):
        for name in sorted(names):
            if "tfevents" in name:
                with open(os.path.join(directory, name), "rb") as handle:
                    total += len(handle.read())
    return total


def pandas_csv(path: str, index_columns: list[str]) -> int:
    import pandas

    frame = pandas.read_csv(path)
    return int(frame.drop(columns=index_columns, errors="ignore").count().sum())


def polars_ndjson(path: str, index_columns: list[str]) -> int:
    import polars

    frame = polars.read_ndjson(path, infer_schema_length=None)
    metrics = frame.drop([c for c in index_columns if c in frame.columns])
    return int(sum(metrics.height - count for count in metrics.null_count().row(0)))


PEERS: dict[str, Callable[..., int]] = {
    "ea-scalars": ea_scalars,
    "ea-tensors": ea_tensors,
    "tbparse": tbparse_scalars,
    "read-bytes": read_bytes,
    "pandas-csv": pandas_csv,
    "polars-ndjson": polars_ndjson,
}
TAKES_COLUMNS = {"pandas-csv", "polars-ndjson"}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in PEERS:
        sys.stderr.write(__doc__ or "")
        return 2
    name, path, columns = argv[0], argv[1], argv[2:]
    points = PEERS[name](path, columns) if name in TAKES_COLUMNS else PEERS[name](path)
    # read-bytes counts bytes, not points: the harness does not compare it with the manifest
    print(json.dumps({"bytes" if name == "read-bytes" else "points": points}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
