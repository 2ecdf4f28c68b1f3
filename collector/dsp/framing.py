"""Basic-interval windows synchronised to the measured fundamental.

IEC 61000-4-30 Ed.3 (4.4, 5.2): the basic measurement interval is 10 cycles
at 50 Hz and 12 cycles at 60 Hz of the *actual* power frequency, and the
intervals are contiguous and non-overlapping.  A window here runs from one
positive-going crossing of the reference voltage to the crossing ``cycles``
cycles later, so both boundaries are fractional sample positions.

A cycle is plausible when its period is within a factor ``1.2`` of the nominal
period (41.7-60 Hz at 50 Hz, wider than the ±15 % Class A range) and within
5 % of the previous cycle of the same window (mains frequency moves far more
slowly; band-passed noise from an interrupted reference does not).  When the
next ``cycles`` plausible crossings are not there (interruption, missing
reference, a current-only source) the window falls back to the nominal length
from the last boundary, ending at a crossing within half a nominal period of
that target if there is one (to re-lock) and at the nominal target otherwise.
Such windows are reported as not locked: their frequency is unknown.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

_PERIOD_TOLERANCE = 1.2
# Consecutive cycles of a real supply differ by far less than this; band-passed
# noise (an interrupted reference) does not, so it cannot pass for a locked window.
_CYCLE_TO_CYCLE = 0.05


@dataclass(frozen=True, slots=True)
class FramingConfig:
    """Constants of the window builder, in samples of one stream.

    Attributes
    ----------
    cycles : int
        Cycles per basic interval (10 at 50 Hz, 12 at 60 Hz).
    period_samples : float
        Nominal period [samples] = fs / nominal frequency.
    first_start : float
        Earliest window start after a restart [samples].
    margin_samples : float
        Samples needed beyond a window's end before it can be processed
        (interpolation kernel support).
    """

    cycles: int
    period_samples: float
    first_start: float
    margin_samples: float

    @property
    def min_period(self) -> float:
        return self.period_samples / _PERIOD_TOLERANCE

    @property
    def max_period(self) -> float:
        return self.period_samples * _PERIOD_TOLERANCE


@dataclass(frozen=True, slots=True)
class FramingState:
    """Streaming state of :func:`frame_windows`.

    Attributes
    ----------
    boundary : float | None
        Start of the next window [samples since restart]; None before the first.
    locked : bool
        True when ``boundary`` is a crossing of the reference.
    crossings : NDArray[np.float64]
        Known crossings after ``boundary`` not yet consumed [samples].
    """

    boundary: float | None = None
    locked: bool = False
    crossings: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True, slots=True)
class Windows:
    """Consecutive windows: ``start[k+1] == end[k]``.

    Attributes
    ----------
    start, end : NDArray[np.float64]
        Boundaries [samples since restart, fractional].
    locked : NDArray[np.bool_]
        True when the window spans exactly ``cycles`` measured cycles.
    """

    start: NDArray[np.float64]
    end: NDArray[np.float64]
    locked: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.start.size)

    def __getitem__(self, index: slice) -> Windows:
        return Windows(self.start[index], self.end[index], self.locked[index])


def _locked_end(
    boundary: float, crossings: list[float], horizon: float, config: FramingConfig
) -> tuple[float | None, bool, list[float]]:
    """End of a locked window, or (None, decided, crossings) when there is none.

    ``decided`` is True when the sequence has certainly failed (fall back) and
    False when more samples are needed.  Crossings closer than the shortest
    plausible period to the previous one are spurious and dropped.
    """
    kept: list[float] = []
    prev = boundary
    last_period = 0.0
    dropped = False
    # plain locals: this loop runs for every crossing of every window
    min_period, max_period, cycles = config.min_period, config.max_period, config.cycles
    for c in crossings:
        period = c - prev
        if period < min_period:
            dropped = True
            continue
        if period > max_period:
            return None, True, crossings
        if last_period and abs(period - last_period) > _CYCLE_TO_CYCLE * last_period:
            return None, True, crossings
        kept.append(c)
        prev = c
        last_period = period
        if len(kept) == cycles:
            break
    remaining = crossings
    if dropped:
        # the kept ones and all after the last of them (the list ascends)
        remaining = kept + crossings[bisect.bisect_right(crossings, prev) :]
    if len(kept) == cycles:
        return kept[-1], True, remaining
    if horizon - prev > max_period:
        return None, True, remaining
    return None, False, remaining


def frame_windows(
    new_crossings: NDArray[np.float64],
    horizon: float,
    state: FramingState,
    config: FramingConfig,
) -> tuple[Windows, FramingState]:
    """Cut the stream into basic-interval windows as crossings arrive.

    Parameters
    ----------
    new_crossings : NDArray[np.float64]
        Crossings found in the latest block [samples since restart], ascending.
    horizon : float
        Position of the last sample seen [samples]; every crossing before it
        is known.
    state : FramingState
        From the previous call (``FramingState()`` after a restart).
    config : FramingConfig

    Returns
    -------
    windows : Windows
        Windows that are decided and have ``margin_samples`` of data after
        their end.
    state : FramingState
    """
    # a list: a window looks at a few of the crossings, and numpy's per-call cost
    # on a few dozen values is what this loop would spend
    crossings: list[float] = state.crossings.tolist()
    crossings += np.asarray(new_crossings, dtype=np.float64).tolist()
    boundary, locked = state.boundary, state.locked
    starts: list[float] = []
    ends: list[float] = []
    locks: list[bool] = []
    nominal = config.cycles * config.period_samples
    half_period = 0.5 * config.period_samples
    while True:
        if boundary is None:
            at = bisect.bisect_left(crossings, config.first_start)
            if at < len(crossings):
                boundary, locked = crossings[at], True
            elif horizon >= config.first_start + config.max_period:
                boundary, locked = config.first_start, False
            else:
                break
            crossings = crossings[bisect.bisect_right(crossings, boundary) :]
            continue
        end: float | None = None
        if locked:
            end, decided, crossings = _locked_end(boundary, crossings, horizon, config)
            if end is None and not decided:
                break
        if end is not None:
            if end + config.margin_samples > horizon:
                break
            next_locked = True
            window_locked = True
        else:
            target = boundary + nominal
            if target + max(half_period, config.margin_samples) > horizon:
                break
            # the crossing nearest the target within half a period (the first of
            # two as near)
            near = [c for c in crossings if abs(c - target) <= half_period]
            if near:
                end = min(near, key=lambda c: abs(c - target))
                next_locked = True
            else:
                end = target
                next_locked = False
            window_locked = False
        starts.append(boundary)
        ends.append(end)
        locks.append(window_locked)
        boundary, locked = end, next_locked
        crossings = crossings[bisect.bisect_right(crossings, boundary + 1e-9) :]
    windows = Windows(
        start=np.asarray(starts, dtype=np.float64),
        end=np.asarray(ends, dtype=np.float64),
        locked=np.asarray(locks, dtype=np.bool_),
    )
    rest = np.asarray(crossings, dtype=np.float64)
    return windows, FramingState(boundary=boundary, locked=locked, crossings=rest)


def framing_config(
    fs_hz: float,
    nominal_frequency_hz: float,
    cycles: int,
    margin_samples: float,
    settle_samples: float,
) -> FramingConfig:
    """Window-builder constants for one stream."""
    period = fs_hz / nominal_frequency_hz
    return FramingConfig(
        cycles=cycles,
        period_samples=period,
        first_start=float(max(settle_samples, math.ceil(margin_samples))),
        margin_samples=float(margin_samples),
    )
