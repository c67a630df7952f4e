"""Remote reading throughput: the same logs read from the disk and from a local S3 server.

    python bench/remote.py [--repeat 3] [--out bench/out/remote]

Starts moto's S3 server in a child process on a free loopback port, uploads the workloads,
and times reading them (discovery and the readers, ``discover.load_runs``; no checks) from
the local copy and from ``s3://``, in this process.  Prints a Markdown table: MB/s and
points/s for each source, and the remote time against the local one.  The server runs on
the same machine, so this measures rundoctor's remote path (listing, range requests of
4 MiB, small objects fetched once) and moto's own cost per request, not a network.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rundoctor import discover

BUCKET = "bench"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _csv(path: Path, rows: int, tags: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("step," + ",".join(f"metric_{tag}" for tag in range(tags)) + "\n")
        for step in range(rows):
            out.write(f"{step}," + ",".join(f"{1.0 / (step + tag + 1):.6g}" for tag in range(tags)) + "\n")


def make_workloads(out: Path) -> dict[str, Path]:
    """big_csv: one 400k-row CSV (8 tags); big_csv_gz: the same gzipped; sweep: 200 runs of 500 rows."""
    big = out / "big_csv" / "metrics.csv"
    if not big.exists():
        _csv(big, 400_000, 8)
    packed = out / "big_csv_gz" / "metrics.csv.gz"
    if not packed.exists():
        packed.parent.mkdir(parents=True, exist_ok=True)
        packed.write_bytes(gzip.compress(big.read_bytes(), compresslevel=6))
    sweep = out / "sweep"
    if not (sweep / "run-199" / "metrics.csv").exists():
        for run in range(200):
            _csv(sweep / f"run-{run:03d}" / "metrics.csv", 500, 8)
    return {"big_csv": big.parent, "big_csv_gz": packed.parent, "sweep": sweep}


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("moto server did not start")


def _timed(path: Path, repeat: int) -> tuple[float, int]:
    times, points = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        runs, errors = discover.load_runs([path])
        times.append(time.perf_counter() - start)
        assert not errors, errors
        points = sum(run.points for run in runs)
    return statistics.median(times), points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "remote")
    options = parser.parse_args()
    workloads = make_workloads(options.out)
    server, endpoint = _start_server()
    try:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="us-east-1")
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for name, folder in workloads.items():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    client.upload_file(str(path), BUCKET, f"{name}/{path.relative_to(folder).as_posix()}")
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
              f"Python {platform.python_version()}; median of {options.repeat}")
        print()
        print("| workload | files | MB | points | local s | local MB/s | local points/s | s3 s | s3 MB/s | s3 points/s | s3 / local |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, folder in workloads.items():
            stored = [path for path in folder.rglob("*") if path.is_file()]
            megabytes = sum(path.stat().st_size for path in stored) / 1e6
            local, points = _timed(folder, options.repeat)
            remote, remote_points = _timed(Path(f"s3://{BUCKET}/{name}"), options.repeat)
            assert remote_points == points
            print(f"| {name} | {len(stored)} | {megabytes:.1f} | {points:,} | {local:.2f} | {megabytes / local:.1f} | "
                  f"{points / local / 1e6:.2f} M | {remote:.2f} | {megabytes / remote:.1f} | {points / remote / 1e6:.2f} M | "
                  f"{remote / local:.2f} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
