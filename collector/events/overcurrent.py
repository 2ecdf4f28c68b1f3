"""Overcurrent per circuit: sustained overload and an instantaneous high-set.

Two rules on the half-cycle-refreshed one-cycle RMS of each of the circuit's
current channels (any channel begins a run, all must be back to end it):

- *sustained*: above ``sustained_pct`` of the breaker rating for at least
  ``min_duration_s`` (an overload the breaker's thermal element acts on later, or
  never if it sits just above the rating);
- *instantaneous*: any one-cycle value above ``instant_pct`` of the rating (a
  short-circuit level: IEC 60898-1 type B/C breakers trip magnetically at 3-5 / 5-10
  times their rating).

A motor starting at 6x its running current for 0.2 s crosses neither rule when the
motor's running current is well below the breaker rating, which is how circuits are
sized. Timing and the duration test follow :mod:`collector.events.level`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.events.level import LevelEnded, LevelEvents, LevelStarted
from collector.events.polyphase import RecentValues
from collector.model import NS_PER_S, Event, EventType, Severity

# Relative margin of the screen in amperes over the rounding of 100 * i / rating.
_SCREEN_MARGIN = 1e-9


@dataclass(frozen=True, slots=True)
class OvercurrentRule:
    """One rule: name, threshold [% of rating], minimum duration [s], severity."""

    name: str
    threshold_pct: float
    min_duration_s: float
    severity: Severity


class OvercurrentDetector:
    """Overcurrent events of one circuit."""

    def __init__(
        self,
        circuit: str,
        phases: Sequence[str],
        rating_a: float,
        rules: Sequence[OvercurrentRule],
        hysteresis_pct: float,
        f_nominal_hz: float,
        new_id: Callable[[], int],
    ) -> None:
        if not rating_a > 0:
            raise ValueError(f"circuit_ratings_a[{circuit!r}]: must be > 0, got {rating_a}")
        for rule in rules:
            if not rule.threshold_pct > hysteresis_pct >= 0:
                raise ValueError(
                    f"{rule.name} threshold_pct: must exceed hysteresis_pct={hysteresis_pct}, "
                    f"got {rule.threshold_pct}"
                )
        self.circuit = circuit
        self.phases = tuple(phases)
        self.rating_a = rating_a
        self.rules = tuple(rules)
        self._new_id = new_id
        half_cycle_ns = round(0.5 * NS_PER_S / f_nominal_hz)
        self._levels = [
            LevelEvents(
                len(self.phases), r.threshold_pct, r.threshold_pct - hysteresis_pct,
                round(r.min_duration_s * NS_PER_S), half_cycle_ns,
            )
            for r in self.rules
        ]
        self._ids: dict[tuple[int, int], int] = {}

    def process(
        self, i_rms_a: NDArray[np.float64], centre_ns: NDArray[np.int64]
    ) -> tuple[list[Event], list[Event]]:
        """Feed one-cycle RMS values (n_channels, k) [A] time-stamped at window centres."""
        return self.process_pct(100.0 * i_rms_a / self.rating_a, centre_ns)

    @property
    def enter_pct(self) -> float:
        """Lowest threshold of the rules [% of rating]."""
        return min(level.enter for level in self._levels)

    @property
    def quiet(self) -> bool:
        """No rule has a run in progress."""
        return all(level.quiet for level in self._levels)

    def catch_up(self, recent: RecentValues, rows: slice | None = None) -> None:
        """Take the history of skipped values (see :class:`.polyphase.RecentValues`)."""
        for level in self._levels:
            level.catch_up(recent, rows)

    def process_pct(
        self,
        pct: NDArray[np.float64],
        centre_ns: NDArray[np.int64],
        recent: RecentValues | None = None,
        rows: slice | None = None,
    ) -> tuple[list[Event], list[Event]]:
        """:meth:`process` with the values already in % of the rating.

        With ``recent`` (the values fed before, in %, rows ``rows``, from which the
        rules catch up when the group skipped this circuit), each rule takes the
        values that change no channel's state in one go and steps the others (the
        same events as feeding every value).
        """
        ended: list[Event] = []
        started: list[Event] = []
        # (value index, rule, order) -> transition: reported in the order of a loop
        # over values, then rules, whatever order the rules are stepped in
        found: list[tuple[int, int, int, LevelStarted | LevelEnded]] = []
        times = centre_ns.tolist()
        if recent is None:
            for k in range(pct.shape[1]):
                for r, level in enumerate(self._levels):
                    for tr in level.step(pct[:, k], times[k]):
                        found.append((k, r, len(found), tr))
        else:
            self.catch_up(recent, rows)
            for r, level in enumerate(self._levels):
                self._feed_coasting(r, level, pct, times, found)
        found.sort(key=lambda f: f[:3])
        for _, r, _, tr in found:
            if isinstance(tr, LevelStarted):
                started.append(self._event(r, tr))
            else:
                ended.append(self._event(r, tr))
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    @staticmethod
    def _feed_coasting(
        r: int,
        level: LevelEvents,
        pct: NDArray[np.float64],
        times: list[int],
        found: list[tuple[int, int, int, LevelStarted | LevelEnded]],
    ) -> None:
        """Feed ``level`` the values of a block: the values that change no channel's
        state (below the threshold while quiet, or an overload going on) are taken
        in one go (:meth:`LevelEvents.coast`), the others stepped one by one. (A
        circuit running near its rating had every value fed in Python, about 1.3 ms
        per second of signal.)"""
        n = pct.shape[1]
        k = 0
        while k < n:
            k = level.coast(pct, times, k, n)
            if k == n:
                return
            for tr in level.step(pct[:, k], times[k]):
                found.append((k, r, len(found), tr))
            k += 1

    def _event(self, r: int, tr: LevelStarted | LevelEnded) -> Event:
        rule = self.rules[r]
        key = (r, tr.seq)
        if key not in self._ids:
            self._ids[key] = self._new_id()
        event_id = self._ids[key] if isinstance(tr, LevelStarted) else self._ids.pop(key)
        details: dict[str, float | str | int | bool] = {
            "event_id": event_id,
            "rule": rule.name,
            "rating_a": self.rating_a,
            "threshold_pct": rule.threshold_pct,
            "min_duration_s": rule.min_duration_s,
            "current_max_a": tr.extreme * self.rating_a / 100.0,
        }
        duration_s = None
        if isinstance(tr, LevelEnded):
            duration_s = (tr.end_ns - tr.start_ns) / NS_PER_S
            if tr.open_ended:
                details["open_ended"] = True
        return Event(
            type=EventType.OVERCURRENT,
            start_ns=tr.start_ns,
            duration_s=duration_s,
            phases=tuple(self.phases[c] for c in sorted(set(tr.channels))) or self.phases,
            severity=rule.severity,
            channel=self.circuit,
            extreme_pct=tr.extreme,
            details=details,
        )

    def close(self) -> list[Event]:
        """End overloads in progress (end of stream or gap)."""
        return [self._event(r, tr) for r, lv in enumerate(self._levels) for tr in lv.close()]


class OvercurrentGroup:
    """The overcurrent detectors of all circuits, screened together.

    One vectorised test per block finds the circuits with a value above their lowest
    threshold; only those, and circuits with an overload in progress, are fed value
    by value. The others are skipped, which changes nothing (see
    :class:`.polyphase.RecentValues`).
    """

    def __init__(self, detectors: Sequence[tuple[OvercurrentDetector, Sequence[int]]]) -> None:
        self.detectors = tuple(det for det, _ in detectors)
        rows = [list(r) for _, r in detectors]
        for det, r in zip(self.detectors, rows, strict=True):
            if len(r) != len(det.phases):
                raise ValueError(
                    f"rows of {det.circuit!r}: expected {len(det.phases)}, got {len(r)}"
                )
        self.rows = np.array([k for r in rows for k in r], dtype=np.int64)
        self._rating = np.array(
            [det.rating_a for det, r in zip(self.detectors, rows, strict=True) for _ in r]
        )[:, None]
        self._enter = np.array(
            [det.enter_pct for det, r in zip(self.detectors, rows, strict=True) for _ in r]
        )[:, None]
        bounds = np.cumsum([0] + [len(r) for r in rows])
        self._starts = bounds[:-1]
        self._slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        # a value can be above a threshold only if it is above this [A] (the margin
        # covers the rounding of the % computation)
        self._enter_a = self._enter * self._rating / 100.0 * (1.0 - _SCREEN_MARGIN)
        self._enter_a = self._enter_a[:, 0]
        first = int(self.rows[0]) if self.rows.size else 0
        consecutive = np.array_equal(self.rows, np.arange(first, first + self.rows.size))
        self._take: slice | NDArray[np.int64] = (
            slice(first, first + self.rows.size) if consecutive else self.rows
        )
        self._recent = RecentValues(int(bounds[-1]))  # values in A
        self._busy: set[int] = set()

    def process(
        self, rms: NDArray[np.float64], centre_ns: NDArray[np.int64]
    ) -> tuple[list[Event], list[Event]]:
        """Feed one-cycle RMS values of all rows (the rows of :attr:`rows` are used) [A]."""
        ended: list[Event] = []
        started: list[Event] = []
        if not self.detectors:
            return ended, started
        current = rms[self._take]
        todo = self._busy
        # highest value per row, missing values skipped (they change nothing)
        hot_rows = np.fmax.reduce(current, axis=1) > self._enter_a
        if hot_rows.any():
            hot = np.logical_or.reduceat(hot_rows, self._starts)
            todo = todo.union(np.flatnonzero(hot).tolist())
        if todo:
            pct = 100.0 * current / self._rating
            recent = self._recent.derived(100.0 * self._recent.values / self._rating)
            for d in sorted(todo):
                det, rows = self.detectors[d], self._slices[d]
                e, st = det.process_pct(pct[rows], centre_ns, recent, rows)
                ended += e
                started += st
                if det.quiet:
                    self._busy.discard(d)
                else:
                    self._busy.add(d)
        self._recent.push(current, centre_ns)
        return ended, started

    def close(self) -> list[Event]:
        """End overloads in progress (end of stream or gap)."""
        out = [e for det in self.detectors for e in det.close()]
        self._busy.clear()
        self._recent.clear()
        return out
