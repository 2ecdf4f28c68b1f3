"""The on-disk spool: the write-ahead log of everything the InfluxDB sink has accepted.

Every batch handed to the writer is committed here *before* ``submit`` returns, and
leaves only once InfluxDB has acknowledged it; while InfluxDB is away the batches
simply stay. So the spool holds, at any moment, exactly the data that is accepted
but not yet stored, and a ``kill -9`` or a power cut loses none of it.

SQLite in WAL mode with ``synchronous=FULL``: the WAL is fsync'ed at every commit, so
a committed batch survives a power cut, not only a process crash (``NORMAL`` would
survive ``kill -9`` but may lose the last commits on power loss, and an InfluxDB
outage often coincides with a site power event). The collector commits about once
per block of signal (~1 s); the fsync is the main cost of ``publish`` (measured in
docs/performance.md).

The spool is bounded by the bytes of its payloads (gzip-compressed line protocol).
When a new batch does not fit, the *oldest* batches are evicted, logged loudly and
counted: during a long outage the most recent data is the most valuable. Row ids
only grow (``AUTOINCREMENT`` never reuses one), which is what lets the writer tell
the live tail (ids above its watermark) from the backlog of an outage. One process
owns a spool at a time (an exclusive ``flock`` on ``<path>.lock``); :func:`read_depth`
reads a spool's size without taking it over, for ``gridguard status``.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
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

# Give disk space back only when this many pages are free: in normal operation the
# spool empties after every write, and shrinking and regrowing the file each time
# would cost writes for nothing.
_VACUUM_FREE_PAGES = 256

# WAL checkpoints (copying committed pages into the database file, with an fsync)
# are run by the writer thread on a connection of its own (:meth:`Spool.checkpoint`)
# once this many bytes were appended, so they do not land in a ``publish`` call.
# SQLite's automatic checkpoint stays as the safety net, at a larger WAL.
_CHECKPOINT_BYTES = 2 * 1024 * 1024
_AUTOCHECKPOINT_PAGES = 8192  # 32 MiB at 4 KiB pages
_WAL_KEEP_BYTES = 8 * 1024 * 1024  # the WAL file is truncated to this after a checkpoint

# Ids per DELETE statement (SQLite's default limit of bound variables is 999+).
_IDS_PER_STATEMENT = 500


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


@dataclass(frozen=True, slots=True)
class Appended:
    """Result of :meth:`Spool.append_batches`: the new rows' ids, in order."""

    ids: tuple[int, ...]
    evicted_points: int


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
        self._db.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={_WAL_KEEP_BYTES}")
        self._db.execute(_SCHEMA)
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_points), 0), COALESCE(SUM(LENGTH(payload)), 0) "
            "FROM batches"
        ).fetchone()
        self._batches, self._points, self._bytes = int(row[0]), int(row[1]), int(row[2])
        self._evicted_points = 0
        self._appended_bytes = 0  # since the last checkpoint (under _lock)
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_db: sqlite3.Connection | None = None

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

    # -- writing ---------------------------------------------------------------

    def append(self, bucket: str, lines: Sequence[str]) -> int:
        """Store one batch durably; returns the number of old points evicted to make room."""
        if not lines:
            return 0
        return self.append_batches([(bucket, lines)]).evicted_points

    def append_batches(self, items: Sequence[tuple[str, Sequence[str]]]) -> Appended:
        """Store several batches in one transaction (one fsync); durable on return.

        Empty batches are skipped. Raises ``sqlite3.Error`` or ``OSError`` (disk full,
        read-only file system) with nothing stored.
        """
        rows = [
            (bucket, compress_lines(lines, self._gzip_level), len(lines),
             _timestamp_of(lines[0]), _timestamp_of(lines[-1]))
            for bucket, lines in items if lines
        ]
        if not rows:
            return Appended((), 0)
        ids: list[int] = []
        evicted = 0
        with self._lock:
            if len(rows) == 1 and self._bytes + len(rows[0][1]) <= self._max_bytes:
                # The usual call: one statement, which SQLite commits (and syncs) as a
                # transaction of its own; BEGIN and COMMIT would only add two round trips.
                ids.append(self._insert(None, *rows[0]))
            else:
                with self._transaction():
                    for bucket, payload, n_points, first_ms, last_ms in rows:
                        evicted += self._evict_for(len(payload))
                        ids.append(self._insert(None, bucket, payload, n_points, first_ms,
                                                last_ms))
        return Appended(tuple(ids), evicted)

    def append_payload(
        self,
        bucket: str,
        payload: bytes,
        n_points: int,
        first_ms: int | None = None,
        last_ms: int | None = None,
    ) -> int:
        """Store an already compressed batch; returns the number of points evicted."""
        with self._lock, self._transaction():
            evicted = self._evict_for(len(payload))
            self._insert(None, bucket, payload, n_points, first_ms, last_ms)
        return evicted

    def replace(self, batch_ids: Sequence[int], bucket: str, lines: Sequence[str]) -> None:
        """Swap batches for the ``lines`` of them still to send, under the oldest id.

        Keeping the oldest id keeps the remainder's place in the FIFO (the writer's
        live/backlog watermark relies on ids, see writer.py). With no lines left
        this is :meth:`delete_many`.
        """
        if not batch_ids:
            return
        if not lines:
            self.delete_many(batch_ids)
            return
        payload = compress_lines(lines, self._gzip_level)
        with self._lock, self._transaction():
            self._delete_ids(batch_ids)
            self._insert(min(batch_ids), bucket, payload, len(lines),
                         _timestamp_of(lines[0]), _timestamp_of(lines[-1]))

    def delete(self, batch_id: int) -> None:
        """Remove a batch once InfluxDB has it (or it was split and handled)."""
        self.delete_many([batch_id])

    def delete_many(self, batch_ids: Sequence[int]) -> int:
        """Remove batches InfluxDB acknowledged, in one transaction; returns their points.

        Ids that are gone already (evicted meanwhile) are ignored.
        """
        if not batch_ids:
            return 0
        with self._lock:
            # No fsync for a delete: if a power cut loses it, the batch is sent again
            # and InfluxDB overwrites the points with themselves. The next FULL commit
            # (an append) syncs the WAL, deletes included, in order.
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._transaction():
                    points = self._delete_ids(batch_ids)
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
            if self._batches == 0:
                self._maybe_vacuum()
        return points

    # -- reading -----------------------------------------------------------------

    def peek(self, limit: int = 1) -> list[SpooledBatch]:
        """The oldest ``limit`` batches, oldest first (they stay until :meth:`delete`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, bucket, n_points, payload FROM batches ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledBatch(int(r[0]), str(r[1]), int(r[2]), bytes(r[3])) for r in rows]

    def read(self, after_id: int, upto_id: int, max_points: int) -> list[SpooledBatch]:
        """Batches with ``after_id < id <= upto_id``, oldest first, up to ``max_points``.

        At least one batch is returned when there is one, even if it alone holds
        more than ``max_points`` points.
        """
        out: list[SpooledBatch] = []
        total = 0
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, bucket, n_points, payload FROM batches "
                "WHERE id > ? AND id <= ? ORDER BY id",
                (after_id, upto_id),
            )
            try:
                for r in cursor:
                    n = int(r[2])
                    if out and total + n > max_points:
                        break
                    out.append(SpooledBatch(int(r[0]), str(r[1]), n, bytes(r[3])))
                    total += n
            finally:
                cursor.close()
        return out

    def count(self, after_id: int, upto_id: int) -> SpoolDepth:
        """Batches, points and bytes with ``after_id < id <= upto_id``."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(n_points), 0), COALESCE(SUM(LENGTH(payload)), 0) "
                "FROM batches WHERE id > ? AND id <= ?",
                (after_id, upto_id),
            ).fetchone()
        return SpoolDepth(int(row[0]), int(row[1]), int(row[2]))

    def newest_id(self) -> int:
        """Id of the newest stored batch; 0 when the spool is empty."""
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM batches").fetchone()
        return int(row[0])

    def oldest_id(self) -> int | None:
        """Id of the oldest stored batch; None when the spool is empty."""
        with self._lock:
            if self._batches == 0:
                return None
            row = self._db.execute("SELECT MIN(id) FROM batches").fetchone()
        return None if row[0] is None else int(row[0])

    def checkpoint(self, force: bool = False) -> bool:
        """Copy the WAL into the database file if enough was appended; True if it ran.

        Runs on its own connection and does not take the spool's lock: a PASSIVE
        checkpoint works alongside a writer, so ``append`` never waits for it.
        """
        with self._lock:
            due = force or self._appended_bytes >= _CHECKPOINT_BYTES
            if due:
                self._appended_bytes = 0
        if not due:
            return False
        with self._checkpoint_lock:
            if self._checkpoint_db is None:
                self._checkpoint_db = sqlite3.connect(
                    str(self._path), check_same_thread=False, isolation_level=None,
                    timeout=30.0,
                )
            self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return True

    def close(self) -> None:
        with self._checkpoint_lock:
            if self._checkpoint_db is not None:
                self._checkpoint_db.close()
                self._checkpoint_db = None
        with self._lock:
            self._db.close()
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)

    # -- internals (the caller holds self._lock) -----------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        saved = (self._batches, self._points, self._bytes, self._evicted_points)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            # nothing of the transaction is stored: the counters must say so too
            self._batches, self._points, self._bytes, self._evicted_points = saved
            raise

    def _insert(self, batch_id: int | None, bucket: str, payload: bytes, n_points: int,
                first_ms: int | None, last_ms: int | None) -> int:
        cursor = self._db.execute(
            "INSERT INTO batches (id, bucket, n_points, first_ms, last_ms, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (batch_id, bucket, n_points, first_ms, last_ms, payload),
        )
        self._batches += 1
        self._points += n_points
        self._bytes += len(payload)
        self._appended_bytes += len(payload)
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def _delete_ids(self, batch_ids: Sequence[int]) -> int:
        points = 0
        ids = list(batch_ids)
        for k in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = ids[k:k + _IDS_PER_STATEMENT]
            marks = ",".join("?" * len(chunk))
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(n_points), 0), COALESCE(SUM(LENGTH(payload)), 0) "
                f"FROM batches WHERE id IN ({marks})",
                chunk,
            ).fetchone()
            self._db.execute(f"DELETE FROM batches WHERE id IN ({marks})", chunk)
            self._batches -= int(row[0])
            self._points -= int(row[1])
            self._bytes -= int(row[2])
            points += int(row[1])
        return points

    def _maybe_vacuum(self) -> None:
        free = self._db.execute("PRAGMA freelist_count").fetchone()
        if free is not None and int(free[0]) >= _VACUUM_FREE_PAGES:
            self._db.execute("PRAGMA incremental_vacuum")

    def _evict_for(self, size: int) -> int:
        # A single batch larger than the whole bound is still stored (after emptying
        # the spool): refusing it would lose the newest data, which is what the
        # bound exists to protect.
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
