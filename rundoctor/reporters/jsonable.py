"""Turn report values into strict JSON: no bare NaN or Infinity, numpy scalars unwrapped."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
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


def dumps(document: Any) -> str:
    """Deterministic, strict JSON text with a trailing newline."""
    return json.dumps(jsonable(document), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
