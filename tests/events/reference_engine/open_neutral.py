"""Open (lost) neutral from diverging phase voltages.

When the neutral conductor of a split-phase (120/240 V) or three-phase four-wire
supply breaks upstream of the panel, the star point floats: the more lightly loaded
leg rises towards the line-to-line voltage and the heavily loaded leg falls, while
the line-to-line voltage stays intact. A supply-side dip or swell instead moves the
legs *together*.

Rule, on Urms(1/2) values in % of each channel's reference:

- some leg at or above ``100 + divergence_pct`` *and* another at or below
  ``100 - divergence_pct`` at the same time;
- split phase (exactly two voltage channels) additionally: the line-to-line RMS
  (of ``v_a - v_b``) within ``divergence_pct`` of twice the reference, i.e. the legs
  still add up to ~2x nominal (which also tells a split-phase pair from two phases of
  a three-phase system, whose line-to-line voltage is sqrt(3)x nominal);
- persisting for ``min_duration_s``; it ends when the legs are back within the
  divergence limits less the hysteresis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, Event, EventType, Severity

from .level import LevelEnded, LevelEvents, LevelStarted


class OpenNeutralDetector:
    """Open-neutral events across the phase-voltage channels of one supply."""

    def __init__(
        self,
        phases: Sequence[str],
        channel_ids: Sequence[str],
        divergence_pct: float,
        hysteresis_pct: float,
        min_duration_s: float,
        f_nominal_hz: float,
        new_id: Callable[[], int],
    ) -> None:
        if len(phases) < 2:
            raise ValueError(f"phases: open-neutral detection needs >= 2 legs, got {phases}")
        if not divergence_pct > hysteresis_pct >= 0:
            raise ValueError(
                f"open_neutral_divergence_pct: must exceed hysteresis_pct={hysteresis_pct}, "
                f"got {divergence_pct}"
            )
        self.phases = tuple(phases)
        self.channel_ids = tuple(channel_ids)
        self.split_phase = len(phases) == 2
        self.divergence_pct = divergence_pct
        self.hysteresis_pct = hysteresis_pct
        self.min_duration_s = min_duration_s
        self._new_id = new_id
        # The score is 100 + how far the legs are apart in both directions [pp]: it
        # exceeds 100 + d only when one leg is >= 100 + d and another <= 100 - d.
        self._level = LevelEvents(
            1, 100.0 + divergence_pct, 100.0 + divergence_pct - hysteresis_pct,
            round(min_duration_s * NS_PER_S), round(0.5 * NS_PER_S / f_nominal_hz),
        )
        self._ids: dict[int, int] = {}
        self._reset_extremes()

    def _reset_extremes(self) -> None:
        self._highest_pct = float("-inf")
        self._lowest_pct = float("inf")
        self._ll_pct = float("nan")

    def _score(self, u_pct: NDArray[np.float64], ll_pct: float) -> float:
        score = 100.0 + min(float(u_pct.max()) - 100.0, 100.0 - float(u_pct.min()))
        if self.split_phase and abs(ll_pct - 100.0) > self.divergence_pct:
            return 0.0  # the legs do not add up to ~2x nominal: not an open neutral
        return score

    def process(
        self,
        u_pct: NDArray[np.float64],
        ll_pct: NDArray[np.float64] | None,
        centre_ns: NDArray[np.int64],
    ) -> tuple[list[Event], list[Event]]:
        """Feed leg voltages (n_legs, k) [% of reference] and, for split phase, the
        line-to-line RMS (k,) [% of twice the reference]."""
        if self.split_phase and ll_pct is None:
            raise ValueError("ll_pct: required for a split-phase (two-leg) supply")
        ended: list[Event] = []
        started: list[Event] = []
        for k in range(u_pct.shape[1]):
            col = u_pct[:, k]
            ll = float(ll_pct[k]) if ll_pct is not None else 200.0
            finite = bool(np.all(np.isfinite(col)) and np.isfinite(ll))
            score = self._score(col, ll) if finite else float("nan")
            was_active = self._level.active
            for tr in self._level.step(np.array([score]), int(centre_ns[k])):
                if isinstance(tr, LevelStarted):
                    started.append(self._event(tr))
                else:
                    ended.append(self._event(tr))
                    self._reset_extremes()
            if (self._level.active or was_active) and finite:
                if float(col.max()) > self._highest_pct:
                    self._highest_pct = float(col.max())
                if float(col.min()) < self._lowest_pct:
                    self._lowest_pct, self._ll_pct = float(col.min()), ll
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    def _event(self, tr: LevelStarted | LevelEnded) -> Event:
        if tr.seq not in self._ids:
            self._ids[tr.seq] = self._new_id()
        event_id = self._ids[tr.seq] if isinstance(tr, LevelStarted) else self._ids.pop(tr.seq)
        details: dict[str, float | str | int | bool] = {
            "event_id": event_id,
            "system": "split_phase" if self.split_phase else "three_phase",
            "highest_leg_pct": self._highest_pct,
            "lowest_leg_pct": self._lowest_pct,
            "divergence_threshold_pct": self.divergence_pct,
            "min_duration_s": self.min_duration_s,
        }
        if self.split_phase:
            details["line_to_line_pct_of_2x_reference"] = self._ll_pct
        duration_s = None
        if isinstance(tr, LevelEnded):
            duration_s = (tr.end_ns - tr.start_ns) / NS_PER_S
            if tr.open_ended:
                details["open_ended"] = True
        return Event(
            type=EventType.OPEN_NEUTRAL,
            start_ns=tr.start_ns,
            duration_s=duration_s,
            phases=self.phases,
            severity=Severity.CRITICAL,
            channel=self.channel_ids[0],
            extreme_pct=self._highest_pct,
            details=details,
        )

    def close(self) -> list[Event]:
        """End an event in progress (end of stream or gap)."""
        out = [self._event(tr) for tr in self._level.close()]
        self._reset_extremes()
        return out
