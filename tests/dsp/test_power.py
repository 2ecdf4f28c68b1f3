"""IEEE 1459 power quantities and skew alignment."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import scipy.fft

from collector.dsp.harmonics import fundamental_phasor
from collector.dsp.power import (
    align_spectra,
    apparent_power_va,
    displacement_power_factor,
    fundamental_powers,
    mean_product_from_spectra,
    nonactive_power_var,
    power_factor,
)


def test_reactive_power_is_positive_for_a_lagging_current() -> None:
    v = np.array([230.0 + 0j])
    i = np.array([cmath.rect(10.0, -math.radians(30))])  # lags by 30 degrees
    p1, q1 = fundamental_powers(v, i)
    assert p1[0] == pytest.approx(2300 * math.cos(math.radians(30)))
    assert q1[0] == pytest.approx(2300 * 0.5)
    _, q_lead = fundamental_powers(v, np.conj(i))
    assert q_lead[0] == pytest.approx(-1150.0)
    assert displacement_power_factor(p1, q1)[0] == pytest.approx(math.cos(math.radians(30)))
    assert displacement_power_factor(-p1, q1)[0] == pytest.approx(-math.cos(math.radians(30)))


def test_apparent_nonactive_and_power_factor() -> None:
    s = apparent_power_va(np.array([230.0, 0.0]), np.array([10.0, 5.0]))
    np.testing.assert_allclose(s, [2300.0, 0.0])
    p = np.array([-1840.0, 0.0])
    np.testing.assert_allclose(nonactive_power_var(s, p), [1380.0, 0.0])
    pf = power_factor(p, s)
    assert pf[0] == pytest.approx(-0.8)
    assert np.isnan(pf[1])
    assert np.isnan(displacement_power_factor(np.zeros(1), np.zeros(1))[0])


def test_align_spectra_removes_a_sampling_skew() -> None:
    n, cycles, window_s = 1280, 10, 0.2
    skew = 180e-6
    j = np.arange(n)
    t = j / n * window_s
    truth = np.cos(2 * math.pi * 50 * t - 0.5) + 0.2 * np.cos(2 * math.pi * 350 * t + 1.0)
    sampled = np.cos(2 * math.pi * 50 * (t + skew) - 0.5) + 0.2 * np.cos(
        2 * math.pi * 350 * (t + skew) + 1.0
    )
    spec = scipy.fft.rfft(np.stack([truth, sampled], axis=1)[None], axis=1)
    aligned = align_spectra(spec, np.array([0.0, skew]), np.array([window_s]))
    np.testing.assert_allclose(aligned[0, :, 1], aligned[0, :, 0], atol=1e-9 * n)
    ph = fundamental_phasor(aligned, n, cycles)[0]
    assert ph[1] == pytest.approx(ph[0])


def test_mean_product_from_spectra_is_mean_of_product() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(2, 4, 128, 3))
    got = mean_product_from_spectra(scipy.fft.rfft(a, axis=1), scipy.fft.rfft(b, axis=1), 128)
    np.testing.assert_allclose(got, np.mean(a * b, axis=1), rtol=1e-12, atol=1e-15)
