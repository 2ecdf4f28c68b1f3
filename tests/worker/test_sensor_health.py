"""Sensor checks: stuck (bit-identical), flat (crest factor of a DC level), implausible."""

from __future__ import annotations

import math

import numpy as np

from collector.model import NS_PER_S, Metrics
from collector.worker.sensor_health import (
    SensorFaultKind,
    SensorHealth,
    SensorHealthSettings,
    implausible_checks,
)

SETTINGS = SensorHealthSettings(nominal_voltage_v=230.0, nominal_frequency_hz=50.0,
                                ratings_a={"pump": 16.0})


def _sine_crest(samples_per_cycle: int = 128) -> float:
    t = np.arange(samples_per_cycle) / samples_per_cycle
    x = np.sin(2 * np.pi * t)
    return float(np.max(np.abs(x)) / np.sqrt(np.mean(x**2)))


def _rec(k: int, **fields: float) -> Metrics:
    return Metrics(k * 3 * NS_PER_S, "150c", "pump", "A", dict(fields))


def test_real_mains_with_noise_raises_nothing() -> None:
    rng = np.random.default_rng(1)
    crest = _sine_crest()  # 1.414..., computed from a sampled sine, not assumed
    health = SensorHealth(SETTINGS)
    recs = [_rec(k, voltage_rms_v=230 + rng.normal(0, 0.3), current_rms_a=5 + rng.normal(0, 0.05),
                 voltage_crest_factor=crest, current_crest_factor=crest,
                 frequency_hz=50 + rng.normal(0, 0.01), power_factor=0.97,
                 power_active_w=1100.0, power_apparent_va=1134.0)
            for k in range(400)]
    assert health.update(recs) == []


def test_stuck_value_after_the_window_and_cleared_by_one_change() -> None:
    health = SensorHealth(SETTINGS)
    window_records = int(SETTINGS.stuck_window_s / 3)
    found = health.update([_rec(k, voltage_rms_v=231.25) for k in range(window_records)])
    assert found == []  # 597 s: not yet
    found = health.update([_rec(window_records, voltage_rms_v=231.25)])
    assert [(f.kind, f.active, f.field) for f in found] == [
        (SensorFaultKind.STUCK, True, "voltage_rms_v")]
    found = health.update([_rec(window_records + 1, voltage_rms_v=231.26)])
    assert [(f.kind, f.active) for f in found] == [(SensorFaultKind.STUCK, False)]


def test_idle_circuit_at_exactly_zero_amps_is_not_stuck() -> None:
    health = SensorHealth(SETTINGS)
    assert health.update([_rec(k, current_rms_a=0.0) for k in range(1000)]) == []


def test_flat_waveform_is_a_dc_level() -> None:
    # a CT input railed at the ADC's limit: RMS == peak, crest factor exactly 1
    dc = np.full(128, 2.5)
    crest = float(np.max(np.abs(dc)) / np.sqrt(np.mean(dc**2)))
    health = SensorHealth(SETTINGS)
    found = health.update([_rec(k, current_rms_a=2.5, current_crest_factor=crest)
                           for k in range(SETTINGS.confirm_records)])
    assert [(f.kind, f.active, f.field) for f in found] == [
        (SensorFaultKind.FLAT, True, "current_crest_factor")]
    # a tiny current (noise floor, below 2 % of 16 A) is never judged
    quiet = SensorHealth(SETTINGS)
    assert quiet.update([_rec(k, current_rms_a=0.1, current_crest_factor=1.0)
                         for k in range(10)]) == []


def test_implausible_values_by_physics() -> None:
    crest = _sine_crest()
    bad = {
        "voltage_rms_v": 2.5 * 230.0,  # above twice the nominal
        "frequency_hz": 40.0,  # below 42.5 Hz, the IEC 61000-4-30 measuring range
        "current_crest_factor": 0.8,  # peak below RMS
        "power_factor": 1.2,  # |P| > S
    }
    checks = implausible_checks({**bad, "voltage_crest_factor": crest}, 230.0, 50.0)
    assert {k for k, c in checks.items() if c.bad} == set(bad)
    # S < |P| breaks Cauchy-Schwarz; S == |P| (a resistor) is fine
    assert implausible_checks({"power_active_w": -2000.0, "power_apparent_va": 1500.0},
                              230.0, 50.0)["power_apparent_va"].bad
    assert not implausible_checks({"power_active_w": 2000.0, "power_apparent_va": 2000.0},
                                  230.0, 50.0)["power_apparent_va"].bad
    assert implausible_checks({"frequency_hz": 58.0}, 230.0, 60.0)["frequency_hz"].bad is False
    assert implausible_checks({"frequency_hz": 70.0}, 230.0, 60.0)["frequency_hz"].bad


def test_one_glitch_neither_raises_nor_clears() -> None:
    health = SensorHealth(SETTINGS)
    assert health.update([_rec(0, current_rms_a=-1.0)]) == []  # one record only
    assert health.update([_rec(1, current_rms_a=1.0)]) == []
    found = health.update([_rec(2, current_rms_a=-1.0), _rec(3, current_rms_a=-1.0)])
    assert [(f.kind, f.active) for f in found] == [(SensorFaultKind.IMPLAUSIBLE, True)]
    found = health.update([_rec(4 + k, current_rms_a=1.0) for k in range(SETTINGS.clear_records)])
    assert [(f.kind, f.active) for f in found] == [(SensorFaultKind.IMPLAUSIBLE, False)]
    assert math.isclose(found[0].value or 0.0, 1.0)
