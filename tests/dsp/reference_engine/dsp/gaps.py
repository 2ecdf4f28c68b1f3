"""Missing samples (NaN): bridging short gaps and refusing long ones.

A missing sample is replaced by linear interpolation between its valid
neighbours so that the resampler and the RMS integral see a continuous
waveform.  That is only honest for short gaps, so a channel's values for a
window are withheld (NaN, reported as None) when more than
``MAX_MISSING_FRACTION`` of the window's samples are missing or when one gap is
longer than ``max_gap_samples`` (1/16 of a cycle, at least one sample): for a
sinusoid, linear interpolation over 1/16 cycle is off by at most 2 % of the
peak on those few samples, which moves the RMS by less than 1e-4.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tests.dsp.reference_engine.dsp.rms import window_cells, window_count

MAX_MISSING_FRACTION = 0.01


def max_gap_samples(samples_per_cycle: float) -> int:
    """Longest gap bridged by interpolation [samples]: 1/16 cycle, at least 1."""
    return max(1, int(samples_per_cycle / 16.0))


def fill_gaps(x: NDArray[np.float64], nan: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Copy of ``x`` (C, L) with NaN replaced by linear interpolation along axis 1.

    Leading and trailing gaps take the nearest valid sample; an all-NaN row
    becomes zeros (its windows are withheld anyway).
    """
    out = x.copy()
    positions = np.arange(x.shape[1])
    for row in np.flatnonzero(nan.any(axis=1)):
        bad = nan[row]
        good = ~bad
        if not good.any():
            out[row] = 0.0
            continue
        out[row, bad] = np.interp(positions[bad], positions[good], x[row, good])
    return out


def invalid_windows(
    nan: NDArray[np.bool_],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    max_gap: int,
    reach: int = 0,
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Missing-sample counts and the windows whose values must be withheld.

    Parameters
    ----------
    nan : NDArray[np.bool_]
        Missing-sample mask, shape (C, L).
    start, end : NDArray[np.float64]
        Windows [samples, relative to column 0], shape (W,).
    max_gap : int
        Longest gap that may be bridged [samples].
    reach : int
        Samples beyond a window's ends that still influence it (the
        interpolation kernel's half support).

    Returns
    -------
    missing : NDArray[np.int64]
        Missing samples per window and channel, shape (W, C).
    invalid : NDArray[np.bool_]
        True where the window's values for that channel are withheld.
    """
    missing = window_count(nan, start, end)
    first, last = window_cells(start, end)
    length = (last - first)[:, None]
    invalid = missing > MAX_MISSING_FRACTION * length
    for row in np.flatnonzero(nan.any(axis=1)):
        edges = np.diff(np.concatenate([[0], nan[row].astype(np.int8), [0]]))
        run_start = np.flatnonzero(edges == 1)
        run_end = np.flatnonzero(edges == -1)
        long_run = (run_end - run_start) > max_gap
        for lo, hi in zip(run_start[long_run], run_end[long_run], strict=True):
            # windows whose sample range, widened by the reach, meets the run [lo, hi)
            invalid[(first - reach < hi) & (last + reach >= lo), row] = True
    return missing, invalid
