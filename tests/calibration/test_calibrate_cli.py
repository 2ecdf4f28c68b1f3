"""`gridguard calibrate` scripted and interactive, and `--verify`, on the emulated bus.

The emulated loads change on the emulated clock (stages), as an operator would
switch them between the steps; the known sensor errors must come out of the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from collector.calibration.file_format import read_calibration
from collector.cli import calibrate_cmd
from collector.sources.hardware.environment import EMULATOR_ENV
from tests.hardware.emulated import SCENARIO_ENV

RATIO = 325.0
I_RATED = 30.0
V_BIAS, I_BIAS = 1.68, 1.658
V_GAIN, I_GAIN, I_LEAD = 1.02, 0.97, 2.5


def _app() -> typer.Typer:
    app = typer.Typer()
    calibrate_cmd.register(app)

    @app.command("noop", hidden=True)
    def noop() -> None:
        pass

    return app


def _i(rms_a: float, until: float | None = None, phase_deg: float = I_LEAD) -> dict[str, Any]:
    stage: dict[str, Any] = {"dc_v": I_BIAS, "rms_v": rms_a / I_RATED * I_GAIN,
                             "f_hz": 50.0, "phase_deg": phase_deg}
    if until is not None:
        stage["until_s"] = until
    return stage


def _scenario(current_stages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"devices": [{"address": 0x48, "noise_lsb": 1.0, "inputs": {
        0: {"dc_v": V_BIAS, "rms_v": 230.0 / RATIO * V_GAIN, "f_hz": 50.0},
        1: current_stages,
    }}]}


def _config(path: Path, calibration: Path | None = None) -> Path:
    cal = {"calibration": {"file": str(calibration)}} if calibration else {}
    cfg = {
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "ads1115", "ads1115": {"devices": [{"address": 0x48,
                                                                "full_scale_v": 4.096}]}},
        "events": {"arc_detection": {"enabled": False}},
        "channels": {
            "voltage": [{"id": "v_a", "phase": "A", "adc": {"device": 0x48, "channel": 0},
                         "sensor": {"type": "zmpt101b", "ratio": RATIO, "zero_v": 1.65}, **cal}],
            "current": [{"id": "i_k", "phase": "A", "adc": {"device": 0x48, "channel": 1},
                         "sensor": {"type": "sct013", "variant": "030", "zero_v": 1.65}, **cal}],
        },
        "circuits": [{"id": "kitchen", "phases": ["A"], "current_channels": ["i_k"],
                      "breaker_rating_a": 16}],
    }
    out = path / "gridguard.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(EMULATOR_ENV, "tests.hardware.emulated:environment")
    monkeypatch.setenv(SCENARIO_ENV, str(tmp_path / "scenario.yaml"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


# zero at 1..4 s, load 1 at 5..8 s, load 2 at 9..12 s, phase at 13..16 s (settle 1 s, 3 s each)
STAGES = [{"dc_v": I_BIAS, "until_s": 4.5}, _i(5.0, until=8.6), _i(12.0)]


def _check_file(path: Path) -> None:
    cal = read_calibration(path)
    v, i = cal.channels["v_a"], cal.channels["i_k"]
    assert v.gain_uncertainty_pct is not None
    assert i.gain_uncertainty_pct is not None
    assert v.offset == pytest.approx((V_BIAS - 1.65) * RATIO, abs=v.offset_uncertainty)
    assert i.offset == pytest.approx((I_BIAS - 1.65) * I_RATED, abs=i.offset_uncertainty)
    assert v.gain == pytest.approx(1 / V_GAIN, rel=v.gain_uncertainty_pct / 100)
    assert i.gain == pytest.approx(1 / I_GAIN, rel=i.gain_uncertainty_pct / 100)
    assert i.phase_uncertainty_deg is not None
    assert i.phase_deg == pytest.approx(I_LEAD, abs=i.phase_uncertainty_deg)
    assert [p.reference for p in i.gain_points] == [5.0, 12.0]


def test_scripted_calibration_writes_the_errors_it_found(emulated: Path) -> None:
    (emulated / "scenario.yaml").write_text(yaml.safe_dump(_scenario(STAGES)))
    plan = emulated / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "reference_instrument": "exact (emulated)", "reference_accuracy_pct": 0.5,
        "zero": True, "phase": True,
        "gain": [{"v_a": 230.0, "i_k": 5.0}, {"i_k": 12.0}],
    }))
    cfg = _config(emulated)
    out = emulated / "cal" / "bench.yaml"
    result = CliRunner().invoke(_app(), [
        "calibrate", "-c", str(cfg), "--readings", str(plan), "--yes", "--settle", "1",
        "--seconds", "3", "--id", "cal-bench-1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "offsets (no load)" in result.output
    assert "± (k=2)" in result.output
    assert f"wrote {out}" in result.output.replace("\n", "")
    _check_file(out)
    assert read_calibration(out).id == "cal-bench-1"
    assert read_calibration(out).reference_instrument == "exact (emulated)"

    # --verify with the calibration in the config: a 20 A load it never saw
    (emulated / "scenario.yaml").write_text(yaml.safe_dump(_scenario([_i(20.0)])))
    verified = _config(emulated, calibration=out)
    good = emulated / "verify.yaml"
    good.write_text(yaml.safe_dump({"gain": [{"v_a": 230.0, "i_k": 20.0}]}))
    result = CliRunner().invoke(_app(), [
        "calibrate", "-c", str(verified), "--verify", "--readings", str(good), "--yes",
        "--settle", "0.5", "--seconds", "2"])
    assert result.exit_code == 0, result.output
    assert "all readings within the stated uncertainty" in result.output
    bad = emulated / "wrong.yaml"
    bad.write_text(yaml.safe_dump({"gain": [{"i_k": 21.0}]}))  # the meter says 5 % more
    result = CliRunner().invoke(_app(), [
        "calibrate", "-c", str(verified), "--verify", "--readings", str(bad), "--yes",
        "--settle", "0.5", "--seconds", "2"])
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_interactive_calibration_prompts_for_the_meter(emulated: Path) -> None:
    (emulated / "scenario.yaml").write_text(yaml.safe_dump(_scenario(STAGES)))
    cfg = _config(emulated)
    out = emulated / "interactive.yaml"
    # Enter (zero) / Enter (load 1) / 5 A / Enter (load 2) / 12 A / Enter (load 3) / done /
    # Enter (phase)
    answers = "\n\n5\n\n12\n\ndone\n\n"
    result = CliRunner().invoke(_app(), [
        "calibrate", "-c", str(cfg), "--channel", "i_k", "--settle", "1", "--seconds", "3",
        "-o", str(out)], input=answers)
    assert result.exit_code == 0, result.output
    assert "reference reading of i_k [A]" in result.output
    cal = read_calibration(out)
    assert set(cal.channels) == {"i_k"}
    i = cal.channels["i_k"]
    assert i.gain_uncertainty_pct is not None
    assert i.gain == pytest.approx(1 / I_GAIN, rel=i.gain_uncertainty_pct / 100)
    assert i.phase_deg == pytest.approx(I_LEAD, abs=i.phase_uncertainty_deg)


def test_reference_for_several_channels_is_refused(emulated: Path) -> None:
    (emulated / "scenario.yaml").write_text(yaml.safe_dump(_scenario(STAGES)))
    result = CliRunner().invoke(_app(), [
        "calibrate", "-c", str(_config(emulated)), "--reference", "5", "--yes"])
    assert result.exit_code == 1
    assert "--reference: applies to one channel; got 2" in result.output
