"""Benchmark: the cost of ``InfluxSink.publish`` on the caller's thread, and CPU per point.

Publishes basic intervals of 12 circuits at a steady rate into a real influxd and
prints the latency of each ``publish`` call (median, 99th percentile, max) and the
process CPU time (all threads: encoding, spool, compression, HTTP) per line stored.
Cases: one interval per call (12 records, 12 lines, or 24 with harmonics) at
``--rate`` calls/s, and the collector's shape: one second of signal per call (5
intervals = 60 records with harmonics = 120 lines) at 5 calls/s, 5x real time.

Run: ``.venv/bin/python tests/benchmarks/bench_influx_publish.py [--rate 50 --seconds 10]``
(needs influxd 2.7: ``export INFLUXD=$(influx/dev/get-influxd.sh | tail -n 1)``).
Prints figures; asserts nothing about time. Results go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from collector.model import Metrics  # noqa: E402
from collector.sinks.influx.sink import InfluxSink, InfluxSinkSettings  # noqa: E402
from tests.benchmarks.bench_influx_write import CIRCUITS, Server, local_influxd, record  # noqa: E402

PERIOD_NS = 200_000_000  # one basic interval


def bench_publish(server: Server, rate_hz: float, seconds: float, harmonics: bool,
                  intervals_per_call: int = 1) -> None:
    spool = Path(tempfile.mkdtemp()) / "spool.sqlite"
    sink = InfluxSink(
        InfluxSinkSettings(
            url=server.url, org=server.org, token=server.token, site="bench",
            spool_path=spool, bucket=server.bucket, events_bucket=server.bucket,
            intervals=None, health_interval_s=10**9,
        )
    )
    t0_ns = 1_750_000_000_000_000_000 + (0 if harmonics else 10**15)
    n_calls = max(1, round(rate_hz * seconds))
    # built beforehand: the figure is the sink's cost, not the record generator's
    steps: list[list[Metrics]] = [
        [record(k * intervals_per_call + j, c, t0_ns, PERIOD_NS, harmonics)
         for j in range(intervals_per_call) for c in range(CIRCUITS)]
        for k in range(n_calls)
    ]
    lines_per_call = intervals_per_call * CIRCUITS * (2 if harmonics else 1)
    latencies_s: list[float] = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for k, step in enumerate(steps):
        due = wall0 + k / rate_hz
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = time.perf_counter()
        sink.publish(step, [])
        latencies_s.append(time.perf_counter() - t)
    sink.flush(120)
    cpu_s = time.process_time() - cpu0
    stats = sink.health().writer
    sink.close()
    shutil.rmtree(spool.parent, ignore_errors=True)
    n_lines = n_calls * lines_per_call
    lat_us = sorted(x * 1e6 for x in latencies_s)
    p99 = lat_us[min(len(lat_us) - 1, int(0.99 * len(lat_us)))]
    print(
        f"publish ({'with' if harmonics else 'without'} harmonics, {lines_per_call} lines "
        f"per call, {rate_hz:g} calls/s, {n_calls} calls): latency median "
        f"{statistics.median(lat_us):.0f} µs, p99 {p99:.0f} µs, max {lat_us[-1]:.0f} µs"
    )
    print(
        f"  -> CPU {cpu_s / n_lines * 1e6:.1f} µs per line (all threads), "
        f"written={stats.points_written} spooled={stats.points_spooled}"
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=50.0, help="publish calls per second")
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    with local_influxd() as server:
        bench_publish(server, a.rate, a.seconds, harmonics=False)
        bench_publish(server, a.rate, a.seconds, harmonics=True)
        bench_publish(server, 5.0, 2 * a.seconds, harmonics=True, intervals_per_call=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
