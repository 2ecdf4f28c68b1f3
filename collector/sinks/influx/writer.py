"""The one writer thread: sends what the spool holds to InfluxDB, deletes what it acknowledged.

Behaviour (docs/storage.md tells the operator's side):

* :meth:`InfluxWriter.submit_many` is *acceptance*: the lines are committed to the
  SQLite spool (one transaction, fsync'ed) before it returns, so data accepted is
  never only in memory and survives ``kill -9`` and a power cut. It never waits on
  the network, only on the disk. If the spool itself fails (disk full, read-only
  file system) the lines are kept in a bounded memory queue instead and sent from
  there, loudly logged, rather than dropped.
* The spool is the queue. Its row ids only grow; rows above the thread's
  *watermark* are the live tail, rows at or below it the *backlog* of an outage.
  The thread sends the live tail when ``batch_max_points`` lines are waiting or
  ``flush_interval_s`` has passed, gzip-compressed, with millisecond precision;
  the stored gzip members are concatenated as they are (RFC 1952, 2.2: a gzip file
  is a series of members), not decompressed and compressed again.
* Retryable failures (connection refused, timeout, 5xx, 429/503) are retried with
  exponential backoff and jitter; a Retry-After header is honoured exactly. When
  the retry budget is spent the batch stays in the spool (the watermark moves over
  it) and the writer enters *outage* mode: live rows are moved to the backlog
  without a send, and one attempt is made per backoff period (the probe) until
  InfluxDB answers again.
* A batch InfluxDB rejects point-wise (type conflict, unparsable line, outside
  retention) is split in halves recursively; only single lines that are still
  rejected are dropped, each logged with InfluxDB's reason and counted.
* Fatal answers (bad token, missing bucket) keep the data in the spool and log the
  error loudly, then probe like an outage, so fixing the token later loses nothing.
* Replay is *live first*: each cycle the thread sends the live tail first and then
  up to ``replay_batches_per_cycle`` backlog batches, oldest first, while fewer than
  a batch of live points is waiting. Current data thus reaches dashboards and the
  Flux alert tasks without delay after an outage, and the backlog drains in the
  gaps in the order it was recorded. A row leaves the spool only after InfluxDB
  acknowledged it, so a crash at any moment re-sends at most the batch in flight;
  a re-sent point has the same series and timestamp and overwrites itself
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
from collector.sinks.influx.spool import Spool, SpoolDepth, SpooledBatch, compress_lines
from collector.sinks.influx.transport import Transport

log = logging.getLogger(__name__)

# Put between two stored members so the last line of one and the first of the next
# stay separate lines once InfluxDB has inflated the concatenation.
_NEWLINE_MEMBER = gzip.compress(b"\n", compresslevel=1, mtime=0)


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """Batching, retry and replay parameters (times in seconds).

    ``queue_max_points`` bounds the memory queue used only while the spool cannot
    be written (disk full); normally everything waits on disk.
    """

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
    """Counters since the writer started, and the current queue/spool depth.

    ``queue_points``: accepted points the thread has not taken yet (they are in the
    spool) plus points held in memory because the spool failed. ``points_spooled``:
    points that had to wait in the spool for InfluxDB (an outage or fatal answer).
    ``spool`` counts everything on disk: the live tail and the backlog.
    """

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

    @classmethod
    def stored(cls, bucket: str, rows: Sequence[SpooledBatch], level: int) -> _Batch:
        payload = _NEWLINE_MEMBER.join(r.payload for r in rows)
        return cls(bucket, payload=payload, n_points=sum(r.n_points for r in rows), level=level)

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


def _by_bucket(rows: Sequence[SpooledBatch]) -> list[tuple[str, list[SpooledBatch]]]:
    """Rows grouped per bucket, buckets in order of their oldest row."""
    groups: dict[str, list[SpooledBatch]] = {}
    for r in rows:
        groups.setdefault(r.bucket, []).append(r)
    return list(groups.items())


class InfluxWriter:
    """Owns the writer thread and sends from the spool it is given."""

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
        self._submit_lock = threading.Lock()  # spool id order == acceptance order
        newest = spool.newest_id()
        # What a previous run left in the spool is backlog: replayed oldest first,
        # behind the live data of this run.
        self._backlog_upto = newest  # writer thread only
        self._accepted_id = newest  # newest row accepted (under _cond)
        self._handled_id = newest  # newest live row the thread dealt with (under _cond)
        self._live_points = 0  # accepted, not yet taken by the thread (under _cond)
        self._memory: deque[tuple[str, list[str]]] = deque()  # spool failed (under _cond)
        self._memory_points = 0  # in _memory or being handled (under _cond)
        self._spool_failing = False
        self._flush_now = False
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
        """Accept lines for ``bucket`` (durable on return); see :meth:`submit_many`."""
        self.submit_many([(bucket, lines)])

    def submit_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Accept ``(bucket, lines)`` pairs in one spool transaction; never raises.

        When this returns the lines are on stable storage (or, if the spool cannot
        be written, in the memory queue). It waits for the disk, never for InfluxDB.
        """
        bmax = self._settings.batch_max_points
        rows: list[tuple[str, list[str]]] = []
        for bucket, lines in items:
            chunk = list(lines)
            rows.extend((bucket, chunk[k:k + bmax]) for k in range(0, len(chunk), bmax))
        if not rows:
            return
        n = sum(len(lines) for _, lines in rows)
        with self._submit_lock:
            if self._closed:
                self._count_lost(n, "submit() after close()")
                return
            try:
                appended = self._spool.append_batches(rows)
            except (sqlite3.Error, OSError) as exc:
                self._hold_in_memory(rows, exc)
                return
            if self._spool_failing:
                self._spool_failing = False
                log.warning("spool %s writable again", self._spool.path)
            with self._cond:
                self._accepted_id = appended.ids[-1]
                self._live_points += n
                if self._live_points >= bmax:
                    self._cond.notify_all()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Have the thread handle everything accepted so far: sent, or waiting in the spool.

        False after ``timeout_s``, or while lines the spool could not take are
        still only in memory.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._accepted_id
            self._flush_now = True
            self._cond.notify_all()
            while self._handled_id < target or self._memory_points > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 60.0) -> None:
        """Send the live tail once more, stop the thread, close the spool.

        What InfluxDB does not take now stays in the spool for the next start.
        """
        with self._cond:
            if self._closed or self._stopping:
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
            with self._cond:
                memory = list(self._memory)
                self._memory.clear()
            for bucket, lines in memory:
                self._park(bucket, lines, stopping=True)
        with self._submit_lock:
            self._closed = True
        self._spool.close()
        self._transport.close()

    def stats(self) -> WriterStats:
        with self._cond:
            queued = self._live_points + self._memory_points
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

    def _hold_in_memory(self, rows: list[tuple[str, list[str]]], exc: Exception) -> None:
        n = sum(len(lines) for _, lines in rows)
        self._note_error(f"spool {self._spool.path} failed: {exc}")
        with self._cond:
            fits = self._memory_points + n <= self._settings.queue_max_points
            if fits:
                self._memory.extend(rows)
                self._memory_points += n
                self._cond.notify_all()
        if not fits:
            self._count_lost(n, f"spool {self._spool.path} failed ({exc}) and the memory "
                                f"queue is full ({self._settings.queue_max_points} points)")
        elif not self._spool_failing:
            self._spool_failing = True
            log.error("SPOOL FAILED (%s: %s): accepted data is held in memory until InfluxDB "
                      "takes it; it is lost if the process stops first", self._spool.path, exc)

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            upto, memory, stopping = self._collect()
            try:
                self._deliver_live(upto)
                self._deliver_memory(memory, stopping)
                if not stopping:
                    self._replay()
            except Exception:
                # A bug must not kill the only writer: log it, keep the data (it is
                # in the spool; the watermark makes it backlog).
                log.exception("influx writer: unexpected error; the data stays in the spool")
                self._backlog_upto = max(self._backlog_upto, upto)
            finally:
                with self._cond:
                    self._handled_id = max(self._handled_id, upto)
                    self._memory_points -= sum(len(lines) for _, lines in memory)
                    self._cond.notify_all()
            self._checkpoint()
            if stopping:
                with self._cond:
                    if self._handled_id >= self._accepted_id and not self._memory:
                        return

    def _checkpoint(self) -> None:
        try:
            self._spool.checkpoint()
        except sqlite3.Error as exc:
            # SQLite's own automatic checkpoint still bounds the WAL
            log.warning("spool %s: WAL checkpoint failed: %s", self._spool.path, exc)

    def _collect(self) -> tuple[int, list[tuple[str, list[str]]], bool]:
        """Wait for a full batch, a flush or the flush interval; take the live tail."""
        s = self._settings
        deadline = time.monotonic() + s.flush_interval_s
        with self._cond:
            while (not self._stopping and not self._flush_now
                   and self._live_points < s.batch_max_points):
                if self._replay_due():
                    break  # don't idle while a backlog could drain
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._flush_now = False
            upto = self._accepted_id
            self._live_points = 0
            memory = list(self._memory)
            self._memory.clear()
            stopping = self._stopping
        return upto, memory, stopping

    def _replay_due(self) -> bool:
        oldest = self._spool.oldest_id()
        if oldest is None or oldest > self._backlog_upto:
            return False
        return self._outage_until is None or self._clock.monotonic() >= self._outage_until

    def _in_outage_wait(self) -> bool:
        return self._outage_until is not None and self._clock.monotonic() < self._outage_until

    def _attempts(self) -> int:
        # While InfluxDB is known to be away one attempt is the probe; retrying it
        # would only hold up the next live batch.
        return 1 if self._outage_until is not None else self._settings.retry_attempts

    def _deliver_live(self, upto: int) -> None:
        """Send the live rows up to id ``upto``, oldest first, a batch per bucket at a time."""
        with self._cond:
            pos = self._handled_id
        while pos < upto:
            if self._in_outage_wait():
                self._to_backlog(pos, upto)
                return
            rows = self._spool.read(pos, upto, self._settings.batch_max_points)
            if not rows:
                return
            for bucket, group in _by_bucket(rows):
                if self._in_outage_wait():  # an earlier group just failed
                    self._to_backlog_rows(group)
                    continue
                self._send_live(bucket, group)
            pos = rows[-1].id
            with self._cond:
                self._handled_id = max(self._handled_id, pos)
                self._cond.notify_all()

    def _send_live(self, bucket: str, group: list[SpooledBatch]) -> None:
        batch = _Batch.stored(bucket, group, self._settings.gzip_level)
        result = self._send(batch, self._attempts())
        ids = [r.id for r in group]
        if result is None:
            self._spool.delete_many(ids)
            self._leave_outage()
            return
        if result.lines is not None:
            # Part of it was delivered while splitting: keep only the rest.
            self._spool.replace(ids, bucket, result.lines)
            self._backlog_upto = max(self._backlog_upto, max(ids))
            with self._stats_lock:
                self._spooled += len(result.lines)
        else:
            self._to_backlog_rows(group)
        self._enter_outage(result.wait_s)

    def _to_backlog(self, after_id: int, upto_id: int) -> None:
        if upto_id <= self._backlog_upto:
            return
        waiting = self._spool.count(max(after_id, self._backlog_upto), upto_id)
        self._backlog_upto = upto_id
        with self._stats_lock:
            self._spooled += waiting.points

    def _to_backlog_rows(self, group: Sequence[SpooledBatch]) -> None:
        newly = [r for r in group if r.id > self._backlog_upto]
        self._backlog_upto = max(self._backlog_upto, max(r.id for r in group))
        with self._stats_lock:
            self._spooled += sum(r.n_points for r in newly)

    def _deliver_memory(self, memory: list[tuple[str, list[str]]], stopping: bool) -> None:
        """Lines the spool could not take: send them, else try the spool again."""
        for bucket, lines in memory:
            remaining = lines
            if not self._in_outage_wait():
                batch = _Batch(bucket, lines=lines, level=self._settings.gzip_level)
                result = self._send(batch, self._attempts())
                if result is None:
                    self._leave_outage()
                    continue
                remaining = result.lines if result.lines is not None else lines
                self._enter_outage(result.wait_s)
            self._park(bucket, remaining, stopping)

    def _park(self, bucket: str, lines: list[str], stopping: bool) -> None:
        try:
            appended = self._spool.append_batches([(bucket, lines)])
        except (sqlite3.Error, OSError) as exc:
            if stopping:
                self._count_lost(len(lines), f"stopping, InfluxDB unavailable and spool "
                                             f"{self._spool.path} failed: {exc}")
                return
            with self._cond:
                self._memory.append((bucket, lines))
                self._memory_points += len(lines)
            return
        self._backlog_upto = max(self._backlog_upto, appended.ids[-1])
        with self._stats_lock:
            self._spooled += len(lines)

    def _replay(self) -> None:
        s = self._settings
        for _ in range(s.replay_batches_per_cycle):
            with self._cond:
                if self._stopping or self._live_points >= s.batch_max_points:
                    return  # live data first
            if self._in_outage_wait():
                return
            rows = self._spool.read(0, self._backlog_upto, s.batch_max_points)
            if not rows:
                return
            bucket, group = _by_bucket(rows)[0]  # the bucket of the oldest row
            batch = _Batch.stored(bucket, group, s.gzip_level)
            result = self._send(batch, self._attempts())
            ids = [r.id for r in group]
            if result is None:
                with self._stats_lock:  # counted first: stats() never sees it in neither
                    self._replayed += batch.n_points
                self._spool.delete_many(ids)
                self._leave_outage()
                continue
            if result.lines is not None:
                self._spool.replace(ids, bucket, result.lines)
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
                "InfluxDB unavailable (%s); data waits in the spool %s, next attempt in %.1f s",
                self._last_error, self._spool.path, wait,
            )
        self._outage_until = self._clock.monotonic() + wait

    def _leave_outage(self) -> None:
        if self._outage_until is not None:
            log.warning(
                "InfluxDB reachable again; replaying %d spooled points (live data first)",
                self._spool.count(0, self._backlog_upto).points,
            )
        self._outage_until = None
        self._outage_count = 0

    def _note_error(self, exc: InfluxError | str) -> None:
        with self._stats_lock:
            self._errors += 1
            self._last_error = str(exc)
            self._last_error_ns = self._clock.now_ns()

    def _count_lost(self, n: int, why: str) -> None:
        with self._stats_lock:
            self._lost += n
        log.error("LOST %d points: %s", n, why)
