"""The collector itself (`gridguard run`, a separate process) writes a simulated run to the
real influxd with the v1 write-only credential `gridguard influx setup` makes, read from a
file as setup saves it; every basic-interval record it reports in its JSON Lines output is
read back from InfluxDB with the same tags, timestamp (ms precision) and values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from collector.influx_admin.setup import write_secret
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
    tmp_path: Path, collector_credential: str,
) -> None:
    token_file = tmp_path / "secrets" / "collector.token"
    write_secret(token_file, collector_credential)  # as `influx setup --token-dir` saves it
    cfg = collector_config(tmp_path, influxd, influx_bucket.name, events_bucket.name,
                           token_file)
    reported = _run_collector(cfg, tmp_path, "not-used", seconds=3.0)
    assert len(reported) > 100  # 22 channels x ~15 basic intervals

    stored = stored_basic(influxd, influx_bucket.name)
    compared = pop_reported(reported, stored)
    assert compared > 1000
    # nothing in InfluxDB that the collector did not report (harmonics live elsewhere)
    assert not [k for k in stored if k[0] != str(Measurement.HARMONICS)], list(stored)[:5]
