"""Missing samples: interpolation and the refusal of long gaps."""

from __future__ import annotations

import numpy as np

from collector.dsp.gaps import fill_gaps, invalid_windows, max_gap_samples


def test_fill_is_linear_between_valid_neighbours() -> None:
    x = np.vstack([np.arange(10.0), np.full(10, np.nan), np.arange(10.0) * 2])
    x[0, 3:6] = np.nan
    x[2, 0] = np.nan
    out = fill_gaps(x, np.isnan(x))
    np.testing.assert_array_equal(out[0], np.arange(10.0))
    np.testing.assert_array_equal(out[1], 0.0)
    assert out[2, 0] == 2.0  # leading gap takes the nearest valid sample


def test_counts_and_refusals() -> None:
    nan = np.zeros((2, 1000), dtype=bool)
    nan[0, 100:103] = True  # short: bridged
    nan[1, 400:409] = True  # longer than 8 samples: refused
    nan[0, 700:715:3] = True  # five single samples: 5 > 1 % of 300
    start = np.array([0.0, 300.0, 600.0])
    end = np.array([300.0, 600.0, 900.0])
    missing, invalid = invalid_windows(nan, start, end, max_gap=max_gap_samples(128.0), reach=8)
    np.testing.assert_array_equal(missing, [[3, 0], [0, 9], [5, 0]])
    np.testing.assert_array_equal(invalid, [[False, False], [False, True], [True, False]])
    # reach: a long gap just outside a window still spoils it
    nan2 = np.zeros((1, 1000), dtype=bool)
    nan2[0, 602:620] = True
    _, inv = invalid_windows(nan2, start, end, max_gap=8, reach=8)
    np.testing.assert_array_equal(inv[:, 0], [False, True, True])
