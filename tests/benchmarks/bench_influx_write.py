"""Benchmark: sustained write rate into a real influxd, and the spool replay rate.

Run: ``.venv/bin/python tests/benchmarks/bench_influx_write.py [--seconds 20]``
(needs influxd 2.7: ``export INFLUXD=$(influx/dev/get-influxd.sh | tail -n 1)``).
Prints figures; asserts nothing about time. Results go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import math
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from collector.model import Metrics  # noqa: E402
from collector.nomenclature import harmonic_field  # noqa: E402
from collector.sinks.influx.sink import InfluxSink, InfluxSinkSettings  # noqa: E402
from collector.sinks.influx.spool import Spool  # noqa: E402
from collector.sinks.influx.transport import HttpTransport  # noqa: E402
from collector.sinks.influx.writer import InfluxWriter, WriterSettings  # noqa: E402
from tests.influxd_fixture import find_influxd, free_port  # noqa: E402

CIRCUITS = 12


@dataclass(frozen=True)
class Server:
    url: str
    org: str
    token: str
    bucket: str
    bucket_id: str
    data_dir: Path


@contextmanager
def local_influxd(*extra_args: str) -> Iterator[Server]:
    """influxd on a free loopback port in a temp dir, onboarded; stopped on exit."""
    binary, reason = find_influxd()
    if binary is None:
        sys.exit(f"no influxd 2.7: {reason}")
    data = Path(tempfile.mkdtemp(prefix="gg-bench-influxd-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data / "influxd.log").open("wb")
    proc = subprocess.Popen(
        [
            str(binary),
            "--http-bind-address",
            f"127.0.0.1:{port}",
            "--bolt-path",
            str(data / "influxd.bolt"),
            "--engine-path",
            str(data / "engine"),
            "--sqlite-path",
            str(data / "influxd.sqlite"),
            "--reporting-disabled",
            "--ui-disabled",
            "--log-level",
            "error",
            *extra_args,
        ],
        cwd=data,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for _ in range(600):
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        token = secrets.token_urlsafe(32)
        body = requests.post(
            f"{url}/api/v2/setup",
            timeout=30,
            json={
                "org": "bench",
                "bucket": "raw",
                "username": "bench",
                "password": secrets.token_urlsafe(16),
                "token": token,
            },
        ).json()
        yield Server(url, "bench", token, "raw", body["bucket"]["id"], data)
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def record(step: int, circuit: int, t0_ns: int, period_ns: int, harmonics: bool = True) -> Metrics:
    """A realistic record: full-precision floats (computed RMS values are not round)."""
    phase = "ABC"[circuit % 3]
    s = step * 0.001 + circuit
    v = 230.0 + 2.0 * math.sin(s) + 0.013 * math.cos(37.0 * s)
    i = 5.0 + 4.0 * math.sin(0.3 * s + circuit) ** 2 + 0.007 * math.sin(91.0 * s)
    p = v * i * 0.97
    fields: dict[str, float | int | bool | str | None] = {
        "voltage_rms_v": v,
        "voltage_peak_v": v * 1.414,
        "voltage_crest_factor": 1.414,
        "voltage_fundamental_v": v * 0.9995,
        "voltage_thd_pct": 2.1 + 0.1 * math.sin(s),
        "frequency_hz": 50.0 + 0.02 * math.sin(0.01 * s),
        "current_rms_a": i,
        "current_peak_a": i * 1.6,
        "current_crest_factor": 1.6,
        "current_fundamental_a": i * 0.99,
        "current_thd_pct": 8.0 + math.sin(s),
        "power_active_w": p,
        "power_apparent_va": v * i,
        "power_reactive_var": p * 0.25,
        "power_nonactive_var": p * 0.26,
        "power_factor": 0.97,
        "power_factor_displacement": 0.975,
        "energy_import_wh": 1000.0 + step * p / 1200.0,
        "energy_export_wh": 0.0,
        "samples_per_cycle": 64.0,
        "missing_samples": 0,
        "clipped_samples": 0,
        "harmonics_max_order": 50,
        "calibration_id": "cal-2024-01",
    }
    if harmonics:
        for n in range(1, 51):
            fields[harmonic_field("voltage", n)] = v / n**2 * (1.0 + 0.01 * math.sin(s + n))
            fields[harmonic_field("current", n)] = i / n * (1.0 + 0.01 * math.cos(s + n))
    return Metrics(t0_ns + step * period_ns, "basic", f"circuit{circuit:02d}", phase, fields)


def bench_write(server: Server, seconds: float, harmonics: bool) -> None:
    spool = Path(tempfile.mkdtemp()) / "spool.sqlite"
    sink = InfluxSink(
        InfluxSinkSettings(
            url=server.url,
            org=server.org,
            token=server.token,
            site="bench",
            spool_path=spool,
            bucket=server.bucket,
            events_bucket=server.bucket,
            intervals=None,
            writer=WriterSettings(batch_max_points=5000, queue_max_points=500_000),
        )
    )
    t0_ns = 1_700_000_000_000_000_000
    # pre-build the records so the figure is the sink's cost, not the generator's
    steps = [
        [record(k, c, t0_ns, 200_000_000, harmonics) for c in range(CIRCUITS)] for k in range(200)
    ]
    lines_per_step = 2 if harmonics else 1
    values_per_step = sum(len(m.fields) + 1 for m in steps[0])
    start = time.perf_counter()
    n_steps = 0
    while time.perf_counter() - start < seconds:
        base = steps[n_steps % len(steps)]
        shift = (n_steps // len(steps)) * len(steps) * 200_000_000
        sink.publish(
            [Metrics(m.time_ns + shift, m.interval, m.channel, m.phase, m.fields) for m in base], []
        )
        n_steps += 1
    published_s = time.perf_counter() - start
    sink.flush(600)
    elapsed = time.perf_counter() - start
    stats = sink.health().writer
    sink.close()
    lines = n_steps * CIRCUITS * lines_per_step
    print(
        f"write ({'with' if harmonics else 'without'} harmonics): {lines} lines "
        f"({n_steps * values_per_step} field values) in {elapsed:.1f} s "
        f"(publishing took {published_s:.1f} s)"
    )
    print(
        f"  -> {lines / elapsed:,.0f} points/s, {n_steps * values_per_step / elapsed:,.0f} "
        f"field values/s; written={stats.points_written} spooled={stats.points_spooled} "
        f"dropped={stats.points_dropped}"
    )


def bench_replay(server: Server, n_points: int) -> None:
    path = Path(tempfile.mkdtemp()) / "spool.sqlite"
    spool = Spool(path, 10**10)
    t0_ns = 1_800_000_000_000_000_000
    from collector.sinks.influx.line_protocol import encode_metrics

    batch: list[str] = []
    k = 0
    while k * CIRCUITS < n_points:
        for c in range(CIRCUITS):
            batch.extend(encode_metrics(record(k, c, t0_ns, 200_000_000, False), "bench").lines)
        k += 1
        if len(batch) >= 5000:
            spool.append(server.bucket, batch)
            batch = []
    if batch:
        spool.append(server.bucket, batch)
    depth = spool.depth()
    print(
        f"replay: spool holds {depth.points} points in {depth.batches} batches, "
        f"{depth.bytes / 1e6:.1f} MB compressed ({depth.bytes / depth.points:.1f} B/point)"
    )
    writer = InfluxWriter(
        HttpTransport(server.url, server.org, server.token),
        spool,
        WriterSettings(flush_interval_s=1.0),
    )
    start = time.perf_counter()
    writer.start()
    while writer.stats().points_replayed < depth.points:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    stats = writer.stats()
    writer.close()
    print(
        f"  -> replayed {stats.points_replayed} points in {elapsed:.1f} s: "
        f"{stats.points_replayed / elapsed:,.0f} points/s"
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--replay-points", type=int, default=200_000)
    a = p.parse_args()
    with local_influxd() as server:
        bench_write(server, a.seconds, harmonics=False)
        bench_write(server, a.seconds, harmonics=True)
        bench_replay(server, a.replay_points)
    return 0


if __name__ == "__main__":
    sys.exit(main())
