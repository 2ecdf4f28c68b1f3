"""The writer thread against a scripted transport: batching, retries, outage, split, overflow."""

from __future__ import annotations

import gzip
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from collector.clock import FakeClock
from collector.sinks.influx.errors import FatalError, PartialWriteError, RetryableError
from collector.sinks.influx.spool import Appended, Spool
from collector.sinks.influx.writer import InfluxWriter, WriterSettings


class ScriptedTransport:
    """Records delivered lines; can be 'down', reject lines, or block."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delivered: list[tuple[str, list[str]]] = []
        self.attempts = 0
        self.down = False
        self.fatal = False
        self.reject: set[str] = set()
        self.gate: threading.Event | None = None
        self.closed = False

    def write(self, bucket: str, gzip_payload: bytes) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        lines = gzip.decompress(gzip_payload).decode().split("\n")
        with self.lock:
            self.attempts += 1
            if self.down:
                raise RetryableError("ConnectionError: refused")
            if self.fatal:
                raise FatalError("HTTP 401: unauthorized access")
            good = [x for x in lines if x not in self.reject]
            self.delivered.append((bucket, good))  # InfluxDB keeps the good points
            if len(good) != len(lines):
                raise PartialWriteError(
                    f"HTTP 400: partial write: field type conflict dropped={len(lines) - len(good)}"
                )

    def close(self) -> None:
        self.closed = True

    def lines(self, bucket: str = "raw") -> list[str]:
        with self.lock:
            return [x for b, batch in self.delivered if b == bucket for x in batch]


def _lines(start: int, n: int) -> list[str]:
    return [f"electrical,circuit=c1 current_rms_a={k}.0 {1_700_000_000_000 + k}"
            for k in range(start, start + n)]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool.sqlite", max_bytes=50_000_000)


def _writer(transport: ScriptedTransport, spool: Spool, clock: FakeClock | None = None,
            **kw: float | int) -> InfluxWriter:
    settings = WriterSettings(**{"flush_interval_s": 0.02, "batch_max_points": 1000,
                                 **kw})  # type: ignore[arg-type]
    w = InfluxWriter(transport, spool, settings, clock=clock or FakeClock())
    w.start()
    return w


def test_batches_by_size_in_order(spool: Spool) -> None:
    t = ScriptedTransport()
    w = _writer(t, spool)
    for k in range(25):
        w.submit("raw", _lines(100 * k, 100))
    assert w.flush(10)
    w.close()
    assert t.lines() == _lines(0, 2500)
    assert all(len(batch) <= 1000 for _, batch in t.delivered)
    assert w.stats().points_written == 2500
    assert t.closed


def test_retry_with_backoff_then_success(spool: Spool) -> None:
    t = ScriptedTransport()
    clock = FakeClock()
    calls = {"n": 0}
    original = t.write

    def flaky(bucket: str, payload: bytes) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RetryableError("HTTP 503: busy")
        original(bucket, payload)

    t.write = flaky  # type: ignore[method-assign,assignment]
    w = _writer(t, spool, clock, backoff_initial_s=1.0, retry_attempts=4)
    w.submit("raw", _lines(0, 10))
    assert w.flush(10)
    stats = w.stats()
    w.close()
    assert t.lines() == _lines(0, 10)
    # equal jitter: attempt k waits within [cap/2, cap], cap = 1 s * 2**k
    assert len(clock.slept) == 2
    assert 0.5 <= clock.slept[0] <= 1.0
    assert 1.0 <= clock.slept[1] <= 2.0
    assert stats.write_errors == 2
    assert stats.spool.points == 0


def test_outage_spools_then_replays_everything_once_in_order(spool: Spool) -> None:
    t = ScriptedTransport()
    clock = FakeClock()
    w = _writer(t, spool, clock, retry_attempts=2)
    t.down = True
    for k in range(10):
        w.submit("raw", _lines(50 * k, 50))
        assert w.flush(10)
    stats = w.stats()
    assert stats.outage
    assert stats.spool.points == 500
    assert t.lines() == []
    t.down = False
    clock.t_s += 3600  # past any probe backoff
    w.submit("raw", _lines(500, 50))  # live data
    assert w.flush(10)
    for _ in range(200):
        if w.stats().spool.points == 0:
            break
        threading.Event().wait(0.02)
    stats = w.stats()
    w.close()
    got = t.lines()
    assert sorted(got) == sorted(_lines(0, 550))
    assert len(got) == len(set(got)) == 550  # nothing twice
    # live first: the batch submitted after recovery went out before the backlog
    assert got[:50] == _lines(500, 50)
    assert got[50:] == _lines(0, 500)  # backlog oldest first
    assert stats.points_spooled == 500
    assert stats.points_replayed == 500
    assert not stats.outage


def test_partial_rejection_drops_only_the_bad_point(spool: Spool) -> None:
    t = ScriptedTransport()
    lines = _lines(0, 37)
    bad = lines[23]
    t.reject = {bad}
    w = _writer(t, spool)
    w.submit("raw", lines)
    assert w.flush(10)
    stats = w.stats()
    w.close()
    got = set(t.lines())
    assert got == set(lines) - {bad}
    assert stats.points_dropped == 1
    assert stats.spool.points == 0


def test_fatal_answer_keeps_the_data(spool: Spool) -> None:
    t = ScriptedTransport()
    t.fatal = True
    w = _writer(t, spool)
    w.submit("raw", _lines(0, 5))
    assert w.flush(10)
    stats = w.stats()
    w.close()
    assert stats.spool.points == 5
    assert stats.points_dropped == 0
    assert "401" in (stats.last_error or "")


def test_hanging_influxdb_never_holds_up_submit(spool: Spool) -> None:
    # Was "full queue writes through to the spool": with the spool as the queue every
    # accepted line is on disk at once, so the checks on the spool's and the queue's
    # depth changed (180 and 130 instead of 30 and 100); the contract is the same:
    # submit() returns while InfluxDB hangs, and everything arrives once afterwards.
    t = ScriptedTransport()
    t.gate = threading.Event()  # InfluxDB hangs: the thread is stuck in write()
    w = _writer(t, spool, queue_max_points=100, batch_max_points=50)
    w.submit("raw", _lines(0, 50))  # taken by the thread, which then blocks
    for _ in range(200):
        if t.attempts or w.stats().queue_points == 0:
            break
        threading.Event().wait(0.01)
    w.submit("raw", _lines(50, 100))
    w.submit("raw", _lines(150, 30))  # returned although the thread is still stuck
    assert not t.gate.is_set()
    assert w.stats().spool.points == 180  # accepted means on disk, all of it
    assert w.stats().queue_points == 130  # not yet taken by the stuck thread
    t.gate.set()
    assert w.flush(10)
    w.close()
    got = t.lines()
    assert sorted(got) == sorted(_lines(0, 180))
    assert len(got) == 180  # nothing twice


def test_close_spools_what_cannot_be_sent(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    t = ScriptedTransport()
    t.down = True
    w = _writer(t, Spool(path, 10**8), flush_interval_s=30.0)
    w.submit("raw", _lines(0, 20))
    w.close()
    reopened = Spool(path, 10**8)
    assert [x for b in reopened.peek(10) for x in b.lines()] == _lines(0, 20)
    reopened.close()


_KILLED_AFTER_SUBMIT = """
import os, signal, sys
from collector.sinks.influx.spool import Spool
from collector.sinks.influx.transport import HttpTransport
from collector.sinks.influx.writer import InfluxWriter, WriterSettings
w = InfluxWriter(HttpTransport("http://127.0.0.1:9", "o", "t"), Spool(sys.argv[1], 10**8),
                 WriterSettings(flush_interval_s=30.0))
