"""`gridguard run` on an MCP3008 (a waveform converter read in its own thread), through the
emulator hook: the collector process measures the emulated chip's inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collector.sources.hardware.environment import EMULATOR_ENV
from tests.hardware.emulated import SCENARIO_ENV

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["mcp3008", "mcp3208"])
def test_run_measures_an_mcp3x08(tmp_path: Path, model: str) -> None:
    cfg = {
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "mcp3008", "mcp3008": {"model": model, "vref_v": 3.3,
                                                  "sample_rate_hz": 8000}},
        "channels": {
            "voltage": [{"id": "v_a", "phase": "A", "adc": {"channel": 0},
                         "sensor": {"type": "zmpt101b", "ratio": 325.0, "zero_v": 1.65}}],
            "current": [{"id": "i_k", "phase": "A", "adc": {"channel": 3},
                         "sensor": {"type": "sct013", "variant": "030", "zero_v": 1.65}}],
        },
        "circuits": [{"id": "k", "phases": ["A"], "current_channels": ["i_k"],
                      "breaker_rating_a": 16}],
    }
    # 230 V at the ZMPT101B ratio, 10 A through the SCT-013-030 (1 V at 30 A), in phase
    scenario = {"mcp3008": {"model": model, "vref_v": 3.3, "inputs": {
        0: {"dc_v": 1.65, "rms_v": 230 / 325, "f_hz": 50.0},
        3: {"dc_v": 1.65, "rms_v": 10 / 30, "f_hz": 50.0},
    }}}
    (tmp_path / "gridguard.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    out = tmp_path / "m.jsonl"
    env = {**os.environ, EMULATOR_ENV: "tests.hardware.emulated:environment",
           SCENARIO_ENV: str(tmp_path / "scenario.yaml")}
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli.app", "run", "--config",
         str(tmp_path / "gridguard.yaml"), "--duration", "2", "--speed", "0", "--no-live",
         "--metrics-out", str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    k = [r for r in rows if r["channel"] == "k"][2:]  # after the filters settle
    assert len(k) >= 5
    for r in k:
        assert r["voltage_rms_v"] == pytest.approx(230.0, rel=0.005)
        assert r["current_rms_a"] == pytest.approx(10.0, rel=0.01)
        assert r["power_active_w"] == pytest.approx(2300.0, rel=0.01)
