"""Fractional-window RMS, peaks and counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft

from collector.dsp.rms import (
    mean_square_from_spectra,
    window_count,
    window_max,
    window_mean,
    window_peaks,
)


def interpolant_integral(x: np.ndarray, a: float, b: float) -> float:
    """Integral of the linear interpolant of ``x`` by brute force."""
    grid = np.linspace(a, b, 400001)
    return float(np.trapezoid(np.interp(grid, np.arange(x.size), x), grid))


def test_window_mean_integrates_exactly_over_fractional_bounds() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 100))
    start = np.array([3.37, 40.9])
    end = np.array([40.9, 77.02])
    got = window_mean(x, start, end)
    for w in range(2):
        for c in range(2):
            want = interpolant_integral(x[c], start[w], end[w]) / (end[w] - start[w])
            assert got[w, c] == pytest.approx(want, abs=1e-8)


def test_sine_mean_square_over_whole_cycles_at_non_integer_samples_per_cycle() -> None:
    fs, f = 5760.0, 49.986  # 115.23 samples per cycle
    t = np.arange(5000) / fs
    x = 325.0 * np.sin(2 * math.pi * f * t + 0.4)
    start = 37.77 + np.arange(3, dtype=np.float64) * 10 * fs / f
    ms = window_mean((x * x)[None, :], start, start + 10 * fs / f)
    np.testing.assert_allclose(ms[:, 0], 325.0**2 / 2, rtol=5e-7)


def test_peak_and_count_use_the_samples_inside() -> None:
    x = np.arange(20.0)[None, :]
    start, end = np.array([2.6, 7.4]), np.array([7.4, 12.5])
    # samples 3..6 (cells starting inside) and 7..12
    np.testing.assert_array_equal(window_max(x, start, end)[:, 0], [6.0, 12.0])
    np.testing.assert_array_equal(window_count(x >= 5, start, end)[:, 0], [2, 6])
    with pytest.raises(ValueError, match="outside"):
        window_mean(x, np.array([-3.0]), np.array([5.0]))


def test_parseval_mean_square() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=(3, 256, 2))
    ms = mean_square_from_spectra(scipy.fft.rfft(y, axis=1), 256)
    np.testing.assert_allclose(ms, np.mean(y * y, axis=1), rtol=1e-12)


def test_window_peaks_equal_numpy_reductions_of_the_magnitude() -> None:
    rng = np.random.default_rng(5)
    buffer = rng.normal(0.0, 100.0, (4, 3000))
    x = buffer[:, 50:2950]  # rows of a longer buffer, as the engine passes them
    x[2, 700] = np.nan
    start = np.array([3.2, 1283.9])
    end = np.array([1283.9, 2564.6])
    level = np.array([150.0, np.inf, 120.0, 0.0])
    peak, count = window_peaks(x, start, end, level)
    magnitude = np.abs(x)
    np.testing.assert_array_equal(peak, window_max(magnitude, start, end))
    np.testing.assert_array_equal(count, window_count(magnitude >= level[:, None], start, end))
    assert np.isnan(peak[0, 2])
    assert np.isfinite(peak[1, 2])
    assert (count[:, 1] == 0).all()
    assert (count[:, 3] == [1281, 1281]).all()
    # told there is no NaN, the same peaks and counts on a signal without one
    x[2, 700] = 0.0
    peak, count = window_peaks(x, start, end, level)
    fast_peak, fast_count = window_peaks(x, start, end, level, may_have_nan=False)
    np.testing.assert_array_equal(fast_peak, peak)
    np.testing.assert_array_equal(fast_count, count)
