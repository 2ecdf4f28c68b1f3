"""Urms(1/2): the one-cycle RMS refreshed every half cycle (IEC 61000-4-30 §5.4.1).

The cycle length comes from the caller's frequency (measured or nominal) and is
generally a fractional number of samples. Windows therefore have fractional edges:
the squared signal is integrated as a piecewise-linear function of time (trapezoidal
rule), and the cumulative integral is evaluated exactly at the fractional window
edges. For a sinusoid this keeps the error of a one-cycle mean square at
O((f/fs)^2) instead of the O(f/fs) of rounding the window to whole samples.

Streaming: ``half_cycle_rms(x, t0_ns, fs_hz, f_hz, state)`` returns the values whose
windows ended inside ``x`` and a state holding the tail needed to continue; feeding a
record in chunks gives the same values and times as feeding it whole.
"""

from __future__ import annotations

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
    """

    tail_sq: NDArray[np.float64]
    tail_nan: NDArray[np.bool_]
    next_end: float


def _cumulative_trapezoid(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Integral of the piecewise-linear interpolant of ``y`` from sample 0 to each sample."""
    out = np.zeros_like(y)
    if y.shape[1] > 1:
        out[:, 1:] = np.cumsum(0.5 * (y[:, 1:] + y[:, :-1]), axis=1)
    return out


def _integral_at(
    y: NDArray[np.float64], cum: NDArray[np.float64], pos: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Integral from sample 0 to fractional positions ``pos`` (shape (k,)) for all rows."""
    j = np.minimum(np.floor(pos).astype(np.int64), y.shape[1] - 2)
    u = pos - j
    y0 = y[:, j]
    y1 = y[:, j + 1]
    result: NDArray[np.float64] = cum[:, j] + u * y0 + 0.5 * u * u * (y1 - y0)
    return result


def half_cycle_rms(
    x: NDArray[np.float64],
    t0_ns: int,
    fs_hz: float,
    f_hz: float,
    state: HalfCycleRmsState | None = None,
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
    nan_new = np.isnan(x)
    sq_new = np.where(nan_new, 0.0, x * x)
    if state is None:
        tail_sq = np.zeros((n_ch, 0))
        tail_nan = np.zeros((n_ch, 0), dtype=bool)
        next_end = n_per_cycle
    else:
        if state.tail_sq.shape[0] != n_ch:
            raise ValueError(
                f"x: state has {state.tail_sq.shape[0]} channels, got {n_ch} rows"
            )
        tail_sq, tail_nan, next_end = state.tail_sq, state.tail_nan, state.next_end
    y = np.concatenate([tail_sq, sq_new], axis=1)
    is_nan = np.concatenate([tail_nan, nan_new], axis=1)
    m_tail = tail_sq.shape[1]
    last = y.shape[1] - 1  # windows may end at most on the last sample
    step = 0.5 * n_per_cycle
    k = int(np.floor((last - next_end) / step)) + 1 if last >= next_end and last >= 1 else 0
    if k > 0:
        ends = np.asarray(next_end + step * np.arange(k), dtype=np.float64)
        # After a large frequency drop the retained tail may be shorter than one new
        # cycle; such a window is shortened rather than reaching before the stream.
        starts: NDArray[np.float64] = np.maximum(ends - n_per_cycle, 0.0)
        cum = _cumulative_trapezoid(y)
        mean_sq = (_integral_at(y, cum, ends) - _integral_at(y, cum, starts)) / (ends - starts)
        values = np.sqrt(np.maximum(mean_sq, 0.0))
        # A window touches the samples from floor(start) to ceil(end).
        nan_cum = np.concatenate(
            [np.zeros((n_ch, 1), dtype=np.int64), np.cumsum(is_nan, axis=1)], axis=1
        )
        lo = np.floor(starts).astype(np.int64)
        hi = np.minimum(np.ceil(ends).astype(np.int64), last) + 1
        values = np.where(nan_cum[:, hi] - nan_cum[:, lo] > 0, np.nan, values)
        times_ns = t0_ns + np.round((ends - m_tail) * (NS_PER_S / fs_hz)).astype(np.int64)
        next_end = float(ends[-1] + step)
    else:
        values = np.zeros((n_ch, 0))
        times_ns = np.zeros(0, dtype=np.int64)
    cut = max(0, min(int(np.floor(next_end - _TAIL_CYCLES * n_per_cycle)) - 1, last))
    new_state = HalfCycleRmsState(
        tail_sq=y[:, cut:].copy(), tail_nan=is_nan[:, cut:].copy(), next_end=next_end - cut
    )
    return values, times_ns, new_state
