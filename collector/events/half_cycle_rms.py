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

The whole samples between window edges are summed segment by segment between
consecutive edges, not as differences of a running sum over the retained record:
one pass over the samples per call, and the rounding error of a one-cycle sum. (A
running sum of 230-V squares loses about 1e-7 of a 5 %-of-nominal mean square.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, as_float_array

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


def _window_mean_squares(
    y: NDArray[np.float64], starts: list[float], ends: list[float]
) -> NDArray[np.float64]:
    """Mean of the piecewise-linear interpolant of each row of ``y`` over each
    ``[starts[k], ends[k]]`` (fractional sample positions), shape (n_rows, k).

    Whole samples between the edges are summed per segment between consecutive
    edges (one ``np.add.reduceat``) rather than by differencing a running sum over
    the whole record: one pass over the samples, and the rounding error of a
    one-cycle sum instead of one growing with the record. The few edge positions are
    handled as Python numbers: a block has about ten windows, and numpy's per-call
    overhead would cost more than the arithmetic.
    """
    k = len(ends)
    last_j = y.shape[1] - 2
    pos = starts + ends
    j = [min(math.floor(p), last_j) for p in pos]
    # Integral from sample j to position j + u, trapezoid rule on the interpolant,
    # less 0.5*y[j] (so that sums between edges are plain sums of whole samples):
    # (0.5 + u - 0.5*u^2)*y[j] + 0.5*u^2*y[j+1]; at the starts it is subtracted.
    w0: list[float] = []
    w1: list[float] = []
    for i, (p, jj) in enumerate(zip(pos, j, strict=True)):
        u = p - jj
        half_u2 = 0.5 * u * u
        sign = -1.0 if i < k else 1.0
        w0.append(sign * (0.5 + u - half_u2))
        w1.append(sign * half_u2)
    knots = sorted(set(j))
    column = {v: i for i, v in enumerate(knots)}
    prefix = np.empty((y.shape[0], len(knots)))
    prefix[:, 0] = 0.0
    if len(knots) > 1:
        # reduceat's last segment runs to the end of y: not needed
        np.cumsum(np.add.reduceat(y, knots, axis=1)[:, :-1], axis=1, out=prefix[:, 1:])
    at = prefix[:, [column[jj] for jj in j]]
    edges = y[:, j + [jj + 1 for jj in j]] * np.array(w0 + w1)
    total = at[:, k:] - at[:, :k] + edges.reshape(y.shape[0], 4, k).sum(axis=1)
    lengths = np.array([e - s for s, e in zip(starts, ends, strict=True)])
    out: NDArray[np.float64] = total / lengths
    return out


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
    x = as_float_array(x)
    if x.ndim != 2:
        raise ValueError(f"x: expected shape (n_channels, n), got shape {x.shape}")
    if not fs_hz > 0:
        raise ValueError(f"fs_hz: must be > 0, got {fs_hz}")
    if not 0 < f_hz < fs_hz / 2:
        raise ValueError(f"f_hz: must be in (0, fs_hz/2 = {fs_hz / 2}), got {f_hz}")
    n_per_cycle = fs_hz / f_hz
    n_ch = x.shape[0]
    if has_nan is None:
        has_nan = bool(np.isnan(x).any())
    sq_new = x * x
    nan_new = None
    if has_nan:
        nan_new = np.isnan(x)
        sq_new[nan_new] = 0.0
    if state is None:
        y = sq_new
        next_end = n_per_cycle
        m_tail = 0
        tail_nan = None
    else:
        if state.tail_sq.shape[0] != n_ch:
            raise ValueError(
                f"x: state has {state.tail_sq.shape[0]} channels, got {n_ch} rows"
            )
        y = np.concatenate((state.tail_sq, sq_new), axis=1)
        next_end = state.next_end
        m_tail = state.tail_sq.shape[1]
        tail_nan = state.tail_nan if state.has_nan else None
    # NaN bookkeeping only while a missing sample is within reach of a window
    is_nan = None
    if nan_new is not None or tail_nan is not None:
        is_nan = np.concatenate((
            tail_nan if tail_nan is not None else np.zeros((n_ch, m_tail), dtype=bool),
            nan_new if nan_new is not None else np.zeros(x.shape, dtype=bool),
        ), axis=1)
    last = y.shape[1] - 1  # windows may end at most on the last sample
    step = 0.5 * n_per_cycle
    k = math.floor((last - next_end) / step) + 1 if last >= next_end and last >= 1 else 0
    if k > 0:
        ends = [next_end + step * i for i in range(k)]
        # After a large frequency drop the retained tail may be shorter than one new
        # cycle; such a window is shortened rather than reaching before the stream.
        starts = [max(e - n_per_cycle, 0.0) for e in ends]
        values = np.sqrt(np.maximum(_window_mean_squares(y, starts, ends), 0.0))
        if is_nan is not None:
            # A window touches the samples from floor(start) to ceil(end).
            nan_cum = np.concatenate(
                [np.zeros((n_ch, 1), dtype=np.int64), np.cumsum(is_nan, axis=1)], axis=1
            )
            lo = [math.floor(v) for v in starts]
            hi = [min(math.ceil(v), last) + 1 for v in ends]
            values = np.where(nan_cum[:, hi] - nan_cum[:, lo] > 0, np.nan, values)
        scale = NS_PER_S / fs_hz
        times_ns = np.array([t0_ns + round((e - m_tail) * scale) for e in ends], dtype=np.int64)
        next_end = ends[-1] + step
    else:
        values = np.zeros((n_ch, 0))
        times_ns = np.zeros(0, dtype=np.int64)
    cut = max(0, min(math.floor(next_end - _TAIL_CYCLES * n_per_cycle) - 1, last))
    kept_has_nan = False
    if is_nan is not None:
        kept_nan = is_nan[:, cut:]
        kept_has_nan = bool(kept_nan.any())
    if not kept_has_nan:
        kept_nan = np.zeros((n_ch, y.shape[1] - cut), dtype=bool)
    # y is this call's own array: the tail may be a view of it
    new_state = HalfCycleRmsState(
        tail_sq=y[:, cut:], tail_nan=kept_nan, next_end=next_end - cut, has_nan=kept_has_nan
    )
    return values, times_ns, new_state
