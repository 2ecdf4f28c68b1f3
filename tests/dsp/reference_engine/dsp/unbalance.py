"""Unbalance from symmetrical components (IEC 61000-4-30 Ed.3, 5.7).

Fortescue's transform of the three fundamental phasors (phase-to-neutral)::

    X0 = (Xa +       Xb +       Xc) / 3
    X1 = (Xa + a   * Xb + a^2 * Xc) / 3      a = exp(j 2 pi / 3)
    X2 = (Xa + a^2 * Xb + a   * Xc) / 3

Negative-sequence unbalance ``u2 = |X2| / |X1| * 100 %`` and zero-sequence
unbalance ``u0 = |X0| / |X1| * 100 %``.  The phasors must be measured at the
same instants (see :func:`collector.dsp.power.align_spectra`).
"""

from __future__ import annotations

import cmath

import numpy as np
from numpy.typing import NDArray

_A = cmath.exp(2j * cmath.pi / 3)


def symmetrical_components(
    xa: NDArray[np.complex128], xb: NDArray[np.complex128], xc: NDArray[np.complex128]
) -> tuple[NDArray[np.complex128], NDArray[np.complex128], NDArray[np.complex128]]:
    """Zero-, positive- and negative-sequence phasors [unit of the input]."""
    zero = (xa + xb + xc) / 3.0
    positive = (xa + _A * xb + _A * _A * xc) / 3.0
    negative = (xa + _A * _A * xb + _A * xc) / 3.0
    return np.asarray(zero), np.asarray(positive), np.asarray(negative)


def unbalance_pct(
    xa: NDArray[np.complex128], xb: NDArray[np.complex128], xc: NDArray[np.complex128]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Negative- and zero-sequence unbalance.

    Parameters
    ----------
    xa, xb, xc : NDArray[np.complex128]
        Fundamental phasors of phases A, B, C (sequence A-B-C) [V or A].

    Returns
    -------
    neg_pct, zero_pct : NDArray[np.float64]
        ``|X2|/|X1|`` and ``|X0|/|X1|`` [%]; NaN where ``X1`` is 0.
    """
    zero, positive, negative = symmetrical_components(xa, xb, xc)
    p = np.abs(positive)
    with np.errstate(divide="ignore", invalid="ignore"):
        neg = np.where(p > 0, 100.0 * np.abs(negative) / p, np.nan)
        zer = np.where(p > 0, 100.0 * np.abs(zero) / p, np.nan)
    return neg, zer
