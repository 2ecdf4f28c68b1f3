"""JSON Lines output of metrics and events: the `gridguard replay` contract."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from typing import IO, Any

from collector.model import Event, Metrics, is_announcement
from collector.timefmt import iso_utc

_HARMONIC = re.compile(r"^(voltage|current)_h(\d+)_(v|a)$")


def _clean(value: object) -> object:
    # JSON has no NaN/inf; an unavailable number is null, never a made-up value.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics_object(m: Metrics, *, harmonics: bool = False) -> dict[str, Any]:
    """One ``"kind": "metrics"`` object; harmonic groups folded into lists when wanted."""
    obj: dict[str, Any] = {
        "kind": "metrics",
        "time": iso_utc(m.time_ns),
        "interval": m.interval,
        "channel": m.channel,
        "phase": m.phase,
    }
    groups: dict[str, dict[int, object]] = {}
    for name, value in m.fields.items():
        match = _HARMONIC.match(name)
        if match:
            if harmonics:
                groups.setdefault(f"{match[1]}_harmonics_{match[3]}", {})[int(match[2])] = value
            continue
        obj[name] = _clean(value)
    for key, by_order in groups.items():
        top = max(by_order)
        obj[key] = [_clean(by_order.get(n)) for n in range(1, top + 1)]
    obj["flagged"] = m.flagged
    return obj


def event_object(e: Event) -> dict[str, Any]:
    """One ``"kind": "event"`` object."""
    obj: dict[str, Any] = {
        "kind": "event",
        "type": str(e.type),
        "start": iso_utc(e.start_ns),
        # the recording ended during the event: its true duration is unknown
        "duration_s": None if e.details.get("open_ended") else _clean(e.duration_s),
        "phase": "".join(e.phases) or None,
        "phases": list(e.phases),
        "channel": e.channel,
        "severity": str(e.severity),
        "category": e.category,
    }
    if e.residual_voltage_pct is not None:
        obj["residual_voltage_pct"] = _clean(e.residual_voltage_pct)
    if e.extreme_pct is not None:
        obj["extreme_pct"] = _clean(e.extreme_pct)
    for key, value in e.details.items():
        obj.setdefault(key, _clean(value))
    return obj


class JsonLinesSink:
    """Writes metrics and events as JSON Lines to already-open text streams."""

    def __init__(
        self,
        metrics_out: IO[str] | None,
        events_out: IO[str] | None,
        *,
        intervals: Collection[str] | None = ("basic",),
        harmonics: bool = False,
    ) -> None:
        self._metrics_out = metrics_out
        self._events_out = events_out
        self._intervals = None if intervals is None else frozenset(intervals)  # None: all
        self._harmonics = harmonics

    def publish(self, metrics: Sequence[Metrics], events: Sequence[Event]) -> None:
        if self._metrics_out is not None:
            for m in metrics:
                if self._intervals is None or m.interval in self._intervals:
                    obj = metrics_object(m, harmonics=self._harmonics)
                    self._metrics_out.write(json.dumps(obj, allow_nan=False) + "\n")
        if self._events_out is not None:
            for e in events:
                if is_announcement(e):
                    continue  # one line per event: written when it has ended
                self._events_out.write(json.dumps(event_object(e), allow_nan=False) + "\n")

    def close(self) -> None:
        for stream in (self._metrics_out, self._events_out):
            if stream is not None:
                stream.flush()
