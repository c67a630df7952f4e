"""Runs in object stores and on web servers: fsspec URLs read through ``readers.files``.

A real S3-compatible server (moto's standalone server) is started once per test run on a
free loopback port; the AWS environment points botocore at it (``AWS_ENDPOINT_URL`` and
dummy credentials), the way a user points rundoctor at MinIO or at a real bucket.  What is
read from a bucket is held to what the same files give when read from the disk.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rundoctor import discover
from rundoctor.readers import files, remote
from rundoctor.series import NoteKind
from tests.conftest import run_cli

moto_server = pytest.importorskip("moto.server", reason="moto[server] (the test extra) starts the S3 server")
pytest.importorskip("s3fs", reason="s3fs (the s3 extra) reads s3:// URLs")
import boto3  # noqa: E402  (moto depends on it)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_logs"
EVENT_FILE = "healthy/pytorch_tb/events.out.tfevents.1700000000.sample-host.4242.0"
SWEEP_RUNS = 2_000  # more than one page (1,000 keys) of an S3 listing


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client of the local server, the AWS environment pointing at it."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return boto3.client("s3", endpoint_url=s3_endpoint)


def _upload(client: Any, bucket: str, folder: Path, prefix: str) -> None:
    client.create_bucket(Bucket=bucket)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())


def test_a_bucket_gives_the_report_of_its_local_copy(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _upload(s3, "samples", SAMPLES, "runs")
    monkeypatch.chdir(REPO)
    local_code, local, _ = run_cli(monkeypatch, capsys, "check", "sample_logs", "--format", "json")
    code, report, err = run_cli(monkeypatch, capsys, "check", "s3://samples/runs", "--format", "json")
    assert (code, err) == (local_code, "")
    ids = [run["id"] for run in json.loads(report)["runs"]]
    assert len(ids) == len(json.loads(local)["runs"]) > 20
    assert all(run_id.startswith("s3://samples/runs/") for run_id in ids)  # ids keep the URL form
    assert report.replace("s3://samples/runs/", "sample_logs/") == local


def _truncated_notes(paths: list[Path]) -> list[tuple[str, str | None]]:
    runs, errors = discover.load_runs(paths)
    assert not errors
    return [(note.kind.value, note.location) for run in runs for note in run.notes if note.kind is NoteKind.TRUNCATED]


def test_a_truncated_object_is_reported_like_a_truncated_file(s3: Any, tmp_path: Path) -> None:
    whole = (SAMPLES / EVENT_FILE).read_bytes()
    cut = whole[: len(whole) * 2 // 3]
    local = tmp_path / "cut_tb" / "events.out.tfevents.1700000000.sample-host.4242.0"
    local.parent.mkdir()
    local.write_bytes(cut)
    s3.create_bucket(Bucket="cut")
    s3.put_object(Bucket="cut", Key=f"cut_tb/{local.name}", Body=cut)

    from_disk = _truncated_notes([local.parent])
    assert from_disk and from_disk[0][1] is not None and from_disk[0][1].startswith("offset")
    assert _truncated_notes([Path("s3://cut/cut_tb")]) == from_disk
    whole_notes = _truncated_notes([SAMPLES / "healthy" / "pytorch_tb"])
    assert whole_notes == []  # near miss: the whole file has no such note


@pytest.mark.slow
def test_thousands_of_runs_in_a_listing_are_all_read(s3: Any) -> None:
    """One request a run (small objects are kept between the sniff and the read)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3.create_bucket(Bucket="sweep")
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]  # the server's own store: filled in a blink
    for number in range(SWEEP_RUNS):
        backend.put_object("sweep", f"runs/run-{number:05d}/metrics.csv", f"step,loss\n0,1.0\n1,{number}\n".encode())
    runs, errors = discover.load_runs([Path("s3://sweep/runs")])
    assert not errors
    assert len(runs) == SWEEP_RUNS
    assert runs[-1].id == f"s3://sweep/runs/run-{SWEEP_RUNS - 1:05d}/metrics.csv"
    assert sorted(int(run.values[-1]) for run in runs) == list(range(SWEEP_RUNS))  # every run, every point


