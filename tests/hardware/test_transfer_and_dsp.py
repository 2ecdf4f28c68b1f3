"""Sensor transfer, incoherent-sampling DSP and the slow-ADC window, against analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.config import parse_config
from collector.model import NS_PER_S, ChannelInfo, Quantity
from collector.sources.hardware.incoherent import (
    active_power_w,
    averaging_gain,
    compensated_mean_square,
    estimate_frequency_hz,
    evaluate,
    harmonic_fit,
    phase_coverage_gap,
)
from collector.sources.hardware.samples import ChannelSamples, SampleSet
from collector.sources.hardware.slow_adc import EnergyCounters, SlowAdcSettings, window_metrics
from collector.sources.hardware.transfer import (
    ChannelTransfer,
    full_scale_physical,
    physical_to_pin,
    pin_to_physical,
    transfer_of,
)
from tests.hardware.fields import nums

SQ2 = math.sqrt(2)


def test_transfer_uses_the_config_sensor_models_and_polarity() -> None:
    cfg = parse_config({
        "site": {"id": "b"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "simulated", "simulated": {"scenario": "x.yaml"}},
        "channels": {
            "voltage": [{"id": "v", "phase": "A",
                         "sensor": {"type": "zmpt101b", "ratio": 460.0, "zero_v": 1.65}}],
            "current": [{"id": "i", "phase": "A", "polarity": "reversed",
                         "sensor": {"type": "acs712", "variant": "30a"}}],
        },
        "circuits": [{"id": "k", "phases": ["A"], "current_channels": ["i"],
                      "breaker_rating_a": 16}],
    })
    v = transfer_of(cfg.channel("v"))
    assert pin_to_physical([1.65, 2.15], v) == pytest.approx([0.0, 230.0])
    # ACS712-30A: 66 mV/A around 2.5 V (Allegro datasheet); reversed flips the sign
    i = transfer_of(cfg.channel("i"))
    assert pin_to_physical([2.5 + 0.66], i) == pytest.approx([-10.0])
    assert physical_to_pin(pin_to_physical([0.3, 3.1], i), i) == pytest.approx([0.3, 3.1])
    # on a 0..3.3 V single-ended input the ACS712's 2.5 V bias leaves 0.8 V above it
    assert full_scale_physical(i, 0.0, 3.3) == pytest.approx(0.8 / 0.066)


def test_bias_outside_the_pin_range_is_refused() -> None:
    t = ChannelTransfer("i", Quantity.CURRENT, 30.0, 0.0)
    with pytest.raises(ValueError, match=r"zero input .* outside the pin range 0\.0\.\.3\.3 V"):
        full_scale_physical(t, 0.0, 3.3)


def test_harmonic_fit_recovers_phasors_from_irregular_instants() -> None:
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0.0, 3.0, 700))  # ~4.7 samples per 50 Hz cycle, at random
    x = 0.2 + SQ2 * 10 * np.sin(2 * np.pi * 50 * t + 0.3) + SQ2 * 2 * np.sin(
        2 * np.pi * 150 * t - 1.0)
    fit = harmonic_fit(t, x, 50.0, 5)
    assert fit.dc == pytest.approx(0.2, abs=1e-9)
    # x = √2·Re(X·e^{jωt}) with sin(θ) = cos(θ - 90°): X1 = 10∠(0.3 - π/2)
    assert fit.phasors[0] == pytest.approx(10 * np.exp(1j * (0.3 - np.pi / 2)))
    assert fit.phasors[2] == pytest.approx(2 * np.exp(1j * (-1.0 - np.pi / 2)))
    assert fit.residual_rms < 1e-9
    assert evaluate(fit, t) == pytest.approx(x)
    v = harmonic_fit(t, SQ2 * 230 * np.sin(2 * np.pi * 50 * t), 50.0, 1)
    i = harmonic_fit(t, SQ2 * 10 * np.sin(2 * np.pi * 50 * t - np.pi / 3), 50.0, 1)
    assert active_power_w(v, i) == pytest.approx(2300 * 0.5)


def test_frequency_from_four_samples_per_cycle() -> None:
    t = np.arange(645) / 215.0 + np.random.default_rng(2).normal(0, 20e-6, 645)
    x = SQ2 * 230 * np.sin(2 * np.pi * 50.37 * t + 1.0)
    assert estimate_frequency_hz(t, x, 50.0) == pytest.approx(50.37, abs=1e-4)


def test_averaging_response_and_its_compensation() -> None:
    # a uniform average over T scales a sinusoid by sinc(fT): 0.55 % at 50 Hz, 860 SPS
    assert averaging_gain(50.0, 1 / 860) == pytest.approx(
        math.sin(math.pi * 50 / 860) / (math.pi * 50 / 860))
    assert 1 - averaging_gain(50.0, 1 / 860) == pytest.approx(0.0055, abs=1e-4)
    t = np.sort(np.random.default_rng(3).uniform(0, 3, 900))
    g1, g3 = averaging_gain(50.0, 1 / 860), averaging_gain(150.0, 1 / 860)
    seen = SQ2 * (10 * g1 * np.sin(2 * np.pi * 50 * t) + 3 * g3 * np.sin(2 * np.pi * 150 * t))
    fit = harmonic_fit(t, seen, 50.0, 3)
    gains = np.array([averaging_gain(h * 50.0, 1 / 860) for h in (1, 2, 3)])
    assert math.sqrt(compensated_mean_square(fit, gains)) == pytest.approx(math.hypot(10, 3))


def _samples(t_s: np.ndarray, values: dict[str, np.ndarray]) -> SampleSet:
    chans = []
    for cid, x in values.items():
        q = Quantity.VOLTAGE if cid.startswith("v") else Quantity.CURRENT
        info = ChannelInfo(cid, q, full_scale=1000.0, resolution=0.01)
        chans.append(ChannelSamples(info, (t_s * NS_PER_S).astype(np.int64), x,
                                    np.zeros(x.shape, dtype=bool)))
    return SampleSet(0, int(3 * NS_PER_S), tuple(chans))


def test_sampling_locked_to_the_mains_is_flagged_not_reported() -> None:
    t = np.arange(600) / 200.0  # exactly 4 samples per 50 Hz cycle: 4 phases only
    assert phase_coverage_gap(t, 50.0) == pytest.approx(0.25)
    ss = _samples(t, {"v_a": SQ2 * 230 * np.sin(2 * np.pi * 50 * t + 0.4)})
    (m,), _ = window_metrics(ss, (), SlowAdcSettings(50.0), EnergyCounters())
    assert m.fields["sampling_locked"] is True
    assert m.fields["voltage_rms_v"] is None


def test_window_reports_what_incoherent_sampling_gives_and_nothing_more() -> None:
    rng = np.random.default_rng(9)
    t = np.sort(rng.uniform(0, 3, 650))
    ss = _samples(t, {
        "v_a": SQ2 * 230 * np.sin(2 * np.pi * 50 * t),
        "i_k": SQ2 * 10 * np.sin(2 * np.pi * 50 * t - np.pi / 6),
    })
    from collector.metrics_engine import CircuitSpec

    settings = SlowAdcSettings(50.0)
    metrics, energy = window_metrics(ss, [CircuitSpec("k", ("i_k",), ("v_a",))], settings,
                                     EnergyCounters({"k": 1.0}, {"k": 0.0}))
    by = {m.channel: m for m in metrics}
    assert by["v_a"].interval == "150c"
    k = nums(by["k"].fields)
    kf = by["k"].fields
    assert k["power_active_w"] == pytest.approx(2300 * math.cos(math.pi / 6), rel=1e-6)
    assert k["power_reactive_var"] == pytest.approx(2300 * 0.5, rel=1e-6)
    assert k["power_factor_displacement"] == pytest.approx(math.cos(math.pi / 6), rel=1e-6)
    assert kf["current_thd_pct"] is None
    assert kf["current_peak_a"] is None
    assert energy.import_wh["k"] == pytest.approx(1.0 + k["power_active_w"] * 3 / 3600)
