"""Urms(1/2): the one-cycle RMS refreshed every half cycle (IEC 61000-4-30 §5.4.1).

The cycle length comes from the caller's frequency (measured or nominal) and is
generally a fractional number of samples. Windows therefore have fractional edges:
the squared signal is integrated as a piecewise-linear function of time (trapezoidal
rule), and the cumulative integral is evaluated exactly at the fractional window
edges. For a sinusoid this keeps the error of a one-cycle mean square at
O((f/fs)^2) instead of the O(f/fs) of rounding the window to whole samples.

Streaming: ``half_cycle_rms(x, t0_ns, fs_hz, f_hz, state)`` returns the values whose
windows ended inside ``x`` and a state holding the tail needed to continue; feeding a
record in chunks gives the same values and times as feeding it whole (to rounding).

The windows are computed in one compiled loop (numba) over windows and channels:
each window sums its own whole samples, so a value carries the rounding error of a
one-cycle sum, not that of differences of a running sum over the retained record. (A
running sum of 230-V squares loses about 1e-7 of a 5 %-of-nominal mean square.) One
loop instead of some forty numpy calls matters at the 0.1-s blocks of a live source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, as_float_rows, c_ordered_rows

# Samples of history kept beyond one cycle, in cycles: lets the caller's frequency
# fall to half its previous value between calls without shortening a window.
_TAIL_CYCLES = 2.0


@dataclass(frozen=True, slots=True, eq=False)
class HalfCycleRmsState:
    """Carry-over between calls of :func:`half_cycle_rms`.

    Attributes
    ----------
    tail_sq : NDArray[np.float64]
        Squared samples retained from earlier calls, shape (n_channels, m); NaN
        samples are stored as 0 and marked in ``tail_nan``.
    tail_nan : NDArray[np.bool_]
        True where a retained sample was NaN, shape (n_channels, m).
    next_end : float
        End of the next window, in samples relative to ``tail_sq[:, 0]``.
    has_nan : bool
        True when ``tail_nan`` has a True anywhere (saves looking).
    """

    tail_sq: NDArray[np.float64]
    tail_nan: NDArray[np.bool_]
    next_end: float
    has_nan: bool = True


@numba.njit(cache=True, fastmath={"reassoc", "nsz"})
def _sum(values: NDArray[np.float64]) -> float:
    """Sum of all values, any shape, in any order (vectorised); NaN when one is NaN."""
    total: float = values.sum()
    return total


@numba.njit(cache=True, fastmath={"reassoc", "nsz"})
def _sum_of_squares(values: NDArray[np.float64]) -> float:
    """Sum of the squares, in any order (vectorised); each square is the IEEE
    product ``v * v`` (no fused multiply-add), as ``np.multiply`` gives it."""
    total = 0.0
    for i in range(values.size):  # (indexed: an iterator is not vectorised)
        v = values[i]
        total += v * v
    return total


@numba.njit(inline="always")
def _y(tail: NDArray[np.float64], x: NDArray[np.float64], offset: int, j: int) -> float:
    """Sample ``j`` of the squared signal: of ``tail``, then the squares of ``x`` from
    column ``offset`` on."""
    m = tail.shape[0]
    if j < m:
        return float(tail[j])
    v = x[offset + j - m]
    return float(v * v)


@numba.njit(cache=True)
def _one_cycle_rms(
    tail: NDArray[np.float64],
    x: NDArray[np.float64],
    offset: int,
    n: int,
    next_end: float,
    step: float,
    n_per_cycle: float,
    values: NDArray[np.float64],
    t0_ns: int,
    t0_column: int,
    ns_per_sample: float,
    times_ns: NDArray[np.int64],
) -> None:
    """RMS of the piecewise-linear interpolant of the squared signal ``y`` over the
    windows ending at ``next_end + step * k`` and one cycle long (fractional sample
    positions), into ``values`` (n_rows, k); their end times into ``times_ns`` (k,).

    ``y`` is ``tail`` (squares retained from earlier calls) followed by the squares of
    ``x[:, offset:offset + n]`` (this call's samples, C-ordered rows read in place):
    the squares of a block are formed as the windows sum them, never stored.
    ``t0_ns`` is the time of column ``t0_column`` of ``y``.

    Positions and times use the same IEEE operations as numpy would (no fast-math
    here): the integral from sample j to position j + u, trapezoid rule on the
    interpolant, less 0.5*y[j] (so that sums between edges are plain sums of whole
    samples), is (0.5 + u - 0.5*u^2)*y[j] + 0.5*u^2*y[j+1]; at the start it is
    subtracted.
    """
    m_tail = tail.shape[1]
    last_j = m_tail + n - 2
    for k in range(values.shape[1]):
        end = next_end + step * k
        # After a large frequency drop the retained tail may be shorter than one new
        # cycle; such a window is shortened rather than reaching before the stream.
        start = max(end - n_per_cycle, 0.0)
        j_s = min(math.floor(start), last_j)
        j_e = min(math.floor(end), last_j)
        u_s = start - j_s
        u_e = end - j_e
        h_s = 0.5 * u_s * u_s
        h_e = 0.5 * u_e * u_e
        w_s = 0.5 + u_s - h_s
        w_e = 0.5 + u_e - h_e
        length = end - start
        times_ns[k] = t0_ns + np.int64(np.rint((end - t0_column) * ns_per_sample))
        # the whole samples j_s .. j_e - 1: those of the tail, then those of x
        split = min(max(j_s, m_tail), j_e)
        for r in range(tail.shape[0]):
            t_row = tail[r]
            x_row = x[r]
            whole = 0.0
            if j_s < split:
                whole = _sum(t_row[j_s:split])
            if split < j_e:
                whole += _sum_of_squares(x_row[offset + split - m_tail : offset + j_e - m_tail])
            edge = (
                (-w_s * _y(t_row, x_row, offset, j_s) + w_e * _y(t_row, x_row, offset, j_e))
                - h_s * _y(t_row, x_row, offset, j_s + 1)
            ) + h_e * _y(t_row, x_row, offset, j_e + 1)
            mean_square = (whole + edge) / length
            values[r, k] = math.sqrt(max(mean_square, 0.0))


def compile_loops() -> None:
    """Compile this module's numba loop now, or load it from numba's cache: at
    start-up rather than at the first block (a fraction of a second)."""
    _one_cycle_rms(np.zeros((1, 2)), np.zeros((1, 4)), 0, 4, 2.0, 1.0, 2.0,
                   np.empty((1, 1)), 0, 2, 1.0, np.empty(1, dtype=np.int64))


def half_cycle_rms(
    x: NDArray[np.float64],
    t0_ns: int,
    fs_hz: float,
    f_hz: float,
    state: HalfCycleRmsState | None = None,
    *,
    has_nan: bool | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64], HalfCycleRmsState]:
    """One-cycle RMS values refreshed every half cycle, streaming.

    Parameters
    ----------
    x : NDArray[np.float64]
        Samples, shape (n_channels, n) [V or A]; NaN marks a missing sample.
    t0_ns : int
        Time of ``x[:, 0]`` [ns since epoch].
    fs_hz : float
        Sample rate [Hz].
    f_hz : float
        Fundamental frequency defining the cycle length for the windows of this
        call [Hz] (measured, or nominal when no measurement is available).
    state : HalfCycleRmsState | None
        State returned by the previous call on the directly preceding samples, or
        None to start a new stream (the first window then ends one cycle after
        ``x[:, 0]``).
    has_nan : bool | None
        Whether ``x`` has a NaN, when the caller knows already; None to look.

    Returns
    -------
    values : NDArray[np.float64]
        Shape (n_channels, k): RMS over each one-cycle window [same unit as x];
        NaN when a window touches a missing sample.
    times_ns : NDArray[np.int64]
        Shape (k,): time at which each window ends [ns since epoch]. The window
        spans one cycle (``1/f_hz``) before it; successive windows are half a cycle
        apart.
    state : HalfCycleRmsState
        State to pass with the next chunk.
    """
    x = as_float_rows(x)
    if x.ndim != 2:
        raise ValueError(f"x: expected shape (n_channels, n), got shape {x.shape}")
    if not fs_hz > 0:
        raise ValueError(f"fs_hz: must be > 0, got {fs_hz}")
    if not 0 < f_hz < fs_hz / 2:
        raise ValueError(f"f_hz: must be in (0, fs_hz/2 = {fs_hz / 2}), got {f_hz}")
    n_per_cycle = fs_hz / f_hz
    n_ch = x.shape[0]
    if state is not None and state.tail_sq.shape[0] != n_ch:
        raise ValueError(f"x: state has {state.tail_sq.shape[0]} channels, got {n_ch} rows")
    if has_nan is None:
        has_nan = bool(np.isnan(x).any())
    next_end = n_per_cycle if state is None else state.next_end
    tail = np.zeros((n_ch, 0)) if state is None else state.tail_sq
    m_tail = tail.shape[1]
    tail_nan = None if state is None or not state.has_nan else state.tail_nan
    is_nan = None
    if has_nan or tail_nan is not None:
        # NaN bookkeeping only while a missing sample is within reach of a window:
        # the squares with missing ones as 0, and where they were
        y = np.empty((n_ch, m_tail + x.shape[1]))
        y[:, :m_tail] = tail
        np.multiply(x, x, out=y[:, m_tail:])
        nan_new = np.isnan(x)
        y[:, m_tail:][nan_new] = 0.0
        is_nan = np.concatenate((
            tail_nan if tail_nan is not None else np.zeros((n_ch, m_tail), dtype=bool),
            nan_new,
        ), axis=1)
        tail, rows, offset = y, np.zeros((n_ch, 0)), 0
    else:
        # the common case: the loop squares the block's samples where they lie
        rows, offset = c_ordered_rows(x)
    n_new = 0 if is_nan is not None else x.shape[1]  # samples the loop squares itself
    last = m_tail + x.shape[1] - 1  # windows may end at most on the last sample
    step = 0.5 * n_per_cycle
    k = math.floor((last - next_end) / step) + 1 if last >= next_end and last >= 1 else 0
    if k > 0:
        values = np.empty((n_ch, k))
        times_ns = np.empty(k, dtype=np.int64)
        _one_cycle_rms(tail, rows, offset, n_new, next_end, step, n_per_cycle, values,
                       t0_ns, m_tail, NS_PER_S / fs_hz, times_ns)
        if is_nan is not None:
            # A window touches the samples from floor(start) to ceil(end).
            ends = next_end + step * np.arange(k)
            starts = np.maximum(ends - n_per_cycle, 0.0)
            nan_cum = np.concatenate(
                [np.zeros((n_ch, 1), dtype=np.int64), np.cumsum(is_nan, axis=1)], axis=1
            )
            lo = np.floor(starts).astype(np.int64)
            hi = np.minimum(np.ceil(ends).astype(np.int64), last) + 1
            values = np.where(nan_cum[:, hi] - nan_cum[:, lo] > 0, np.nan, values)
        next_end = (next_end + step * (k - 1)) + step
    else:
        values = np.zeros((n_ch, 0))
        times_ns = np.zeros(0, dtype=np.int64)
    cut = max(0, min(math.floor(next_end - _TAIL_CYCLES * n_per_cycle) - 1, last))
    kept_has_nan = False
    if is_nan is not None:
        kept_nan = is_nan[:, cut:]
        kept_has_nan = bool(kept_nan.any())
    if not kept_has_nan:
        kept_nan = np.zeros((n_ch, last + 1 - cut), dtype=bool)
    if n_new:
        # the retained squares: of the old tail, then of this block
        squares = x[:, max(cut - m_tail, 0) :] ** 2
        kept = squares if cut >= m_tail else np.concatenate((tail[:, cut:], squares), axis=1)
    else:
        kept = tail[:, cut:]  # this call's own array (or the old tail): may be a view
    new_state = HalfCycleRmsState(
        tail_sq=kept, tail_nan=kept_nan, next_end=next_end - cut, has_nan=kept_has_nan
    )
    return values, times_ns, new_state
