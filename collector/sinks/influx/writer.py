"""The one writer thread: batches line protocol to InfluxDB and spools what it cannot send.

Behaviour (docs/storage.md tells the operator's side):

* :meth:`InfluxWriter.submit` never blocks on the network. Lines go into a bounded
  in-memory queue; when the queue is full they are written straight to the spool
  by the caller (a disk write, no waiting on InfluxDB).
* The thread sends a batch when ``batch_max_points`` lines are queued or
  ``flush_interval_s`` has passed, gzip-compressed, with millisecond precision.
* Retryable failures (connection refused, timeout, 5xx, 429/503) are retried with
  exponential backoff and jitter; a Retry-After header is honoured exactly. When
  the retry budget is spent the batch goes to the spool and the writer enters
  *outage* mode: live batches go straight to the spool, and one attempt is made
  per backoff period (the probe) until InfluxDB answers again.
* A batch InfluxDB rejects point-wise (type conflict, unparsable line, outside
  retention) is split in halves recursively; only single lines that are still
  rejected are dropped, each logged with InfluxDB's reason and counted.
* Fatal answers (bad token, missing bucket) keep the data: it is spooled and the
  error is logged loudly, then probed like an outage, so fixing the token later
  loses nothing.
* Replay is *live first*: each cycle the thread sends the live batches first and
  then replays up to ``replay_batches_per_cycle`` spooled batches, oldest first,
  while fewer than a batch of live points is waiting. Current data thus reaches
  dashboards and the Flux alert tasks without delay after an outage, and the
  backlog drains in the gaps. A batch leaves the spool only after InfluxDB
  acknowledged it, so a crash at any moment re-sends at most one batch; a
  re-sent point has the same series and timestamp and overwrites itself
  (InfluxDB writes are idempotent), so nothing is stored twice.
"""

from __future__ import annotations

