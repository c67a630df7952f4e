"""MLflow tracking servers: a real ``mlflow server`` (SQLite backend) started once per test
run, runs logged to it with MLflow's own client, read back through ``mlflow://`` URLs.

The same runs are logged to a file store (``mlruns/``) too, so the server reader is held to
the file-store reader: the same points and the same findings.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rundoctor import discover
from rundoctor.checks.registry import REGISTRY
from rundoctor.config import Settings
from rundoctor.engine import diagnose
from rundoctor.readers import mlflow_server
from rundoctor.readers.base import UnreadableInput
from rundoctor.series import Run

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000  # ms: every point is logged with an explicit timestamp, the same in both stores
BIG = 10_000  # points of one metric: more than one page of history once the page is made small
SERVER_START = 300.0  # seconds; on a loaded machine the server's imports alone take most of a minute
# The tests that need the server: starting it costs seconds to a minute, so the quick inner
# loop (-m "not slow") leaves them to the full run.
needs_server = pytest.mark.slow


@dataclass(frozen=True)
class Logged:
    """One run as logged: its experiment, name, params and points per metric (step, value)."""

    experiment: str
    name: str
    params: dict[str, str]
    metrics: dict[str, list[tuple[int, float]]]


def _healthy() -> dict[str, list[tuple[int, float]]]:
    rng = np.random.default_rng(0)
    loss = [(s, 2.0 * math.exp(-s / 60) + 0.1 + 0.01 * float(rng.standard_normal())) for s in range(300)]
    val = [(s, 2.0 * math.exp(-s / 60) + 0.15) for s in range(0, 300, 10)]
    return {"train_loss": loss, "val_loss": val}


def _diverging() -> dict[str, list[tuple[int, float]]]:
    loss = [(s, 2.0 * math.exp(-s / 60) + 0.1 if s < 120 else 0.3 * math.exp((s - 120) / 15)) for s in range(200)]
    return {"train_loss": loss + [(s, math.nan) for s in range(200, 260)]}


RUNS = (
    Logged("exp", "healthy", {"lr": "0.001", "optimizer": "adam"}, _healthy()),
    Logged("exp", "diverging", {"lr": "3.0", "optimizer": "sgd"}, _diverging()),
    Logged("exp", "long", {"lr": "0.001"}, {"loss": [(s, 1.0 / (1 + s / 500)) for s in range(BIG)]}),
    Logged("sweep", "baseline", {"seed": "0"}, _healthy()),
    Logged("sweep", "baseline", {"seed": "1"}, _healthy()),
    Logged("sweep", "wide lr", {"seed": "0", "lr": "1.0"}, _diverging()),
)


def _log(client: Any, logged: Logged, experiments: dict[str, str]) -> str:
    from mlflow.entities import Metric, Param

    if logged.experiment not in experiments:
        experiments[logged.experiment] = client.create_experiment(logged.experiment)
    run = client.create_run(experiments[logged.experiment], run_name=logged.name, start_time=T0)
    points = [Metric(key, value, T0 + 1000 * step, step) for key, series in logged.metrics.items() for step, value in series]
    params = [Param(key, value) for key, value in logged.params.items()]
    for start in range(0, len(points), 1000):  # log_batch takes up to 1,000 metrics a request
        client.log_batch(run.info.run_id, metrics=points[start : start + 1000], params=params if not start else [])
    client.set_terminated(run.info.run_id, end_time=T0 + 10_000_000)
    return str(run.info.run_id)


@dataclass(frozen=True)
class Stores:
    """The server's URL base (``mlflow://127.0.0.1:PORT``) and the file store of the same runs."""

    url: str
    mlruns: Path
    run_ids: dict[str, str]  # server run id -> the run's name in reports


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_health(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer /health within {SERVER_START:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    """A real ``mlflow server`` on a free port with a SQLite backend, for the whole test run,
    and a file store, both holding :data:`RUNS`; the server is stopped at the end."""
    pytest.importorskip("mlflow", reason="the mlflow package is not installed (pip install -e '.[test]')")
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = root / "server.log"
    command = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]
    # The job runner starts a pool of consumer processes the tests have no use for.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_for_health(process, port, log)
        server = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps the file store behind this switch
        file_store = MlflowClient(tracking_uri=(root / "mlruns").as_uri())
        run_ids: dict[str, str] = {}
        server_experiments: dict[str, str] = {}
        file_experiments: dict[str, str] = {}
        for logged in RUNS:
            run_ids[_log(server, logged, server_experiments)] = f"{logged.experiment}/{logged.name}"
            _log(file_store, logged, file_experiments)
        server.create_experiment("empty")
        yield Stores(f"mlflow://127.0.0.1:{port}", root / "mlruns", run_ids)
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _load(*paths: str | Path) -> tuple[list[Run], list[Any]]:
    return discover.load_runs([Path(path) for path in paths])


def _by_logged(runs: list[Run]) -> dict[tuple[str, str], Run]:
    """Runs by what tells the logged ones apart in either store: run name and seed."""
    return {(run.metadata["run_name"], run.metadata.get("params.seed", "")): run for run in runs}


def _points(run: Run) -> dict[str, list[tuple[int, str, float]]]:
    """Every point of every tag as (step, value, wall time), the value as its repr so NaN equals NaN."""
    points = {}
    for tag in run.tags:
        curve = run.curve(tag)
        points[tag] = [(step, repr(value), wall) for step, value, wall in
                       zip(curve.steps.tolist(), curve.values.tolist(), curve.wall_times.tolist())]
    return points


@needs_server
def test_every_point_of_every_run(stores: Stores) -> None:
    runs, errors = _load(f"{stores.url}/#exp")
    assert not errors
    assert [run.id for run in runs] == ["exp/diverging", "exp/healthy", "exp/long"]
    for run in runs:
        logged = next(r for r in RUNS if r.experiment == "exp" and r.name == run.metadata["run_name"])
        assert run.format == "mlflow-server" and not run.notes
        assert run.path.startswith(f"http://127.0.0.1:{stores.url.rsplit(':', 1)[1]}/#/experiments/")
        assert run.tags == sorted(logged.metrics)
        for key, series in logged.metrics.items():
            curve = run.curve(key)
            assert curve.steps.tolist() == [step for step, _ in series]
            np.testing.assert_array_equal(curve.values, [value for _, value in series])  # NaN where NaN was logged
            assert curve.wall_times.tolist() == [(T0 + 1000 * step) / 1000 for step, _ in series]
        assert {key: run.metadata[f"params.{key}"] for key in logged.params} == logged.params
        assert run.metadata["status"] == "FINISHED"
        assert run.metadata["start"] == "2023-11-14T22:13:20.000Z"


@needs_server
def test_history_pages_join_without_loss(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 10,000-point metric read a thousand points a page (MLflow's client pages through
    the history; the page is 25,000 by default): every point once, in order."""
    import mlflow.tracking._tracking_service.client as tracking_client
    from mlflow.store.tracking.rest_store import RestStore

    monkeypatch.setattr(tracking_client, "GET_METRIC_HISTORY_MAX_RESULTS", 1000)
    requests: list[object] = []
    original = RestStore.get_metric_history

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        requests.append(kwargs.get("page_token"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RestStore, "get_metric_history", counted)
    runs, errors = _load(f"{stores.url}/#exp")
    long = next(run for run in runs if run.id == "exp/long")
    assert not errors and len(requests) >= BIG // 1000 and long.points == BIG
    assert long.curve("loss").steps.tolist() == list(range(BIG))


@needs_server
def test_same_points_and_findings_as_the_file_store(stores: Stores) -> None:
    server_runs, server_errors = _load(stores.url)
    file_runs, file_errors = _load(stores.mlruns)
    assert not server_errors and not file_errors and len(server_runs) == len(file_runs) == len(RUNS)
    served, filed = _by_logged(server_runs), _by_logged(file_runs)
    assert served.keys() == filed.keys()
    for name, run in served.items():
        assert _points(run) == _points(filed[name]), name
        assert {k: v for k, v in run.metadata.items() if k.startswith("params.")} == {
            k: v for k, v in filed[name].metadata.items() if k.startswith("params.")}
    report_of_server = diagnose(server_runs, [], Settings(), REGISTRY)
    report_of_files = diagnose(file_runs, [], Settings(), REGISTRY)

    def findings(report: Any, runs: list[Run]) -> dict[tuple[str, str], list[tuple[str, str, Any, str]]]:
        names = {run.id: key for key, run in _by_logged(runs).items()}
        found: dict[tuple[str, str], list[tuple[str, str, Any, str]]] = {}
        for finding in report.findings:
            found.setdefault(names[finding.run], []).append(
                (finding.check, finding.severity.value, (finding.first_step, finding.last_step), finding.message))
        return found

    by_server, by_files = findings(report_of_server, server_runs), findings(report_of_files, file_runs)
    assert by_server == by_files
    assert {check for check, severity, _, _ in by_server["diverging", ""] if severity == "error"} >= {"non-finite"}
    assert all(severity == "info" for _, severity, _, _ in by_server.get(("healthy", ""), []))


@needs_server
def test_check_json_over_the_command_line(stores: Stores) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rundoctor", "check", f"{stores.url}/#exp", "--format", "json"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )
    assert result.returncode == 1, result.stderr  # the diverging run's NaN is an error
    report = json.loads(result.stdout)
    assert [run["id"] for run in report["runs"]] == ["exp/diverging", "exp/healthy", "exp/long"]
    assert {run["id"]: run["points"] for run in report["runs"]} == {
        "exp/diverging": 260, "exp/healthy": 330, "exp/long": BIG}
    errors = {(f["run"], f["check"]) for f in report["findings"] if f["severity"] == "error"}
    assert ("exp/diverging", "non-finite") in errors and not any(run != "exp/diverging" for run, _ in errors)


@needs_server
def test_runs_named_alike_keep_apart(stores: Stores) -> None:
    runs, _ = _load(f"{stores.url}/#sweep")
    ids = [run.id for run in runs]
    twins = [run_id for run_id in ids if run_id.startswith("sweep/baseline-")]
    assert len(twins) == 2 and len(set(ids)) == 3 and "sweep/wide lr" in ids
    expected = {stores.run_ids[run.path.rpartition("/")[2]] + "-" + run.path.rpartition("/")[2][:8]
                for run in runs if run.id in twins}
    assert set(twins) == expected


@needs_server
def test_experiment_by_id_by_encoded_name_and_missing(stores: Stores) -> None:
    from mlflow.tracking import MlflowClient

    address = mlflow_server.ServerAddress.parse(stores.url)
    experiment_id = MlflowClient(tracking_uri=address.tracking_uri).get_experiment_by_name("sweep").experiment_id
    by_id, _ = _load(f"{stores.url}/#{experiment_id}")
    by_name, _ = _load(f"{stores.url}/#%73weep")  # percent-encoded
    assert [run.id for run in by_id] == [run.id for run in by_name] and len(by_id) == 3
    runs, errors = _load(f"{stores.url}/#nope")
    assert not runs and "no experiment named 'nope'" in errors[0].reason and "'sweep'" in errors[0].reason
    assert errors[0].path == f"{stores.url}/#nope"
    runs, errors = _load(f"{stores.url}/#empty")
    assert not runs and errors[0].reason == f"no runs in experiment 'empty' on {address.tracking_uri}"


def test_unreachable_server_is_reported_at_once() -> None:
    pytest.importorskip("mlflow", reason="the mlflow package is not installed (pip install -e '.[test]')")
    started = time.monotonic()
    runs, errors = _load(f"mlflow://127.0.0.1:{_free_port()}/#exp")
    assert not runs and "cannot reach the MLflow tracking server at http://127.0.0.1:" in errors[0].reason
    assert time.monotonic() - started < 10


def test_without_mlflow_the_hint_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for module in ("mlflow", "mlflow.tracking", "mlflow.exceptions"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    runs, errors = _load("mlflow://127.0.0.1:5000/#exp")
    assert not runs and errors[0].reason == mlflow_server.INSTALL_HINT
    assert errors[0].path == "mlflow://127.0.0.1:5000/#exp"


def test_url_is_routed_only_for_claimed_schemes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert discover.url_reader(Path("mlflow://host:5000/#a b/c")) == ("mlflow://host:5000/#a b/c", mlflow_server.READER)
    assert discover.url_reader(Path("MLflow+HTTPS://host/prefix")) == ("MLflow+HTTPS://host/prefix", mlflow_server.READER)
    assert discover.url_reader(Path("s3://bucket/runs")) is None  # no reader answers for it
    assert discover.url_reader(Path("runs/mlflow")) is None
    assert discover.url_reader(Path("C:/runs")) is None
    local = tmp_path / "mlflow:"  # a local folder of that name wins
    (local / "host").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert discover.url_reader(Path("mlflow://host")) is None


@pytest.mark.parametrize(("url", "uri", "experiment"), [
    ("mlflow://h:5000/#exp", "http://h:5000", "exp"),
    ("mlflow://h:5000", "http://h:5000", None),
    ("mlflow+https://h/prefix/#a%20b", "https://h/prefix", "a b"),
    ("mlflow+http://h:1/#/Users/me/x", "http://h:1", "/Users/me/x"),
])
def test_address_parts(url: str, uri: str, experiment: str | None) -> None:
    assert mlflow_server.ServerAddress.parse(url) == mlflow_server.ServerAddress(uri, experiment)


@pytest.mark.parametrize("url", ["mlflow:///#exp", "mlflow://h:5000/?experiment=x", "s3://b/k"])
def test_address_refused(url: str) -> None:
    with pytest.raises(UnreadableInput):
        mlflow_server.ServerAddress.parse(url)


def test_forced_reader_and_files(tmp_path: Path) -> None:
    runs, errors = discover.load_runs([Path("mlflow://127.0.0.1:5000/#exp")], reader="tensorboard")
    assert not runs and errors[0].reason == "--reader tensorboard does not read mlflow:// URLs (mlflow-server does)"
    log = tmp_path / "log.csv"
    log.write_text("step,loss\n0,1\n")
    runs, errors = discover.load_runs([log], reader="mlflow-server")
    assert not runs and "reads runs on an MLflow tracking server" in errors[0].reason


def test_request_settings_bounded_then_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    with mlflow_server._bounded_requests():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"  # the user's choice stands
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_command_line_exit_2_with_the_reason_when_nothing_is_read() -> None:
    """Without mlflow (hidden from the import system) ``check`` of a server URL says what to
    install, on stderr, with exit code 2: nothing could be analysed."""
    hide = "import sys; sys.modules.update(dict.fromkeys(['mlflow', 'mlflow.tracking', 'mlflow.exceptions']))"
    command = f"{hide}; sys.argv = ['rundoctor', 'check', 'mlflow://127.0.0.1:5000/#exp']; from rundoctor.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 2 and not result.stdout
    assert result.stderr == f"rundoctor: nothing could be analysed\n  mlflow://127.0.0.1:5000/#exp: {mlflow_server.INSTALL_HINT}\n"


@needs_server
def test_follower_hands_on_a_run_when_its_points_change(stores: Stores, tmp_path: Path) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from rundoctor.readers.follow import FollowContext

    client = MlflowClient(tracking_uri=mlflow_server.ServerAddress.parse(stores.url).tracking_uri)
    experiment = client.create_experiment("live")
    run_id = client.create_run(experiment, run_name="growing").info.run_id
    try:
        client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (step + 1), T0 + step, step) for step in range(5)])
        [source] = mlflow_server.locate(f"{stores.url}/#live")
        follower = mlflow_server.READER.follow(FollowContext(source, mlflow_server.READER.read, tmp_path, True))
        first = follower.update(source)
        assert first is not None and first.points == 5
        assert follower.update(source) is None  # nothing new
        client.log_metric(run_id, "loss", 0.1, timestamp=T0 + 5, step=5)
        grown = follower.update(source)
        assert grown is not None and grown.curve("loss").steps.tolist() == list(range(6))
    finally:
        client.delete_run(run_id)  # the other tests count the active runs
        client.delete_experiment(experiment)


@needs_server
def test_watch_follows_the_runs_of_a_server_url(stores: Stores, tmp_path: Path) -> None:
    """``rundoctor watch URL``: the runs are located and read at each poll, each finding
    printed once, a run that goes bad later reported when it does."""
    import io

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from rundoctor.watch import Watcher

    client = MlflowClient(tracking_uri=mlflow_server.ServerAddress.parse(stores.url).tracking_uri)
    experiment = client.create_experiment("watched")
    run_id = client.create_run(experiment, run_name="going-bad").info.run_id
    try:
        client.log_batch(run_id, metrics=[Metric("loss", 2.0 / (step + 1), T0 + step, step) for step in range(40)])
        problems = io.StringIO()
        watcher = Watcher(Path(f"{stores.url}/#watched"), Settings(), scratch=tmp_path, problems=problems)
        assert [f for f in watcher.poll() if f.severity.value == "error"] == []
        assert watcher.poll() == []  # nothing new, nothing printed again
        client.log_metric(run_id, "loss", float("nan"), timestamp=T0 + 40, step=40)
        found = watcher.poll()
        assert [(f.run, f.check) for f in found if f.severity.value == "error"] == [("watched/going-bad", "non-finite")]
        assert problems.getvalue() == ""
    finally:
        client.delete_run(run_id)  # the other tests count the active runs
        client.delete_experiment(experiment)


@needs_server
def test_watch_once_over_the_command_line(stores: Stores) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rundoctor", "watch", f"{stores.url}/#exp", "--once", "--format", "json"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert ("exp/diverging", "non-finite", "error") in {(f["run"], f["check"], f["severity"]) for f in found}
    assert "waiting for" not in result.stderr


def test_paged_search_ends_when_a_token_comes_back() -> None:
    """A server handing out a page token twice would keep a paged search going for ever."""

    class Page(list[int]):
        def __init__(self, items: list[int], token: str | None) -> None:
            super().__init__(items)
            self.token = token

    answers = {None: Page([1, 2], "a"), "a": Page([3], "b"), "b": Page([4], "a")}
    assert mlflow_server._pages(answers.__getitem__) == [1, 2, 3, 4]
    assert mlflow_server._pages({None: Page([5], None)}.__getitem__) == [5]
