"""`gridguard run` on a meter-type source (ADS1115), reached through the emulator hook
exactly as the sensors commands are: the collector process itself reads the emulated
chip and writes its readings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.sources.hardware.environment import EMULATOR_ENV
from tests.hardware.emulated import SCENARIO_ENV
from tests.hardware.test_sensors_cli import _healthy, _write

REPO = Path(__file__).resolve().parents[2]


def test_run_reads_an_ads1115_and_writes_its_readings(tmp_path: Path) -> None:
    # 230 V and 10 A (1/3 V at the SCT-013-030 pin), current lagging by 20 degrees
    cfg = _write(tmp_path, _healthy(current_phase_deg=-20.0, current_rms_v=10 / 30))
    out = tmp_path / "m.jsonl"
    env = {**os.environ, EMULATOR_ENV: "tests.hardware.emulated:environment",
           SCENARIO_ENV: str(tmp_path / "scenario.yaml")}
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli.app", "run", "--config", str(cfg),
         "--duration", "0.1", "--no-live", "--metrics-out", str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    kitchen = [r for r in rows if r["channel"] == "kitchen"]
    assert kitchen, rows
    r = kitchen[0]
    assert r["interval"] == "150c"
    assert r["voltage_rms_v"] == pytest.approx(230.0, rel=0.005)
    assert r["current_rms_a"] == pytest.approx(10.0, rel=0.005)
    # P = V I cos(20 deg); the ADS1115 promise: 1 % of S
    s_va = 230.0 * 10.0
    assert r["power_active_w"] == pytest.approx(s_va * 0.9396926, abs=0.01 * s_va)
    assert r["harmonics_max_order"] is None or r["harmonics_max_order"] <= 1
