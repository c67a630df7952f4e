"""Sniffing: the file name and the first records of the head."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from rundoctor.readers.text import BOM
from rundoctor.series import XAxis

# Step-like keys of generic JSON lines, most preferred first, with the axis each one counts.
_STEP_KEYS = {"step": XAxis.STEP, "global_step": XAxis.STEP, "iteration": XAxis.ITERATION,
              "iter": XAxis.ITERATION, "epoch": XAxis.EPOCH}
# --------------------------------------------------------------------------------------------
# Sniffing: the file name and the first records of the head.
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _head_text(head: bytes) -> str:
    return head.removeprefix(BOM).decode("utf-8", "replace")


@lru_cache(maxsize=4)
def _head_records(head: bytes) -> tuple[dict[str, Any], ...]:
    """The JSON objects among the first lines of the head (a cut last line is ignored)."""
    records = []
    for line in _head_text(head).splitlines()[:8]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if type(record) is dict:
            records.append(record)
    return tuple(records)


def _sniffer(test: Callable[[Path, bytes], bool]) -> Callable[[Path, bytes], bool]:
    """A sniffer must never raise: whatever goes wrong means "not this format"."""

    def sniff(path: Path, head: bytes) -> bool:
        try:
            return bool(test(path if isinstance(path, Path) else Path(path), head))
        except Exception:  # the contract: a sniffer never raises
            return False

    sniff.__doc__ = test.__doc__
    return sniff


def _any_record(head: bytes, test: Callable[[dict[str, Any]], bool]) -> bool:
    return any(test(record) for record in _head_records(head))


def _sniff_hf(path: Path, head: bytes) -> bool:
    text = _head_text(head).lstrip()
    return text.startswith("{") and (path.name == "trainer_state.json" or '"log_history"' in text)


def _sniff_keras(path: Path, head: bytes) -> bool:
    records = _head_records(head)
    if records:  # one line: a dict of lists, not the first of many JSON lines
        values = records[0].values()
        return len(records) == 1 and bool(values) and all(type(value) is list for value in values)
    return bool(re.match(r'\s*\{\s*"[^"\n]*"\s*:\s*\[\s*(-?[\d.]|NaN|-?Infinity|\])', _head_text(head)))


def _sniff_mmdet(path: Path, head: bytes) -> bool:
    if _any_record(head, lambda r: r.get("mode") in ("train", "val") and "epoch" in r):
        return True
    # the first record, environment and config, can be longer than the head
    return path.name.endswith(".log.json") and '"env_info"' in _head_text(head)[:200]


def _sniff_mmengine(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: "step" in r and (
        path.name == "scalars.json" or {"iter", "epoch", "lr", "data_time", "time"} <= r.keys()))


def _sniff_detectron2(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: "iteration" in r and (
        path.name == "metrics.json" or bool({"data_time", "eta_seconds", "total_loss"} & r.keys())))


def _sniff_wandb(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: "_step" in r)


def _sniff_generic(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: any(key in r for key in _STEP_KEYS))
