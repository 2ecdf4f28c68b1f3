"""Frequency from crossings: per window and the IEC 61000-4-30 Class A 10-s value."""

from __future__ import annotations

import numpy as np
import pytest

from collector.dsp.frequency import (
    initial_ten_second_state,
    integral_cycles_frequency_hz,
    ten_second_frequency,
    window_frequency_hz,
)
from collector.model import NS_PER_S

T0 = 1_700_000_003 * NS_PER_S + 300_000_000  # 3.3 s after a 10-s tick


def crossings_ns(f_hz: float, start_ns: int, stop_ns: int) -> np.ndarray:
    period = NS_PER_S / f_hz
    n = int((stop_ns - start_ns) / period)
    return np.asarray(start_ns + np.rint(np.arange(n) * period + 0.37 * period).astype(np.int64))


def test_window_frequency() -> None:
    f = window_frequency_hz(np.array([0.0, 1280.0]), np.array([1280.0, 2552.5]), 10, 6400.0)
    np.testing.assert_allclose(f, [50.0, 10 * 6400 / 1272.5])
    with pytest.raises(ValueError, match="end_samples"):
        window_frequency_hz(np.array([5.0]), np.array([5.0]), 10, 6400.0)


def test_integral_cycles() -> None:
    t = 0.123 + np.arange(500) / 49.95
    assert integral_cycles_frequency_hz(t) == pytest.approx(49.95, abs=1e-9)
    assert integral_cycles_frequency_hz(t[:1]) is None
    with pytest.raises(ValueError, match="ascending"):
        integral_cycles_frequency_hz(np.array([1.0, 1.0]))


def test_ten_second_intervals_are_clock_aligned_and_do_not_mix_cycles() -> None:
    step = 1_700_000_020 * NS_PER_S  # a tick: 49.9 Hz before, 50.1 Hz after
    c = np.concatenate([crossings_ns(49.9, T0, step), crossings_ns(50.1, step, T0 + 40 * NS_PER_S)])
    results, _ = ten_second_frequency(c, T0 + 40 * NS_PER_S, initial_ten_second_state(T0))
    starts = [s for s, _ in results]
    assert starts == [1_700_000_010 * NS_PER_S + k * 10 * NS_PER_S for k in range(3)]
    freqs = [f for _, f in results]
    assert freqs[0] == pytest.approx(49.9, abs=2e-6)  # ns rounding of crossing times
    assert freqs[1] == pytest.approx(50.1, abs=2e-6)  # the straddling cycle is in neither
    assert freqs[2] == pytest.approx(50.1, abs=2e-6)


def test_ten_second_streaming_equals_batch_and_empty_interval_is_none() -> None:
    c = crossings_ns(50.02, T0, T0 + 25 * NS_PER_S)
    c = c[(c < T0 + 6 * NS_PER_S) | (c > T0 + 17 * NS_PER_S)]  # none in the first whole interval
    batch, _ = ten_second_frequency(c, T0 + 30 * NS_PER_S, initial_ten_second_state(T0))
    state = initial_ten_second_state(T0)
    streamed = []
    for lo in range(0, 30, 3):
        part = c[(c >= T0 + lo * NS_PER_S) & (c < T0 + (lo + 3) * NS_PER_S)]
        done, state = ten_second_frequency(part, T0 + (lo + 3) * NS_PER_S, state)
        streamed += done
    assert streamed == batch
    assert len(batch) == 2
    assert batch[0][1] is None
    assert batch[1][1] == pytest.approx(50.02, abs=2e-6)
