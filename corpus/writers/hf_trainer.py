"""Hugging Face ``Trainer`` state: ``checkpoint-N/trainer_state.json``.

``log_history`` holds one entry per ``logging_steps`` (``loss`` = mean since the previous log,
rounded to 4 places as the Trainer does; ``grad_norm``; ``learning_rate``; fractional
``epoch``; ``step``) and one per evaluation (``eval_loss``, ``eval_accuracy``,
``eval_runtime``, ...).  The Trainer dumps the state with ``indent=2, sort_keys=True``.  Each
checkpoint holds the history up to its step; ``save_total_limit=2`` keeps the last two.
Steps are the Trainer's ``global_step``: 1-based, one more than the trace's batch index.
"""

from __future__ import annotations

import json
from pathlib import Path

from corpus.trace import EVAL, TRAIN, Trace
from corpus.writers.common import f32

EVAL_NAMES = {"val_loss": "eval_loss", "val_acc": "eval_accuracy", "val_mae": "eval_mae"}


def _history(trace: Trace, eval_samples: int) -> list[dict]:
    history = []
    spe = trace.steps_per_epoch
    for p in trace.points:
        step = p.step + 1
        epoch = step / spe
        if p.kind == TRAIN:
            history.append({"epoch": epoch, "grad_norm": f32(p.values["grad_norm"]),
                            "learning_rate": p.values["lr"], "loss": round(f32(p.values["loss"]), 4),
                            "step": step})
        elif p.kind == EVAL:
            runtime = round(0.05 + eval_samples * 2.1e-4 + (step % 7) * 1e-3, 4)
            entry = {EVAL_NAMES.get(k, f"eval_{k}"): f32(v) for k, v in p.values.items()}
            entry.update({"epoch": epoch, "eval_runtime": runtime,
                          "eval_samples_per_second": round(eval_samples / runtime, 3),
                          "eval_steps_per_second": round(eval_samples / 8 / runtime, 3), "step": step})
            history.append(entry)
    return history


def write(trace: Trace, run_dir: Path, *, logging_steps: int, eval_steps: int | None, save_steps: int,
          batch_size: int, eval_samples: int, output_name: str = "results") -> Path:
    """Write the last two checkpoints' states; return the newest trainer_state.json."""
    history = _history(trace, eval_samples)
    max_steps = trace.total_steps
    last = trace.last_step + 1
    saves = list(range(save_steps, last + 1, save_steps))
    if not saves or saves[-1] != last:
        saves.append(last)
    written: list[Path] = []
    for save in saves[-2:]:
        upto = [h for h in history if h["step"] <= save]
        evals = [h for h in upto if "eval_loss" in h]
        best = min(evals, key=lambda h: (h["eval_loss"], h["step"])) if evals else None
        best_ckpt = next((s for s in saves if best and s >= best["step"]), None)
        state = {
            "best_global_step": best_ckpt if best else None,
            "best_metric": best["eval_loss"] if best else None,
            "best_model_checkpoint": f"{output_name}/checkpoint-{best_ckpt}" if best else None,
            "epoch": save / trace.steps_per_epoch,
            "eval_steps": eval_steps,
            "global_step": save,
            "is_hyper_param_search": False,
            "is_local_process_zero": True,
            "is_world_process_zero": True,
            "log_history": upto,
            "logging_steps": logging_steps,
            "max_steps": max_steps,
            "num_input_tokens_seen": 0,
            "num_train_epochs": -(-max_steps // trace.steps_per_epoch),
            "save_steps": save_steps,
            "stateful_callbacks": {"TrainerControl": {"args": {
                "should_epoch_stop": False, "should_evaluate": False, "should_log": False,
                "should_save": True, "should_training_stop": save == last}, "attributes": {}}},
            "total_flos": float(save * batch_size * 1931),
            "train_batch_size": batch_size,
            "trial_name": None,
            "trial_params": None,
        }
        folder = run_dir / output_name / f"checkpoint-{save}"
        folder.mkdir(parents=True, exist_ok=True)
        written.append(folder / "trainer_state.json")
        written[-1].write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    return written[-1]
