"""Synchronous resampling: harmonic accuracy up to the 50th, images, edges."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from collector.dsp.harmonics import harmonic_max_order
from collector.dsp.resample import (
    equalize_spectra,
    interpolation_kernel,
    kernel_response,
    resample_windows,
    synchronous_samples_per_cycle,
)

KERNEL = interpolation_kernel()


def test_samples_per_cycle_is_a_power_of_two_near_the_source() -> None:
    assert synchronous_samples_per_cycle(6400.0, 50.0) == 128
    assert synchronous_samples_per_cycle(5760.0, 50.0) == 128
    assert synchronous_samples_per_cycle(6400.0, 60.0) == 128
    assert synchronous_samples_per_cycle(12800.0, 50.0) == 256
    assert synchronous_samples_per_cycle(400.0, 50.0) == 8
    with pytest.raises(ValueError, match="fs_hz"):
        synchronous_samples_per_cycle(90.0, 50.0)


def test_images_of_the_fundamental_are_rejected() -> None:
    # images of low-order lines fall near fs; the kernel must bury them
    h = kernel_response(KERNEL, np.linspace(0.9, 1.1, 401))
    assert np.max(h) < 3e-5
    h2 = kernel_response(KERNEL, np.linspace(1.9, 2.1, 401))
    assert np.max(h2) < 3e-5
    # images of the (small) higher harmonics
    assert np.max(kernel_response(KERNEL, np.linspace(0.6, 0.9, 601))) < 3.5e-3


@pytest.mark.parametrize(
    ("fs", "f"), [(6400.0, 50.0), (6400.0, 50.3), (6400.0, 49.7), (5760.0, 49.986), (6400.0, 59.8)]
)
def test_every_harmonic_to_the_supported_order_is_reproduced(fs: float, f: float) -> None:
    f_nom = 60.0 if f > 55 else 50.0
    cycles = 12 if f_nom == 60 else 10
    m = synchronous_samples_per_cycle(fs, f_nom)
    orders = harmonic_max_order(fs, f_nom, m)
    rng = np.random.default_rng(11)
    amps = rng.uniform(0.2, 1.0, orders + 1)
    amps[1] = 100.0
    phases = rng.uniform(-np.pi, np.pi, orders + 1)
    n_in = round(fs * 0.6)
    t = np.arange(n_in) / fs
    x = sum(amps[k] * np.cos(2 * np.pi * k * f * t + phases[k]) for k in range(1, orders + 1))
    start = 40.37 + np.arange(2, dtype=np.float64) * cycles * fs / f
    end = np.asarray(start + cycles * fs / f, dtype=np.float64)
    y = resample_windows(np.asarray(x)[:, None], start, end, m * cycles, KERNEL)
    spec = equalize_spectra(scipy.fft.rfft(y, axis=1), end - start, KERNEL)[:, :, 0]
    n = m * cycles
    for w in range(2):
        for k in range(1, orders + 1):
            line = spec[w, k * cycles] * 2 / n
            phase_at_start = phases[k] + 2 * np.pi * k * f * start[w] / fs
            want = amps[k] * np.exp(1j * phase_at_start)
            assert abs(line - want) < 1e-3 * amps[k] + 1e-5 * amps[1], f"order {k}"
        # between the harmonics: images and leakage only
        inter = np.delete(spec[w, : orders * cycles + 1], np.arange(0, orders * cycles + 1, cycles))
        assert np.max(np.abs(inter) * 2 / n) < 2e-5 * amps[1]


def test_constant_is_reproduced_and_edges_are_checked() -> None:
    x = np.full((200, 2), 3.25)
    y = resample_windows(x, np.array([20.3]), np.array([170.9]), 64, KERNEL)
    np.testing.assert_allclose(y, 3.25, rtol=1e-12)
    with pytest.raises(ValueError, match="kernel needs samples"):
        resample_windows(x, np.array([2.0]), np.array([150.0]), 64, KERNEL)
    with pytest.raises(ValueError, match="taps"):
        interpolation_kernel(taps=7)


@pytest.mark.parametrize("n_channels", [15, 40])
def test_rows_of_a_buffer_are_laid_out_as_a_time_major_copy_would_be(n_channels: int) -> None:
    # the engine passes the transpose of a column slice of its channel-major buffer,
    # which a compiled loop lays out time-major itself; 40 channels take two groups
    # (32 and 16 wide, padded); the values must be those of a time-major copy
    kernel = interpolation_kernel()
    rng = np.random.default_rng(n_channels)
    buffer = rng.normal(0.0, 300.0, (n_channels, 4000))
    rows = buffer[:, 37:3990]
    start = np.array([40.3, 1320.9, 2601.4])
    end = start + 1280.6
    got = resample_windows(rows.T, start, end, 1280, kernel, dtype=np.float32)
    want = resample_windows(np.ascontiguousarray(rows.T), start, end, 1280, kernel,
                            dtype=np.float32)
    assert got.shape == (3, 1280, n_channels)
    np.testing.assert_array_equal(got, want)
    # and close to the double-precision result (single precision: ~1e-7 of the signal)
    exact = resample_windows(rows.T, start, end, 1280, kernel)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-4 * 300.0)
