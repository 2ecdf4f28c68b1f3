"""The on-disk spool: batches InfluxDB could not take, kept until it can.

SQLite in WAL mode with ``synchronous=FULL``: a batch handed to :meth:`Spool.append`
is on stable storage when the call returns, so it survives ``kill -9`` *and* a power
cut. NORMAL would survive a process crash but may lose the last commits on power
loss; an InfluxDB outage often coincides with a site power event, and spool commits
only happen during outages (one per batch, about one a second), so the fsync per
commit is cheap insurance.

The spool is bounded by the bytes of its payloads (gzip-compressed line protocol).
When a new batch does not fit, the *oldest* batches are evicted, logged loudly and
counted: during a long outage the most recent data is the most valuable. Batches
come out oldest first (FIFO by insertion). One process owns a spool at a time (an
exclusive ``flock`` on ``<path>.lock``); :func:`read_depth` reads a spool's size
without taking it over, for ``gridguard status``.
"""

from __future__ import annotations

import fcntl
import gzip
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    n_points INTEGER NOT NULL,
    first_ms INTEGER,
    last_ms INTEGER,
    payload BLOB NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """One stored batch: gzip-compressed line protocol for ``bucket``."""

    id: int
    bucket: str
    n_points: int
    payload: bytes

    def lines(self) -> list[str]:
        return gzip.decompress(self.payload).decode("utf-8").split("\n")


@dataclass(frozen=True, slots=True)
class SpoolDepth:
    batches: int
    points: int
    bytes: int


class SpoolLockedError(RuntimeError):
    """Another process owns the spool."""


def compress_lines(lines: Sequence[str], level: int = 1) -> bytes:
    """Line protocol joined with newlines and gzip-compressed (mtime 0: reproducible)."""
    return gzip.compress("\n".join(lines).encode("utf-8"), compresslevel=level, mtime=0)


def _timestamp_of(line: str) -> int | None:
    tail = line.rsplit(" ", 1)[-1]
    return int(tail) if tail.lstrip("-").isdigit() else None


class Spool:
    """A bounded FIFO of batches in one SQLite file; thread-safe within one process."""

    def __init__(self, path: Path | str, max_bytes: int, *, gzip_level: int = 1) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes: must be > 0, got {max_bytes}")
        self._path = Path(path)
        self._max_bytes = int(max_bytes)
        self._gzip_level = gzip_level
        self._lock = threading.Lock()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise SpoolLockedError(
                f"spool {self._path} is in use by another process (lock {self._path}.lock)"
            ) from exc
        self._db = sqlite3.connect(
            str(self._path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        # auto_vacuum only takes effect before the first table exists; it lets the
        # file give space back once a long outage has been replayed.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_points), 0), COALESCE(SUM(LENGTH(payload)), 0) "
            "FROM batches"
        ).fetchone()
        self._batches, self._points, self._bytes = int(row[0]), int(row[1]), int(row[2])
        self._evicted_points = 0

    @property
    def path(self) -> Path:
        return self._path

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def evicted_points(self) -> int:
        """Points dropped (oldest first) because the spool was full, since opening."""
        return self._evicted_points

    def depth(self) -> SpoolDepth:
        with self._lock:
            return SpoolDepth(self._batches, self._points, self._bytes)

    def append(self, bucket: str, lines: Sequence[str]) -> int:
        """Store one batch durably; returns the number of old points evicted to make room."""
        if not lines:
            return 0
        return self.append_payload(
            bucket, compress_lines(lines, self._gzip_level), len(lines),
            _timestamp_of(lines[0]), _timestamp_of(lines[-1]),
        )

    def append_payload(
        self,
        bucket: str,
        payload: bytes,
        n_points: int,
        first_ms: int | None = None,
        last_ms: int | None = None,
    ) -> int:
        """Store an already compressed batch; returns the number of points evicted."""
        size = len(payload)
        with self._lock:
            evicted = self._evict_for(size)
            self._db.execute(
                "INSERT INTO batches (bucket, n_points, first_ms, last_ms, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                (bucket, n_points, first_ms, last_ms, payload),
            )
            self._batches += 1
            self._points += n_points
            self._bytes += size
        return evicted

    def _evict_for(self, size: int) -> int:
        # Caller holds the lock. A single batch larger than the whole bound is
        # still stored (after emptying the spool): refusing it would lose the
        # newest data, which is what the bound exists to protect.
        evicted_points = 0
        evicted_batches = 0
        first_ms: int | None = None
        last_ms: int | None = None
        while self._batches and self._bytes + size > self._max_bytes:
            row = self._db.execute(
                "SELECT id, n_points, LENGTH(payload), first_ms, last_ms "
                "FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM batches WHERE id = ?", (row[0],))
            self._batches -= 1
            self._points -= int(row[1])
            self._bytes -= int(row[2])
            evicted_points += int(row[1])
            evicted_batches += 1
            first_ms = row[3] if first_ms is None else first_ms
            last_ms = row[4]
        if evicted_points:
            self._evicted_points += evicted_points
            log.error(
                "SPOOL FULL (%d bytes max, %s): dropped the %d OLDEST points "
                "(%d batches, times %s..%s ms) to keep the newest",
                self._max_bytes, self._path, evicted_points, evicted_batches,
                first_ms, last_ms,
            )
        return evicted_points

    def peek(self, limit: int = 1) -> list[SpooledBatch]:
        """The oldest ``limit`` batches, oldest first (they stay until :meth:`delete`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, bucket, n_points, payload FROM batches ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledBatch(int(r[0]), str(r[1]), int(r[2]), bytes(r[3])) for r in rows]

    def delete(self, batch_id: int) -> None:
        """Remove a batch once InfluxDB has it (or it was split and handled)."""
        with self._lock:
            row = self._db.execute(
                "SELECT n_points, LENGTH(payload) FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()
            if row is None:
                return  # evicted meanwhile
            self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self._batches -= 1
            self._points -= int(row[0])
            self._bytes -= int(row[1])
            if self._batches == 0:
                self._db.execute("PRAGMA incremental_vacuum")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)


def read_depth(path: Path | str) -> SpoolDepth | None:
    """Size of a spool file without opening it for writing; None when there is none."""
    p = Path(path)
    if not p.exists():
        return None
    db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=5.0)
    try:
        row = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_points), 0), COALESCE(SUM(LENGTH(payload)), 0) "
            "FROM batches"
        ).fetchone()
    except sqlite3.OperationalError:
        return SpoolDepth(0, 0, 0)  # created but no table yet
    finally:
        db.close()
    return SpoolDepth(int(row[0]), int(row[1]), int(row[2]))
