"""One run written in two formats: find such twins among the runs read, so that they are
diagnosed once.

Training frameworks often log the same run twice: Ultralytics writes ``results.csv`` beside
its event files, Hugging Face writes ``checkpoint-N/trainer_state.json`` and event files under
``runs/``, detectron2 writes ``metrics.json`` beside its event files.  Each format is read,
checked and reported as a run of its own (the JSON report has a ``runs[]`` entry per file,
with that file's findings); :func:`twin_groups` says which of them are one training run, and
the diagnosis (:mod:`rundoctor.diagnosis`) relates the findings of a group's members into one
diagnosis, which human reports show once.

Two runs are twins only on strong evidence, both of:

1. **Place**: their directories (a file's directory, or the run directory itself) lie within
   :data:`MAX_LEVELS` levels below their deepest common directory: the same directory, or
   ``out/checkpoint-500`` and ``out/runs/Jan01_host``.
2. **Data**: a pair of loss or metric series (never a learning rate or a counter, which the
   runs of a sweep share), one from each, with the same role or the same name after the
   split prefix, has at least
   :data:`MIN_SHARED_STEPS` steps in common and equal values at :data:`AGREEMENT` of them
   (relative tolerance :data:`RTOL`: float32 event files against float64 text with four
   decimals).  Two runs of one sweep in one folder share the directory but not the values,
   and stay apart.

Two runs of one format are never twins.  Twinship is transitive: three formats of one run
are one group.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

import numpy as np

from rundoctor.roles import LOSS_ROLES, METRIC_ROLES, Role
from rundoctor.series import Run

MAX_LEVELS = 2
MIN_SHARED_STEPS = 3
AGREEMENT = 0.9
RTOL = 1e-3
ATOL = 1e-6
EVIDENCE_ROLES: tuple[Role, ...] = (*LOSS_ROLES, *METRIC_ROLES)


def twin_groups(runs: Sequence[Run]) -> list[tuple[Run, ...]]:
    """Every run in exactly one group (a run with no twin is a group of one).

    A group's first run is its *leader*, the one reports show it under: the member with the
    most points, ties by id; the rest follow in the same order.  Groups are sorted by their
    leader's id.
    """
    parent = list(range(len(runs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in _candidate_pairs(runs):
        if root(i) != root(j) and are_twins(runs[i], runs[j]):
            parent[root(j)] = root(i)
    members: dict[int, list[Run]] = {}
    for index, run in enumerate(runs):
        members.setdefault(root(index), []).append(run)
    groups = [tuple(sorted(group, key=leader_order)) for group in members.values()]
    return sorted(groups, key=lambda group: group[0].id)


def _candidate_pairs(runs: Sequence[Run]) -> list[tuple[int, int]]:
    """The pairs (i < j) that can be twins at all: of different formats, with a directory that
    is an ancestor of both homes within :data:`MAX_LEVELS` levels, which is exactly when
    :func:`_near` holds.  Comparing every pair instead would cost a 10,000-run sweep 50
    million comparisons; a sweep of one format has no candidate pair at all."""
    by_place: dict[str, dict[str, list[int]]] = {}
    for index, run in enumerate(runs):
        parts = _home(run).replace("\\", "/").rstrip("/").split("/")
        for kept in range(len(parts), max(len(parts) - MAX_LEVELS, 1) - 1, -1):
            if kept == 1 and parts[0] == "":
                break  # the file system's root is no common directory (see _common_dir)
            place = "/".join(parts[:kept])
            by_place.setdefault(place, {}).setdefault(run.format, []).append(index)
    pairs: set[tuple[int, int]] = set()
    for formats in by_place.values():
        groups = list(formats.values())
        for x, first in enumerate(groups):
            for second in groups[x + 1 :]:
                pairs.update((min(i, j), max(i, j)) for i in first for j in second)
    return sorted(pairs)


def leader_order(run: Run) -> tuple[int, str]:
    """The order of a group's members: most points first, then by id."""
    return (-run.points, run.id)


def are_twins(a: Run, b: Run) -> bool:
    """Both conditions of the module docstring: near in the tree, and shared values."""
    return a.format != b.format and _near(a, b) and shared_series(a, b) is not None


def shared_series(a: Run, b: Run) -> tuple[str, str] | None:
    """A (tag of a, tag of b) pair that agrees on the steps both logged, or None."""
    for tag_a in a.tags:
        role = a.roles.get(tag_a)
        if role not in EVIDENCE_ROLES:
            continue
        for tag_b in b.tags:
            role_b = b.roles.get(tag_b)
            if role_b not in EVIDENCE_ROLES or (role_b is not role and _bare(tag_a) != _bare(tag_b)):
                continue
            if _agree(a, tag_a, b, tag_b):
                return tag_a, tag_b
    return None


def _near(a: Run, b: Run) -> bool:
    home_a, home_b = _home(a), _home(b)
    common = _common_dir([home_a, home_b])
    if common is None:
        return False
    return _depth_below(home_a, common) <= MAX_LEVELS and _depth_below(home_b, common) <= MAX_LEVELS


def _home(run: Run) -> str:
    """The run's directory: its path when that is a directory (event files, MLflow), else the
    directory of its log file.  A run read from one file has that file as its only source."""
    path = run.path.replace("\\", "/").rstrip("/")
    is_file = run.sources == [run.path] and posixpath.splitext(path)[1] != ""
    return posixpath.dirname(path) if is_file else path


def _common_dir(paths: Sequence[str]) -> str | None:
    parts = [path.replace("\\", "/").rstrip("/").split("/") for path in paths]
    common: list[str] = []
    for pieces in zip(*parts):
        if len(set(pieces)) != 1:
            break
        common.append(pieces[0])
    if not common or common == [""]:
        return None
    return "/".join(common)


def _depth_below(path: str, ancestor: str) -> int:
    rest = path.replace("\\", "/").rstrip("/")[len(ancestor):].strip("/")
    return 0 if not rest else rest.count("/") + 1


def _bare(tag: str) -> str:
    """The name without its split or namespace prefix: ``train/loss`` -> ``loss``."""
    return tag.replace("\\", "/").rsplit("/", 1)[-1].lower()


def _agree(a: Run, tag_a: str, b: Run, tag_b: str) -> bool:
    ca, cb = a.curve(tag_a).by_step, b.curve(tag_b).by_step
    shared, ia, ib = np.intersect1d(ca.steps, cb.steps, assume_unique=True, return_indices=True)
    if shared.size < MIN_SHARED_STEPS:
        return False
    va, vb = ca.values[ia], cb.values[ib]
    same = np.isclose(va, vb, rtol=RTOL, atol=ATOL) | (np.isnan(va) & np.isnan(vb))
    return bool(same.mean() >= AGREEMENT)
