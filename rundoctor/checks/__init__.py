"""The check registry: an explicit tuple, in catalogue order.  Adding a check is one module,
one test module and one line here."""

from __future__ import annotations

from rundoctor.checks.base import Check

REGISTRY: tuple[Check, ...] = ()
