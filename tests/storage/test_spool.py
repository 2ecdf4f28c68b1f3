"""The SQLite spool: FIFO, durable across reopening, bounded by dropping the oldest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collector.sinks.influx.spool import Spool, SpoolLockedError, read_depth


def _lines(start: int, n: int) -> list[str]:
    return [f"electrical,circuit=c1 current_rms_a={k}.0 {1_700_000_000_000 + k}"
            for k in range(start, start + n)]


def test_fifo_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_bytes=10_000_000)
    spool.append("raw", _lines(0, 3))
    spool.append("events", _lines(3, 2))
    spool.close()

    again = Spool(path, max_bytes=10_000_000)
    depth = again.depth()
    assert (depth.batches, depth.points) == (2, 5)
    first, second = again.peek(5)
    assert (first.bucket, first.lines()) == ("raw", _lines(0, 3))
    assert (second.bucket, second.lines()) == ("events", _lines(3, 2))
    again.delete(first.id)
    assert again.depth().points == 2
    assert again.peek(1)[0].id == second.id
    again.close()


def test_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_bytes=1_000_000)
    spool.append("raw", _lines(0, 1))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    spool.close()


def test_full_spool_drops_oldest_and_counts(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe.sqlite", max_bytes=10**9)
    probe.append("raw", _lines(0, 100))
    one_batch = probe.depth().bytes
    probe.close()

    spool = Spool(tmp_path / "s2.sqlite", max_bytes=int(one_batch * 2.5))
    for k in range(5):
        spool.append("raw", _lines(100 * k, 100))
    depth = spool.depth()
    assert depth.bytes <= int(one_batch * 2.5)
    assert depth.batches == 2
    assert spool.evicted_points == 300
    kept = [b.lines()[0] for b in spool.peek(10)]
    assert kept == [_lines(300, 1)[0], _lines(400, 1)[0]]  # the newest survive
    spool.close()


def test_one_process_per_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_bytes=1000)
    with pytest.raises(SpoolLockedError, match="in use"):
        Spool(path, max_bytes=1000)
    spool.close()
    Spool(path, max_bytes=1000).close()


def test_read_depth_without_taking_over(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    assert read_depth(path) is None
    spool = Spool(path, max_bytes=10**6)
    spool.append("raw", _lines(0, 7))
    depth = read_depth(path)
    assert depth is not None
    assert depth.points == 7
    spool.close()


def test_bad_bound() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        Spool("/nonexistent/x", max_bytes=0)
