"""A meter-type source (ADS1115, emulated) run by the real collector with InfluxDB
enabled and `write.interval: basic`: its 150-cycle records, the only ones it makes, are
stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collector.sources.hardware.environment import EMULATOR_ENV
from tests.hardware.emulated import SCENARIO_ENV
from tests.hardware.test_sensors_cli import _healthy, _write
from tests.influxd_fixture import InfluxBucket, InfluxServer

REPO = Path(__file__).resolve().parents[2]


def test_meter_records_are_stored(
    influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
    tmp_path: Path,
) -> None:
    cfg_path = _write(tmp_path, _healthy(current_phase_deg=0.0, current_rms_v=10 / 30))
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["influx"] = {
        "enabled": True, "url": influxd.url, "org": influxd.org,
        "token": {"env": "GG_TEST_INFLUX_TOKEN"},
        "buckets": {"raw": influx_bucket.name, "events": events_bucket.name},
        "write": {"interval": "basic"}, "spool": {"path": str(tmp_path / "spool")},
    }
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, EMULATOR_ENV: "tests.hardware.emulated:environment",
           SCENARIO_ENV: str(tmp_path / "scenario.yaml"), "GG_TEST_INFLUX_TOKEN": influxd.token}
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli.app", "run", "--config", str(cfg_path),
         "--duration", "0.1", "--no-live"],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = influxd.query(
        f'from(bucket: "{influx_bucket.name}") |> range(start: 0, stop: 2100-01-01T00:00:00Z)'
        ' |> filter(fn: (r) => r.circuit == "kitchen" and r._field == "power_active_w")'
    )
    assert rows, "the meter's records were not stored"
    assert {r["interval"] for r in rows} == {"150c"}
    # 230 V x 10 A in phase, within the ADS1115 promise of 1 % of S
    assert float(rows[0]["_value"]) == pytest.approx(2300.0, abs=23.0)
