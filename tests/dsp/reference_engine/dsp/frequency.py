"""Power frequency from zero-crossing times (IEC 61000-4-30 Ed.3, 5.1).

Two measurements share one principle, "whole cycles divided by their
duration":

* per basic interval, the 10/12 cycles of a synchronised window divided by the
  window's exact duration (:func:`window_frequency_hz`);
* the Class A 10-s frequency: the number of integral cycles counted within
  the 10-s clock-aligned interval divided by the cumulative duration of those
  integral cycles, i.e. from the first to the last positive-going
  crossing inside the interval (:func:`integral_cycles_frequency_hz`,
  streamed by :func:`ten_second_frequency`).  Cycles that straddle a 10-s tick
  belong to neither interval, so the intervals do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S

TEN_SECONDS_NS = 10 * NS_PER_S


def window_frequency_hz(
    start_samples: NDArray[np.float64],
    end_samples: NDArray[np.float64],
    cycles: int,
    fs_hz: float,
) -> NDArray[np.float64]:
    """Frequency of synchronised windows that each span ``cycles`` whole cycles.

    Parameters
    ----------
    start_samples, end_samples : NDArray[np.float64]
        Window boundaries [samples, fractional]; each is a positive-going
        crossing of the fundamental.
    cycles : int
        Whole cycles per window (10 at 50 Hz, 12 at 60 Hz).
    fs_hz : float
        Sample rate [Hz].

    Returns
    -------
    NDArray[np.float64]
        Frequency [Hz] = cycles / window duration.
    """
    duration_s = (np.asarray(end_samples) - np.asarray(start_samples)) / fs_hz
    if np.any(duration_s <= 0):
        raise ValueError("end_samples: every window must end after it starts")
    return np.asarray(cycles / duration_s, dtype=np.float64)


def integral_cycles_frequency_hz(crossing_times_s: NDArray[np.float64]) -> float | None:
    """Integral cycles divided by their cumulative duration.

    Parameters
    ----------
    crossing_times_s : NDArray[np.float64]
        Ascending times of consecutive positive-going crossings inside one
        measurement interval [s].

    Returns
    -------
    float | None
        Frequency [Hz]; None with fewer than two crossings (no whole cycle).
    """
    t = np.asarray(crossing_times_s, dtype=np.float64)
    if t.size < 2:
        return None
    span = float(t[-1] - t[0])
    if span <= 0:
        raise ValueError("crossing_times_s: must be strictly ascending")
    return (t.size - 1) / span


@dataclass(frozen=True, slots=True)
class TenSecondState:
    """Streaming state of :func:`ten_second_frequency`.

    Attributes
    ----------
    window_start_ns : int
        Start of the 10-s interval being filled [ns since epoch]; a clock tick.
    first_ns, last_ns : int | None
        First and last crossing seen inside it [ns].
    count : int
        Crossings seen inside it.
    period_ns : int
        Interval length [ns] (10 s for IEC 61000-4-30).
    """

    window_start_ns: int
    first_ns: int | None = None
    last_ns: int | None = None
    count: int = 0
    period_ns: int = TEN_SECONDS_NS


def initial_ten_second_state(
    stream_start_ns: int, period_ns: int = TEN_SECONDS_NS
) -> TenSecondState:
    """State for a stream starting at ``stream_start_ns``.

    The first interval begins at the first clock tick at or after the stream
    start: a partly observed interval would not count all of its cycles.
    """
    if period_ns <= 0:
        raise ValueError(f"period_ns: must be > 0, got {period_ns}")
    start = -(-stream_start_ns // period_ns) * period_ns
    return TenSecondState(window_start_ns=start, period_ns=period_ns)


def ten_second_frequency(
    crossings_ns: NDArray[np.int64], horizon_ns: int, state: TenSecondState
) -> tuple[list[tuple[int, float | None]], TenSecondState]:
    """Class A 10-s frequency, streamed.

    Parameters
    ----------
    crossings_ns : NDArray[np.int64]
        New positive-going crossing times [ns since epoch], ascending, all
        later than those passed before.
    horizon_ns : int
        Time up to which the caller has looked for crossings [ns]; intervals
        that end at or before it are complete and are returned.
    state : TenSecondState
        From :func:`initial_ten_second_state` or the previous call.

    Returns
    -------
    results : list[tuple[int, float | None]]
        (interval start [ns], frequency [Hz] or None when the interval held
        fewer than two crossings) for each completed interval.
    state : TenSecondState
    """
    t = np.asarray(crossings_ns, dtype=np.int64)
    p = state.period_ns
    results: list[tuple[int, float | None]] = []
    ws, first, last, count = state.window_start_ns, state.first_ns, state.last_ns, state.count
    t = t[t >= ws]
    while True:
        end = ws + p
        inside = t[t < end]
        if inside.size:
            if first is None:
                first = int(inside[0])
            last = int(inside[-1])
            count += int(inside.size)
            t = t[inside.size :]
        if horizon_ns < end:
            break
        freq = None
        if count >= 2 and first is not None and last is not None:
            freq = (count - 1) * NS_PER_S / (last - first)
        results.append((ws, freq))
        ws, first, last, count = end, None, None, 0
    return results, TenSecondState(ws, first, last, count, p)
