"""A writer process for the outage test: an InfluxSink fed by deterministic data.

``publish`` mode publishes records ``--first`` .. ``--first + --count - 1`` in groups of
12 (one per circuit) and, after each group is durable (in InfluxDB or in the spool),
prints ``durable <last seq>``; then it waits to be killed. ``drain`` mode publishes
its records too, then waits until the spool is empty, prints ``drained`` and exits.

Record ``seq`` is circuit ``c{seq % 12}`` at ``T0 + (seq // 12) * 200 ms`` with
``current_rms_a = seq / 8`` (exact in binary) and ``energy_import_wh = seq * 0.5``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from collector.model import Metrics
from collector.sinks.influx.sink import InfluxSink, InfluxSinkSettings
from collector.sinks.influx.writer import WriterSettings

T0_NS = 1_700_000_000_000_000_000
CIRCUITS = 12


def record(seq: int) -> Metrics:
    return Metrics(
        time_ns=T0_NS + (seq // CIRCUITS) * 200_000_000, interval="basic",
        channel=f"c{seq % CIRCUITS}", phase="A",
        fields={"current_rms_a": seq / 8, "energy_import_wh": seq * 0.5},
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["publish", "drain"])
    for name in ("url", "org", "token", "bucket", "events-bucket", "spool"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, default=1200)
    p.add_argument("--pause-s", type=float, default=0.01)
    a = p.parse_args()
    sink = InfluxSink(InfluxSinkSettings(
        url=a.url, org=a.org, token=a.token, site="lab", spool_path=Path(a.spool),
        bucket=a.bucket, events_bucket=a.events_bucket, intervals=None,
        health_interval_s=3600.0, timeout_s=2.0,
        writer=WriterSettings(flush_interval_s=0.05, retry_attempts=2, backoff_initial_s=0.05,
                              backoff_max_s=0.3, batch_max_points=500),
    ))
    for start in range(a.first, a.first + a.count, CIRCUITS):
        sink.publish([record(s) for s in range(start, min(start + CIRCUITS,
                                                          a.first + a.count))], [])
        if not sink.flush(60):
            print("flush timeout", flush=True)
            return 2
        print(f"durable {min(start + CIRCUITS, a.first + a.count) - 1}", flush=True)
        time.sleep(a.pause_s)
    if a.mode == "publish":
        print("published", flush=True)
        time.sleep(3600)  # wait for the kill
        return 0
    deadline = time.monotonic() + 120
    while sink.health().writer.spool.points > 0:
        if time.monotonic() > deadline:
            print("drain timeout", flush=True)
            return 3
        time.sleep(0.05)
    sink.close()
    print("drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
