"""The compiled loops behind the interval values against the numpy statements they replace.

The engine's records are compared with the frozen reference engine to 1e-12
(test_engine_equivalence), so :func:`window_mean_product` must give what
``window_mean(x[a] * x[b])`` gives to rounding: its whole samples are summed by a
BLAS dot product instead of numpy's pairwise sum. That no kind of block makes
these loops compile again is checked with the others in test_compiled_loops.
"""

from __future__ import annotations

import numpy as np
import pytest

from collector.dsp.rms import window_mean, window_mean_product


@pytest.mark.parametrize("seed", range(7))
def test_mean_products_equal_window_mean_of_the_products(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_ch, n_w = 7, 5
    # window lengths from under one sample (one reduceat element) to beyond the
    # pieces handed to BLAS (8192 samples)
    length = [0.6, 5.3, 130.9, 1280.37, 3001.2, 20000.3][seed % 6]
    n = int(length * n_w) + 40
    # a column slice of a longer buffer (read in place) or an array of its own
    buffer = rng.normal(0.0, 300.0, (n_ch, n + 50))
    x = buffer[:, 17 : 17 + n] if seed % 2 else buffer[:, :n].copy()
    start = 3.0 + rng.uniform(0.0, 1.0) + length * np.arange(n_w)
    end = start + length * rng.uniform(0.97, 1.0, n_w)
    a = rng.integers(0, n_ch, 9)
    b = rng.integers(0, n_ch, 9)
    got = window_mean_product(x, a, b, start, end)
    assert got.shape == (n_w, 9)
    want = window_mean(x[a] * x[b], start, end)
    # rounding of a sum of n terms: n * eps of the mean magnitude at worst
    scale = window_mean(np.abs(x[a] * x[b]), start, end)
    np.testing.assert_array_less(np.abs(got - want), 1e-12 * scale + 1e-300)
    assert not np.allclose(got, window_mean(x[a] * x[a], start, end))  # a and b both count


def test_mean_products_reject_windows_outside_the_samples() -> None:
    x = np.ones((2, 100))
    both = np.array([0, 1])
    with pytest.raises(ValueError, match="outside x"):
        window_mean_product(x, both, both, np.array([90.0]), np.array([99.5]))
