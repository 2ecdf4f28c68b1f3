"""Harmonic phasors: the one representation every simulated waveform is defined by.

A periodic waveform of the fundamental phase angle θ is held as complex RMS phasors
``X[h]`` for orders ``h = 0..H`` in *sine reference*:

    x(θ) = Σ_h √2 · Im(X[h] · e^{j h θ}) = Σ_h √2 |X[h]| sin(h θ + ∠X[h])

so a phasor of angle 0 is a sine with a positive-going zero crossing at θ = 0 (the
point-on-wave convention of IEC 61000-4-30 dips). ``X[0]`` must be real (DC).
With this convention the IEEE 1459 quantities are plain sums over orders:
P = Σ Re(V[h]·conj(I[h])), Q1 = Im(V[1]·conj(I[1])), RMS = sqrt(Σ |X[h]|²).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

SQRT2 = math.sqrt(2.0)

ComplexArray = NDArray[np.complex128]
FloatArray = NDArray[np.float64]


def table_from_phasors(phasors: ComplexArray, n_table: int) -> FloatArray:
    """One period of each waveform sampled at ``n_table`` equally spaced phase angles.

    Parameters
    ----------
    phasors : ndarray of complex, shape (n_rows, H + 1)
        RMS phasors [V or A], sine reference, orders 0..H.
    n_table : int
        Points per period; must exceed 2·H so no order aliases.

    Returns
    -------
    ndarray of float, shape (n_table, n_rows)
        ``out[j, r] = x_r(2π j / n_table)`` [V or A]; rows are table positions so a
        gather of many rows at one phase is one contiguous read.
    """
    rows = np.atleast_2d(phasors)
    h_count = rows.shape[1]
    if n_table <= 2 * (h_count - 1):
        raise ValueError(f"n_table: must be > 2*H = {2 * (h_count - 1)}, got {n_table}")
    spec = np.zeros((rows.shape[0], n_table // 2 + 1), dtype=np.complex128)
    # sine reference to numpy's cosine-series irfft: a_h = (N/√2)·X_h·(-j); DC is x0·N
    spec[:, 1:h_count] = rows[:, 1:] * (-1j * n_table / SQRT2)
    spec[:, 0] = rows[:, 0].real * n_table
    # C order matters: the source gathers whole table rows (all channels at one phase)
    out: FloatArray = np.ascontiguousarray(np.fft.irfft(spec, n=n_table, axis=1).T)
    return out


def phasors_from_table(table: FloatArray, h_max: int) -> ComplexArray:
    """Inverse of :func:`table_from_phasors` for a table of shape (n_table,) or (n_table, n_rows).

    Returns RMS phasors [V or A] of orders 0..h_max, shape (n_rows, h_max + 1) (or
    (h_max + 1,) for a 1-D table). Orders the table cannot hold are zero.
    """
    one_d = table.ndim == 1
    t = table[:, None] if one_d else table
    n = t.shape[0]
    spec = np.fft.rfft(t, axis=0).T  # (n_rows, n//2 + 1)
    out = np.zeros((t.shape[1], h_max + 1), dtype=np.complex128)
    k = min(h_max + 1, spec.shape[1])
    out[:, 1:k] = spec[:, 1:k] * (1j * SQRT2 / n)
    out[:, 0] = spec[:, 0].real / n
    return out[0] if one_d else out


def rms(phasors: ComplexArray) -> float:
    """RMS of a waveform from its phasors [V or A]."""
    return float(np.sqrt(np.sum(np.abs(phasors) ** 2)))


def active_power(v: ComplexArray, i: ComplexArray) -> float:
    """Active power P = mean(v·i) = Σ_h Re(V_h·conj(I_h)) [W] (orthogonality of harmonics)."""
    n = min(v.shape[-1], i.shape[-1])
    return float(np.sum((v[:n] * np.conj(i[:n])).real))


def thd_pct(phasors: ComplexArray) -> float:
    """Total harmonic distortion: orders 2..H relative to the fundamental [%]; 0 without one."""
    fund = abs(phasors[1])
    if fund == 0.0:
        return 0.0
    return float(100.0 * np.sqrt(np.sum(np.abs(phasors[2:]) ** 2)) / fund)


def time_shift(phasors: ComplexArray, angle_rad: float) -> ComplexArray:
    """The same waveform advanced by ``angle_rad`` of the fundamental (order h turns by h·angle)."""
    orders = np.arange(phasors.shape[-1])
    out: ComplexArray = phasors * np.exp(1j * orders * angle_rad)
    return out
