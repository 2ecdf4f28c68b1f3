"""Calibration end to end on emulated sensors with known offset, gain and phase errors.

The "real" sensors differ from what the config says: the ZMPT101B's ratio is 2 %
off and its bias 30 mV high; the CT gives 3 % too little, leads by 2.5° and sits
8 mV above its bias. A calibration run (zero, two loads read on an exact reference,
a resistive load for the phase) must find those errors; the calibrated source must
then read a load it never saw during calibration (lagging PF 0.8) within the
uncertainty the calibration states.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from collector.calibration.file_format import read_calibration, write_calibration
from collector.calibration.procedure import CalibrationRun, calibration_file
from collector.config import GridGuardConfig, parse_config
from collector.model import Quantity
from collector.sources.hardware.ads1115 import RMS_ACCURACY_PCT, Ads1115Source
from collector.sources.hardware.mcp3008 import Mcp3008Source
from collector.sources.hardware.slow_adc import SlowAdcSettings
from tests.hardware.ads1115_emulator import Ads1115Emulator, EmulatedClock
from tests.hardware.emulated import EmulatedHardware
from tests.hardware.fields import nums
from tests.hardware.mcp3008_emulator import Mcp3008Emulator

F_HZ = 50.0
V_TRUE = 230.0
RATIO_CONFIG = 325.0
V_GAIN_ERR = 1.02  # the module outputs 2 % more than the config's ratio says
V_BIAS = 1.68  # config says 1.65
I_GAIN_ERR = 0.97  # the CT outputs 3 % less
I_LEAD_DEG = 2.5
I_BIAS = 1.658  # config says 1.65
I_RATED = 30.0  # SCT-013-030: 1 V RMS at 30 A
STAGE_S = 10.0
# stages: no load, 5 A and 12 A resistive (gain), 12 A resistive (phase), 8 A at PF 0.8
LOADS = [(0.0, 0.0), (5.0, 0.0), (12.0, 0.0), (12.0, 0.0), (8.0, -math.acos(0.8))]

Wave = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def _stage(t: NDArray[np.float64]) -> NDArray[np.intp]:
    return np.minimum((t // STAGE_S).astype(np.intp), len(LOADS) - 1)


def v_pin(t: NDArray[np.float64]) -> NDArray[np.float64]:
    v = math.sqrt(2) * V_TRUE * np.sin(2 * math.pi * F_HZ * t)
    return np.asarray(V_BIAS + v / RATIO_CONFIG * V_GAIN_ERR)


def i_true(t: NDArray[np.float64]) -> NDArray[np.float64]:
    k = _stage(t)
    amp = np.array([a for a, _ in LOADS])[k]
    phi = np.array([p for _, p in LOADS])[k]
    return np.asarray(math.sqrt(2) * amp * np.sin(2 * math.pi * F_HZ * t + phi))


def i_pin(t: NDArray[np.float64]) -> NDArray[np.float64]:
    lead_s = I_LEAD_DEG / 360 / F_HZ
    return np.asarray(I_BIAS + i_true(t + lead_s) / I_RATED * I_GAIN_ERR)


def _config(source: Mapping[str, object], adc: tuple[dict[str, int], dict[str, int]],
            calibration_file: Path | None = None) -> GridGuardConfig:
    cal = {"calibration": {"file": str(calibration_file)}} if calibration_file else {}
    return parse_config({
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": source,
        "channels": {
            "voltage": [{"id": "v_a", "phase": "A", "adc": adc[0], **cal,
                         "sensor": {"type": "zmpt101b", "ratio": RATIO_CONFIG, "zero_v": 1.65}}],
            "current": [{"id": "i_k", "phase": "A", "adc": adc[1], **cal,
                         "sensor": {"type": "sct013", "variant": "030", "zero_v": 1.65}}],
        },
        "circuits": [{"id": "k", "phases": ["A"], "current_channels": ["i_k"],
                      "breaker_rating_a": 16}],
    })


ADS: dict[str, object] = {
    "type": "ads1115", "ads1115": {"devices": [{"address": 0x48, "full_scale_v": 4.096}]},
}
ADS_ADC = ({"device": 0x48, "channel": 0}, {"device": 0x48, "channel": 1})


def _run(cfg: GridGuardConfig, src: Ads1115Source | Mcp3008Source, settings: SlowAdcSettings,
         clock: EmulatedClock) -> CalibrationRun:
    caps = src.capabilities
    run = CalibrationRun(
        source=src, settings=settings, channels=["v_a", "i_k"], partners={"i_k": "v_a"},
        resolutions={c.id: c.resolution or 0.0 for c in caps.channels}, seconds=3.0,
    )
    for stage, refs in enumerate([None, {"v_a": V_TRUE, "i_k": 5.0}, {"i_k": 12.0}, "phase"]):
        clock.t_s = stage * STAGE_S + 1.0  # the operator switches loads, waits, confirms
        if refs is None:
            run.zero()
        elif refs == "phase":
            run.phase()
        else:
            assert isinstance(refs, dict)
            run.gain_point(refs)
    return run


def _check_results(run: CalibrationRun, tmp_path: Path) -> Path:
    results = run.result({"v_a": Quantity.VOLTAGE, "i_k": Quantity.CURRENT},
                         reference_accuracy_pct=0.5)
    v, i = results["v_a"], results["i_k"]
    assert v.offset is not None
    assert i.offset is not None
    assert v.gain is not None
    assert i.gain is not None
    assert i.phase is not None
    # the injected errors, found within the stated (k = 2) uncertainties
    assert v.offset.offset == pytest.approx((V_BIAS - 1.65) * RATIO_CONFIG,
                                            abs=v.offset.uncertainty)
    assert i.offset.offset == pytest.approx((I_BIAS - 1.65) * I_RATED, abs=i.offset.uncertainty)
    assert v.gain.gain == pytest.approx(1 / V_GAIN_ERR, rel=v.gain.uncertainty_pct / 100)
    assert i.gain.gain == pytest.approx(1 / I_GAIN_ERR, rel=i.gain.uncertainty_pct / 100)
    assert i.phase.phase_deg == pytest.approx(I_LEAD_DEG, abs=i.phase.uncertainty_deg)
    # a reference of ±0.5 % is a rectangular 0.29 %: k = 2 makes at least 0.58 %
    assert i.gain.uncertainty_pct >= 2 * 0.5 / math.sqrt(3)
    path = tmp_path / "cal-test.yaml"
    write_calibration(calibration_file(results, calibration_id="cal-test",
                                       nominal_frequency_hz=F_HZ), path)
    return path


def test_ads1115_calibration_removes_offset_gain_and_phase_errors(tmp_path: Path) -> None:
    chip = Ads1115Emulator(0x48, {0: v_pin, 1: i_pin}, noise_lsb=1.0)
    env = EmulatedHardware({0x48: chip})
    cfg = _config(ADS, ADS_ADC)
    src = Ads1115Source(cfg, hardware=env, calibrated=False)
    path = _check_results(_run(cfg, src, src.settings, env.clock), tmp_path)
    cal = read_calibration(path)
    u_gain_i = cal.channels["i_k"].gain_uncertainty_pct
    u_gain_v = cal.channels["v_a"].gain_uncertainty_pct
    u_phase = cal.channels["i_k"].phase_uncertainty_deg
    assert u_gain_i is not None
    assert u_gain_v is not None
    assert u_phase is not None

    # before: the lagging load read with the sensors' errors
    env.clock.t_s = 4 * STAGE_S + 1.0
    raw = nums(next(m for m in Ads1115Source(_config(ADS, ADS_ADC), hardware=env).read().metrics
                    if m.channel == "k").fields)
    s_true = V_TRUE * 8.0
    p_true = s_true * 0.8
    assert abs(raw["current_rms_a"] / 8.0 - 1) > 0.02  # the errors were real
    assert abs(raw["power_active_w"] - p_true) / s_true > 0.015  # beyond the 1 % promise

    # after: a load the calibration never saw, within what the calibration states
    env.clock.t_s = 4 * STAGE_S + 4.0
    calibrated = Ads1115Source(_config(ADS, ADS_ADC, path), hardware=env)
    assert calibrated.capabilities.channels[1].calibration_id == "cal-test"
    batch = calibrated.read()
    record = next(m for m in batch.metrics if m.channel == "k")
    assert record.fields["calibration_id"] == "cal-test"
    fields = nums(record.fields)
    assert fields["current_rms_a"] == pytest.approx(
        8.0, rel=(u_gain_i + RMS_ACCURACY_PCT) / 100)
    assert fields["voltage_rms_v"] == pytest.approx(
        V_TRUE, rel=(u_gain_v + RMS_ACCURACY_PCT) / 100)
    # P: both gains and the phase, plus the method's promise (which now uses the
    # calibrated phase uncertainty)
    bound_pct = u_gain_i + u_gain_v + fields["accuracy_power_pct_of_s"]
    assert abs(fields["power_active_w"] - p_true) <= bound_pct / 100 * s_true
    assert fields["accuracy_power_pct_of_s"] == pytest.approx(
        1.0 + 100 * math.radians(u_phase))
    assert fields["power_reactive_var"] == pytest.approx(s_true * 0.6, rel=bound_pct / 100 / 0.6)


def test_mcp3008_calibration_phase_goes_into_the_skew(tmp_path: Path) -> None:
    from collector.metrics_engine import MetricsEngine, circuits_from_capabilities

    mcp: dict[str, object] = {"type": "mcp3008", "mcp3008": {"vref_v": 3.3, "sample_rate_hz": 3200}}
    adc = ({"channel": 0}, {"channel": 1})
    chip = Mcp3008Emulator({0: v_pin, 1: i_pin}, vref_v=3.3)
    env = EmulatedHardware(mcp3008=chip)
    cfg = _config(mcp, adc)
    src = Mcp3008Source(cfg, hardware=env, calibrated=False)
    settings = SlowAdcSettings(f_nominal_hz=F_HZ, harmonic_orders=11)
    path = _check_results(_run(cfg, src, settings, env.clock), tmp_path)
    src.close()

    env = EmulatedHardware(mcp3008=Mcp3008Emulator({0: v_pin, 1: i_pin}, vref_v=3.3))
    env.clock.t_s = 4 * STAGE_S + 1.0
    calibrated = Mcp3008Source(_config(mcp, adc, path), hardware=env, duration_s=1.0)
    caps = calibrated.capabilities
    lead_s = read_calibration(path).channels["i_k"].phase_deg / 360 / F_HZ
    assert caps.channels[1].skew_s == pytest.approx(1 / 3200 + lead_s)
    engine = MetricsEngine(caps, circuits_from_capabilities(caps), aggregations=("basic",))
    fields = [nums(m.fields) for b in calibrated.blocks() for m in engine.process(b)
              if m.channel == "k"][1:]
    assert fields
    for f in fields:
        assert f["power_factor_displacement"] == pytest.approx(0.8, abs=0.01)
        assert f["current_rms_a"] == pytest.approx(8.0, rel=0.01)
