"""The latest values to publish: metrics folded per reading topic, faults per event type.

Both books are plain state (no locks, no I/O); the sink guards them with its lock.
The broker only ever gets the *latest* value of each reading at the publish
interval, so memory stays bounded by the number of entities whatever the outage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.model import Event, EventType, Metrics
from collector.sinks.mqtt.discovery import ReadingTopic
from collector.timefmt import iso_utc

# Lower rank wins: the ~3 s aggregates are steadier than the 200 ms basic intervals,
# so once a channel delivers them the basic records only fill in before they arrive.
# A meter (PZEM-004T) delivers only its own readings.
INTERVAL_RANK: Mapping[str, int] = {"150c": 0, "180c": 0, "reading": 0, "basic": 1}

Value = float | int | bool | str | None


def _clean(value: object) -> Value:
    # JSON has no NaN/inf: an unavailable number is null, never a made-up value.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass
class _Reading:
    rank: int
    time_ns: int = 0
    interval: str = ""
    flagged: bool = False
    values: dict[str, Value] = field(default_factory=dict)


class ReadingsBook:
    """Latest value of every field per (channel, phase), and which ones changed."""

    def __init__(self, declared: Iterable[ReadingTopic] = ()) -> None:
        self._declared = {(r.channel, r.phase): r.fields for r in declared}
        self._readings: dict[tuple[str, str | None], _Reading] = {}
        self._dirty: set[tuple[str, str | None]] = set()

    def add(self, metrics: Sequence[Metrics]) -> int:
        """Fold metrics in; returns how many records were taken."""
        taken = 0
        for m in metrics:
            rank = INTERVAL_RANK.get(m.interval)
            if rank is None:
                continue  # 10-min / 2-h aggregates are for storage, not live display
            key = (m.channel, m.phase)
            r = self._readings.get(key)
            if r is None:
                r = self._readings[key] = _Reading(rank)
            elif rank > r.rank:
                continue
            r.rank = rank
            r.time_ns = m.time_ns
            r.interval = m.interval
            r.flagged = m.flagged
            for name, value in m.fields.items():
                r.values[name] = _clean(value)
            self._dirty.add(key)
            taken += 1
        return taken

    def keys(self) -> tuple[tuple[str, str | None], ...]:
        return tuple(self._readings)

    def take_dirty(self) -> list[tuple[str, str | None]]:
        """Keys changed since the last call (and forget them)."""
        dirty = sorted(self._dirty, key=lambda k: (k[0], k[1] or ""))
        self._dirty.clear()
        return dirty

    def mark_all_dirty(self) -> None:
        self._dirty.update(self._readings)

    def payload(self, key: tuple[str, str | None]) -> dict[str, Any]:
        """JSON object of a reading topic: every declared field present (null if unknown)."""
        r = self._readings[key]
        out: dict[str, Any] = {
            "time": iso_utc(r.time_ns),
            "interval": r.interval,
            "flagged": r.flagged,
        }
        for name in self._declared.get(key, ()):
            out[name] = None
        out.update(r.values)
        return out


@dataclass
class _Fault:
    open_count: int = 0  # events of this type still in progress (duration unknown)
    hold_until_s: float = -math.inf
    last: dict[str, Any] = field(default_factory=dict)
    published: bool | None = None


def event_object(e: Event) -> dict[str, Any]:
    """An event as JSON (same members as the JSON Lines contract, docs/replay-output.md)."""
    obj: dict[str, Any] = {
        "type": str(e.type),
        "start": iso_utc(e.start_ns),
        "duration_s": _clean(e.duration_s),
        "phase": "".join(e.phases) or None,
        "phases": list(e.phases),
        "channel": e.channel,
        "severity": str(e.severity),
        "category": e.category,
        "residual_voltage_pct": _clean(e.residual_voltage_pct),
        "extreme_pct": _clean(e.extreme_pct),
    }
    for key, value in e.details.items():
        obj.setdefault(key, _clean(value))
    return obj


class FaultBook:
    """On/off per event type: on while an event is in progress or ended < hold ago.

    The pipeline reports events when they end (and may report a start with
    ``duration_s`` None); a 60 ms dip would otherwise be invisible between two
    publishes, so an ended event keeps its binary sensor on for ``hold_s``,
    counted from when the collector learnt of it.
    """

    def __init__(self, hold_s: float) -> None:
        if not hold_s > 0:
            raise ValueError(f"hold_s: must be > 0 s, got {hold_s}")
        self._hold_s = hold_s
        self._faults = {t: _Fault() for t in EventType}

    def add(self, events: Sequence[Event], now_s: float) -> list[dict[str, Any]]:
        """Take events in; returns their JSON objects for the events topic."""
        out = []
        for e in events:
            f = self._faults[e.type]
            obj = event_object(e)
            if e.duration_s is None:
                f.open_count += 1
            else:
                if f.open_count:
                    f.open_count -= 1  # the end of one whose start we were told of
                f.hold_until_s = max(f.hold_until_s, now_s + self._hold_s)
            f.last = obj
            out.append(obj)
        return out

    def active(self, event_type: EventType, now_s: float) -> bool:
        f = self._faults[event_type]
        return f.open_count > 0 or now_s < f.hold_until_s

    def changes(self, now_s: float, *, force: bool = False) -> list[tuple[EventType, bool]]:
        """Types whose on/off state differs from what was last published (or all)."""
        out = []
        for t, f in self._faults.items():
            on = self.active(t, now_s)
            if force or f.published is not on:
                out.append((t, on))
        return out

    def mark_published(self, event_type: EventType, on: bool) -> None:
        self._faults[event_type].published = on

    def forget_published(self) -> None:
        """After a reconnect nothing is known to be on the broker."""
        for f in self._faults.values():
            f.published = None

    def attributes(self, event_type: EventType) -> dict[str, Any]:
        return dict(self._faults[event_type].last)

    def next_change_s(self, now_s: float) -> float | None:
        """When the next hold expires (monotonic seconds), if any is pending."""
        pending = [f.hold_until_s for f in self._faults.values() if f.hold_until_s > now_s]
        return min(pending) if pending else None
