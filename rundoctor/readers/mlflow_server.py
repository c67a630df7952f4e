"""MLflow tracking servers: the runs at ``mlflow://host:port/#experiment``, read through MLflow's client.

The URL::

    mlflow://HOST:PORT[/PREFIX][#EXPERIMENT]      the server over HTTP
    mlflow+https://HOST[:PORT][/PREFIX][#EXPERIMENT]  over HTTPS (mlflow+http:// is mlflow://)

The fragment names one experiment, by name, or by id when no experiment has that name;
without it every active experiment is read.  It may be percent-encoded (``%20`` for a space).
Credentials are what MLflow's own client takes (``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``, or ``MLFLOW_TRACKING_TOKEN``), and so are TLS settings.

A run is read as the file-store reader (:mod:`rundoctor.readers.mlflow`) reads one: every
point of every metric (``MlflowClient.get_metric_history``, which pages through the history
25,000 points a request), params and tags as ``params.<key>`` and ``tags.<key>``, and
``run_name``, ``status``, ``start`` and ``end``.  Two differences come from the server, not
from reading: it keeps no write order, so a metric's points come ordered by timestamp, step
and value; and its database stores a point logged twice with one timestamp, step and value
once.  A run is named ``<experiment>/<run name>`` in reports (``<experiment>/<run name>-<the
first 8 characters of its id>`` when runs of one experiment share a name), and its path is its
page in the MLflow UI.

Bounded: left to its defaults, MLflow's client retries a failed request seven times with a
backoff doubling up to two minutes, and waits two minutes for each answer, so an address
where no server answers would look like a hang.  Unless they are set in the environment,
reading uses 2 retries, a backoff factor of 1 s and a 30 s timeout, and first opens a TCP
connection to the server (5 s at most; not through a proxy, which is then left to the client),
so an address where nothing listens is reported at once.  mlflow is an optional extra
(``pip install 'rundoctor[mlflow]'``), imported only when such a URL is given: importing it
costs seconds.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rundoctor.readers.base import Reader, RunSource, UnreadableInput
from rundoctor.readers.follow import FollowContext
from rundoctor.readers.mlflow import _iso_time
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder, XAxis

NAME = "mlflow-server"
# URL scheme -> the scheme the server speaks.
SCHEMES = {"mlflow": "http", "mlflow+http": "http", "mlflow+https": "https"}
INSTALL_HINT = "reading an MLflow tracking server needs the mlflow client: pip install 'rundoctor[mlflow]'"

# MLflow's own defaults are 7 retries, factor 2 and 120 s (see the module docstring).
BOUNDED_REQUESTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
CONNECT_TIMEOUT = 5.0  # seconds: a server on a network answers a TCP connection in milliseconds
# Runs and experiments asked for a request; the server allows up to 50,000 runs a page, and a
# page of a thousand keeps each answer small.
PAGE = 1000
_SHORT_ID = 8  # characters of a run id that tell runs of one name apart
_RUN_PAGE = "#/experiments/"  # how the MLflow UI addresses a run: <server>/#/experiments/<id>/runs/<id>


@dataclass(frozen=True)
class ServerAddress:
    """A URL taken apart: the tracking URI the client is given, and the experiment asked for."""

    tracking_uri: str
    experiment: str | None

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        """``mlflow://host:port/prefix#name`` -> ``http://host:port/prefix`` and ``name``;
        UnreadableInput for a URL of another scheme or without a host."""
        parts = urllib.parse.urlsplit(url)
        scheme = SCHEMES.get(parts.scheme.lower())
        if scheme is None or not parts.netloc:
            raise UnreadableInput(f"not an MLflow tracking server URL (mlflow://HOST:PORT/#EXPERIMENT): {url}")
        if parts.query:
            raise UnreadableInput(f"an MLflow server URL takes no query (?{parts.query}); the experiment goes after '#'")
        experiment = urllib.parse.unquote(parts.fragment) or None
        return cls(f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}", experiment)


def locate(url: str) -> list[RunSource]:
    """The runs of the experiment the URL names (of every active experiment without one),
    each named ``<experiment>/<run name>``; UnreadableInput when the server cannot be asked or
    has no such experiment."""
    address = ServerAddress.parse(url)
    with _bounded_requests():
        client, errors = _connect(address.tracking_uri)
        try:
            experiments = _experiments(client, address)
            found = [(experiment, run) for experiment in experiments for run in _runs(client, experiment.experiment_id)]
        except errors as error:
            raise UnreadableInput(f"{address.tracking_uri}: {_reason(error)}") from None
    if not found:
        where = f"experiment {experiments[0].name!r}" if address.experiment is not None else "any experiment"
        raise UnreadableInput(f"no runs in {where} on {address.tracking_uri}")
    named: dict[str, list[tuple[Any, Any]]] = {}
    for experiment, run in found:
        named.setdefault(f"{experiment.name}/{run.info.run_name or run.info.run_id}", []).append((experiment, run))
    sources = []
    for name, runs in sorted(named.items()):
        for experiment, run in sorted(runs, key=lambda pair: pair[1].info.run_id):
            run_name = name if len(runs) == 1 else f"{name}-{run.info.run_id[:_SHORT_ID]}"
            page = f"{address.tracking_uri}/{_RUN_PAGE}{experiment.experiment_id}/runs/{run.info.run_id}"
            sources.append(RunSource(NAME, Path(url), [], url=page, name=run_name))
    return sources


def read_server_run(source: RunSource) -> Run:
    """Every point of every metric of the run, its params, tags and times; a metric the server
    does not give is a note, a run it does not give is UnreadableInput."""
    if source.url is None or _RUN_PAGE not in source.url:
        raise UnreadableInput(
            f"the {NAME} reader reads runs on an MLflow tracking server (mlflow://HOST:PORT/#EXPERIMENT), "
            f"not {source.label}"
        )
    tracking_uri, _, place = source.url.partition("/" + _RUN_PAGE)
    run_id = place.rpartition("/runs/")[2]
    notes: list[ReadNote] = []
    builder = RunBuilder()
    with _bounded_requests():
        client, errors = _connect(tracking_uri)
        try:
            run = client.get_run(run_id)
        except errors as error:
            raise UnreadableInput(f"{tracking_uri}: run {run_id}: {_reason(error)}") from None
        for key in sorted(run.data.metrics):
            try:
                history = client.get_metric_history(run_id, key)
            except errors as error:
                notes.append(ReadNote(NoteKind.SKIPPED, source.url, f"metric {key!r} not read: {_reason(error)}"))
                continue
            count = len(history)
            builder.add(
                key,
                np.fromiter((point.step for point in history), np.int64, count),
                np.fromiter((point.value for point in history), np.float64, count),
                np.fromiter((point.timestamp for point in history), np.float64, count) / 1000.0,
            )
    return builder.build(
        id=source.name or source.url,
        path=source.url,
        format=NAME,
        sources=[source.url],
        x_axis=XAxis.STEP,
        notes=notes,
        metadata=_metadata(run),
    )


def _metadata(run: Any) -> dict[str, str]:
    """What the file-store reader keeps of a run: run_name, status, start and end, params, tags."""
    metadata: dict[str, str] = {}
    if run.info.run_name:
        metadata["run_name"] = str(run.info.run_name)
    if run.info.status:
        metadata["status"] = str(run.info.status)
    for key, name in (("start_time", "start"), ("end_time", "end")):
        moment = _iso_time(getattr(run.info, key, None))
        if moment is not None:
            metadata[name] = moment
    for folder, values in (("params", run.data.params), ("tags", run.data.tags)):
        for key, value in sorted(values.items()):
            metadata[f"{folder}.{key}"] = str(value)
    return metadata


def _experiments(client: Any, address: ServerAddress) -> list[Any]:
    """The experiment the address names, or every active one."""
    from mlflow.exceptions import MlflowException

    wanted = address.experiment
    if wanted is None:
        return _all_experiments(client)
    experiment = client.get_experiment_by_name(wanted)
    if experiment is None and wanted.isdigit():
        try:
            experiment = client.get_experiment(wanted)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
    if experiment is None:
        names = sorted(known.name for known in _all_experiments(client))
        raise UnreadableInput(f"no experiment named {wanted!r} on {address.tracking_uri} "
                              f"(experiments there: {', '.join(map(repr, names)) or 'none'})")
    return [experiment]


def _all_experiments(client: Any) -> list[Any]:
    """Every active experiment on the server."""
    return _pages(lambda token: client.search_experiments(max_results=PAGE, page_token=token))


def _runs(client: Any, experiment_id: str) -> list[Any]:
    """Every active run of the experiment."""
    return _pages(lambda token: client.search_runs([experiment_id], max_results=PAGE, page_token=token))


def _pages(ask: Any) -> list[Any]:
    """Every item of a paged search: ``ask(token)`` returns a page with the next page's token.
    A token handed out twice ends the search (a server answering so would never end it)."""
    items: list[Any] = []
    seen: set[str] = set()
    token = None
    while True:
        page = ask(token)
        items.extend(page)
        token = page.token
        if not token or token in seen:
            return items
        seen.add(token)


# The server's answers are untrusted input: a broken one surfaces as one of these (the
# client's own exception is added once mlflow is imported).
_ANSWER_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, KeyError)


def _connect(tracking_uri: str) -> tuple[Any, tuple[type[Exception], ...]]:
    """MLflow's client for the server, once the server was seen to accept connections, and
    the exceptions its requests raise when the server does not answer as it should."""
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UnreadableInput(INSTALL_HINT) from None
    _check_reachable(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri), (MlflowException, *_ANSWER_ERRORS)


def _check_reachable(tracking_uri: str) -> None:
    """UnreadableInput at once when nothing accepts a connection at the server's address;
    nothing is checked when a proxy stands between (the client goes through it)."""
    import urllib.request  # here, not at the top: it costs every command ~17 ms of start-up

    parts = urllib.parse.urlsplit(tracking_uri)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    if host is None or (parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host)):
        return
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise UnreadableInput(f"cannot reach the MLflow tracking server at {tracking_uri}: {reason}") from None


@contextmanager
def _bounded_requests() -> Iterator[None]:
    """MLflow's request settings bounded (see the module docstring) unless the environment sets
    them; as they were afterwards."""
    added = [name for name in BOUNDED_REQUESTS if name not in os.environ]
    os.environ.update({name: BOUNDED_REQUESTS[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _reason(error: BaseException) -> str:
    """The first line of an error from the client (MLflow's messages run to several lines)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class _Reread:
    """A run on a server has no file to watch: it is read again at every poll and handed on
    when its points changed."""

    def __init__(self, context: FollowContext) -> None:
        self.read = context.read
        self.last: tuple[int, float] | None = None

    def update(self, source: RunSource) -> Run | None:
        """The run when it has other points than at the last poll, else None."""
        run = self.read(source)
        seen = (run.points, float(np.nansum(run.wall_times)))
        if seen == self.last:
            return None
        self.last = seen
        return run


READER = Reader(NAME, read_server_run, _Reread, url_schemes=tuple(SCHEMES), locate=locate)
