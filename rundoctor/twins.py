"""One run written in two formats is one run: find such twins among the runs read and merge them.

Training frameworks often log the same run twice: Ultralytics writes ``results.csv`` beside
its event files, Hugging Face writes ``checkpoint-N/trainer_state.json`` and event files under
``runs/``, detectron2 writes ``metrics.json`` beside its event files.  Read separately they
would be diagnosed twice, with every finding reported twice.

Two runs are merged only on strong evidence, both of:

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

The merged run is named by the deepest common directory of the two, names every source file
of both, and keeps every tag under its own name.  A series the other format logged with the
same values (under the same or another name) is kept once, from the copy with more points,
and a read note says so; a tag name both formats use for different values is kept from both,
prefixed by the format (``tensorboard:loss``).  Merging is transitive: three formats of one
run become one run.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Sequence

import numpy as np

from rundoctor.roles import LOSS_ROLES, METRIC_ROLES, Role
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder

MAX_LEVELS = 2
MIN_SHARED_STEPS = 3
AGREEMENT = 0.9
RTOL = 1e-3
ATOL = 1e-6
EVIDENCE_ROLES: tuple[Role, ...] = (*LOSS_ROLES, *METRIC_ROLES)


def merge_twins(runs: Sequence[Run]) -> list[Run]:
    """``runs`` with every group of twins merged into one run, sorted by id."""
    parent = list(range(len(runs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            if root(i) != root(j) and are_twins(runs[i], runs[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[Run]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(root(index), []).append(run)
    merged = [group[0] if len(group) == 1 else merge(group) for group in groups.values()]
    return sorted(merged, key=lambda run: run.id)


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


def merge(group: Sequence[Run]) -> Run:
    """One run from twins: the one with most points leads (its axis, its metadata first)."""
    ordered = sorted(group, key=lambda run: (-run.points, run.id))
    lead = ordered[0]
    chosen: list[tuple[Run, str]] = []
    notes = [note for run in ordered for note in run.notes]
    for run in ordered:
        for tag in run.tags:
            twin = next(((other, other_tag) for other, other_tag in chosen
                         if other is not run and _same_series(other, other_tag, run, tag)), None)
            if twin is None:
                chosen.append((run, tag))
                continue
            notes.append(ReadNote(
                NoteKind.INFO, _source(run),
                f"{tag} has the values of {twin[1]} from {_source(twin[0])}: the same run in two "
                "formats, kept once",
            ))
    builder = RunBuilder()
    roles: dict[str, Role] = {}
    tag_axes = {}
    for run, tag in chosen:
        clash = sum(1 for _, other in chosen if other == tag) > 1
        name = f"{run.format}:{tag}" if clash else tag
        curve = run.curve(tag)
        builder.add(name, curve.steps, curve.values, curve.wall_times)
        if tag in run.roles:
            roles[name] = run.roles[tag]
        if run.axis_of(tag) is not lead.x_axis:
            tag_axes[name] = run.axis_of(tag)
    histograms = {}
    for run in ordered:
        for tag, items in run.histograms.items():
            name = tag if tag not in histograms else f"{run.format}:{tag}"
            histograms[name] = items
            if tag in run.roles:
                roles[name] = run.roles[tag]
    metadata: dict[str, str] = {}
    for run in reversed(ordered):  # the lead's metadata wins
        metadata.update(run.metadata)
    merged = builder.build(
        id=_common_dir([run.id for run in ordered]) or lead.id,
        path=_common_dir([run.path for run in ordered]) or lead.path,
        format="+".join(run.format for run in ordered),
        sources=sorted({source for run in ordered for source in run.sources}),
        x_axis=lead.x_axis,
        tag_axes=tag_axes,
        notes=notes,
        histograms=histograms,
        metadata=metadata,
    )
    return replace(merged, roles=roles)


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


def _same_series(a: Run, tag_a: str, b: Run, tag_b: str) -> bool:
    """The same series written twice: same role (or bare name), agreeing on every shared step,
    and the smaller one's steps all inside the other's."""
    if a.roles.get(tag_a) is not b.roles.get(tag_b) and _bare(tag_a) != _bare(tag_b):
        return False
    if a.roles.get(tag_a) not in EVIDENCE_ROLES and _bare(tag_a) != _bare(tag_b):
        return False
    small, large = sorted((a.curve(tag_a).by_step, b.curve(tag_b).by_step), key=len)
    if len(small) == 0 or not np.isin(small.steps, large.steps).all():
        return False
    return _agree(a, tag_a, b, tag_b) and bool(
        np.isclose(
            small.values, large.values[np.searchsorted(large.steps, small.steps)], rtol=RTOL, atol=ATOL
        )[np.isfinite(small.values)].all()
    )


def _source(run: Run) -> str:
    return run.sources[0] if len(run.sources) == 1 else run.path