import gzip
import logging
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from collector.clock import Clock, SystemClock
from collector.sinks.influx.errors import (
    FatalError,
    InfluxError,
    PartialWriteError,
    RetryableError,
)
from collector.sinks.influx.spool import Spool, SpoolDepth, compress_lines
from collector.sinks.influx.transport import Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """Batching, retry and replay parameters (times in seconds)."""

    batch_max_points: int = 5000
    flush_interval_s: float = 1.0
    queue_max_points: int = 200_000
    retry_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_wait_max_s: float = 60.0
    replay_batches_per_cycle: int = 8
    gzip_level: int = 1

    def __post_init__(self) -> None:
        for name in ("batch_max_points", "queue_max_points", "retry_attempts",
                     "replay_batches_per_cycle"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        for name in ("flush_interval_s", "backoff_initial_s", "backoff_max_s",
                     "retry_wait_max_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name}: must be > 0 s, got {value}")
        if not 0 <= self.gzip_level <= 9:
            raise ValueError(f"gzip_level: must be in 0..9, got {self.gzip_level}")


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer started, and the current queue/spool depth."""

    queue_points: int
    points_written: int
    points_replayed: int
    points_spooled: int
    points_dropped: int
    points_evicted: int
    points_lost: int
    write_errors: int
    last_error: str | None
    last_error_ns: int | None
    outage: bool
    spool: SpoolDepth


class _Batch:
    """Lines and/or their gzip payload; each derived from the other only when needed."""

    __slots__ = ("_level", "_lines", "_payload", "bucket", "n_points")

    def __init__(
        self, bucket: str, *, lines: list[str] | None = None, payload: bytes | None = None,
        n_points: int | None = None, level: int = 1,
    ) -> None:
        self.bucket = bucket
        self._lines = lines
        self._payload = payload
        self._level = level
        self.n_points = len(lines) if lines is not None else int(n_points or 0)

    def lines(self) -> list[str]:
        if self._lines is None:
            assert self._payload is not None
            self._lines = gzip.decompress(self._payload).decode("utf-8").split("\n")
        return self._lines

    def payload(self) -> bytes:
        if self._payload is None:
            self._payload = compress_lines(self.lines(), self._level)
        return self._payload


@dataclass(frozen=True, slots=True)
class _Unavailable:
    """InfluxDB could not take ``lines`` now; try again in ``wait_s``."""

    lines: list[str] | None  # None: the whole batch, untouched
    wait_s: float


class InfluxWriter:
    """Owns the writer thread, the in-memory queue and the spool."""

    def __init__(
        self,
        transport: Transport,
        spool: Spool,
        settings: WriterSettings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._transport = transport
        self._spool = spool
        self._settings = settings or WriterSettings()
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, list[str]]] = deque()
        self._queued = 0  # points in the queue
        self._pending = 0  # points in the queue or being handled by the thread
        self._stopping = False
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_until: float | None = None
        self._outage_count = 0
        self._stats_lock = threading.Lock()
        self._written = 0
        self._replayed = 0
        self._spooled = 0
        self._dropped = 0
        self._lost = 0
        self._errors = 0
        self._last_error: str | None = None
        self._last_error_ns: int | None = None

    # -- caller side ---------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()

    def submit(self, bucket: str, lines: Sequence[str]) -> None:
        """Queue lines for ``bucket``; never blocks on InfluxDB and never raises."""
        if not lines:
            return
        batch = list(lines)
        n = len(batch)
        with self._cond:
            if self._closed:
                self._count_lost(n, "submit() after close()")
                return
            if self._queued + n <= self._settings.queue_max_points:
                self._queue.append((bucket, batch))
                self._queued += n
                self._pending += n
                if self._queued >= self._settings.batch_max_points:
                    self._cond.notify_all()
                return
        # Queue full (InfluxDB slow or away and the thread busy retrying): write
        # through to disk rather than make the sampler wait.
        self._spool_lines(bucket, batch)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything submitted so far is in InfluxDB or in the spool."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 60.0) -> None:
        """Send or spool what is queued, stop the thread, close the spool."""
        with self._cond:
            if self._closed:
                return
            self._stopping = True
            self._cond.notify_all()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("influx writer thread did not stop within %.0f s", timeout_s)
                return
        else:
            self._drain_to_spool()
        with self._cond:
            self._closed = True
        self._spool.close()
        self._transport.close()

    def stats(self) -> WriterStats:
        with self._cond:
            queued = self._queued
        with self._stats_lock:
            return WriterStats(
                queue_points=queued,
                points_written=self._written,
                points_replayed=self._replayed,
                points_spooled=self._spooled,
                points_dropped=self._dropped,
                points_evicted=self._spool.evicted_points,
                points_lost=self._lost,
                write_errors=self._errors,
                last_error=self._last_error,
                last_error_ns=self._last_error_ns,
                outage=self._outage_until is not None,
                spool=self._spool.depth(),
            )

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batches, n, stopping = self._collect()
            try:
                for bucket, lines in batches:
                    self._deliver_live(bucket, lines)
                if not stopping:
                    self._replay()
            except Exception:
                # A bug must not kill the only writer: log it, keep the data.
                log.exception("influx writer: unexpected error; spooling the current batches")
                for bucket, lines in batches:
                    self._spool_lines(bucket, lines)
            finally:
                with self._cond:
                    self._pending -= n
                    self._cond.notify_all()
            if stopping:
                with self._cond:
                    if not self._queue:
                        return

    def _collect(self) -> tuple[list[tuple[str, list[str]]], int, bool]:
        """Wait for a full batch or the flush interval; take the whole queue."""
        s = self._settings
        deadline = time.monotonic() + s.flush_interval_s
        with self._cond:
            while not self._stopping and self._queued < s.batch_max_points:
                if self._replay_due():
                    break  # don't idle while a backlog could drain
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            items = list(self._queue)
            self._queue.clear()
            n = self._queued
            self._queued = 0
            stopping = self._stopping
        by_bucket: dict[str, list[str]] = {}
        for bucket, lines in items:
            by_bucket.setdefault(bucket, []).extend(lines)
        batches = [
            (bucket, lines[k:k + s.batch_max_points])
            for bucket, lines in by_bucket.items()
            for k in range(0, len(lines), s.batch_max_points)
        ]
        return batches, n, stopping

    def _replay_due(self) -> bool:
        if self._spool.depth().batches == 0:
            return False
        return self._outage_until is None or self._clock.monotonic() >= self._outage_until

    def _in_outage_wait(self) -> bool:
        return self._outage_until is not None and self._clock.monotonic() < self._outage_until

    def _attempts(self) -> int:
        # While InfluxDB is known to be away one attempt is the probe; retrying it
        # would only hold up the next live batch.
        return 1 if self._outage_until is not None else self._settings.retry_attempts

    def _deliver_live(self, bucket: str, lines: list[str]) -> None:
        if self._in_outage_wait():
            self._spool_lines(bucket, lines)
            return
        batch = _Batch(bucket, lines=lines, level=self._settings.gzip_level)
        result = self._send(batch, self._attempts())
        if result is None:
            self._leave_outage()
            return
        self._spool_lines(bucket, result.lines if result.lines is not None else lines)
        self._enter_outage(result.wait_s)

    def _replay(self) -> None:
        s = self._settings
        for _ in range(s.replay_batches_per_cycle):
            with self._cond:
                if self._stopping or self._queued >= s.batch_max_points:
                    return  # live data first
            if self._in_outage_wait():
                return
            stored = self._spool.peek(1)
            if not stored:
                return
            item = stored[0]
            batch = _Batch(item.bucket, payload=item.payload, n_points=item.n_points,
                           level=s.gzip_level)
            result = self._send(batch, self._attempts())
            if result is None:
                self._spool.delete(item.id)
                with self._stats_lock:
                    self._replayed += item.n_points
                self._leave_outage()
                continue
            if result.lines is not None:
                # Part of it was delivered while splitting: keep only the rest.
                self._spool_lines(item.bucket, result.lines, count=False)
                self._spool.delete(item.id)
            self._enter_outage(result.wait_s)
            return

    def _send(self, batch: _Batch, attempts: int) -> _Unavailable | None:
        """Deliver ``batch``; None when done (written, or bad points dropped)."""
        attempt = 0
        while True:
            try:
                self._transport.write(batch.bucket, batch.payload())
            except RetryableError as exc:
                self._note_error(exc)
                wait = (exc.retry_after_s if exc.retry_after_s is not None
                        else self._backoff(attempt))
                attempt += 1
                if (attempt >= attempts or wait > self._settings.retry_wait_max_s
                        or self._stopping):
                    return _Unavailable(None, wait)
                self._pause(wait)
                continue
            except PartialWriteError as exc:
                self._note_error(exc)
                return self._split(batch, exc, attempts)
            except FatalError as exc:
                self._note_error(exc)
                log.error(
                    "InfluxDB refused a write to %r and retrying cannot help: %s. "
                    "Data is kept in the spool %s until this is fixed.",
                    batch.bucket, exc, self._spool.path,
                )
                return _Unavailable(None, self._settings.backoff_max_s)
            with self._stats_lock:
                self._written += batch.n_points
            return None

    def _split(self, batch: _Batch, exc: PartialWriteError, attempts: int) -> _Unavailable | None:
        lines = batch.lines()
        if len(lines) == 1:
            with self._stats_lock:
                self._dropped += 1
            log.error("dropped a point InfluxDB rejects (%s): %s", exc, lines[0][:300])
            return None
        mid = len(lines) // 2
        level = self._settings.gzip_level
        left, right = lines[:mid], lines[mid:]
        res = self._send(_Batch(batch.bucket, lines=left, level=level), attempts)
        if res is not None:
            return _Unavailable(list(res.lines if res.lines is not None else left) + right,
                                res.wait_s)
        res = self._send(_Batch(batch.bucket, lines=right, level=level), attempts)
        if res is not None:
            return _Unavailable(res.lines if res.lines is not None else right, res.wait_s)
        return None

    # -- helpers ---------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        s = self._settings
        cap = min(s.backoff_max_s, s.backoff_initial_s * 2.0**attempt)
        # "Equal jitter": never less than half the nominal delay, and writers
        # that failed together do not retry in lockstep.
        return cap / 2 + self._rng.uniform(0.0, cap / 2)

    def _pause(self, seconds: float) -> None:
        if isinstance(self._clock, SystemClock):
            self._wake.wait(seconds)  # close() cuts a long backoff short
        else:
            self._clock.sleep(seconds)

    def _enter_outage(self, wait_s: float) -> None:
        wait = max(wait_s, self._backoff(self._outage_count))
        self._outage_count += 1
        if self._outage_until is None:
            log.warning(
                "InfluxDB unavailable (%s); spooling to %s, next attempt in %.1f s",
                self._last_error, self._spool.path, wait,
            )
        self._outage_until = self._clock.monotonic() + wait

    def _leave_outage(self) -> None:
        if self._outage_until is not None:
            log.warning(
                "InfluxDB reachable again; replaying %d spooled points (live data first)",
                self._spool.depth().points,
            )
        self._outage_until = None
        self._outage_count = 0

    def _note_error(self, exc: InfluxError) -> None:
        with self._stats_lock:
            self._errors += 1
            self._last_error = str(exc)
            self._last_error_ns = self._clock.now_ns()

    def _count_lost(self, n: int, why: str) -> None:
        with self._stats_lock:
            self._lost += n
        log.error("LOST %d points: %s", n, why)

    def _spool_lines(self, bucket: str, lines: list[str], *, count: bool = True) -> None:
        if not lines:
            return
        try:
            self._spool.append(bucket, lines)
        except (sqlite3.Error, OSError) as exc:
            self._count_lost(len(lines), f"spool {self._spool.path} failed: {exc}")
            return
        if count:
            with self._stats_lock:
                self._spooled += len(lines)

    def _drain_to_spool(self) -> None:
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            self._pending -= self._queued
            self._queued = 0
        for bucket, lines in items:
            self._spool_lines(bucket, lines)
