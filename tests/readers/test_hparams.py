"""The hyper-parameters each reader exposes in ``Run.hparams`` (what ``check --by`` compares).

Lightning's ``hparams.yaml``, MLflow's params, a ``trainer_state.json``'s training arguments and
trial parameters, and, in event files, the hparams plugin's session start (torch's
``add_hparams``, Lightning's TensorBoardLogger) and the training arguments the Hugging Face
Trainer writes as a JSON text summary.  Each is written at test time the way its writer writes
it, and read back; a payload that is not what it should be is skipped, as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from rundoctor.discover import load_runs
from rundoctor.readers import reader_named, sidefiles
from rundoctor.readers.csv.flavours import read_lightning
from rundoctor.readers.mlflow import read_mlflow_run
from rundoctor.readers.tensorboard.assembly import read_tensorboard_run
from rundoctor.series import NoteKind, Run
from tests.conftest import REAL_LOGS
from tests.readers import tb_writer as w

T0 = 1_700_000_000.0
EVENT_NAME = "events.out.tfevents.1700000000.host.1.0"


def hparams_event(content: bytes, tag: str = "_hparams_/session_start_info") -> event_pb2.Event:
    """What torch's add_hparams and Lightning write: plugin data and no value."""
    value = summary_pb2.Summary.Value(tag=tag)
    value.metadata.plugin_data.plugin_name = "hparams"
    value.metadata.plugin_data.content = content
    event = event_pb2.Event(wall_time=T0, step=0)
    event.summary.value.append(value)
    return event


def session_start(**hparams: float | str | bool) -> bytes:
    data = plugin_data_pb2.HParamsPluginData(version=0)
    for key, value in hparams.items():
        if isinstance(value, bool):
            data.session_start_info.hparams[key].bool_value = value
        elif isinstance(value, str):
            data.session_start_info.hparams[key].string_value = value
        else:
            data.session_start_info.hparams[key].number_value = value
    return data.SerializeToString()


def experiment() -> bytes:
    data = plugin_data_pb2.HParamsPluginData(version=0)
    data.experiment.hparam_infos.add(name="lr")
    return data.SerializeToString()


def write_events(path: Path, *events: event_pb2.Event) -> Run:
    scalars = [w.scalar_event("loss", 1.0 / (step + 1), step, T0 + step) for step in range(5)]
    w.write_event_file(path, [w.header_event(), *events, *scalars])
    return read_tensorboard_run(path.parent, [(path, "")])


def test_the_hparams_plugin_session_start_is_read(tmp_path: Path) -> None:
    run = write_events(tmp_path / "run" / EVENT_NAME, hparams_event(experiment(), "_hparams_/experiment"),
                       hparams_event(session_start(lr=0.001, batch_size=32.0, optimizer="adam", amsgrad=False)),
                       hparams_event(b"", "_hparams_/session_end_info"))
    assert run.hparams == {"amsgrad": "false", "batch_size": "32", "lr": "0.001", "optimizer": "adam"}
    assert run.curve("loss").steps.tolist() == list(range(5))
    (note,) = run.notes  # the experiment and the session end hold no hyper-parameter
    assert note.message == "skipped 2 hparams plugin values (_hparams_/experiment, _hparams_/session_end_info)"


def test_a_point_with_hparams_metadata_stays_a_point(tmp_path: Path) -> None:
    event = hparams_event(session_start(lr=0.1), "odd")
    event.summary.value[0].simple_value = 2.5
    run = write_events(tmp_path / "run" / EVENT_NAME, event)
    assert run.hparams == {} and run.curve("odd").values.tolist() == [2.5]


@pytest.mark.parametrize("content", [b"\xff" * 64, b"x" * (sidefiles.SIDE_FILE_MAX_BYTES + 1)])
def test_an_hparams_payload_that_does_not_decode_or_is_too_large_is_skipped(tmp_path: Path, content: bytes) -> None:
    run = write_events(tmp_path / "run" / EVENT_NAME, hparams_event(content))
    assert run.hparams == {}
    (note,) = run.notes
    assert note.kind is NoteKind.SKIPPED and "1 hparams plugin value" in note.message


def test_a_resumed_run_keeps_the_hyper_parameters_it_started_with(tmp_path: Path) -> None:
    first, second = tmp_path / "run" / EVENT_NAME, tmp_path / "run" / EVENT_NAME.replace(".0", ".1")
    w.write_event_file(first, [w.header_event(), hparams_event(session_start(lr=0.1, seed=1.0))])
    w.write_event_file(second, [w.header_event(), hparams_event(session_start(lr=0.2, warmup=100.0)),
                                w.scalar_event("loss", 1.0, 0, T0)])
    run = read_tensorboard_run(first.parent, [(first, ""), (second, "")])
    assert run.hparams == {"lr": "0.1", "seed": "1", "warmup": "100"}


