"""rundoctor as a Hugging Face Trainer callback (``pip install 'rundoctor[transformers]'``).

    Trainer(model, args, train_dataset=..., callbacks=[RunDoctorCallback(every=50)])

Each time the Trainer logs (``on_log``: every ``logging_steps``, and after each evaluation)
the callback records the numbers it logged at ``state.global_step``.  When a check is due
(every ``every`` steps) it checks the run (:class:`~rundoctor.live.engine.LiveDoctor`), logs
new findings through the ``logging`` module (logger ``rundoctor``), and on a finding that
stops the run sets ``control.should_training_stop``, so the Trainer ends after the current
step; the reason is logged as an error.  :attr:`RunDoctorCallback.stopped` holds the checkup
that stopped it.

The Trainer's ``logging_nan_inf_filter`` (on by default) logs the mean of the previous
losses in place of a NaN or infinite loss, which hides the NaN from every callback: the
callback warns once at the start of training when it is on; set it to False for a NaN loss
to reach the log and stop the run.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rundoctor.findings import Severity
from rundoctor.live.engine import Checkup, LiveDoctor, describe

LOGGER = logging.getLogger("rundoctor")
_LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.ERROR: logging.ERROR}


class RunDoctorCallback(TrainerCallback):
    """Check the run every ``every`` steps of what the Trainer logs; stop it on a finding the
    stop policy names.

    Keyword arguments are :class:`~rundoctor.live.engine.LiveDoctor`'s (``stop_on``,
    ``stop_checks``, ``stop_roles``, ``log_on``, ``select``, ``ignore``, ``params``, ...)."""

    def __init__(self, *, every: int = 50, **options: Any) -> None:
        self.doctor = LiveDoctor(every=every, **options)
        self.stopped: Checkup | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Warn when the Trainer would hide a NaN loss from the logs."""
        if getattr(args, "logging_nan_inf_filter", False):
            LOGGER.warning(
                "rundoctor: logging_nan_inf_filter=True replaces a NaN or infinite loss by the mean of the "
                "previous ones in the logs; set it to False so that a NaN loss can stop the run"
            )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record what was logged; check when due."""
        step = state.global_step
        self.doctor.record(step, logs or {})
        if not self.doctor.due(step):
            return
        checkup = self.doctor.checkup(step)
        _log_each(checkup)
        if checkup.stop is not None:
            self.stopped = checkup
            control.should_training_stop = True
            LOGGER.error(checkup.stop_message())

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Report what the last steps showed (nothing is stopped any more)."""
        if self.stopped is None:
            checkup = self.doctor.final_checkup(state.global_step)
            if checkup is not None:
                _log_each(checkup)


def _log_each(checkup: Checkup) -> None:
    for finding in checkup.findings:
        LOGGER.log(_LEVELS[finding.severity], describe(finding))
