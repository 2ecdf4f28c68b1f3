"""IEC 61000-4-7 harmonic grouping, THD and the supported order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft

from collector.dsp.harmonics import (
    fundamental_phasor,
    harmonic_groups_rms,
    harmonic_max_order,
    thd_pct,
)

N = 10  # cycles per window at 50 Hz
M = 128
n = N * M


def spectrum(lines: dict[int, float], phase: float = 0.0) -> np.ndarray:
    """rfft of peak-amplitude cosines placed on DFT lines, shape (1, K, 1)."""
    j = np.arange(n)
    x = sum(a * np.cos(2 * np.pi * k * j / n + phase) for k, a in lines.items())
    return np.asarray(scipy.fft.rfft(np.asarray(x))[None, :, None])


def test_harmonic_and_interharmonic_lines_go_to_their_group() -> None:
    # line 30 = harmonic 3; line 52 = interharmonic 5.2 (group 5); line 75 = 7.5 (boundary)
    g = harmonic_groups_rms(spectrum({10: 100.0, 30: 10.0, 52: 4.0, 75: 2.0}), n, N, 50)[0, :, 0]
    s = 1 / math.sqrt(2)
    assert g[0] == pytest.approx(100 * s)
    assert g[2] == pytest.approx(10 * s)
    assert g[4] == pytest.approx(4 * s)
    # a boundary line counts half (in power) to each neighbouring group
    assert g[6] == pytest.approx(2 * s / math.sqrt(2))
    assert g[7] == pytest.approx(2 * s / math.sqrt(2))
    untouched = np.delete(g, [0, 2, 4, 6, 7])
    assert np.max(untouched) < 1e-9


def test_group_collects_the_spread_of_a_fluctuating_harmonic() -> None:
    # lines 49, 50, 51 around harmonic 5: total group power is their sum
    g = harmonic_groups_rms(spectrum({49: 3.0, 50: 4.0, 51: 12.0}), n, N, 6)[0, :, 0]
    assert g[4] == pytest.approx(math.sqrt(9 + 16 + 144) / math.sqrt(2))


def test_thd_is_group_based() -> None:
    g = np.zeros((1, 50, 1))
    g[0, 0] = 230.0
    g[0, 2] = 11.5
    g[0, 4] = 13.8
    g[0, 48] = 2.3
    assert thd_pct(g, 50)[0, 0] == pytest.approx(100 * math.sqrt(11.5**2 + 13.8**2 + 2.3**2) / 230)
    assert thd_pct(g, 40)[0, 0] == pytest.approx(100 * math.sqrt(11.5**2 + 13.8**2) / 230)
    assert np.isnan(thd_pct(np.zeros((1, 50, 1)), 50)[0, 0])


def test_fundamental_phasor_is_rms_with_the_window_start_phase() -> None:
    p = fundamental_phasor(spectrum({10: 325.0}, phase=0.6), n, N)[0, 0]
    assert abs(p) == pytest.approx(325 / math.sqrt(2))
    assert np.angle(p) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("fs", "f", "m", "expected"),
    [
        (6400.0, 50.0, 128, 50),
        (400.0, 50.0, 8, 3),
        (6400.0, 60.0, 128, 43),
        (5760.0, 50.0, 128, 46),
        (215.0, 50.0, 8, 1),
    ],
)
def test_supported_order(fs: float, f: float, m: int, expected: int) -> None:
    assert harmonic_max_order(fs, f, m) == expected


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="cycles"):
        harmonic_groups_rms(spectrum({10: 1.0}), n, 9, 5)
    with pytest.raises(ValueError, match="orders"):
        harmonic_groups_rms(spectrum({10: 1.0}), n, N, 64)