HF_ARGS = {"output_dir": "./results", "learning_rate": 5e-05, "per_device_train_batch_size": 16,
           "adam_betas": [0.9, 0.999], "report_to": ["tensorboard"], "fp16": True, "seed": 42,
           "lr_scheduler_kwargs": {"num_cycles": 2}, "push_to_hub_token": None}


def test_the_hugging_face_training_arguments_are_read_from_their_text_summary(tmp_path: Path) -> None:
    run = write_events(tmp_path / "run" / EVENT_NAME,
                       w.text_event("args/text_summary", json.dumps(HF_ARGS, indent=2), 0, T0),
                       w.text_event("model_config/text_summary", json.dumps({"hidden_dropout_prob": 0.1}), 0, T0),
                       w.text_event("notes/text_summary", json.dumps({"lr": 1}), 0, T0))
    assert run.hparams == {
        "output_dir": "./results", "learning_rate": "5e-05", "per_device_train_batch_size": "16",
        "adam_betas": "[0.9, 0.999]", "report_to": '["tensorboard"]', "fp16": "true", "seed": "42",
        "lr_scheduler_kwargs.num_cycles": "2", "push_to_hub_token": "null", "model_config.hidden_dropout_prob": "0.1",
    }
    (note,) = run.notes  # other text summaries are text
    assert note.message == "skipped 1 text value (notes/text_summary)"


@pytest.mark.parametrize("text", ["lr=5e-6", "[1, 2]", '{"lr": 1} trailing', "{" * 100 + "}" * 100,
                                  '{"a": "' + "x" * sidefiles.SIDE_FILE_MAX_BYTES + '"}'])
def test_training_arguments_that_are_no_json_object_stay_skipped_text(tmp_path: Path, text: str) -> None:
    run = write_events(tmp_path / "run" / EVENT_NAME, w.text_event("args/text_summary", text, 0, T0))
    assert run.hparams == {}
    (note,) = run.notes
    assert note.message == "skipped 1 text value (args/text_summary)"


def test_the_real_hugging_face_lr_sweep_logged_its_learning_rates() -> None:
    root = REAL_LOGS / "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep" / "runs"
    if not root.is_dir():
        pytest.skip("../shared/real_logs is not here")
    runs, errors = load_runs([root])
    assert not errors
    assert {Path(run.id).name: run.hparams["learning_rate"] for run in runs} == {
        "run0": "5e-06", "run1": "5e-06", "run2": "5e-06", "run3": "5e-06", "run4": "5e-05"}
    assert all(not run.notes for run in runs)  # args and model_config were both read


def test_lightning_hparams_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "lightning_logs" / "version_0"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("epoch,step,train_loss\n0,0,1.0\n0,1,0.9\n")
    (folder / "hparams.yaml").write_text("lr: 1e-3\noptimizer:\n  lr: 0.001\n  betas: !!python/tuple [0.9, 0.99]\n")
    run = read_lightning(folder / "metrics.csv")
    assert run.hparams == {"lr": "1e-3", "optimizer.lr": "0.001", "optimizer.betas": "[0.9, 0.99]"}
    assert run.metadata == run.hparams


def test_mlflow_params_without_their_tags(tmp_path: Path) -> None:
    run_dir = tmp_path / "mlruns" / "0" / "abc"
    (run_dir / "metrics").mkdir(parents=True)
    (run_dir / "metrics" / "loss").write_text("1700000000000 1.0 0\n1700000000001 0.5 1\n")
    for folder, key, value in (("params", "lr", "0.001"), ("params", "optimizer/name", "adam"),
                               ("tags", "mlflow.runName", "sweep-3")):
        (run_dir / folder / key).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / folder / key).write_text(value)
    (run_dir / "meta.yaml").write_text("run_name: sweep-3\nstatus: 3\n")
    run = read_mlflow_run(run_dir)
    assert run.hparams == {"lr": "0.001", "optimizer/name": "adam"}
    assert run.metadata["params.lr"] == "0.001" and run.metadata["tags.mlflow.runName"] == "sweep-3"


def test_trainer_state_arguments_and_trial_parameters(tmp_path: Path) -> None:
    state = {"global_step": 30, "epoch": 3.0, "total_flos": 1e12, "train_batch_size": 16, "num_train_epochs": 3,
             "max_steps": 30, "logging_steps": 10, "eval_steps": None, "save_steps": 500.0, "is_hyper_param_search": True,
             "trial_params": {"learning_rate": 3e-05, "warmup": {"ratio": 0.1}, "scheduler": "cosine"},
             "log_history": [{"loss": 1.0 / step, "step": step, "epoch": step / 10} for step in range(1, 31)]}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state))
    run = reader_named("hf-trainer").read_file(path)
    assert run.hparams == {"train_batch_size": "16", "num_train_epochs": "3", "max_steps": "30", "logging_steps": "10",
                           "save_steps": "500", "learning_rate": "3e-05", "warmup.ratio": "0.1", "scheduler": "cosine"}
    assert "total_flos" not in run.hparams and "global_step" not in run.hparams
