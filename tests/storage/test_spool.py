"""The SQLite spool: FIFO, durable across reopening, bounded by dropping the oldest."""

from __future__ import annotations

import random
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


def test_batches_of_one_call_are_stored_all_or_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=10**6)
    first = spool.append_batches([("raw", _lines(0, 3)), ("events", _lines(3, 2))])
    assert first.ids[1] == first.ids[0] + 1
    with pytest.raises(sqlite3.IntegrityError):  # bucket NOT NULL: the 2nd row fails
        spool.append_batches([("raw", _lines(5, 4)), (None, _lines(9, 1))])  # type: ignore[list-item]
    depth = spool.depth()
    assert (depth.batches, depth.points) == (2, 5)  # the 1st row of the failed call is gone too
    assert [b.id for b in spool.peek(10)] == list(first.ids)
    spool.close()
    again = Spool(tmp_path / "spool.sqlite", max_bytes=10**6)
    assert (again.depth().batches, again.depth().points) == (2, 5)
    again.close()


def test_ids_only_grow_even_when_emptied_and_reopened(tmp_path: Path) -> None:
    # The writer tells live rows from backlog by id: an id must never come back.
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_bytes=10**6)
    ids = spool.append_batches([("raw", _lines(0, 2)), ("raw", _lines(2, 2))]).ids
    assert spool.newest_id() == ids[-1]
    spool.delete_many(ids)
    assert spool.oldest_id() is None
    assert spool.newest_id() == 0
    spool.close()
    again = Spool(path, max_bytes=10**6)
    (new_id,) = again.append_batches([("raw", _lines(4, 1))]).ids
    assert new_id > ids[-1]
    again.close()


def test_read_window_and_point_limit(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=10**6)
    a, b, c = spool.append_batches(
        [("raw", _lines(0, 3)), ("events", _lines(3, 4)), ("raw", _lines(7, 5))]).ids
    assert [r.id for r in spool.read(0, c, 7)] == [a, b]  # 3 + 4 <= 7 < 3 + 4 + 5
    assert [r.id for r in spool.read(0, c, 1)] == [a]  # one row even if it is bigger
    assert [r.id for r in spool.read(a, b, 100)] == [b]  # after < id <= upto
    assert spool.read(c, c + 10, 100) == []
    assert spool.read(0, c, 100)[1].lines() == _lines(3, 4)
    assert (spool.count(a, c).batches, spool.count(a, c).points) == (2, 9)
    spool.close()


def test_replace_keeps_the_oldest_place(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=10**6)
    a, b, c = spool.append_batches(
        [("raw", _lines(0, 3)), ("raw", _lines(3, 3)), ("raw", _lines(6, 3))]).ids
    spool.replace([a, b], "raw", _lines(4, 2))  # 4 of the 6 lines were delivered
    first, second = spool.peek(10)
    assert (first.id, first.lines()) == (a, _lines(4, 2))
    assert (second.id, second.lines()) == (c, _lines(6, 3))
    depth = spool.depth()
    assert (depth.batches, depth.points) == (2, 5)
    assert depth.bytes == len(first.payload) + len(second.payload)
    spool.replace([a], "raw", [])  # nothing left: plain delete
    assert spool.depth().points == 3
    spool.close()


def test_checkpoint_moves_the_wal_into_the_file_off_the_append_path(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_bytes=10**9)
    rng = random.Random(7)
    # hex of random bytes compresses to ~55 %: ~3.3 MB of payload, past the 2 MiB
    # checkpoint threshold
    for k in range(60):
        spool.append("raw", [f"m,c=x v=\"{rng.randbytes(1000).hex()}\" {k * 100 + j}"
                             for j in range(50)])
    assert path.stat().st_size < 1_000_000  # appends only reached the WAL
    assert spool.checkpoint()
    assert path.stat().st_size > 3_000_000  # now in the database file
    assert not spool.checkpoint()  # nothing new appended since
    assert spool.depth().points == 3000
    spool.close()


def test_a_single_batch_is_committed_on_return(tmp_path: Path) -> None:
    # The usual publish is one row, stored without BEGIN/COMMIT: it must still be
    # committed when append returns (another connection sees only committed rows).
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_bytes=10**6)
    spool.append("raw", _lines(0, 12))
    depth = read_depth(path)
    assert depth is not None
    assert (depth.batches, depth.points) == (1, 12)
    with pytest.raises(sqlite3.IntegrityError):  # bucket NOT NULL
        spool.append_batches([(None, _lines(12, 3))])  # type: ignore[list-item]
    assert (spool.depth().batches, spool.depth().points) == (1, 12)  # nothing of it counted
    again = read_depth(path)
    assert again is not None
    assert again.points == 12
    spool.close()
