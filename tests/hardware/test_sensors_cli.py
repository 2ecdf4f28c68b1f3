"""`gridguard sensors scan/test/diagnostic` on the emulated bus.

The commands reach the emulator only through the documented hook
(GRIDGUARD_HARDWARE_EMULATOR + GRIDGUARD_EMULATOR_SCENARIO), exactly as a user
would point them at it; nothing of GridGuard's own is replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from collector.cli import sensors_cmd
from collector.sources.hardware.environment import EMULATOR_ENV
from tests.hardware.emulated import SCENARIO_ENV

V_RMS_PIN = 230 / 325  # 230 V through the configured ZMPT101B ratio


def _app() -> typer.Typer:
    app = typer.Typer()
    sensors_cmd.register(app)

    @app.command("noop", hidden=True)
    def noop() -> None:  # a second command keeps typer from flattening the group
        pass

    return app


def _write(tmp_path: Path, scenario: dict[str, Any], *, kind: str = "load",
           devices: tuple[int, ...] = (0x48,)) -> Path:
    cfg = {
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "ads1115", "ads1115": {"devices": [
            {"address": a, "full_scale_v": 4.096} for a in devices]}},
        "channels": {
            "voltage": [{"id": "v_a", "phase": "A", "adc": {"device": 0x48, "channel": 0},
                         "sensor": {"type": "zmpt101b", "ratio": 325.0, "zero_v": 1.65}}],
            "current": [{"id": "i_k", "phase": "A", "adc": {"device": 0x48, "channel": 1},
                         "sensor": {"type": "sct013", "variant": "030", "zero_v": 1.65}}],
        },
        "circuits": [{"id": "kitchen", "kind": kind, "phases": ["A"],
                      "current_channels": ["i_k"], "breaker_rating_a": 16}],
    }
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(EMULATOR_ENV, "tests.hardware.emulated:environment")
    monkeypatch.setenv(SCENARIO_ENV, str(tmp_path / "scenario.yaml"))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables on one line each
    return tmp_path


def _healthy(current_phase_deg: float = -20.0, current_rms_v: float = 10 / 30) -> dict[str, Any]:
    return {"devices": [{"address": 0x48, "noise_lsb": 1.0, "inputs": {
        0: {"dc_v": 1.65, "rms_v": V_RMS_PIN, "f_hz": 50.0},
        1: {"dc_v": 1.65, "rms_v": current_rms_v, "f_hz": 50.0, "phase_deg": current_phase_deg},
    }}]}


def test_scan_lists_answering_chips_and_names_the_missing_one(emulated: Path) -> None:
    scenario = _healthy()
    scenario["devices"].append({"address": 0x49})
    cfg = _write(emulated, scenario, devices=(0x48, 0x4A))
    result = CliRunner().invoke(_app(), ["sensors", "scan", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "0x48" in result.output
    assert "0x49" in result.output
    assert "0x8583 (power-on default); ADDR to GND" in result.output
    assert "configured but not answering: 0x4A" in result.output


def test_channel_readings_show_rms_and_rate(emulated: Path) -> None:
    cfg = _write(emulated, _healthy())
    result = CliRunner().invoke(
        _app(), ["sensors", "test", "--config", str(cfg), "--channel", "v_a", "--seconds", "2",
                 "--repeat", "2"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if " V " in line and "│" in line]
    assert len(rows) == 2
    rms = float(rows[0].split("│")[3].split()[0])
    assert rms == pytest.approx(230.0, rel=0.005)


def test_unknown_channel_is_named(emulated: Path) -> None:
    cfg = _write(emulated, _healthy())
    result = CliRunner().invoke(_app(), ["sensors", "test", "-c", str(cfg), "--channel", "i_x"])
    assert result.exit_code == 1
    assert "no channel 'i_x'; have v_a, i_k" in result.output


def test_diagnostic_passes_a_healthy_panel(emulated: Path) -> None:
    cfg = _write(emulated, _healthy())
    result = CliRunner().invoke(_app(), ["sensors", "diagnostic", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "no faults found" in result.output


def test_diagnostic_finds_a_reversed_clamp(emulated: Path) -> None:
    cfg = _write(emulated, _healthy(current_phase_deg=180.0 - 20.0))
    result = CliRunner().invoke(_app(), ["sensors", "diagnostic", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "negative active power" in result.output
    assert "(reversed)" in result.output


def test_reversed_clamp_on_a_generation_circuit_is_normal(emulated: Path) -> None:
    cfg = _write(emulated, _healthy(current_phase_deg=180.0), kind="generation")
    result = CliRunner().invoke(_app(), ["sensors", "diagnostic", "-c", str(cfg)])
    assert result.exit_code == 0, result.output


def test_diagnostic_finds_stuck_clipping_and_unpowered_sensors(emulated: Path) -> None:
    scenario = {"devices": [{"address": 0x48, "noise_lsb": 0.0, "inputs": {
        0: {"dc_v": 2.4},  # frozen module output, away from its 1.65 V bias
        1: {"dc_v": 1.65, "rms_v": 1.6, "f_hz": 50.0},  # far beyond the pin range
    }}]}
    cfg = _write(emulated, scenario)
    result = CliRunner().invoke(_app(), ["sensors", "diagnostic", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "v_a: stuck at" in result.output
    assert "i_k:" in result.output
    assert "(clipping)" in result.output

    scenario["devices"][0]["inputs"] = {0: {"dc_v": 0.0}, 1: {"dc_v": 1.65}}
    (emulated / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    result = CliRunner().invoke(_app(), ["sensors", "diagnostic", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "(pinned)" in result.output  # the ZMPT101B lost its supply: 0 V at the pin
    assert "(no_current)" in result.output  # an idle circuit is only information


def test_no_emulator_and_no_pi_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv(EMULATOR_ENV, "tests.hardware.nothing_here:environment")
    monkeypatch.setenv("COLUMNS", "200")
    cfg = _write(tmp_path, _healthy())
    result = CliRunner().invoke(_app(), ["sensors", "scan", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "cannot load 'tests.hardware.nothing_here:environment'" in result.output
