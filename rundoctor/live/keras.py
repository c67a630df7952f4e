"""rundoctor as a Keras 3 callback (``pip install 'rundoctor[keras]'``).

    model.fit(x, y, epochs=10, callbacks=[RunDoctorCallback(every=50)])

After every training batch the callback records the ``logs`` Keras passes (the loss and
metrics, each a mean over the epoch's batches so far, as Keras reports them), at a step that
counts batches over every epoch (and every fit with this callback); after each epoch, the validation metrics (``val_*``) at the
same step.  Every ``every`` steps it checks the run (:class:`~rundoctor.live.engine.LiveDoctor`),
reports new findings as Python warnings (:class:`RunDoctorWarning`, which ``warnings``
filters govern), and on a finding that stops the run sets ``model.stop_training``, which
Keras honours after the current batch, as it does for TerminateOnNaN.  The reason is written
into the batch's logs as ``rundoctor_stop`` (for the callbacks after this one) and warned.
:attr:`RunDoctorCallback.stopped` holds the checkup that stopped it.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras

from rundoctor.live.engine import Checkup, LiveDoctor, describe


class RunDoctorWarning(UserWarning):
    """A finding rundoctor reported during training, or why it stopped the run."""


class RunDoctorCallback(keras.callbacks.Callback):  # type: ignore[misc]  # keras ships no type information
    """Check the run every ``every`` training batches; stop it on a finding the stop policy names.

    Keyword arguments are :class:`~rundoctor.live.engine.LiveDoctor`'s (``stop_on``,
    ``stop_checks``, ``stop_roles``, ``log_on``, ``select``, ``ignore``, ``params``, ...)."""

    def __init__(self, *, every: int = 50, **options: Any) -> None:
        super().__init__()
        self.doctor = LiveDoctor(every=every, **options)
        self.stopped: Checkup | None = None
        self.step = 0  # batches trained with this callback, over all epochs (and fits: a second fit goes on training)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Record the batch's logs; check when due."""
        self.step += 1
        self.doctor.record(self.step, logs or {})
        if not self.doctor.due(self.step):
            return
        checkup = self.doctor.checkup(self.step)
        _warn_each(checkup)
        if checkup.stop is not None:
            self.stopped = checkup
            self.model.stop_training = True
            if logs is not None:
                logs["rundoctor_stop"] = checkup.stop_message()
            warnings.warn(checkup.stop_message(), RunDoctorWarning, stacklevel=2)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Record the validation metrics of the epoch (the training ones came batch by batch)."""
        validation = {name: value for name, value in (logs or {}).items() if name.startswith("val_")}
        if validation:
            self.doctor.record(self.step, validation)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Report what the last batches showed (nothing is stopped any more)."""
        if self.stopped is None:
            checkup = self.doctor.final_checkup(self.step)
            if checkup is not None:
                _warn_each(checkup)


def _warn_each(checkup: Checkup) -> None:
    for finding in checkup.findings:
        warnings.warn(describe(finding), RunDoctorWarning, stacklevel=3)
