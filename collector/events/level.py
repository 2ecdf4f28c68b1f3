"""Threshold events with a minimum duration on half-cycle-refreshed one-cycle values.

Overcurrent, ground fault and open neutral read "value above a limit for at least
T". The values come every half cycle from one-cycle windows, so this reuses the
polyphase tracker (:mod:`.polyphase`): hysteresis per channel, "any channel
begins, all must end", and start/end times refined to the instant of the
transition, within a small fraction of a cycle for step changes.

Because the duration is only known to about half a cycle, the minimum-duration
test allows half a cycle: an overload lasting exactly the minimum time counts.
A run is announced (``LevelStarted``) as soon as it has lasted the minimum time and
reported (``LevelEnded``) one cycle after it ends, when its end time is refined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.events.polyphase import (
    Began,
    Direction,
    Ended,
    PolyphaseTracker,
    RecentValues,
    Rule,
)


@dataclass(frozen=True, slots=True)
class LevelStarted:
    """A run has lasted the minimum time and is still going."""

    seq: int
    start_ns: int
    extreme: float
    channels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LevelEnded:
    """A run that lasted the minimum time has ended."""

    seq: int
    start_ns: int
    end_ns: int
    extreme: float
    channels: tuple[int, ...]
    announced: bool
    open_ended: bool = False


@dataclass
class _Run:
    start_ns: int
    announced: bool = False


class LevelEvents:
    """Values above ``enter`` (ending at or below ``leave``) for at least ``min_duration_ns``."""

    def __init__(
        self,
        n_channels: int,
        enter: float,
        leave: float,
        min_duration_ns: int,
        tolerance_ns: int,
    ) -> None:
        if min_duration_ns < 0 or tolerance_ns < 0:
            raise ValueError(
                f"min_duration_ns/tolerance_ns: must be >= 0, got {min_duration_ns}, "
                f"{tolerance_ns}"
            )
        self._tracker = PolyphaseTracker(n_channels, Direction.ABOVE, Rule.ANY_BEGINS, enter,
                                         leave)
        self.min_duration_ns = min_duration_ns
        self.tolerance_ns = tolerance_ns
        self._runs: dict[int, _Run] = {}

    @property
    def active(self) -> bool:
        """A run is in progress (announced or not)."""
        return self._tracker.active

    @property
    def enter(self) -> float:
        """Values above this begin a run."""
        return self._tracker.enter_pct

    @property
    def quiet(self) -> bool:
        """Nothing in progress: values not above :attr:`enter` change nothing but history."""
        return self._tracker.quiet

    def catch_up(self, recent: RecentValues, rows: slice | None = None) -> None:
        """See :meth:`PolyphaseTracker.catch_up`."""
        self._tracker.catch_up(recent, rows)

    def _long_enough(self, duration_ns: int) -> bool:
        return duration_ns >= self.min_duration_ns - self.tolerance_ns

    def coast(
        self, values: NDArray[np.float64], times_ns: Sequence[int], start: int, stop: int
    ) -> int:
        """:meth:`PolyphaseTracker.coast` over ``values[:, start:stop]`` as far as it
        goes (a quiet stretch, or a run in progress whose values change no channel's
        state), stopping at the value that makes a run long enough to be announced
        (that one must be stepped); returns the index of the next value to
        :meth:`step`."""
        seq = self._tracker.active_seq
        run = None if seq is None else self._runs.get(seq)
        if run is not None and not run.announced:
            deadline = run.start_ns + self.min_duration_ns - self.tolerance_ns
            stop = next((k for k in range(start, stop) if times_ns[k] >= deadline), stop)
        end = self._tracker.coast_end(values, start, stop)
        self._tracker.coast(values, times_ns, start, end)
        return end

    def step(self, values: NDArray[np.float64], t_ns: int) -> list[LevelStarted | LevelEnded]:
        """Feed one value per channel at window centre ``t_ns``."""
        out: list[LevelStarted | LevelEnded] = []
        for tr in self._tracker.step(values, t_ns):
            if isinstance(tr, Began):
                self._runs[tr.seq] = _Run(tr.start_ns)
            else:
                out += self._ended(tr)
        seq = self._tracker.active_seq
        if seq is not None and seq in self._runs:
            run = self._runs[seq]
            if not run.announced and self._long_enough(t_ns - run.start_ns):
                run.announced = True
                out.append(LevelStarted(seq, run.start_ns, self._tracker.extreme_pct,
                                        self._tracker.involved))
        return out

    def _ended(self, tr: Ended) -> list[LevelEnded]:
        run = self._runs.pop(tr.seq, None)
        announced = run is not None and run.announced
        if not (announced or self._long_enough(tr.end_ns - tr.start_ns)):
            return []
        return [LevelEnded(tr.seq, tr.start_ns, tr.end_ns, tr.extreme_pct, tr.channels,
                           announced, tr.open_ended)]

    def close(self) -> list[LevelEnded]:
        """End runs in progress (end of stream or gap)."""
        out: list[LevelEnded] = []
        for tr in self._tracker.close():
            out += self._ended(tr)
        return out
