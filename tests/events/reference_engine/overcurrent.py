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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, Event, EventType, Severity

from .level import LevelEnded, LevelEvents, LevelStarted


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
        ended: list[Event] = []
        started: list[Event] = []
        pct = 100.0 * i_rms_a / self.rating_a
        for k in range(pct.shape[1]):
            for r, level in enumerate(self._levels):
                for tr in level.step(pct[:, k], int(centre_ns[k])):
                    if isinstance(tr, LevelStarted):
                        started.append(self._event(r, tr))
                    else:
                        ended.append(self._event(r, tr))
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

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
