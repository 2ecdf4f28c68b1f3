"""Frequency from zero crossings; deviation events on 10-s and 1-s values."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from collector.events.engine import EventEngine
from collector.events.frequency import (
    FrequencyDetector,
    FrequencyRule,
    IntervalFrequency,
    default_band_hz,
    positive_zero_crossings_ns,
)
from collector.model import (
    NS_PER_S,
    ChannelInfo,
    Event,
    EventType,
    Phase,
    Quantity,
    Severity,
    SourceCapabilities,
)

from .signals import T0_NS, run, seconds, sine, time_axis

FS = 6321.0
ENF = Path(__file__).resolve().parents[1] / "data" / "enf_whu_mains_400hz"


def _distorted(f_hz: float, duration_s: float, seed: int = 3) -> np.ndarray:
    t = time_axis(FS, duration_s)
    rng = np.random.default_rng(seed)
    return (sine(t, f_hz, 230.0, 0.4) + sine(t, 3 * f_hz, 20.0, 1.1)
            + sine(t, 5 * f_hz, 10.0, 0.2) + rng.normal(0, 1.0, t.size))


def test_crossings_of_a_distorted_noisy_sine_are_one_period_apart() -> None:
    x = _distorted(50.3, 2.0)
    times, _ = positive_zero_crossings_ns(x, T0_NS, FS, 50.0, 30.0)
    periods_s = np.diff(times) / NS_PER_S
    assert periods_s.size > 90
    assert np.mean(periods_s) == pytest.approx(1 / 50.3, rel=1e-5)
    assert np.max(np.abs(periods_s - 1 / 50.3)) < 2e-5  # 20 us, a tenth of a sample


def test_crossings_chunked_equal_whole() -> None:
    x = _distorted(49.7, 1.5)
    whole, _ = positive_zero_crossings_ns(x, T0_NS, FS, 50.0, 30.0)
    parts, state, a = [], None, 0
    sizes = [100, 1, 37, 900, 5000, 3] * 20
    for n in sizes:
        if a >= x.size:
            break
        t0 = T0_NS + round(a * NS_PER_S / FS)
        times, state = positive_zero_crossings_ns(x[a:a + n], t0, FS, 50.0, 30.0, state)
        parts.append(times)
        a += n
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=2)


def test_interval_frequency_counts_whole_cycles_inside_each_interval() -> None:
    period_ns = NS_PER_S / 49.9
    crossings = T0_NS + 3_000_000 + np.round(np.arange(1500) * period_ns).astype(np.int64)
    values = IntervalFrequency(10.0, 50.0).push(crossings, T0_NS + 40 * NS_PER_S)
    assert [v.start_ns - T0_NS for v in values[:3]] == [0, 10 * NS_PER_S, 20 * NS_PER_S]
    assert values[0].f_hz == pytest.approx(49.9, abs=1e-6)
    assert values[1].f_hz == pytest.approx(49.9, abs=1e-6)
    assert np.isnan(values[-1].f_hz)  # after the crossings stopped


def test_gap_in_crossings_is_not_counted_as_a_cycle() -> None:
    period_ns = NS_PER_S / 50.0
    k = np.concatenate([np.arange(0, 200), np.arange(260, 500)])  # 1.2 s without crossings
    crossings = T0_NS + np.round(k * period_ns).astype(np.int64)
    (value,) = IntervalFrequency(10.0, 50.0).push(crossings, T0_NS + 10 * NS_PER_S)
    assert value.f_hz == pytest.approx(50.0, abs=1e-6)


def _engine_events(f_hz: float, duration_s: float) -> list[Event]:
    caps = SourceCapabilities(
        channels=(ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS),),
        nominal_frequency_hz=50.0,
    )
    x = _distorted(f_hz, duration_s)[None, :]
    got = run(EventEngine(caps, nominal_voltage_v=230.0), x, FS, chunk=8192)
    return got.of_type(EventType.FREQUENCY_DEVIATION)


def test_frequency_outside_one_percent_on_10_s_values_is_an_event() -> None:
    events = _engine_events(50.7, 21.0)
    slow = [e for e in events if e.details["rule"] == "10s"]
    assert len(slow) == 1
    ev = slow[0]
    assert seconds(ev.start_ns) == 0.0  # clock-aligned interval
    assert float(ev.details["frequency_extreme_hz"]) == pytest.approx(50.7, abs=1e-3)
    assert ev.extreme_pct == pytest.approx(101.4, abs=2e-3)
    assert (ev.details["band_low_hz"], ev.details["band_high_hz"]) == default_band_hz(50.0)
    assert ev.severity == Severity.WARNING
    # 50.7 Hz is inside the 47-52 Hz band that must hold at all times
    assert not [e for e in events if e.details["rule"] == "1s"]


def test_frequency_inside_the_band_is_not_an_event() -> None:
    assert _engine_events(50.3, 21.0) == []


def test_frequency_outside_the_fast_band_is_caught_on_1_s_values() -> None:
    events = _engine_events(52.6, 3.5)
    fast = [e for e in events if e.details["rule"] == "1s"]
    assert len(fast) == 1
    assert fast[0].severity == Severity.CRITICAL
    assert float(fast[0].details["frequency_extreme_hz"]) == pytest.approx(52.6, abs=1e-3)


def test_real_mains_recording_stays_in_band_at_8_samples_per_cycle() -> None:
    # ENF-WHU 001_ref.wav (MIT): 482 s of Chinese mains at 400 Hz; README: zero-crossing
    # frequency 49.93..50.06 Hz, median 50.008 Hz
    with wave.open(str(ENF / "001_ref.wav")) as w:
        fs = float(w.getframerate())
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    assert fs == 400.0
    rules = [FrequencyRule("10s", 10.0, default_band_hz(50.0), Severity.WARNING)]
    det = FrequencyDetector("enf", "A", 50.0, rules, lambda: 1)
    f_values: list[float] = []
    events: list[Event] = []
    for a in range(0, x.size, 4000):
        ended, started = det.process(x[a:a + 4000], T0_NS + round(a * NS_PER_S / fs), fs,
                                     0.1 * float(np.max(np.abs(x))))
        f_values += [v.f_hz for v in det.latest_values]
        events += ended + started
    values = np.array(f_values)
    assert values.size >= 47
    assert np.all(np.isfinite(values))
    assert np.all((values > 49.9) & (values < 50.1))
    assert np.median(values) == pytest.approx(50.008, abs=0.02)
    assert events == []
