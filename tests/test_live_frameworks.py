"""The training callbacks with the real frameworks: tiny models trained on CPU for a few dozen
steps.  A NaN planted from step 13 (11 for Keras) stops the run at the first checked step after
it, with a message that says why, through the framework's own stop mechanism; the healthy
control with the same callback runs every step and is never stopped.  A framework that is not
installed skips its tests (``pip install -e '.[test]'`` installs all three)."""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

NAN_FROM = 13  # the first step whose loss is NaN
EVERY = 5  # checks at steps 5, 10, 15, ...: the first checked step after the NaN is 15
FIRST_CHECK_AFTER = 15
STEPS = 32


def test_a_checkup_step_is_the_first_multiple_of_every_at_or_after_the_nan() -> None:
    assert math.ceil(NAN_FROM / EVERY) * EVERY == FIRST_CHECK_AFTER


# ---------------------------------------------------------------------------------------
# PyTorch Lightning


def lightning_fit(nan_from: int | None) -> tuple[Any, Any, list[str]]:
    pytest.importorskip("lightning", reason="PyTorch Lightning is not installed (pip install 'rundoctor[lightning]')")
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from rundoctor.live.lightning import RunDoctorCallback

    class Regression(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            if nan_from is not None and self.global_step + 1 >= nan_from:  # the step this batch completes
                loss = loss * float("nan")
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8)
    callback = RunDoctorCallback(every=EVERY)
    trainer = pl.Trainer(
        max_epochs=STEPS // 8, callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Regression(), data, data)
    return trainer, callback, [str(warning.message) for warning in caught]


def test_lightning_stops_a_nan_run_at_the_first_checked_step_after_it() -> None:
    trainer, callback, said = lightning_fit(NAN_FROM)

    assert trainer.global_step == FIRST_CHECK_AFTER
    assert callback.stopped is not None and callback.stopped.stop.code == "N001"
    message = callback.stopped.stop_message()
    assert message.startswith(f"rundoctor stopped training at step {FIRST_CHECK_AFTER}: error N001 non-finite: ")
    assert f"non-finite at step {NAN_FROM}" in message
    assert message in said  # through Lightning's rank-zero warnings


def test_lightning_leaves_a_healthy_run_alone() -> None:
    trainer, callback, said = lightning_fit(None)

    assert trainer.global_step == STEPS and callback.stopped is None
    assert not [text for text in said if text.startswith("rundoctor")]
    assert callback.doctor.run.points >= STEPS * 2  # the loss and train_loss at every step, and val_loss


# ---------------------------------------------------------------------------------------
# Keras 3 (on the torch backend: no TensorFlow needed)


def keras_fit(nan_from: int | None) -> tuple[Any, Any, list[str]]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install 'rundoctor[keras]')")
    from rundoctor.live.keras import RunDoctorCallback, RunDoctorWarning

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)

    def batches() -> Any:
        step = 0
        while True:
            step += 1
            rows = slice((step - 1) % 8 * 8, (step - 1) % 8 * 8 + 8)
            inputs = x[rows] * np.float32("nan") if nan_from is not None and step >= nan_from else x[rows]
            yield inputs, y[rows]

    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    callback = RunDoctorCallback(every=EVERY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(batches(), steps_per_epoch=8, epochs=STEPS // 8, verbose=0, callbacks=[callback],
                            validation_data=(x, y))
    said = [str(w.message) for w in caught if issubclass(w.category, RunDoctorWarning)]
    return history, callback, said


def test_keras_stops_a_nan_run_at_the_first_checked_step_after_it() -> None:
    _, callback, said = keras_fit(NAN_FROM)

    assert callback.step == FIRST_CHECK_AFTER and callback.model.stop_training
    assert callback.stopped is not None and callback.stopped.stop.code == "N001"
    assert f"non-finite at step {NAN_FROM}" in callback.stopped.stop_message()
    assert callback.stopped.stop_message() in said  # as a warning, which warnings filters govern


def test_keras_leaves_a_healthy_run_alone() -> None:
    history, callback, said = keras_fit(None)

    assert callback.step == STEPS and callback.stopped is None
    assert len(history.history["loss"]) == STEPS // 8 and "val_loss" in history.history
    assert said == []


# ---------------------------------------------------------------------------------------
# Hugging Face Trainer


def trainer_fit(nan_from: int | None, tmp_path: Path, **arguments: Any) -> tuple[Any, Any]:
    pytest.importorskip("transformers", reason="transformers is not installed (pip install 'rundoctor[transformers]')")
    pytest.importorskip("accelerate", reason="the Trainer needs accelerate (pip install 'rundoctor[transformers]')")
    import torch
    from transformers import Trainer, TrainingArguments

    from rundoctor.live.transformers import RunDoctorCallback

    class Regression(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.steps = 0

        def forward(self, x: Any, labels: Any) -> dict[str, Any]:
            loss = torch.nn.functional.mse_loss(self.layer(x), labels)
            if self.training:
                self.steps += 1
                if nan_from is not None and self.steps >= nan_from:
                    loss = loss * float("nan")
            return {"loss": loss}

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    rows = [{"x": x[i], "labels": x[i].sum(dim=0, keepdim=True)} for i in range(64)]
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=STEPS, per_device_train_batch_size=8, logging_steps=1,
        learning_rate=0.05, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True,
        **arguments,
    )
    callback = RunDoctorCallback(every=EVERY)
    trainer = Trainer(model=Regression(), args=args, train_dataset=rows, callbacks=[callback])
    trainer.train()
    return trainer, callback


def test_the_trainer_stops_a_nan_run_at_the_first_checked_step_after_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rundoctor"):
        trainer, callback = trainer_fit(NAN_FROM, tmp_path, logging_nan_inf_filter=False)

    assert trainer.state.global_step == FIRST_CHECK_AFTER
    assert callback.stopped is not None and callback.stopped.stop.code == "N001"
    assert (logging.ERROR, callback.stopped.stop_message()) in [(r.levelno, r.getMessage()) for r in caplog.records]


def test_the_trainer_leaves_a_healthy_run_alone_and_warns_when_nan_losses_would_be_hidden(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rundoctor"):
        trainer, callback = trainer_fit(None, tmp_path)

    assert trainer.state.global_step == STEPS and callback.stopped is None
    said = [record.getMessage() for record in caplog.records if record.name == "rundoctor"]
    assert "logging_nan_inf_filter=True" in said[0]
    assert not [text for text in said if "stopped training" in text]
