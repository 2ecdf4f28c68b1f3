"""Power quantities of IEEE Std 1459-2010, single-phase non-sinusoidal definitions (3.1.2).

* Active power ``P = mean(v * i)`` over the synchronised window.
* Apparent power ``S = V * I`` with RMS values.
* Fundamental active and reactive power from the fundamental phasors,
  ``P1 + jQ1 = V1 * conj(I1)``, so ``Q1 = V1 I1 sin(theta_v - theta_i)`` is
  positive when the current lags (inductive).
* Non-active power ``N = sqrt(S^2 - P^2)``, which includes Q1 and
  the distortion powers; ``N >= |Q1|``.
* Power factor ``PF = P / S`` and displacement power factor
  ``PF1 = P1 / S1 = cos(theta_v - theta_i)``, both signed like the active power
  so that export reads as a negative power factor.

When channels were not sampled at the same instant (a multiplexed ADC), the
spectra of the synchronised windows are advanced by each channel's skew
(:func:`align_spectra`, a phase shift of ``exp(-j 2 pi m tau / T)`` on line
``m``) before any product is formed.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def align_spectra(
    spectra: NDArray[np.complex128], skew_s: NDArray[np.float64], window_s: NDArray[np.float64]
) -> NDArray[np.complex128]:
    """Move every channel's window onto the common time axis.

    Parameters
    ----------
    spectra : NDArray[np.complex128]
        ``rfft`` of synchronised windows, shape (W, K, C).
    skew_s : NDArray[np.float64]
        Sampling instant of each channel relative to the block time axis [s],
        shape (C,).
    window_s : NDArray[np.float64]
        Duration of each window [s], shape (W,).

    Returns
    -------
    NDArray[np.complex128]
        Spectra of ``x_c(t)`` where the input held ``x_c(t + skew_c)``.  Exact
        for the periodic (whole-cycle) window.
    """
    m = np.arange(spectra.shape[1])
    angle = -2.0 * math.pi * m[None, :, None] * (skew_s[None, None, :] / window_s[:, None, None])
    return np.asarray(spectra * np.exp(1j * angle))


def mean_product_from_spectra(
    a: NDArray[np.complex128], b: NDArray[np.complex128], n_samples: int
) -> NDArray[np.float64]:
    """Mean of the product of two periodic windows from their ``rfft`` (Parseval).

    Parameters
    ----------
    a, b : NDArray[np.complex128]
        Spectra along axis 1, shape (W, n_samples/2 + 1, P).
    n_samples : int
        Samples per window (even).

    Returns
    -------
    NDArray[np.float64]
        ``mean(a(t) * b(t))``, shape (W, P); e.g. P [W] for voltage and current.
    """
    cross = (a * np.conj(b)).real
    total = 2.0 * cross.sum(axis=1) - cross[:, 0, :] - cross[:, -1, :]
    return np.asarray(total / n_samples**2)


def fundamental_powers(
    v1: NDArray[np.complex128], i1: NDArray[np.complex128]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fundamental active and reactive power from RMS phasors.

    Parameters
    ----------
    v1, i1 : NDArray[np.complex128]
        Fundamental RMS phasors of voltage [V] and current [A].

    Returns
    -------
    p1_w, q1_var : NDArray[np.float64]
        ``P1 = V1 I1 cos(theta_v - theta_i)`` [W] and
        ``Q1 = V1 I1 sin(theta_v - theta_i)`` [var] (positive = inductive).
    """
    s1 = v1 * np.conj(i1)
    return np.asarray(s1.real), np.asarray(s1.imag)


def apparent_power_va(
    v_rms_v: NDArray[np.float64], i_rms_a: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``S = V * I`` [VA] from RMS voltage [V] and current [A]."""
    return np.asarray(v_rms_v * i_rms_a)


def nonactive_power_var(s_va: NDArray[np.float64], p_w: NDArray[np.float64]) -> NDArray[np.float64]:
    """``N = sqrt(max(S^2 - P^2, 0))`` [var] from S [VA] and P [W]."""
    return np.sqrt(np.maximum(s_va**2 - p_w**2, 0.0))


def power_factor(p_w: NDArray[np.float64], s_va: NDArray[np.float64]) -> NDArray[np.float64]:
    """``PF = P / S`` [1], signed like P; NaN when S is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s_va > 0, p_w / s_va, np.nan)


def displacement_power_factor(
    p1_w: NDArray[np.float64], q1_var: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``PF1 = P1 / |P1 + jQ1| = cos(theta_v - theta_i)`` [1]; NaN when both are 0."""
    s1 = np.hypot(p1_w, q1_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s1 > 0, p1_w / s1, np.nan)
