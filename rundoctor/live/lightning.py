"""rundoctor as a PyTorch Lightning callback (``pip install 'rundoctor[lightning]'``).

    trainer = lightning.pytorch.Trainer(callbacks=[RunDoctorCallback(every=50)])

After every training batch the callback records the loss the training step returned
(``loss``) and the metrics logged with ``self.log`` since the previous batch; after each
validation run, the metrics it logged, at the current global step.  Every ``every`` steps
it checks the run (:class:`~rundoctor.live.engine.LiveDoctor`), reports new findings as
rank-zero warnings, and on a finding that stops the run sets ``trainer.should_stop`` (agreed
across processes, as EarlyStopping does), so training ends after the current batch with a
warning that says why.  :attr:`RunDoctorCallback.stopped` holds the checkup that stopped it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from rundoctor.findings import Severity
from rundoctor.live.engine import Checkup, LiveDoctor, describe


class RunDoctorCallback(Callback):
    """Check the run every ``every`` training steps; stop it on a finding the stop policy names.

    Keyword arguments are :class:`~rundoctor.live.engine.LiveDoctor`'s (``stop_on``,
    ``stop_checks``, ``stop_roles``, ``log_on``, ``select``, ``ignore``, ``params``, ...)."""

    def __init__(self, *, every: int = 50, **options: Any) -> None:
        super().__init__()
        self.doctor = LiveDoctor(every=every, **options)
        self.stopped: Checkup | None = None
        # The metric objects last recorded: Lightning keeps a metric's tensor until it is
        # logged again, so a new object is a new point (holding the old one keeps its id unique).
        self._recorded: dict[str, Any] = {}

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Record this step's loss and fresh metrics; check when due."""
        metrics = self._fresh(trainer.callback_metrics)
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is not None:
            metrics.setdefault("loss", loss)
        step = trainer.global_step
        self.doctor.record(step, metrics)
        if self.doctor.due(step):
            self._report(trainer, self.doctor.checkup(step))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record what validation logged, at the global step it ran at."""
        if not trainer.sanity_checking:
            self.doctor.record(trainer.global_step, self._fresh(trainer.callback_metrics))

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Report what the last steps showed (nothing is stopped any more)."""
        if self.stopped is None:
            checkup = self.doctor.final_checkup(trainer.global_step)
            if checkup is not None:
                self._log(checkup)

    def _fresh(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        fresh = {name: value for name, value in metrics.items() if self._recorded.get(name) is not value}
        self._recorded.update(fresh)
        return fresh

    def _report(self, trainer: Trainer, checkup: Checkup) -> None:
        self._log(checkup)
        if trainer.strategy.reduce_boolean_decision(checkup.stop is not None, all=False):
            trainer.should_stop = True
            self.stopped = checkup
            rank_zero_warn(checkup.stop_message() or "rundoctor: another process found a reason to stop training")

    @staticmethod
    def _log(checkup: Checkup) -> None:
        for finding in checkup.findings:
            if finding.severity is Severity.INFO:
                rank_zero_info(describe(finding))
            else:
                rank_zero_warn(describe(finding))
