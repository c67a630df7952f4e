"""Runs the picture tests share: a long run, a resumed one, and one of curves in every unit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rundoctor.findings import Finding
from rundoctor.reporters.panels import Panel, Picture, picture
from rundoctor.series import Run
from rundoctor.summary import summarize
from tests.curves import decay, make_run, noisy, restarted, rise, steps, with_spikes

LONG = 100_000


def long_run(run_id: str = "long") -> Run:
    """100k steps of a noisy decaying loss with a three-step spike at 50,400."""
    loss = with_spikes(noisy(decay(LONG), 0.05), at=[50_400], height=6.0, width=3)
    return make_run({"train/loss": (steps(LONG), loss)}, run_id=run_id)


def draw(run: Run, findings: Sequence[Finding], *, reduce: bool = True) -> Picture:
    """The run's picture as a report draws it: from its summary, made with these findings."""
    return picture(summarize(run, findings, curves=True, reduce=reduce), findings)


def loss_panel(drawn: Picture) -> Panel:
    return next(panel for panel in drawn.panels if panel.title == "Loss")


def resumed_run(run_id: str = "resumed") -> Run:
    """Attempt 1 logs steps 0..599; attempt 2 restarts at 300 and stops at 450, so the analysis
    keeps attempt 2 for 300..450 and attempt 1's tail for 451..599."""
    first, second = decay(600), 0.5 * decay(151)
    return make_run({"train/loss": (restarted((0, 600), (300, 451)), np.concatenate((first, second))),
                     "val/loss": (steps(6, every=100), decay(6))}, run_id=run_id)


# Every unit a panel can have, in one run; a finding about all of them lands in catch-all panels.
MIXED = {
    "train/loss": (steps(200), decay(200)),
    "loss_cls": (steps(200), decay(200, 0.5, 0.01)),
    "val/loss": (steps(20, every=10), decay(20)),
    "train/acc": (steps(200), rise(200)),  # a fraction
    "val/acc": (steps(20, every=10), 100 * rise(20)),  # percent
    "top5": (steps(20, every=10), 100 * rise(20, 0.6, 0.99)),  # percent
    "lr": (steps(200), np.geomspace(1e-2, 1e-6, 200)),
    "grad_norm": (steps(200), noisy(np.full(200, 3.0))),
    "epoch": (steps(200), np.arange(200.0) // 20),
    "false_negative_rate": (steps(200), np.linspace(0.4, 0.1, 200)),
    "tokens_seen": (steps(200), np.arange(200.0) * 4096),
}
