"""Every point the real collector accepted arrives exactly once, across an InfluxDB outage
and a ``kill -9`` of the collector in the middle of it.

1. ``gridguard run`` (simulated panel, real time, basic intervals to InfluxDB, JSON Lines
   to a file) runs against the test influxd, with the v1 write-only credential
   ``gridguard influx setup`` makes.
2. influxd is stopped: the collector goes on measuring and its points wait in the spool.
3. The collector is killed with SIGKILL while points are spooling.
4. influxd comes back; a second ``gridguard run`` on the same spool replays it while
   writing its own live data, and is stopped normally (SIGTERM).

What "published" means: the pipeline hands each step to its sinks in order, the
InfluxDB sink first (``sinks_from_config``) and the JSON Lines sink after it, and the
InfluxDB sink's ``publish`` returns only once the lines are committed to the spool.
So a record found in the first run's JSON Lines file had been accepted by the InfluxDB
sink before the kill. The kill can also land after the InfluxDB sink accepted a step
and before its JSON Lines were written out (the file is buffered): those records are
stored but not reported, and must lie after the first run's last reported record and
before the second run's first one.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from collector.nomenclature import Measurement
from collector.sinks.influx.from_config import SPOOL_FILE
from collector.sinks.influx.spool import SpooledBatch, read_depth
from collector.timefmt import parse_iso_utc
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.storage.collector_harness import (
    MS,
    REPO,
    TOKEN_ENV,
    collector_config,
    pop_reported,
    read_jsonl,
    stored_basic,
)

CHANNELS = 22  # of the demo panel in the example config


def _start(cfg: Path, out: Path, token: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "collector.cli.app", "run", "--config", str(cfg),
             "--speed", "1", "--no-live", "--metrics-out", str(out)],
            env={**os.environ, TOKEN_ENV: token}, cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=err,
        )


def _wait(what: str, ok: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
          timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert proc.poll() is None, f"collector exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timeout waiting for {what}: {log.read_text()[-3000:]}"
        time.sleep(0.05)


def _id_range(spool: Path) -> tuple[int, int] | None:
    """Oldest and newest row id in a spool file (read-only); None when it is empty."""
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5.0)
    try:
        row = db.execute("SELECT MIN(id), MAX(id) FROM batches").fetchone()
    finally:
        db.close()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def _spooled_keys(spool: Path) -> set[tuple[str, str, int]]:
    """(circuit, phase, time [ms]) of every line in a spool file, read-only."""
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = db.execute("SELECT id, bucket, n_points, payload FROM batches").fetchall()
    finally:
        db.close()
    keys: set[tuple[str, str, int]] = set()
    for r in rows:
        for line in SpooledBatch(int(r[0]), str(r[1]), int(r[2]), bytes(r[3])).lines():
            tags = dict(t.split("=", 1) for t in line.split(" ", 1)[0].split(",")[1:])
            keys.add((tags["circuit"], tags.get("phase", ""), int(line.rsplit(" ", 1)[1])))
    return keys


def test_kill9_during_outage_then_replay_every_published_point_once(
    influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
    tmp_path: Path, collector_credential: str,
) -> None:
    # max_retries 5 (the default) and 2 s timeouts: connection refused is immediate,
    # the backoff between the 6 attempts adds up to ~8-15 s.
    cfg = collector_config(tmp_path, influxd, influx_bucket.name, events_bucket.name,
                           max_retries=5, timeout_s=2.0)
    spool = tmp_path / "spool" / SPOOL_FILE
    out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"

    first = _start(cfg, out_a, collector_credential, log_a)
    try:
        _wait("records of the first run", lambda: len(read_jsonl(out_a)) >= 5 * CHANNELS,
              first, log_a)
        influxd.stop()
        stopped_ms = time.time_ns() // MS

        def reported_during_outage() -> bool:
            recs = read_jsonl(out_a)
            return sum(parse_iso_utc(str(r["time"])) // MS >= stopped_ms for r in recs) >= (
                10 * CHANNELS)  # two seconds of basic intervals

        # Killed a few seconds into the outage, while the writer thread is still busy
        # retrying its first failed batch (max_retries 5): what the sink accepted in
        # that time must be on disk already.
        _wait("records published during the outage", reported_during_outage, first, log_a)
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
    reported_a = read_jsonl(out_a)
    in_spool = _spooled_keys(spool)
    left_behind = _id_range(spool)
    assert left_behind is not None
    # the kill hit the spooling phase: every record published after influxd stopped
    # was on disk at that moment, and only there
    after_stop = {(str(r["channel"]), str(r["phase"] or ""), parse_iso_utc(str(r["time"])) // MS)
                  for r in reported_a if parse_iso_utc(str(r["time"])) // MS >= stopped_ms}
    assert len(after_stop) >= 10 * CHANNELS
    assert not after_stop - in_spool, sorted(after_stop - in_spool)[:5]

    influxd.start()
    second = _start(cfg, out_b, collector_credential, log_b)
    try:
        def drained() -> bool:
            ids = _id_range(spool)
            # every row the first run left has been acknowledged and deleted
            return (ids is None or ids[0] > left_behind[1]) and len(read_jsonl(out_b)) > 0

        _wait("the replay of the spool", drained, second, log_b)
        time.sleep(1.0)  # some more live data
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log_b.read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(30)
    depth = read_depth(spool)
    assert depth is not None
    assert depth.points == 0, "a normal stop with InfluxDB up leaves nothing behind"
    reported_b = read_jsonl(out_b)
    assert reported_b

    stored = stored_basic(influxd, influx_bucket.name)  # asserts one value per key
    # every record the first run had published, exactly as reported ...
    assert pop_reported(reported_a, stored) > 1000
    # ... and every record of the second run
    assert pop_reported(reported_b, stored) > 100
    # Nothing else, except the first run's steps accepted by the InfluxDB sink whose
    # JSON Lines had not reached the file when it was killed (harmonics are not in
    # the JSON Lines at all).
    last_a_ms = max(parse_iso_utc(str(r["time"])) // MS for r in reported_a)
    first_b_ms = min(parse_iso_utc(str(r["time"])) // MS for r in reported_b)
    extra = {(k[1], k[3]) for k in stored if k[0] != str(Measurement.HARMONICS)}
    # (the file is a prefix of the stream: the same basic interval as the last reported
    # record, for the channels after it, or later intervals)
    assert all(last_a_ms <= t_ms < first_b_ms for _, t_ms in extra), sorted(extra)[:5]
    assert len({t for _, t in extra}) <= 15  # a few basic intervals (a step is ~1 s)
