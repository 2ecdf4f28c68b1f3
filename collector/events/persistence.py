"""A hysteretic condition on consecutive time spans that must persist before it counts.

Used where a condition is evaluated on whole spans of time rather than on sliding
one-cycle values: clock-aligned frequency intervals (:mod:`.frequency`) and the
half-cycle frames of the sensor checks (:mod:`.sensor`). A run starts at the start
of the first span where the condition is on and lasts to the end of the last span
that was not off. (Threshold rules on one-cycle RMS values use :mod:`.level`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class Extreme(StrEnum):
    """Which extreme of the monitored value a run reports."""

    MAX = "max"
    MIN = "min"


@dataclass(frozen=True, slots=True)
class RunConfirmed:
    """The condition has now lasted the minimum time (an event has started)."""

    start_ns: int
    extreme: float
    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class RunEnded:
    """A confirmed run ended (an event has ended)."""

    start_ns: int
    end_ns: int
    extreme: float
    tags: frozenset[str]
    open_ended: bool = False


@dataclass
class SustainedRun:
    """State of one hysteretic, minimum-duration condition.

    ``on`` starts or extends a run, ``off`` ends it, neither (the hysteresis band, or
    a missing value) keeps a started run going without extending its duration.
    """

    min_duration_ns: int
    extreme_of: Extreme = Extreme.MAX
    active: bool = False
    confirmed: bool = False
    start_ns: int = 0
    last_ns: int = 0
    extreme: float = 0.0
    tags: set[str] = field(default_factory=set)

    def step(
        self,
        on: bool,
        off: bool,
        start_ns: int,
        end_ns: int,
        value: float,
        tags: frozenset[str] = frozenset(),
    ) -> RunConfirmed | RunEnded | None:
        """Feed one window; returns a transition when one happens."""
        if not self.active:
            if not on:
                return None
            self.active, self.confirmed = True, False
            self.start_ns, self.last_ns, self.extreme = start_ns, end_ns, value
            self.tags = set(tags)
        elif off:
            self.active = False
            if self.confirmed:
                return RunEnded(self.start_ns, self.last_ns, self.extreme, frozenset(self.tags))
            return None
        elif on:
            self.last_ns = end_ns
            self.tags |= tags
            pick = max if self.extreme_of is Extreme.MAX else min
            self.extreme = pick(self.extreme, value)
        if not self.confirmed and self.last_ns - self.start_ns >= self.min_duration_ns:
            self.confirmed = True
            return RunConfirmed(self.start_ns, self.extreme, frozenset(self.tags))
        return None

    def coast(
        self,
        on: NDArray[np.bool_],
        off: NDArray[np.bool_],
        end_ns: NDArray[np.int64],
        values: NDArray[np.float64],
        start: int,
    ) -> int:
        """While a run is active, take spans ``start`` onwards in one go, up to the
        first that is off or, before the run is confirmed, the first on span that
        confirms it (those must be stepped); returns the index of the next span to
        :meth:`step`. What stepping them would do: on spans extend the run (its last
        time and extreme), the others leave it as it is. For runs without tags;
        ``on``/``off`` false for spans that are to be ignored (missing data).
        """
        if not self.active or start >= on.size:
            return start
        stop = on.size
        offs = np.flatnonzero(off[start:])
        if offs.size:
            stop = start + int(offs[0])
        hits = start + np.flatnonzero(on[start:stop])
        if not self.confirmed and hits.size:
            confirming = np.flatnonzero(end_ns[hits] - self.start_ns >= self.min_duration_ns)
            if confirming.size:
                stop = int(hits[confirming[0]])
                hits = hits[: confirming[0]]
        if hits.size:
            self.last_ns = int(end_ns[hits[-1]])
            if self.extreme_of is Extreme.MAX:
                self.extreme = max(self.extreme, float(values[hits].max()))
            else:
                self.extreme = min(self.extreme, float(values[hits].min()))
        return stop

    def close(self) -> RunEnded | None:
        """End of stream or gap: end a confirmed run where the data ended."""
        was_confirmed = self.active and self.confirmed
        self.active = False
        if was_confirmed:
            return RunEnded(
                self.start_ns, self.last_ns, self.extreme, frozenset(self.tags), open_ended=True
            )
        return None
