"""Helpers the format writers share: how frameworks turn numbers into text."""

from __future__ import annotations

import math

import numpy as np


def f32(value: float) -> float:
    """The float a framework logs for a float32 tensor: ``tensor.item()`` widens it to a double."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.float32(value))


def text(value: float) -> str:
    """Python's ``str`` of a float, as csv.writer and MLflow's file store write it."""
    return str(float(value))


def stamp(wall: float) -> str:
    """Seconds since the epoch as the integer a writer puts in a file name."""
    return f"{int(wall):010d}"


def clean(value: float) -> float | None:
    """None for non-finite values where a format cannot hold them."""
    return value if math.isfinite(value) else None
