"""Outage: influxd stops, the writer spools, the writer is killed -9, everything arrives once.

A writer *process* (tests/storage/outage_driver.py) publishes deterministic records;
influxd is stopped while it runs, so records go to the spool; the process is killed
with SIGKILL while it is still spooling; influxd comes back and a new writer process
on the same spool replays it while publishing new live records. The writers use the
collector's v1 write-only credential, as made by ``gridguard influx setup``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from collector.influx_admin.api import InfluxApi
from collector.sinks.influx.spool import read_depth
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.storage.outage_driver import record

REPO = Path(__file__).resolve().parents[2]


class Driver:
    """A driver subprocess whose ``durable N`` lines are followed in a thread."""

    def __init__(self, mode: str, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.outage_driver", mode, *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.durable = -1
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if line.startswith("durable "):
                self.durable = int(line.split()[1])

    def wait_durable(self, seq: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.durable < seq:
            assert self.proc.poll() is None, f"driver exited: {self.lines[-20:]}"
            assert time.monotonic() < deadline, (
                f"driver stuck at {self.durable}: {self.lines[-20:]}")
            time.sleep(0.02)


def test_outage_kill9_then_replay_exactly_once(
    influxd: InfluxServer, influx_bucket: InfluxBucket, tmp_path: Path, collector_credential: str,
) -> None:
    spool = tmp_path / "spool.sqlite"
    common = ["--url", influxd.url, "--org", influxd.org, "--token", collector_credential,
              "--bucket", influx_bucket.name, "--events-bucket", influx_bucket.name,
              "--spool", str(spool)]
    first = Driver("publish", [*common, "--first", "0", "--count", "6000", "--pause-s", "0.01"])
    try:
        first.wait_durable(600)  # InfluxDB up: these are written directly
        influxd.stop()
        first.wait_durable(first.durable + 1200)  # these can only be in the spool
        depth = read_depth(spool)
        assert depth is not None
        assert depth.points >= 1000
        first.proc.send_signal(signal.SIGKILL)  # while it is still spooling
        first.proc.wait(30)
    finally:
        if first.proc.poll() is None:
            os.kill(first.proc.pid, signal.SIGKILL)
    assert "published" not in first.lines, "the kill came too late to hit the spooling phase"
    durable_before_kill = first.durable
    influxd.start()

    second = Driver("drain", [*common, "--first", "100000", "--count", "600"])
    assert second.proc.wait(180) == 0, second.lines[-20:]
    assert "drained" in second.lines

    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    rows = api.query(
        f'from(bucket: "{influx_bucket.name}") |> range(start: 2023-11-14T00:00:00Z, '
        'stop: 2023-11-16T00:00:00Z) |> filter(fn: (r) => r._measurement == "electrical" '
        'and r._field == "current_rms_a")'
    )
    api.close()
    seqs: list[int] = []
    for r in rows:
        value = float(r["_value"])  # type: ignore[arg-type]
        seq = int(value * 8)
        assert seq == value * 8, f"value {value} is no record's value"
        rec = record(seq)  # the stored tags and time must be this record's
        assert (r["circuit"], r["_time"]) == (rec.channel, rec.time_ns), f"record {seq}"
        seqs.append(seq)
    assert len(seqs) == len(set(seqs))  # structurally: one point per series and time
    first_seqs = {s for s in seqs if s < 100_000}
    # every record the first process reported durable arrived, exactly once
    assert set(range(durable_before_kill + 1)) <= first_seqs
    # nothing beyond what the first process had published at all
    assert max(first_seqs) < 6000
    # what arrived beyond the last report is a contiguous run (a spooled batch or two)
    assert first_seqs == set(range(max(first_seqs) + 1))
    assert {s for s in seqs if s >= 100_000} == set(range(100_000, 100_600))
