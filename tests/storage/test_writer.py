"""The writer thread against a scripted transport: batching, retries, outage, split, overflow."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import pytest

from collector.clock import FakeClock
from collector.sinks.influx.errors import FatalError, PartialWriteError, RetryableError
from collector.sinks.influx.spool import Spool
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


def test_full_queue_writes_through_to_spool_without_waiting(spool: Spool) -> None:
    t = ScriptedTransport()
    t.gate = threading.Event()  # InfluxDB hangs: the thread is stuck in write()
    w = _writer(t, spool, queue_max_points=100, batch_max_points=50)
    w.submit("raw", _lines(0, 50))  # taken by the thread, which then blocks
    for _ in range(200):
        if t.attempts or w.stats().queue_points == 0:
            break
        threading.Event().wait(0.01)
    w.submit("raw", _lines(50, 100))  # fills the queue
    w.submit("raw", _lines(150, 30))  # no room: straight to disk, in this thread
    assert w.stats().spool.points == 30
    assert w.stats().queue_points == 100
    t.gate.set()
    assert w.flush(10)
    for _ in range(200):  # the written-through lines are replayed from the spool
        if w.stats().spool.points == 0:
            break
        threading.Event().wait(0.02)
    w.close()
    assert sorted(t.lines()) == sorted(_lines(0, 180))


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


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="batch_max_points"):
        WriterSettings(batch_max_points=0)
    with pytest.raises(ValueError, match="flush_interval_s"):
        WriterSettings(flush_interval_s=0)