w.start()
for k in range(5):
    w.submit("raw", [f"electrical,circuit=c1 current_rms_a={k}.0 {1_700_000_000_000 + k}"])
os.kill(os.getpid(), signal.SIGKILL)  # a crash right after acceptance
"""


def test_accepted_lines_survive_kill9_at_once(tmp_path: Path) -> None:
    # Before the spool was the queue, these lines waited in memory for the flush
    # interval (30 s here) and died with the process.
    path = tmp_path / "spool.sqlite"
    proc = subprocess.run([sys.executable, "-c", _KILLED_AFTER_SUBMIT, str(path)],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    spool = Spool(path, 10**8)
    assert [x for b in spool.peek(10) for x in b.lines()] == _lines(0, 5)
    spool.close()


def test_backlog_of_a_previous_run_goes_after_live_data(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    old = Spool(path, 10**8)
    for k in range(4):  # left by a run that was killed during an outage
        old.append("raw", _lines(100 * k, 100))
    old.close()
    t = ScriptedTransport()
    w = InfluxWriter(t, Spool(path, 10**8),
                     WriterSettings(flush_interval_s=0.02, batch_max_points=250),
                     clock=FakeClock())
    w.submit("raw", _lines(1000, 30))  # this run's first live data
    w.start()
    assert w.flush(10)
    for _ in range(200):
        if w.stats().spool.points == 0:
            break
        threading.Event().wait(0.02)
    stats = w.stats()
    w.close()
    assert t.delivered[0] == ("raw", _lines(1000, 30))  # live first
    assert t.lines()[30:] == _lines(0, 400)  # then the backlog, oldest first
    assert all(len(batch) <= 250 for _, batch in t.delivered)
    assert stats.points_replayed == 400
    assert stats.points_written == 430


def test_rows_sent_together_are_split_to_find_a_bad_point(spool: Spool) -> None:
    t = ScriptedTransport()
    lines = _lines(0, 50)
    t.reject = {lines[31]}
    w = InfluxWriter(t, spool, WriterSettings(flush_interval_s=0.02), clock=FakeClock())
    for k in range(5):  # five rows, concatenated into one request
        w.submit("raw", lines[10 * k:10 * k + 10])
    w.start()
    assert w.flush(10)
    stats = w.stats()
    w.close()
    assert t.attempts > 1
    assert sorted(set(t.lines())) == sorted(set(lines) - {lines[31]})
    assert stats.points_dropped == 1
    assert stats.spool.points == 0


def test_bounded_spool_keeps_the_newest_through_an_outage(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe.sqlite", 10**9)
    probe.append("raw", _lines(0, 50))
    one_row = probe.depth().bytes
    probe.close()
    t = ScriptedTransport()
    t.down = True
    clock = FakeClock()
    w = _writer(t, Spool(tmp_path / "spool.sqlite", int(one_row * 4.5)), clock,
                retry_attempts=1)
    for k in range(10):
        w.submit("raw", _lines(50 * k, 50))
        assert w.flush(10)
    evicted = w.stats().points_evicted
    assert evicted == 300  # 6 of 10 rows, the oldest
    t.down = False
    clock.t_s += 3600
    for _ in range(200):
        if w.stats().spool.points == 0:
            break
        threading.Event().wait(0.02)
    w.close()
    assert t.lines() == _lines(300, 200)


class _FailingSpool(Spool):
    """A spool whose disk is full while ``full`` is set."""

    full = True

    def append_batches(self, items: Sequence[tuple[str, Sequence[str]]]) -> Appended:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return super().append_batches(items)


def test_spool_failure_keeps_data_in_memory_and_sends_it(tmp_path: Path) -> None:
    t = ScriptedTransport()
    spool = _FailingSpool(tmp_path / "spool.sqlite", 10**8)
    clock = FakeClock()
    w = _writer(t, spool, clock, queue_max_points=100)
    w.submit("raw", _lines(0, 40))
    assert w.flush(10)
    stats = w.stats()
    assert t.lines() == _lines(0, 40)  # InfluxDB up: nothing lost
    assert (stats.points_lost, stats.spool.points) == (0, 0)
    assert "disk is full" in (stats.last_error or "")

    t.down = True  # now InfluxDB is away too: memory holds up to queue_max_points
    w.submit("raw", _lines(40, 60))
    w.submit("raw", _lines(100, 60))  # 60 + 60 > 100: this one cannot be kept
    assert not w.flush(0.5)  # the 60 kept are neither in InfluxDB nor on disk
    assert w.stats().points_lost == 60

    spool.full = False  # disk space freed: the kept lines go to the spool
    assert w.flush(10)
    assert w.stats().spool.points == 60
    t.down = False
    clock.t_s += 3600  # past the probe backoff
    for _ in range(200):
        if w.stats().spool.points == 0:
            break
        threading.Event().wait(0.02)
    w.close()
    assert t.lines() == _lines(0, 100)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="batch_max_points"):
        WriterSettings(batch_max_points=0)
    with pytest.raises(ValueError, match="flush_interval_s"):
        WriterSettings(flush_interval_s=0)
