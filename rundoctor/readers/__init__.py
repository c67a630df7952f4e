"""Readers turn log files into :class:`rundoctor.series.Run` records.

:data:`READERS` is the registry: every format rundoctor reads, one :class:`~rundoctor.readers.base.Reader`
each (see :mod:`rundoctor.readers.base` for the protocol).  Discovery offers a directory to the
readers that claim directories, a file's name to those that claim names, and a file's first
bytes to the sniffers, in this order; ``watch`` follows each run the way its reader says.
Adding a format is one module and one line here (CONTRIBUTING.md has the steps).
"""

from __future__ import annotations

from rundoctor.readers import csv, json, mlflow, mlflow_server, tensorboard, wandb_offline
from rundoctor.readers.base import Reader

READERS: tuple[Reader, ...] = (
    tensorboard.READER,
    mlflow.READER,
    mlflow_server.READER,
    wandb_offline.READER,
    *json.READERS,
    *csv.READERS,
)


def reader_named(name: str) -> Reader:
    """The reader called ``name``; KeyError when there is none."""
    for reader in READERS:
        if reader.name == name:
            return reader
    raise KeyError(name)
