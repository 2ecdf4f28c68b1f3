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

import numba
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
    a, b, c = (np.ascontiguousarray(v, dtype=np.complex128) for v in (xa, xb, xc))
    if not a.shape == b.shape == c.shape:
        raise ValueError(f"xa, xb, xc: shapes differ: {a.shape}, {b.shape}, {c.shape}")
    neg = np.empty(a.shape)
    zer = np.empty(a.shape)
    _unbalance(a.ravel(), b.ravel(), c.ravel(), neg.ravel(), zer.ravel())
    return neg, zer


@numba.njit(cache=True)
def _unbalance(
    xa: NDArray[np.complex128],
    xb: NDArray[np.complex128],
    xc: NDArray[np.complex128],
    neg: NDArray[np.float64],
    zer: NDArray[np.float64],
) -> None:
    """:func:`unbalance_pct` element by element (the arithmetic of
    :func:`symmetrical_components`), into ``neg`` and ``zer``."""
    a = _A
    a2 = _A * _A
    for k in range(xa.size):
        zero = (xa[k] + xb[k] + xc[k]) / 3.0
        positive = (xa[k] + a * xb[k] + a2 * xc[k]) / 3.0
        negative = (xa[k] + a2 * xb[k] + a * xc[k]) / 3.0
        p = abs(positive)
        neg[k] = 100.0 * abs(negative) / p if p > 0 else np.nan
        zer[k] = 100.0 * abs(zero) / p if p > 0 else np.nan


def compile_loops() -> None:
    """Compile this module's numba loop now, or load it from numba's cache: at
    start-up rather than at the first block."""
    one = np.ones(1, dtype=np.complex128)
    unbalance_pct(one, one, one)
