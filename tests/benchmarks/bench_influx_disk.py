"""Benchmark: bytes on disk per circuit per day, at the default write interval.

Writes one simulated day of 4 circuits at the default raw interval (150 cycles, ~3 s,
with harmonics, plus the 10-min and 2-h records), and one day of 1-minute rollup
records, into a real influxd told to compact quickly; then measures the TSM files.
Run: ``.venv/bin/python tests/benchmarks/bench_influx_disk.py``. Prints figures only.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from collector.model import Metrics  # noqa: E402
from collector.sinks.influx.sink import InfluxSink, InfluxSinkSettings  # noqa: E402
from collector.sinks.influx.writer import WriterSettings  # noqa: E402
from tests.benchmarks.bench_influx_write import Server, local_influxd, record  # noqa: E402

NS = 1_000_000_000
DAY_S = 86_400
CIRCUITS = 4
T0_NS = 1_700_006_400 * NS  # a UTC midnight (2023-11-15)


def _bucket(server: Server, name: str) -> str:
    org_id = requests.get(
        f"{server.url}/api/v2/orgs",
        params={"org": server.org},
        headers={"Authorization": f"Token {server.token}"},
        timeout=30,
    ).json()["orgs"][0]["id"]
    resp = requests.post(
        f"{server.url}/api/v2/buckets",
        timeout=30,
        headers={"Authorization": f"Token {server.token}"},
        json={"orgID": org_id, "name": name, "retentionRules": []},
    )
    return str(resp.json()["id"])


def _write_day(server: Server, bucket: str, period_s: int, interval: str, harmonics: bool) -> int:
    spool = Path(tempfile.mkdtemp()) / "spool.sqlite"
    sink = InfluxSink(
        InfluxSinkSettings(
            url=server.url,
            org=server.org,
            token=server.token,
            site="bench",
            spool_path=spool,
            bucket=bucket,
            events_bucket=bucket,
            intervals=None,
            health_interval_s=10**9,
            writer=WriterSettings(queue_max_points=1_000_000),
        )
    )
    steps = DAY_S // period_s
    for k in range(steps):
        batch = []
        for c in range(CIRCUITS):
            m = record(k, c, T0_NS, period_s * NS, harmonics)
            batch.append(Metrics(m.time_ns, interval, m.channel, m.phase, m.fields))
            if interval == "150c" and k % (600 // period_s) == 0:  # the 10-min records
                batch.append(Metrics(m.time_ns, "10min", m.channel, m.phase, m.fields))
            if interval == "150c" and k % (7200 // period_s) == 0:  # and the 2-h ones
                batch.append(Metrics(m.time_ns, "2h", m.channel, m.phase, m.fields))
        sink.publish(batch, [])
    sink.flush(900)
    written = sink.health().writer.points_written
    sink.close()
    return written


def _tsm_bytes(server: Server, bucket_id: str) -> tuple[int, int]:
    root = server.data_dir / "engine" / "data" / bucket_id
    tsm = sum(p.stat().st_size for p in root.rglob("*.tsm"))
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return tsm, total


def _settle(server: Server, bucket_id: str) -> tuple[int, int]:
    """Wait until the cache is snapshotted and compactions stop changing the files."""
    last = (-1, -1)
    stable = 0
    for _ in range(240):
        time.sleep(1)
        now = _tsm_bytes(server, bucket_id)
        stable = stable + 1 if now == last and now[0] > 0 else 0
        if stable >= 5:
            return now
        last = now
    return last


def main() -> int:
    # Snapshot the cache after 2 s without writes and fully compact after 5 s, so
    # the figures are those of settled TSM files, as after a few hours in production.
    with local_influxd(
        "--storage-cache-snapshot-write-cold-duration",
        "2s",
        "--storage-compact-full-write-cold-duration",
        "5s",
    ) as server:
        raw_id = _bucket(server, "raw150c")
        m1_id = _bucket(server, "rollup1m")
        t = time.perf_counter()
        n_raw = _write_day(server, "raw150c", 3, "150c", harmonics=True)
        n_m1 = _write_day(server, "rollup1m", 60, "150c_1m", harmonics=True)
        print(
            f"wrote {n_raw} raw lines and {n_m1} 1-minute lines in {time.perf_counter() - t:.0f} s"
        )
        raw_tsm, raw_total = _settle(server, raw_id)
        m1_tsm, m1_total = _settle(server, m1_id)
    raw_day = raw_tsm / CIRCUITS
    m1_day = m1_tsm / CIRCUITS
    h1_day = m1_day / 60  # estimate: same values per record, 60x fewer records
    print(
        f"raw (150c ~3 s + 10min + 2h, 125 fields incl. harmonics): "
        f"{raw_day / 1e6:.2f} MB per circuit per day in TSM "
        f"({raw_total / CIRCUITS / 1e6:.2f} MB with index/series files)"
    )
    print(
        f"rollup_1m: {m1_day / 1e6:.3f} MB per circuit per day "
        f"({m1_total / CIRCUITS / 1e6:.3f} MB with index)"
    )
    print(f"rollup_1h (estimated as 1/60 of rollup_1m): {h1_day / 1e3:.1f} kB per circuit/day")
    total = 7 * raw_day + 90 * m1_day + 1825 * h1_day
    print(
        f"steady state per circuit at default retention (raw 7 d, 1m 90 d, 1h 5 y): "
        f"{total / 1e6:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