def test_a_missing_object_is_a_usage_error(s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    s3.create_bucket(Bucket="empty")
    code, _, err = run_cli(monkeypatch, capsys, "check", "s3://empty/nothing/here.csv")
    assert code == 2
    assert "no such file or directory: s3://empty/nothing/here.csv" in err
    # beside a path that exists, a mistyped URL is still a usage error, not half a check
    code, _, err = run_cli(monkeypatch, capsys, "check", str(SAMPLES / "healthy" / "yolov8"), "s3://empty/nothing/here.csv")
    assert code == 2 and "s3://empty/nothing/here.csv" in err


def test_a_prefix_is_not_opened_as_a_file(s3: Any) -> None:
    _upload(s3, "prefix", SAMPLES / "healthy" / "yolov8", "runs/yolo")
    with pytest.raises(files.NotRegularFile):
        files.open_binary(Path("s3://prefix/runs"))
    assert files.is_dir(Path("s3://prefix/runs")) and not files.is_file(Path("s3://prefix/runs"))


def test_objects_are_read_in_ranges_not_downloaded_whole(s3: Any) -> None:
    s3.create_bucket(Bucket="big")
    body = b"step,loss\n" + b"".join(b"%d,%f\n" % (step, 1 / (step + 1)) for step in range(800_000))
    assert len(body) > 2 * remote.BLOCK_BYTES
    s3.put_object(Bucket="big", Key="metrics.csv", Body=body)
    with files.open_binary(Path("s3://big/metrics.csv"), unbuffered=True) as handle:
        assert isinstance(handle, remote.RemoteFile)
        assert handle.read(100) == body[:100]
        assert handle.tell() == 100
        fetched = handle._file.cache  # fsspec's read-ahead cache: what has been fetched so far
        assert fetched.end - fetched.start <= remote.BLOCK_BYTES + 100 < len(body)
        handle.seek(len(body) - 10)
        assert handle.read() == body[-10:]
    assert files.read_bytes(Path("s3://big/metrics.csv")) == body


def test_a_store_whose_package_is_missing_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fsspec

    real = fsspec.filesystem

    def without_gcsfs(protocol: str, **options: Any) -> Any:
        if protocol == "gs":
            raise ImportError("Install gcsfs to access Google Storage")
        return real(protocol, **options)

    monkeypatch.setattr(fsspec, "filesystem", without_gcsfs)
    code, _, err = run_cli(monkeypatch, capsys, "check", "gs://bucket/runs")
    assert code == 2
    assert "pip install 'rundoctor[gcs]'" in err


def test_file_urls_are_local_paths(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    _, local, _ = run_cli(monkeypatch, capsys, "check", "sample_logs/problems", "--format", "json")
    code, report, _ = run_cli(monkeypatch, capsys, "check", f"file://{SAMPLES / 'problems'}", "--format", "json")
    assert code == 1
    assert report.replace(f"{REPO}/", "") == local  # ids alike; paths absolute as given


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    """A local web server serving a copy of the samples (directory listings included)."""
    shutil.copytree(SAMPLES, tmp_path / "site")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "site")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_http_urls_of_a_file_and_of_a_folder(
    web_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("aiohttp", reason="fsspec's HTTP file system needs aiohttp (the http extra)")
    monkeypatch.chdir(REPO)
    _, local, _ = run_cli(monkeypatch, capsys, "check", "sample_logs/problems", "--format", "json")
    code, report, _ = run_cli(monkeypatch, capsys, "check", f"{web_server}/problems/", "--format", "json")
    assert code == 1
    assert report.replace(f"{web_server}/", "") == local.replace("sample_logs/", "")
    code, report, _ = run_cli(monkeypatch, capsys, "check", f"{web_server}/problems/loss_magnitude.csv", "--format", "json")
    assert [run["id"] for run in json.loads(report)["runs"]] == [f"{web_server}/problems/loss_magnitude.csv"]
