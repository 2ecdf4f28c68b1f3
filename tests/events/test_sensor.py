"""Sensor faults: stuck/flat channel, clipping, missing samples, DC offset."""

from __future__ import annotations

import numpy as np
import pytest

from collector.events.engine import EventEngine
from collector.model import ChannelInfo, Event, EventType, Phase, Quantity, SourceCapabilities

from .signals import run, seconds, sine, time_axis, window

FS, F = 6321.0, 50.0


def _faults(
    v: np.ndarray, i: np.ndarray | None = None, v_full_scale: float | None = None,
    i_full_scale: float | None = None, resolution_v: float | None = None,
) -> list[Event]:
    channels = [ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS, full_scale=v_full_scale,
                            resolution=resolution_v)]
    rows = [v]
    if i is not None:
        channels.append(ChannelInfo("i1", Quantity.CURRENT, Phase.A, circuit="c1", rate_hz=FS,
                                    full_scale=i_full_scale))
        rows.append(i)
    caps = SourceCapabilities(channels=tuple(channels), nominal_frequency_hz=F)
    got = run(EventEngine(caps, nominal_voltage_v=230.0), np.stack(rows), FS, chunk=[1000, 77])
    return got.of_type(EventType.SENSOR_FAULT)


def _voltage(duration_s: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    t = time_axis(FS, duration_s)
    return t, sine(t, F, 230.0)


def test_voltage_channel_stuck_at_a_constant_code_is_a_sensor_fault() -> None:
    t, v = _voltage()
    stuck = (t >= 1.0) & (t < 1.6)
    v = np.where(stuck, 12.3, v)
    (ev,) = _faults(v, resolution_v=0.1)
    assert ev.details["fault"] == "stuck"
    assert ev.channel == "va"
    assert float(ev.details["stuck_value_v"]) == pytest.approx(12.3)
    assert abs(seconds(ev.start_ns) - 1.0) <= 1 / F
    assert ev.duration_s == pytest.approx(0.6, abs=1 / F)


def test_stuck_shorter_than_ten_cycles_is_not_a_fault() -> None:
    t, v = _voltage()
    v = np.where((t >= 1.0) & (t < 1.1), 12.3, v)  # 5 cycles
    assert _faults(v, resolution_v=0.1) == []


def test_an_idle_current_channel_at_zero_is_not_a_fault() -> None:
    t, v = _voltage()
    assert _faults(v, i=np.zeros_like(t)) == []


def test_samples_at_full_scale_are_clipping() -> None:
    _, v = _voltage()
    (ev,) = _faults(np.clip(v, -300.0, 300.0), v_full_scale=300.0)  # 325 V peaks
    assert ev.details["fault"] == "clipping"
    assert ev.duration_s == pytest.approx(3.0, abs=2 / F)
    assert ev.details["open_ended"] is True  # still clipping at the end of the stream


def test_peaks_below_full_scale_are_not_clipping() -> None:
    _, v = _voltage()
    assert _faults(v, v_full_scale=400.0) == []


def test_a_run_of_missing_samples_is_a_sensor_fault() -> None:
    t, v = _voltage()
    v = np.where((t >= 1.0) & (t < 1.1), np.nan, v)
    faults = _faults(v)
    (ev,) = faults
    assert ev.details["fault"] == "missing_samples"
    assert ev.details["missing_samples"] == int(np.sum((t >= 1.0) & (t < 1.1)))
    assert ev.duration_s == pytest.approx(0.1, abs=1.5 / FS)


def test_a_few_missing_samples_are_not_a_sensor_fault() -> None:
    t, v = _voltage()
    v = np.where((t >= 1.0) & (t < 1.005), np.nan, v)  # a quarter cycle
    assert _faults(v) == []


def test_dc_offset_beyond_ten_percent_of_full_scale_is_a_fault() -> None:
    t, v = _voltage()
    (ev,) = _faults(v + 60.0 * window(t, 0.5, 2.5), v_full_scale=400.0)  # 15 % of FS
    assert ev.details["fault"] == "dc_offset"
    assert float(ev.details["dc_offset_v"]) == pytest.approx(60.0, abs=1.0)
    assert ev.duration_s == pytest.approx(2.0, abs=1 / F)


def test_small_dc_offset_and_half_wave_load_current_are_not_faults() -> None:
    t, v = _voltage()
    # a half-wave rectifier load: mean 0.32 x peak, but less than its AC content
    i = np.clip(sine(t, F, 10.0), 0.0, None)
    assert _faults(v + 20.0, i=i, v_full_scale=400.0, i_full_scale=20.0) == []


def test_dc_offset_larger_than_the_ac_content_on_a_current_channel_is_a_fault() -> None:
    t, v = _voltage()
    i = sine(t, F, 1.0) + 5.0  # a biased current sensor whose signal came loose
    (ev,) = _faults(v, i=i, v_full_scale=400.0, i_full_scale=20.0)
    assert ev.details["fault"] == "dc_offset"
    assert ev.channel == "i1"
    assert float(ev.details["dc_offset_a"]) == pytest.approx(5.0, abs=0.05)


def test_a_swell_read_by_a_stuck_sensor_is_flagged_as_suspect() -> None:
    # frozen at +300 V: its "RMS" is 300 V = 130 % of 230 V, a swell that never happened
    t, v = _voltage()
    v = np.where((t >= 1.0) & (t < 1.6), 300.0, v)
    caps = SourceCapabilities(
        channels=(ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS, resolution=0.1),),
        nominal_frequency_hz=F,
    )
    got = run(EventEngine(caps, nominal_voltage_v=230.0), v[None, :], FS)
    (swell,) = got.of_type(EventType.VOLTAGE_SWELL)
    assert swell.details["sensor_fault_overlap"] == "va"
    assert swell.severity == "info"
    assert {e.details["fault"] for e in got.of_type(EventType.SENSOR_FAULT)} >= {"stuck"}


def test_a_genuine_swell_is_not_flagged() -> None:
    t, v = _voltage()
    v = np.where((t >= 1.0) & (t < 1.6), 1.3 * v, v)
    caps = SourceCapabilities(
        channels=(ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS, resolution=0.1),),
        nominal_frequency_hz=F,
    )
    got = run(EventEngine(caps, nominal_voltage_v=230.0), v[None, :], FS)
    (swell,) = got.of_type(EventType.VOLTAGE_SWELL)
    assert "sensor_fault_overlap" not in swell.details
    assert swell.severity == "critical"  # >= 120 %
    assert got.of_type(EventType.SENSOR_FAULT) == []
