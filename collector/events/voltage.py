"""Voltage dips, swells and interruptions from Urms(1/2) (IEC 61000-4-30 §5.4).

Reference voltage: the declared nominal voltage Udin when known; otherwise a
sliding reference per channel (§5.4.4): a first-order filter with a 1-minute time
constant over the Urms(1/2) values, initialised from the first one-cycle value and
frozen while any dip, swell or interruption is in progress.

An interruption is also a dip (everything below 5 % is below 90 %). Each disturbance
is reported *once*: as ``voltage_interruption`` when at some point all channels were
below the interruption threshold, otherwise as ``voltage_dip``. An interruption's
``start_ns``/``duration_s`` follow the IEC interruption rule (all channels below
5 %, ends when any is back above 7 %); the enclosing dip is in ``details``
(``dip_start_ns``, ``dip_duration_s``). Swells are independent of dips (a phase can
swell while another dips during an earth fault) and are reported separately.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from collector.events.ieee1159 import Variation, category, typical_magnitude
from collector.events.polyphase import (
    Began,
    Direction,
    Ended,
    PolyphaseTracker,
    RecentValues,
    Rule,
    channels_label,
)
from collector.model import NS_PER_S, Event, EventType, Severity

SLIDING_TIME_CONSTANT_S = 60.0  # IEC 61000-4-30 §5.4.4: 1-minute sliding reference
SWELL_CRITICAL_PCT = 120.0  # above this a swell risks equipment insulation/surge devices


@dataclass(frozen=True, slots=True)
class VoltageThresholds:
    """Thresholds in % of the reference voltage (IEC 61000-4-30 §5.4, EN 50160 practice)."""

    dip_pct: float = 90.0
    swell_pct: float = 110.0
    interruption_pct: float = 5.0
    hysteresis_pct: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.interruption_pct < self.dip_pct < 100 < self.swell_pct:
            raise ValueError(
                "thresholds: need 0 < interruption_pct < dip_pct < 100 < swell_pct, got "
                f"{self.interruption_pct}, {self.dip_pct}, {self.swell_pct}"
            )
        if not 0 <= self.hysteresis_pct < self.dip_pct - self.interruption_pct:
            raise ValueError(
                f"hysteresis_pct: must be in [0, dip_pct - interruption_pct), "
                f"got {self.hysteresis_pct}"
            )


@dataclass(frozen=True, slots=True)
class VoltageOutput:
    """What one call produced."""

    ended: tuple[Event, ...]
    started: tuple[Event, ...]
    disturbed: tuple[tuple[int, int], ...]


@dataclass
class _Disturbance:
    event_id: int
    kind: Variation  # SAG or SWELL; a SAG becomes INTERRUPTION when one happens inside
    first_reported_ns: int  # disturbed time reported so far: [first_reported, reported_until)
    reported_until_ns: int
    channel: int = 0  # channel that began it
    announced: bool = False
    interruptions: dict[int, list[int]] = field(default_factory=dict)  # seq -> [start, end]


class VoltageEventDetector:
    """Polyphase dip / swell / interruption detection on Urms(1/2) values.

    ``names`` are the phase labels reported in events (one per channel),
    ``channel_ids`` the channel ids. ``nominal_v`` None selects the sliding
    reference.
    """

    def __init__(
        self,
        names: Sequence[str],
        channel_ids: Sequence[str],
        thresholds: VoltageThresholds,
        nominal_v: float | None,
        new_id: Callable[[], int],
    ) -> None:
        if len(names) != len(channel_ids) or not names:
            raise ValueError(
                f"names/channel_ids: need equal non-zero lengths, got {len(names)} and "
                f"{len(channel_ids)}"
            )
        if nominal_v is not None and not nominal_v > 0:
            raise ValueError(f"nominal_v: must be > 0 or None, got {nominal_v}")
        self.names = tuple(names)
        self.channel_ids = tuple(channel_ids)
        self.thresholds = thresholds
        self.nominal_v = nominal_v
        self._new_id = new_id
        n = len(names)
        th = thresholds
        self._dip = PolyphaseTracker(
            n, Direction.BELOW, Rule.ANY_BEGINS, th.dip_pct, th.dip_pct + th.hysteresis_pct
        )
        self._swell = PolyphaseTracker(
            n, Direction.ABOVE, Rule.ANY_BEGINS, th.swell_pct, th.swell_pct - th.hysteresis_pct
        )
        self._interruption = PolyphaseTracker(
            n, Direction.BELOW, Rule.ALL_BEGIN, th.interruption_pct,
            th.interruption_pct + th.hysteresis_pct,
        )
        self.reference_v: NDArray[np.float64] | None = (
            np.full(n, float(nominal_v)) if nominal_v is not None else None
        )
        self._sags: dict[int, _Disturbance] = {}  # dip tracker seq -> disturbance
        self._swells: dict[int, _Disturbance] = {}
        self._parent: dict[int, int] = {}  # interruption seq -> dip seq
        self._f_hz = 50.0
        self._spans: list[tuple[int, int]] = []  # disturbed time not yet reported
        self._recent = RecentValues(n)  # values fed to the trackers, for skipping them
        self._lowest_enter = max(self._dip.enter_pct, self._interruption.enter_pct)
        self.last_pct: NDArray[np.float64] | None = None  # values of a skipped call

    @property
    def reference_mode(self) -> str:
        return "nominal" if self.nominal_v is not None else "sliding"

    @property
    def in_progress(self) -> bool:
        """A dip, swell or interruption is running or awaiting its end time."""
        return bool(self._sags or self._swells)

    def _init_reference(self, u: NDArray[np.float64]) -> bool:
        """Sliding reference from the first complete set of values; False while waiting."""
        if not np.all(np.isfinite(u)) or not float(u.max()) > 0:
            return False
        ref = u.astype(np.float64).copy()
        # A channel that starts dead or in a dip would get a useless reference: the
        # phases of one supply share a nominal, so borrow the others' median.
        healthy = ref >= 0.5 * ref.max()
        ref[~healthy] = float(np.median(ref[healthy]))
        self.reference_v = ref
        return True

    def process(
        self,
        u_v: NDArray[np.float64],
        centre_ns: NDArray[np.int64],
        f_hz: float,
    ) -> VoltageOutput:
        """Feed Urms(1/2) values ``u_v`` (n_channels, k) [V] time-stamped at window centres."""
        self._f_hz = f_hz
        half_cycle_s = 0.5 / f_hz
        alpha = half_cycle_s / SLIDING_TIME_CONSTANT_S
        self.last_pct = None
        if self._skip(u_v, centre_ns, alpha):
            return VoltageOutput((), (), ())
        trackers = (self._dip, self._interruption, self._swell)
        for tracker in trackers:
            tracker.catch_up(self._recent)
        # With a fixed reference the values are known up front: a tracker with nothing
        # in progress and no value beyond its threshold (the swell tracker during a
        # dip) is not fed; it catches up from the recent values when it is again.
        pct_all = None
        feed = [True, True, True]
        if self.nominal_v is not None and self.reference_v is not None:
            pct_all = 100.0 * u_v / self.reference_v[:, None]
            feed = [not (tr.quiet and not tr.beyond(pct_all).any()) for tr in trackers]
        ended: list[Event] = []
        fed_u: list[NDArray[np.float64]] = []
        fed_t: list[int] = []
        times = centre_ns.tolist()
        n = u_v.shape[1]
        k = 0
        while k < n:
            if pct_all is not None:
                # values that change no fed tracker's state (a sag in progress) are
                # taken in one go by every fed tracker
                end = n
                for tracker, fed in zip(trackers, feed, strict=True):
                    if fed:
                        end = min(end, tracker.coast_end(pct_all, k, end))
                if end > k:
                    for tracker, fed in zip(trackers, feed, strict=True):
                        if fed:
                            tracker.coast(pct_all, times, k, end)
                    fed_u.extend(pct_all[:, k:end].T)
                    fed_t.extend(times[k:end])
                    k = end
                    continue
            u = u_v[:, k]
            t = times[k]
            u_pct_all = None if pct_all is None else pct_all[:, k]
            k += 1
            if self.reference_v is None and not self._init_reference(u):
                continue
            ref = self.reference_v
            assert ref is not None
            u_pct = 100.0 * u / ref if u_pct_all is None else u_pct_all
            fed_u.append(u_pct)
            fed_t.append(t)
            trans_dip = self._dip.step(u_pct, t) if feed[0] else []
            trans_int = self._interruption.step(u_pct, t) if feed[1] else []
            trans_swell = self._swell.step(u_pct, t) if feed[2] else []
            for tr in trans_dip:
                if isinstance(tr, Began):
                    self._sags[tr.seq] = _Disturbance(
                        self._new_id(), Variation.SAG, tr.start_ns, tr.start_ns, tr.channel
                    )
            for tr in trans_int:
                self._interruption_transition(tr)
            for tr in trans_dip:
                if isinstance(tr, Ended):
                    ended.append(self._sag_event(tr))
            for tr in trans_swell:
                if isinstance(tr, Began):
                    self._swells[tr.seq] = _Disturbance(
                        self._new_id(), Variation.SWELL, tr.start_ns, tr.start_ns, tr.channel
                    )
                else:
                    ended.append(self._swell_event(tr))
            if self.nominal_v is None and not self.in_progress:
                finite = np.isfinite(u)
                ref[finite] += alpha * (u[finite] - ref[finite])
        if fed_t:
            self._recent.push(np.stack(fed_u, axis=1), np.array(fed_t, dtype=np.int64))
        last_t = int(centre_ns[-1]) if centre_ns.size else None
        return VoltageOutput(tuple(ended), self._announce(), self._disturbed(last_t))

    def _skip(self, u_v: NDArray[np.float64], centre_ns: NDArray[np.int64], alpha: float) -> bool:
        """Advance over values none of which crosses a threshold while nothing is in
        progress, without feeding the trackers value by value; False (and nothing
        changed) when that does not hold. The sliding reference moves exactly as the
        value-by-value loop moves it."""
        k = u_v.shape[1]
        ref = self.reference_v
        if k == 0 or ref is None or self.in_progress:
            return False
        if not (self._dip.quiet and self._swell.quiet and self._interruption.quiet):
            return False
        if self.nominal_v is not None:
            refs = ref[:, None]
            new_ref = ref
        else:
            # the first-order filter, value by value as in the loop (same roundings);
            # missing values leave it where it is
            track: list[list[float]] = []
            final: list[float] = []
            for row, r in zip(u_v.tolist(), ref.tolist(), strict=True):
                seen = []
                for u in row:
                    seen.append(r)
                    if math.isfinite(u):
                        r += alpha * (u - r)
                track.append(seen)
                final.append(r)
            refs = np.array(track)
            new_ref = np.array(final)
        u_pct = 100.0 * u_v / refs
        # fmin/fmax skip NaN (a missing value changes nothing); all NaN gives NaN
        lowest = float(np.fmin.reduce(u_pct, axis=None))
        highest = float(np.fmax.reduce(u_pct, axis=None))
        if lowest < self._lowest_enter or highest > self._swell.enter_pct:
            return False
        if new_ref is not ref:
            ref[:] = new_ref
        self._recent.push(u_pct, centre_ns)
        self.last_pct = u_pct
        return True

    def _interruption_transition(self, tr: Began | Ended) -> None:
        if isinstance(tr, Began):
            dip_seq = self._dip.active_seq
            if dip_seq is None or dip_seq not in self._sags:
                return  # all channels below 5 % are below 90 %: only NaN gaps get here
            self._parent[tr.seq] = dip_seq
            sag = self._sags[dip_seq]
            sag.kind = Variation.INTERRUPTION
            sag.interruptions[tr.seq] = [tr.start_ns, -1]
        else:
            dip_seq_or_none = self._parent.pop(tr.seq, None)
            if dip_seq_or_none is not None and dip_seq_or_none in self._sags:
                self._sags[dip_seq_or_none].interruptions[tr.seq] = [tr.start_ns, tr.end_ns]

    def _disturbed(self, last_t: int | None) -> tuple[tuple[int, int], ...]:
        spans, self._spans = self._spans, []
        running = [
            (self._sags.get(self._dip.active_seq or -1)),
            (self._swells.get(self._swell.active_seq or -1)),
        ]
        for d in running:
            if d is not None and last_t is not None and last_t > d.reported_until_ns:
                spans.append((d.reported_until_ns, last_t))
                d.reported_until_ns = last_t
        spans.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if hi <= lo:
                continue
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return tuple(merged)

    def _announce(self) -> tuple[Event, ...]:
        """Disturbances that began and are not reported as ended yet, once each."""
        out = []
        for records, tracker in ((self._sags, self._dip), (self._swells, self._swell)):
            for seq, d in records.items():
                if d.announced:
                    continue
                d.announced = True
                event_type = {
                    Variation.SAG: EventType.VOLTAGE_DIP,
                    Variation.INTERRUPTION: EventType.VOLTAGE_INTERRUPTION,
                    Variation.SWELL: EventType.VOLTAGE_SWELL,
                }[d.kind]
                starts = [iv[0] for iv in d.interruptions.values()]
                start = min(starts) if starts else d.first_reported_ns
                running = tracker.active_seq == seq
                extreme = tracker.extreme_pct if running else float("nan")
                involved = tracker.involved if running else (d.channel,)
                out.append(Event(
                    type=event_type,
                    start_ns=start,
                    duration_s=None,
                    phases=channels_label(involved, self.names),
                    severity=self._severity(d.kind, extreme),
                    channel=self.channel_ids[d.channel],
                    residual_voltage_pct=extreme if d.kind is not Variation.SWELL else None,
                    extreme_pct=extreme if d.kind is Variation.SWELL else None,
                    details={"event_id": d.event_id, "reference": self.reference_mode},
                ))
        return tuple(out)

    @staticmethod
    def _severity(kind: Variation, extreme_pct: float) -> Severity:
        if kind is Variation.INTERRUPTION:
            return Severity.CRITICAL
        if kind is Variation.SWELL and extreme_pct >= SWELL_CRITICAL_PCT:
            return Severity.CRITICAL
        return Severity.WARNING

    def _common_details(self, d: _Disturbance, tr: Ended) -> dict[str, float | str | int | bool]:
        assert self.reference_v is not None
        # the refined start/end may reach beyond the disturbed time reported so far
        if tr.start_ns < d.first_reported_ns:
            self._spans.append((tr.start_ns, d.first_reported_ns))
        if tr.end_ns > d.reported_until_ns:
            self._spans.append((d.reported_until_ns, tr.end_ns))
        ref_v = float(self.reference_v[tr.extreme_channel])
        details: dict[str, float | str | int | bool] = {
            "event_id": d.event_id,
            "reference": self.reference_mode,
            "reference_voltage_v": ref_v,
            "extreme_voltage_v": tr.extreme_pct * ref_v / 100.0,
            "extreme_channel": self.channel_ids[tr.extreme_channel],
        }
        if tr.open_ended:
            details["open_ended"] = True
        return details

    def _sag_event(self, tr: Ended) -> Event:
        d = self._sags.pop(tr.seq)
        details = self._common_details(d, tr)
        dip_duration_s = (tr.end_ns - tr.start_ns) / NS_PER_S
        threshold = self.thresholds.dip_pct
        if d.kind is Variation.INTERRUPTION:
            event_type = EventType.VOLTAGE_INTERRUPTION
            spans = sorted(d.interruptions.values())
            start = spans[0][0]
            end = max(hi if hi >= 0 else tr.end_ns for _, hi in spans)
            details["dip_start_ns"] = tr.start_ns
            details["dip_duration_s"] = dip_duration_s
            details["interruption_count"] = len(d.interruptions)
            threshold = self.thresholds.interruption_pct
        else:
            event_type = EventType.VOLTAGE_DIP
            start, end = tr.start_ns, tr.end_ns
        details["threshold_pct"] = threshold
        details["hysteresis_pct"] = self.thresholds.hysteresis_pct
        duration_s = (end - start) / NS_PER_S
        details["ieee1159_typical_magnitude"] = typical_magnitude(
            d.kind, duration_s, self._f_hz, tr.extreme_pct / 100.0
        )
        return Event(
            type=event_type,
            start_ns=start,
            duration_s=duration_s,
            phases=channels_label(tr.channels, self.names),
            severity=self._severity(d.kind, tr.extreme_pct),
            channel=self.channel_ids[tr.first_channel],
            residual_voltage_pct=tr.extreme_pct,
            category=category(d.kind, duration_s, self._f_hz),
            details=details,
        )

    def _swell_event(self, tr: Ended) -> Event:
        d = self._swells.pop(tr.seq)
        details = self._common_details(d, tr)
        details["threshold_pct"] = self.thresholds.swell_pct
        details["hysteresis_pct"] = self.thresholds.hysteresis_pct
        duration_s = (tr.end_ns - tr.start_ns) / NS_PER_S
        details["ieee1159_typical_magnitude"] = typical_magnitude(
            Variation.SWELL, duration_s, self._f_hz, tr.extreme_pct / 100.0
        )
        return Event(
            type=EventType.VOLTAGE_SWELL,
            start_ns=tr.start_ns,
            duration_s=duration_s,
            phases=channels_label(tr.channels, self.names),
            severity=self._severity(Variation.SWELL, tr.extreme_pct),
            channel=self.channel_ids[tr.first_channel],
            extreme_pct=tr.extreme_pct,
            category=category(Variation.SWELL, duration_s, self._f_hz),
            details=details,
        )

    def close(self) -> VoltageOutput:
        """End events in progress (end of stream or a gap); they are marked open-ended."""
        ended: list[Event] = []
        for tr in self._interruption.close():
            self._interruption_transition(tr)
        for tr in self._dip.close():
            ended.append(self._sag_event(tr))
        for tr in self._swell.close():
            ended.append(self._swell_event(tr))
        return VoltageOutput(tuple(ended), (), self._disturbed(None))

    def reset_stream(self) -> None:
        """Forget interpolation history after a gap (events must have been closed)."""
        for tr in (self._dip, self._swell, self._interruption):
            tr.reset_interpolation()
        self._recent.clear()
