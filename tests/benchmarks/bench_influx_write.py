"""Benchmark: write throughput into a real influxd, next to what influxd alone takes.

Everything is 12 circuits' basic-interval records (25 fields in 1 line; with the
100 harmonic fields, 125 fields in 2 lines), full-precision floats. Prints:

* **influxd alone**: the very lines GridGuard writes, encoded and gzip-compressed
  beforehand into 5000-line bodies, POSTed by 1 and by 2 client threads that do
  nothing else: the ceiling of influxd on this machine.
* **through GridGuard**: ``InfluxSink.publish`` called in a loop (encode, gzip,
  commit to the spool with an fsync, the writer thread sends), until InfluxDB has
  everything, for three call shapes: ``interval`` (one basic interval of 12 circuits
  per call, 12 records), ``collector`` (1 s of signal per call, 60 records, what the
  collector sends) and ``bulk`` (4800 records per call: a backfill, or a site with a
  fleet of meters).
* For each: lines/s, field values/s, CPU per line of this process (all threads) and
  of influxd, and the fraction of the 2-client ceiling. CPU per line includes
  building the shifted copies of the pre-built records (~1 us per record).
* the spool replay rate.

Run: ``.venv/bin/python tests/benchmarks/bench_influx_write.py [--seconds 10]``
(needs influxd 2.7: ``export INFLUXD=$(influx/dev/get-influxd.sh | tail -n 1)``).
Prints figures; asserts nothing about time. Results go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from collector.model import Metrics  # noqa: E402
from collector.nomenclature import harmonic_field  # noqa: E402
from collector.sinks.influx.line_protocol import PRECISION, encode_metrics  # noqa: E402
from collector.sinks.influx.sink import InfluxSink, InfluxSinkSettings  # noqa: E402
from collector.sinks.influx.spool import Spool, compress_lines  # noqa: E402
from collector.sinks.influx.transport import HttpTransport  # noqa: E402
from collector.sinks.influx.writer import InfluxWriter, WriterSettings  # noqa: E402
from tests.influxd_fixture import find_influxd, free_port  # noqa: E402

CIRCUITS = 12
PERIOD_NS = 200_000_000  # one basic interval
BODY_LINES = 5000  # lines per request, as the writer's default batch_max_points


@dataclass(frozen=True)
class Server:
    url: str
    org: str
    token: str
    bucket: str
    bucket_id: str
    data_dir: Path
    pid: int


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
        yield Server(url, "bench", token, "raw", body["bucket"]["id"], data, proc.pid)
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


@dataclass(frozen=True)
class Shape:
    name: str
    intervals_per_call: int  # basic intervals of all circuits per publish call


SHAPES = (Shape("interval", 1), Shape("collector", 5), Shape("bulk", 400))


@dataclass(frozen=True)
class Rate:
    lines: int
    field_values: int
    elapsed_s: float
    cpu_s: float  # this process, all threads
    influxd_cpu_s: float

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.elapsed_s

    def describe(self, ceiling: Rate | None) -> str:
        part = f", {self.lines_per_s / ceiling.lines_per_s:.0%} of influxd alone" if ceiling else ""
        return (
            f"{self.lines_per_s:>8,.0f} lines/s, {self.field_values / self.elapsed_s:>10,.0f} "
            f"field values/s; CPU per line: {self.cpu_s / self.lines * 1e6:5.1f} us here, "
            f"{self.influxd_cpu_s / self.lines * 1e6:5.1f} us influxd{part}"
        )


class _Cpu:
    """CPU seconds of this process and of influxd since construction."""

    def __init__(self, server: Server) -> None:
        self._influxd = psutil.Process(server.pid)
        self._own0 = time.process_time()
        self._influxd0 = self._influxd_s()

    def _influxd_s(self) -> float:
        t = self._influxd.cpu_times()
        return float(t.user + t.system)

    def read(self) -> tuple[float, float]:
        return time.process_time() - self._own0, self._influxd_s() - self._influxd0


def _values_per_record(harmonics: bool) -> int:
    return len(record(0, 0, 0, PERIOD_NS, harmonics).fields) + 1  # + flagged


def _steps(intervals: int, t0_ns: int, harmonics: bool) -> list[list[Metrics]]:
    return [[record(k, c, t0_ns, PERIOD_NS, harmonics) for c in range(CIRCUITS)]
            for k in range(intervals)]


def influxd_alone(server: Server, harmonics: bool, n_lines: int, clients: int,
                  t0_ns: int, gzip_level: int = 1) -> Rate:
    """POST pre-compressed bodies of GridGuard's own lines; the clients do nothing else."""
    lines_per_record = 2 if harmonics else 1
    cycle = _steps(200, t0_ns, harmonics)
    # The encoded lines split before their timestamp, so that later copies of the
    # cycle (later times, distinct points) are made by a join, not by encoding again.
    heads: list[str] = []
    stamps: list[int] = []
    for step in cycle:
        for m in step:
            for line in encode_metrics(m, "bench").lines:
                head, _, ts = line.rpartition(" ")
                heads.append(head + " ")
                stamps.append(int(ts))
    span_ms = len(cycle) * PERIOD_NS // 1_000_000
    bodies: list[tuple[bytes, int]] = []
    pending: list[str] = []
    made = 0
    while made < n_lines:
        shift = (made // len(heads)) * span_ms
        pending.extend(map(operator.add, heads, [str(t + shift) for t in stamps]))
        made += len(heads)
        while len(pending) >= BODY_LINES or (pending and made >= n_lines):
            body, pending = pending[:BODY_LINES], pending[BODY_LINES:]
            bodies.append((compress_lines(body, gzip_level), len(body)))
    sent = [0] * clients
    failures: list[str] = []

    def post(client: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Token {server.token}", "Content-Encoding": "gzip",
                   "Content-Type": "text/plain; charset=utf-8"}
        params = {"org": server.org, "bucket": server.bucket, "precision": PRECISION}
        for k in range(client, len(bodies), clients):
            payload, n = bodies[k]
            r = session.post(f"{server.url}/api/v2/write", params=params, headers=headers,
                             data=payload, timeout=120)
            if r.status_code != 204:
                failures.append(f"HTTP {r.status_code}: {r.text[:200]}")
                return
            sent[client] += n
        session.close()

    cpu = _Cpu(server)
    start = time.perf_counter()
    threads = [threading.Thread(target=post, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    own_s, influxd_s = cpu.read()
    if failures:
        sys.exit(f"influxd refused a body: {failures[0]}")
    n = sum(sent)
    values = n // lines_per_record * _values_per_record(harmonics)
    return Rate(n, values, elapsed, own_s, influxd_s)


def through_gridguard(server: Server, shape: Shape, harmonics: bool, seconds: float,
                      t0_ns: int, gzip_level: int = 1) -> tuple[Rate, int]:
    """``InfluxSink.publish`` in a loop for ``seconds``, then until influxd has it all."""
    spool = Path(tempfile.mkdtemp()) / "spool.sqlite"
    sink = InfluxSink(
        InfluxSinkSettings(
            url=server.url, org=server.org, token=server.token, site="bench",
            spool_path=spool, bucket=server.bucket, events_bucket=server.bucket,
            intervals=None, health_interval_s=10**9,
            writer=WriterSettings(gzip_level=gzip_level),
        )
    )
    per_call = shape.intervals_per_call
    # pre-built records (a cycle of 400 intervals at most), so the figure is the
    # sink's cost, not the record generator's; later cycles are shifted in time
    cycle_calls = max(1, 400 // per_call)
    cycle = _steps(cycle_calls * per_call, t0_ns, harmonics)
    calls = [[m for step in cycle[k * per_call:(k + 1) * per_call] for m in step]
             for k in range(cycle_calls)]
    span_ns = len(cycle) * PERIOD_NS
    cpu = _Cpu(server)
    start = time.perf_counter()
    n_calls = 0
    while time.perf_counter() - start < seconds:
        shift = (n_calls // cycle_calls) * span_ns
        sink.publish([Metrics(m.time_ns + shift, m.interval, m.channel, m.phase, m.fields)
                      for m in calls[n_calls % cycle_calls]], [])
        n_calls += 1
    sink.flush(600)
    elapsed = time.perf_counter() - start
    own_s, influxd_s = cpu.read()
    stats = sink.health().writer
    sink.close()
    shutil.rmtree(spool.parent, ignore_errors=True)
    records = n_calls * per_call * CIRCUITS
    lines = records * (2 if harmonics else 1)
    if stats.points_written != lines:
        print(f"  !! influxd acknowledged {stats.points_written} of {lines} lines "
              f"(spooled={stats.points_spooled} dropped={stats.points_dropped})")
    return Rate(lines, records * _values_per_record(harmonics), elapsed, own_s,
                influxd_s), lines // n_calls


def _cpu_per_call(fn: Callable[[], object], min_s: float = 0.5) -> float:
    n = 0
    start = time.process_time()
    while time.process_time() - start < min_s:
        fn()
        n += 1
    return (time.process_time() - start) / n


def bench_parts(harmonics: bool) -> None:
    """CPU of the caller's steps, one thread, no influxd: where a line's cost goes."""
    records = [m for step in _steps(400, 1_700_000_000_000_000_000, harmonics) for m in step]
    lines = [x for m in records for x in encode_metrics(m, "bench").lines]
    per_line = len(lines) / len(records)
    encode_s = _cpu_per_call(lambda: [encode_metrics(m, "bench") for m in records])
    floats = [v for m in records for v in m.fields.values() if type(v) is float]
    repr_s = _cpu_per_call(lambda: list(map(repr, floats)))
    mean_bytes = sum(map(len, lines)) / len(lines)
    print(f"parts ({mean_bytes:.0f}-byte lines): encode {encode_s / len(records) * 1e6:.1f} us "
          f"per record ({encode_s / len(lines) * 1e6:.1f} us/line), of which repr() of the "
          f"floats {repr_s / len(records) * 1e6:.1f} us")
    body = lines[:BODY_LINES]
    for level in (0, 1, 6):
        size = len(compress_lines(body, level))
        gz_s = _cpu_per_call(partial(compress_lines, body, level))
        print(f"  gzip level {level}: {gz_s / len(body) * 1e6:.1f} us/line, "
              f"{size / len(body):.0f} B/line")
    folder = Path(tempfile.mkdtemp())
    spool = Spool(folder / "spool.sqlite", 10**10)
    for n in (int(CIRCUITS * per_line), BODY_LINES):
        rows = lines[:n]
        commit_s = _cpu_per_call(partial(spool.append, "raw", rows))
        print(f"  spool append of a {n}-line row (gzip + SQLite insert + fsync): "
              f"{commit_s * 1e6:,.0f} us CPU, {commit_s / n * 1e6:.1f} us/line")
    spool.close()
    shutil.rmtree(folder, ignore_errors=True)


def bench_replay(server: Server, n_points: int) -> None:
    path = Path(tempfile.mkdtemp()) / "spool.sqlite"
    spool = Spool(path, 10**10)
    t0_ns = 1_800_000_000_000_000_000
    batch: list[str] = []
    k = 0
    while k * CIRCUITS < n_points:
        for c in range(CIRCUITS):
            batch.extend(encode_metrics(record(k, c, t0_ns, PERIOD_NS, False), "bench").lines)
        k += 1
        if len(batch) >= BODY_LINES:
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
    cpu = _Cpu(server)
    start = time.perf_counter()
    writer.start()
    while writer.stats().points_replayed < depth.points:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    own_s, influxd_s = cpu.read()
    stats = writer.stats()
    writer.close()
    shutil.rmtree(path.parent, ignore_errors=True)
    n = stats.points_replayed
    print(
        f"  -> replayed {n} points in {elapsed:.1f} s: {n / elapsed:,.0f} points/s; "
        f"CPU per line {own_s / n * 1e6:.1f} us here, {influxd_s / n * 1e6:.1f} us influxd"
    )


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def run(server: Server, harmonics: bool, seconds: float, ceiling_lines: int,
        shapes: Sequence[Shape], gzip_level: int) -> None:
    what = "125 fields (with harmonics), 2 lines" if harmonics else "25 fields, 1 line"
    print(f"== 12 circuits, records of {what} per record ({_load()})")
    bench_parts(harmonics)
    t0_ns = 1_700_000_000_000_000_000 + (10**17 if harmonics else 0)
    alone = [influxd_alone(server, harmonics, ceiling_lines, clients,
                           t0_ns + clients * 10**15, gzip_level) for clients in (1, 2)]
    for clients, rate in zip((1, 2), alone, strict=True):
        label = f"influxd alone, {clients} client{'s' if clients > 1 else ''}:"
        print(f"{label:46s}{rate.describe(None)}")
    for k, shape in enumerate(shapes):
        rate, per_call = through_gridguard(server, shape, harmonics, seconds,
                                           t0_ns + (3 + k) * 10**15, gzip_level)
        label = f"through GridGuard, {shape.name} ({per_call} lines/call):"
        print(f"{label:46s}{rate.describe(alone[1])}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10.0, help="publishing time per shape")
    p.add_argument("--ceiling-lines", type=int, default=300_000,
                   help="lines posted per 'influxd alone' run (half with harmonics)")
    p.add_argument("--replay-points", type=int, default=200_000)
    p.add_argument("--shapes", default=",".join(s.name for s in SHAPES))
    p.add_argument("--no-harmonics-only", action="store_true")
    p.add_argument("--gzip-level", type=int, default=1,
                   help="compression of the spool rows and of the 'influxd alone' bodies")
    a = p.parse_args()
    shapes = [s for s in SHAPES if s.name in a.shapes.split(",")]
    with local_influxd() as server:
        run(server, False, a.seconds, a.ceiling_lines, shapes, a.gzip_level)
        if not a.no_harmonics_only:
            run(server, True, a.seconds, a.ceiling_lines // 2, shapes, a.gzip_level)
        bench_replay(server, a.replay_points)
        print(f"({_load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
