"""Ground (earth) fault from residual current.

The residual current is either measured (a core-balance CT on a RESIDUAL_CURRENT
channel) or formed sample by sample as the sum of a circuit's line and neutral
currents, which Kirchhoff says is zero unless current leaves through earth. The sum
needs all of the circuit's conductors measured, simultaneously, with every CT
oriented towards the load.

Rule: the one-cycle RMS of the residual current, refreshed every half cycle, above
``threshold_a`` for at least ``min_duration_s``. The defaults, 30 mA and 40 ms, are
the rated residual operating current of a personal-protection RCD (IEC 61008-1
IΔn = 30 mA) and its maximum break time at 5 IΔn (40 ms).

A summed residual also contains the mismatch of the CTs (a 1 % ratio error on 20 A
reads as 200 mA of "leakage"), so its threshold grows with the load:
``max(threshold_a, tolerance_pct/100 * largest line current)``. This is an
appliance-side indication, never a substitute for an RCD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, Event, EventType, Severity

from .level import LevelEnded, LevelEvents, LevelStarted


@dataclass(frozen=True, slots=True)
class GroundFaultSettings:
    """Threshold [A], minimum duration [s], hysteresis [% of threshold], CT tolerance [%]."""

    threshold_a: float = 0.030
    min_duration_s: float = 0.04
    hysteresis_pct: float = 2.0
    sum_tolerance_pct: float = 1.0

    def __post_init__(self) -> None:
        if not self.threshold_a > 0:
            raise ValueError(f"ground_fault_threshold_a: must be > 0, got {self.threshold_a}")
        if not self.min_duration_s >= 0:
            raise ValueError(
                f"ground_fault_min_duration_s: must be >= 0, got {self.min_duration_s}"
            )
        if not 0 <= self.hysteresis_pct < 100:
            raise ValueError(f"hysteresis_pct: must be in [0, 100), got {self.hysteresis_pct}")
        if not self.sum_tolerance_pct >= 0:
            raise ValueError(
                f"ground_fault_sum_tolerance_pct: must be >= 0, got {self.sum_tolerance_pct}"
            )


class GroundFaultDetector:
    """Ground-fault events of one residual-current source (measured or summed)."""

    def __init__(
        self,
        name: str,
        phases: Sequence[str],
        method: str,
        settings: GroundFaultSettings,
        f_nominal_hz: float,
        new_id: Callable[[], int],
    ) -> None:
        if method not in ("measured", "summed"):
            raise ValueError(f"method: expected 'measured' or 'summed', got {method!r}")
        self.name = name
        self.phases = tuple(phases)
        self.method = method
        self.settings = settings
        self._new_id = new_id
        # values are fed in % of the (load-dependent) threshold
        self._level = LevelEvents(
            1, 100.0, 100.0 - settings.hysteresis_pct,
            round(settings.min_duration_s * NS_PER_S), round(0.5 * NS_PER_S / f_nominal_hz),
        )
        self._ids: dict[int, int] = {}
        self._max_a = 0.0
        self._threshold_at_max_a = settings.threshold_a

    def process(
        self,
        residual_a: NDArray[np.float64],
        line_max_a: NDArray[np.float64] | None,
        centre_ns: NDArray[np.int64],
    ) -> tuple[list[Event], list[Event]]:
        """Feed residual RMS values (k,) [A] and, for a summed residual, the largest line RMS."""
        s = self.settings
        ended: list[Event] = []
        started: list[Event] = []
        for k in range(residual_a.size):
            value = float(residual_a[k])
            threshold = s.threshold_a
            if line_max_a is not None and np.isfinite(line_max_a[k]):
                threshold = max(threshold, s.sum_tolerance_pct / 100.0 * float(line_max_a[k]))
            was_active = self._level.active
            for tr in self._level.step(np.array([100.0 * value / threshold]), int(centre_ns[k])):
                if isinstance(tr, LevelStarted):
                    started.append(self._event(tr))
                else:
                    ended.append(self._event(tr))
                    self._max_a = 0.0
            if (self._level.active or was_active) and np.isfinite(value) and value > self._max_a:
                self._max_a, self._threshold_at_max_a = value, threshold
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    def _event(self, tr: LevelStarted | LevelEnded) -> Event:
        if tr.seq not in self._ids:
            self._ids[tr.seq] = self._new_id()
        event_id = self._ids[tr.seq] if isinstance(tr, LevelStarted) else self._ids.pop(tr.seq)
        details: dict[str, float | str | int | bool] = {
            "event_id": event_id,
            "method": self.method,
            "residual_current_max_a": self._max_a,
            "threshold_a": self._threshold_at_max_a,
            "min_duration_s": self.settings.min_duration_s,
        }
        duration_s = None
        if isinstance(tr, LevelEnded):
            duration_s = (tr.end_ns - tr.start_ns) / NS_PER_S
            if tr.open_ended:
                details["open_ended"] = True
        return Event(
            type=EventType.GROUND_FAULT,
            start_ns=tr.start_ns,
            duration_s=duration_s,
            phases=self.phases,
            severity=Severity.CRITICAL,
            channel=self.name,
            extreme_pct=100.0 * self._max_a / self.settings.threshold_a,
            details=details,
        )

    def close(self) -> list[Event]:
        """End a fault in progress (end of stream or gap)."""
        out = [self._event(tr) for tr in self._level.close()]
        self._max_a = 0.0
        return out
