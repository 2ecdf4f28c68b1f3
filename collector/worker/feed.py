"""Recent metrics from InfluxDB for the worker (when it does not run inside the collector).

Each poll reads the last ``lookback_s`` of the chosen interval records from the raw
bucket and returns those not seen before, so a record the collector wrote late (from
its spool, after an outage) is still picked up while it is inside the window. The
token needs read access to the raw bucket.
"""

from __future__ import annotations

import logging
from typing import Protocol

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.queries import flux_set, flux_string, flux_time
from collector.model import NS_PER_S, Metrics
from collector.nomenclature import Measurement, Tag, field_spec
from collector.sinks.influx.errors import InfluxError

log = logging.getLogger(__name__)

FEED_FIELDS = (
    "voltage_rms_v", "voltage_crest_factor", "frequency_hz",
    "current_rms_a", "current_crest_factor",
    "power_active_w", "power_apparent_va", "power_factor",
)
"""What the worker's rules read: I²t (current), shedding (power), sensor health (all)."""


class MetricsFeed(Protocol):
    def poll(self, now_ns: int) -> list[Metrics]: ...


def feed_query(bucket: str, start_ns: int, stop_ns: int, intervals: frozenset[str],
               fields: tuple[str, ...]) -> str:
    """Flux: the records of ``intervals`` in [start, stop), one row per record."""
    for name in fields:
        field_spec(name)  # an unknown name fails here, not as an empty answer
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: {flux_time(start_ns)}, stop: {flux_time(stop_ns)})\n"
        f'    |> filter(fn: (r) => r._measurement == "{Measurement.ELECTRICAL.value}")\n'
        f"    |> filter(fn: (r) => contains(value: r.{Tag.INTERVAL.value}, "
        f"set: {flux_set(sorted(intervals))}))\n"
        f"    |> filter(fn: (r) => contains(value: r._field, set: {flux_set(fields)}))\n"
        '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        '    |> drop(columns: ["_start", "_stop"])\n'
        "    |> group()\n"
        '    |> sort(columns: ["_time"])'
    )


class InfluxMetricsFeed:
    """Polls the raw bucket; remembers what it returned for one lookback window."""

    def __init__(self, api: InfluxApi, bucket: str, intervals: frozenset[str], *,
                 lookback_s: float = 120.0, fields: tuple[str, ...] = FEED_FIELDS) -> None:
        if not lookback_s > 0:
            raise ValueError(f"lookback_s: must be > 0 s, got {lookback_s}")
        self._api = api
        self._bucket = bucket
        self._intervals = intervals
        self._lookback_ns = round(lookback_s * NS_PER_S)
        self._fields = fields
        self._seen: dict[tuple[str, str | None, str, int], None] = {}

    def poll(self, now_ns: int) -> list[Metrics]:
        start_ns = now_ns - self._lookback_ns
        query = feed_query(self._bucket, start_ns, now_ns + 1, self._intervals, self._fields)
        try:
            rows = self._api.query(query)
        except InfluxError as exc:
            log.warning("worker feed: query of bucket %r failed: %s", self._bucket, exc)
            return []
        out: list[Metrics] = []
        for row in rows:
            t_ns, circuit = row.get("_time"), row.get(Tag.CIRCUIT.value)
            interval = row.get(Tag.INTERVAL.value)
            if not isinstance(t_ns, int) or not isinstance(circuit, str) \
                    or not isinstance(interval, str):
                continue
            phase_raw = row.get(Tag.PHASE.value)
            phase = phase_raw if isinstance(phase_raw, str) and phase_raw else None
            key = (circuit, phase, interval, t_ns)
            if key in self._seen:
                continue
            self._seen[key] = None
            fields: dict[str, float | int | bool | str | None] = {}
            for name in self._fields:
                value = row.get(name)
                if isinstance(value, int | float | bool | str):
                    fields[name] = value
            out.append(Metrics(t_ns, interval, circuit, phase, fields))
        self._seen = {k: None for k in self._seen if k[3] >= start_ns}
        return out
