"""The collector itself (`gridguard run`, a separate process) writes a simulated run to the
real influxd; every basic-interval record it reports in its JSON Lines output is read back
from InfluxDB with the same tags, timestamp (ms precision) and values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from collector.nomenclature import Measurement
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.storage.collector_harness import (
    REPO,
    TOKEN_ENV,
    collector_config,
    pop_reported,
    read_jsonl,
    stored_basic,
)


def _run_collector(
    cfg: Path, tmp_path: Path, token: str, seconds: float
) -> list[dict[str, object]]:
    out = tmp_path / "metrics.jsonl"
    env = {**os.environ, TOKEN_ENV: token}
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli.app", "run", "--config", str(cfg),
         "--duration", str(seconds), "--speed", "0", "--no-live", "--metrics-out", str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return read_jsonl(out)


def test_simulated_run_reads_back_exactly(
    influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
    tmp_path: Path,
) -> None:
    cfg = collector_config(tmp_path, influxd, influx_bucket.name, events_bucket.name)
    reported = _run_collector(cfg, tmp_path, influxd.token, seconds=3.0)
    assert len(reported) > 100  # 22 channels x ~15 basic intervals

    stored = stored_basic(influxd, influx_bucket.name)
    compared = pop_reported(reported, stored)
    assert compared > 1000
    # nothing in InfluxDB that the collector did not report (harmonics live elsewhere)
    assert not [k for k in stored if k[0] != str(Measurement.HARMONICS)], list(stored)[:5]
