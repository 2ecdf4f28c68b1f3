"""Symmetrical components and unbalance ratios."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest

from collector.dsp.unbalance import symmetrical_components, unbalance_pct

A = cmath.exp(2j * math.pi / 3)


def phases(zero: complex, pos: complex, neg: complex) -> tuple[np.ndarray, ...]:
    return (
        np.array([zero + pos + neg]),
        np.array([zero + A * A * pos + A * neg]),
        np.array([zero + A * pos + A * A * neg]),
    )


def test_round_trip_of_sequence_components() -> None:
    z, p, n = 1.0 - 2j, 230 * cmath.exp(0.3j), 4.6 * cmath.exp(-1.1j)
    got = symmetrical_components(*phases(z, p, n))
    assert got[0][0] == pytest.approx(z)
    assert got[1][0] == pytest.approx(p)
    assert got[2][0] == pytest.approx(n)


def test_unbalance_ratios() -> None:
    neg, zero = unbalance_pct(*phases(2.3, 230.0, 4.6 * cmath.exp(0.5j)))
    assert neg[0] == pytest.approx(2.0)
    assert zero[0] == pytest.approx(1.0)
    neg, zero = unbalance_pct(*phases(0, 230.0, 0))
    assert neg[0] == pytest.approx(0.0, abs=1e-12)
    # one phase lost (the other two remain): u2 = 100 * |1 - 1| ... a textbook case
    neg, _ = unbalance_pct(np.array([0j]), np.array([230 * A * A]), np.array([230 * A]))
    assert neg[0] == pytest.approx(50.0)
    neg, zero = unbalance_pct(np.zeros(1, complex), np.zeros(1, complex), np.zeros(1, complex))
    assert np.isnan(neg[0])
    assert np.isnan(zero[0])
