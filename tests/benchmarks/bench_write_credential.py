"""Benchmark: what the collector's v1 credential (``/write``, HTTP Basic) costs against a
v2 token (``/api/v2/write``), per batch, on a real influxd.

Run: ``.venv/bin/python -m tests.benchmarks.bench_write_credential [--batches 200]``
(needs influxd 2.7: ``export INFLUXD=$(influx/dev/get-influxd.sh | tail -n 1)``).
Prints wall time, the client's CPU time and influxd's CPU time (``/proc/<pid>/stat``)
per batch for each path, and the first v1 request after an influxd start (the one
that checks the password with bcrypt; later ones hit influxd's in-memory cache).
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.setup import collector_permissions, ensure_collector_credential
from collector.sinks.influx.transport import HttpTransport
from tests.influxd_fixture import InfluxServer, find_influxd

LINES_PER_BATCH = 1000
ROUNDS = 4
T0_MS = 1_700_000_000_000


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _batches(n: int, offset: int) -> list[bytes]:
    out = []
    for b in range(n):
        t0 = T0_MS + (offset + b) * LINES_PER_BATCH
        text = "\n".join(
            f"electrical,circuit=c{k % 12},interval=150c,phase=A,site=bench "
            f"voltage_rms_v={230 + k % 7}.25,current_rms_a={k % 13}.5 {t0 + k}"
            for k in range(LINES_PER_BATCH))
        out.append(gzip.compress(text.encode(), compresslevel=1))
    return out


def _run(server: InfluxServer, token: str, payloads: list[bytes]) -> tuple[float, float, float]:
    transport = HttpTransport(server.url, server.org, token)
    pid = server.pid
    assert pid is not None
    wall, cpu, srv = time.perf_counter(), time.process_time(), _cpu_s(pid)
    for p in payloads:
        transport.write(server.bucket, p)
    n = len(payloads)
    result = ((time.perf_counter() - wall) / n, (time.process_time() - cpu) / n,
              (_cpu_s(pid) - srv) / n)
    transport.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=200)
    args = ap.parse_args()
    binary, reason = find_influxd()
    if binary is None:
        sys.exit(f"no influxd 2.7: {reason}")
    data = Path(tempfile.mkdtemp(prefix="gg-bench-cred-"))
    server = InfluxServer(binary, data)
    try:
        server.start()
        api = InfluxApi(server.url, server.token, server.org)
        perms = collector_permissions({"raw": server.bucket_id, "events": server.bucket_id},
                                      server.org_id)
        credential, _ = ensure_collector_credential(api, "bench-collector", perms, None)
        api.close()
        assert credential is not None
        server.restart()  # empty password cache: the first v1 request checks bcrypt
        first = _run(server, credential, _batches(1, 10**6))
        _run(server, server.token, _batches(20, 2 * 10**6))  # warm-up of both paths
        _run(server, credential, _batches(20, 3 * 10**6))
        print(f"{args.batches} batches of {LINES_PER_BATCH} lines (gzip level 1) per path, "
              f"in {ROUNDS} alternating rounds; {os.cpu_count()} CPUs, other load not controlled")
        paths = {"v2 token /api/v2/write": server.token, "v1 credential /write": credential}
        sums = {name: [0.0, 0.0, 0.0] for name in paths}
        per_round = max(1, args.batches // ROUNDS)
        for r in range(ROUNDS):
            order = list(paths) if r % 2 == 0 else list(reversed(paths))
            for name in order:
                offset = (4 + r * 2 + list(paths).index(name)) * 10**5
                for i, value in enumerate(_run(server, paths[name], _batches(per_round, offset))):
                    sums[name][i] += value / ROUNDS
        print("path                      wall/batch  client CPU/batch  influxd CPU/batch")
        for name, (wall, cpu, srv) in sums.items():
            print(f"{name:24s}  {wall * 1e3:8.2f} ms  {cpu * 1e3:13.2f} ms  "
                  f"{srv * 1e3:14.2f} ms")
        print(f"first v1 request after an influxd start: wall {first[0] * 1e3:.1f} ms, "
              f"influxd CPU {first[2] * 1e3:.1f} ms (bcrypt, then cached)")
    finally:
        server.close()
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
