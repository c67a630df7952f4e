"""Which findings of a growing run are new: ``rundoctor watch`` and the training callbacks
print each finding once, when it first appears, and again only when its severity rises.

A finding is known by its run, check, tags and first step; a finding whose step range grows
(more NaN points, a longer plateau) keeps its first step and is the same finding.  Smoothed
checks can move a first step as points arrive (a plateau's start shifts while the smoothing
window fills), and a finding can drop out of a report for a while (a still-improving curve
that hit a NaN) and come back elsewhere: a report's findings of a check on some tags with
first steps not seen before are the same findings as the known ones missing from the report,
paired in step order.  Only findings beyond that number are new: the latest ones by first
step, since new events happen at the end of a growing run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rundoctor.findings import Finding
from rundoctor.report import finding_order


@dataclass
class FindingTracker:
    """The findings known so far: for each run, check and tags, the first step of each
    finding and the highest severity printed for it."""

    known: dict[tuple[str, str, tuple[str, ...]], dict[int | None, int]] = field(default_factory=dict)

    def new(self, run: str, findings: list[Finding]) -> list[Finding]:
        """The findings of a run's latest report to print: those not known before (see the
        module docstring for first steps that move) and those whose severity rose."""
        groups: dict[tuple[str, str, tuple[str, ...]], list[Finding]] = {}
        for finding in sorted(findings, key=_step_order):
            groups.setdefault((run, finding.code, finding.tags), []).append(finding)
        new: list[Finding] = []
        for key, group in groups.items():
            known = self.known.setdefault(key, {})
            steps = {finding.first_step for finding in group}
            unknown = [finding for finding in group if finding.first_step not in known]
            # Known findings missing from this report, as many as unknown ones, are those
            # findings with their first step moved: each takes the place of one, in order.
            missing = sorted((step for step in known if step not in steps), key=_none_first)
            for finding, was in zip(unknown, missing):
                known[finding.first_step] = known.pop(was)
            new.extend(unknown[len(missing) :])
            for finding in group:
                shown = known.get(finding.first_step, 0)
                if shown and finding.severity.rank > shown:  # a transient NaN became permanent
                    new.append(finding)
                known[finding.first_step] = max(shown, finding.severity.rank)
        return sorted(new, key=finding_order)


def _none_first(step: int | None) -> tuple[bool, int]:
    return (step is not None, step or 0)


def _step_order(finding: Finding) -> tuple[bool, int]:
    return _none_first(finding.first_step)
