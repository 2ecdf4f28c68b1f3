"""Zero crossings: analytic positions, streaming equality, hysteresis, gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.dsp.zero_crossing import (
    crossing_detector,
    initial_crossing_state,
    positive_crossings,
)


def sine(fs: float, f: float, seconds: float, phase: float = 0.3) -> np.ndarray:
    t = np.arange(round(fs * seconds)) / fs
    return np.sin(2 * math.pi * f * t + phase)


def true_crossings(fs: float, f: float, n: int, phase: float = 0.3) -> np.ndarray:
    """Sample positions where 2 pi f t + phase = 2 pi k."""
    k = np.arange(1, int(n / fs * f) + 2)
    pos = (k - phase / (2 * math.pi)) / f * fs
    return pos[pos < n - 1]


def detect(
    x: np.ndarray, fs: float, f0: float = 50.0, chunks: list[int] | None = None, **kw: float
) -> np.ndarray:
    det = crossing_detector(fs, f0, **kw)
    state = initial_crossing_state(det)
    out = []
    pos = 0
    sizes = chunks or [x.size]
    k = 0
    while pos < x.size:
        c, state = positive_crossings(x[pos : pos + sizes[k % len(sizes)]], state, det)
        out.append(c)
        pos += sizes[k % len(sizes)]
        k += 1
    return np.concatenate(out)


@pytest.mark.parametrize("fs", [6400.0, 5760.0, 400.0])
def test_crossings_at_nominal_frequency_are_exact(fs: float) -> None:
    x = sine(fs, 50.0, 2.0)
    found = detect(x, fs)
    truth = true_crossings(fs, 50.0, x.size)
    truth = truth[truth >= 6 * fs / 50]  # after the settling time
    assert found.size == truth.size
    # 1e-4 of a sample: 16 ns at 6.4 kHz, 0.25 us at 400 Hz
    assert np.max(np.abs(found - truth)) < 1e-4 * max(1.0, fs / 6400) * 10


@pytest.mark.parametrize(
    ("fs", "f"), [(6400.0, 50.3), (6400.0, 49.5), (400.0, 49.93), (7680.0, 60.4)]
)
def test_periods_off_nominal_are_exact(fs: float, f: float) -> None:
    x = sine(fs, f, 2.0)
    found = detect(x, fs, 60.0 if f > 55 else 50.0)
    periods = np.diff(found)
    # 2e-3 samples while the band-pass finishes settling, then 1e-5
    assert np.max(np.abs(periods - fs / f)) < 2e-3
    assert np.max(np.abs(periods[10:] - fs / f)) < 1e-5


def test_chunked_equals_whole() -> None:
    fs = 5760.0
    rng = np.random.default_rng(3)
    x = (
        325 * sine(fs, 49.986, 3.0)
        + 20 * sine(fs, 5 * 49.986, 3.0)
        + rng.normal(0, 3, round(fs * 3))
    )
    whole = detect(x, fs, hysteresis=6.5)
    chunked = detect(x, fs, chunks=[1, 17, 1000, 2, 333], hysteresis=6.5)
    assert whole.size > 100
    np.testing.assert_array_equal(whole, chunked)


def test_hysteresis_rejects_noise_but_keeps_a_noisy_mains_cycle() -> None:
    fs = 6400.0
    rng = np.random.default_rng(5)
    n = round(fs * 4)
    mains = 325 * sine(fs, 50.0, 4.0) + rng.normal(0, 5, n)
    found = detect(mains, fs, hysteresis=6.5)
    assert np.all(np.abs(np.diff(found) - 128) < 0.5)  # one crossing per cycle
    interrupted = 0.3 * sine(fs, 50.0, 4.0) + rng.normal(0, 1.0, n)
    assert detect(interrupted, fs, hysteresis=6.5).size == 0
    assert detect(interrupted, fs, hysteresis=0.0).size > 100  # what the trigger prevents


def test_short_gap_is_bridged_and_long_gap_drops_crossings() -> None:
    fs = 6400.0
    x = sine(fs, 50.0, 3.0)
    clean = detect(x, fs)
    short = x.copy()
    short[5000:5004] = np.nan
    np.testing.assert_allclose(detect(short, fs), clean, atol=1e-3)
    long = x.copy()
    long[8000:8300] = np.nan  # 2.3 cycles
    found = detect(long, fs)
    settle = 6 * 128
    lost = (clean > 8000 - 1) & (clean < 8300 + settle)
    np.testing.assert_allclose(found, clean[~lost], atol=1e-6)


def test_skew_and_filter_delay_put_crossings_on_the_block_time_axis() -> None:
    fs = 6400.0
    skew = 25e-6
    x = sine(fs, 50.0, 1.0)
    shifted = detect(x, fs, skew_s=skew)
    np.testing.assert_allclose(shifted - detect(x, fs), skew * fs, atol=1e-12)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="fs_hz"):
        crossing_detector(150.0, 50.0)
    with pytest.raises(ValueError, match="hysteresis"):
        crossing_detector(6400.0, 50.0, hysteresis=-1.0)
    with pytest.raises(ValueError, match="nominal_frequency_hz"):
        crossing_detector(6400.0, 0.0)
    det = crossing_detector(6400.0, 50.0)
    with pytest.raises(ValueError, match="1-D"):
        positive_crossings(np.zeros((2, 3)), initial_crossing_state(det), det)
