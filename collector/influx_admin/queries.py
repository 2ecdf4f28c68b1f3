"""Flux text builders and the parser of Flux's annotated CSV (exact nanosecond times)."""

from __future__ import annotations

import csv
import io
from calendar import timegm
from collections.abc import Iterable, Sequence
from datetime import datetime

from collector.influx_admin.rollups import Rollup, rollup_of
from collector.nomenclature import FIELDS, Measurement, Tag, field_spec

NS_PER_S = 1_000_000_000


def flux_string(text: str) -> str:
    """A Flux string literal (quotes, backslashes and ``${`` escaped)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{body}"'


def flux_time(t_ns: int) -> str:
    """An exact Flux time from integer nanoseconds since the epoch."""
    return f"time(v: {int(t_ns)})"


def flux_set(values: Iterable[str]) -> str:
    return "[" + ", ".join(flux_string(v) for v in values) + "]"


def parse_rfc3339_ns(text: str) -> int:
    """``2026-01-31T12:00:00.123456789Z`` -> ns since epoch, without float rounding."""
    if not text.endswith("Z"):
        raise ValueError(f"time: expected an RFC 3339 UTC time ending in Z, got {text!r}")
    body = text[:-1]
    whole, _, frac = body.partition(".")
    seconds = timegm(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").timetuple())
    return seconds * NS_PER_S + int((frac + "000000000")[:9])


def _convert(datatype: str, text: str) -> object:
    if text == "":
        return None
    if datatype == "double":
        return float(text)
    if datatype in ("long", "unsignedLong"):
        return int(text)
    if datatype == "boolean":
        return text == "true"
    if datatype.startswith("dateTime"):
        return parse_rfc3339_ns(text)
    return text


def parse_annotated_csv(text: str) -> list[dict[str, object]]:
    """Rows of every table of a Flux annotated-CSV answer, values typed.

    Times (``_time``, ``_start``, ``_stop``) become integer nanoseconds.
    """
    rows: list[dict[str, object]] = []
    datatypes: list[str] = []
    header: list[str] | None = None
    for record in csv.reader(io.StringIO(text)):
        if not record or all(not cell for cell in record):
            header = None
            continue
        if record[0] == "#datatype":
            datatypes = record
            header = None
            continue
        if record[0].startswith("#"):
            continue
        if header is None:
            header = record
            continue
        row: dict[str, object] = {}
        for k, (name, cell) in enumerate(zip(header, record, strict=False)):
            if not name:
                continue
            dtype = datatypes[k] if k < len(datatypes) else "string"
            row[name] = _convert(dtype, cell)
        rows.append(row)
    return rows


# -- query builders -----------------------------------------------------------


def metrics_measurements() -> tuple[str, ...]:
    return (Measurement.ELECTRICAL.value, Measurement.HARMONICS.value,
            Measurement.POLYPHASE.value)


def _field_filter(fields: Sequence[str] | None) -> str:
    if not fields:
        return ""
    for name in fields:
        field_spec(name)  # KeyError names an unknown field before a query is sent
    return f"\n    |> filter(fn: (r) => contains(value: r._field, set: {flux_set(fields)}))"


def _circuit_filter(circuits: Sequence[str] | None) -> str:
    if not circuits:
        return ""
    return (f"\n    |> filter(fn: (r) => contains(value: r.{Tag.CIRCUIT.value}, "
            f"set: {flux_set(circuits)}))")


def aggregate_pipelines(source: str, every: str) -> str:
    """Flux that aggregates ``source`` (a table-stream variable) per the rollup table.

    Used by ``gridguard export --aggregate 1d``: the same function per field as the
    rollup tasks, so a day is the mean of hours, the max of maxima, the last counter.
    """
    parts: list[str] = []
    names_used: list[str] = []
    for rollup in Rollup:
        names = [f.name for f in FIELDS if rollup_of(f) is rollup]
        cond = f"contains(value: r._field, set: {flux_set(names)})"
        if rollup is Rollup.MEAN:
            cond = f'r._measurement == "{Measurement.HARMONICS.value}" or {cond}'
        elif not names:
            continue
        var = f"{rollup.value}_t"
        names_used.append(var)
        parts.append(f"{var} = {source}\n    |> filter(fn: (r) => {cond})\n"
                     + rollup.flux_aggregate(every))
    return "\n".join(parts) + f"\nunion(tables: [{', '.join(names_used)}])"


def export_query(
    bucket: str,
    start_ns: int,
    stop_ns: int,
    *,
    circuits: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    every: str | None = None,
) -> str:
    """Flux for one export chunk: one row per (measurement, tags, time), fields as columns."""
    measurements = flux_set(metrics_measurements())
    src = (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: {flux_time(start_ns)}, stop: {flux_time(stop_ns)})\n"
        f"    |> filter(fn: (r) => contains(value: r._measurement, set: {measurements}))"
        + _circuit_filter(circuits) + _field_filter(fields)
    )
    if every is None:
        body = f"data = {src}\ndata"
    else:
        body = f"data = {src}\n" + aggregate_pipelines("data", every)
    return (
        body
        + '\n    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        + '\n    |> drop(columns: ["_start", "_stop"])'
        + '\n    |> group()'
        + '\n    |> sort(columns: ["_time", "circuit", "_measurement"])'
    )


def latest_query(bucket: str, lookback: str, fields: Sequence[str]) -> str:
    """Latest value of ``fields`` per circuit/phase/interval, pivoted to one row each."""
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: -{lookback})\n"
        f'    |> filter(fn: (r) => r._measurement == "{Measurement.ELECTRICAL.value}")\n'
        f"    |> filter(fn: (r) => contains(value: r._field, set: {flux_set(fields)}))\n"
        "    |> last()\n"
        '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        '    |> drop(columns: ["_start", "_stop"])\n'
        "    |> group()\n"
        '    |> sort(columns: ["circuit", "interval"])'
    )


def stats_query(
    bucket: str, start_ns: int, stop_ns: int, intervals: Sequence[str] | None
) -> str:
    """Per circuit and phase: energy imported/exported, peak and mean active power.

    ``intervals`` restricts the records to one aggregation (e.g. the ~3 s ones), so
    a counter is not counted once per aggregation level.
    """
    rng = f"range(start: {flux_time(start_ns)}, stop: {flux_time(stop_ns)})"
    interval_filter = (
        f"\n    |> filter(fn: (r) => contains(value: r.interval, set: {flux_set(intervals)}))"
        if intervals else ""
    )
    base = (
        f"from(bucket: {flux_string(bucket)})\n    |> {rng}\n"
        f'    |> filter(fn: (r) => r._measurement == "{Measurement.ELECTRICAL.value}")'
        + interval_filter
    )
    return (
        f"base = {base}\n"
        # increase() treats a drop as a counter reset (collector restart), so a
        # restart never produces negative energy.
        "energy = base\n"
        '    |> filter(fn: (r) => r._field == "energy_import_wh" or '
        'r._field == "energy_export_wh")\n'
        "    |> increase()\n    |> last()\n"
        'peak = base |> filter(fn: (r) => r._field == "power_active_w") |> max()\n'
        '    |> set(key: "_field", value: "power_peak_w")\n'
        'avg = base |> filter(fn: (r) => r._field == "power_active_w") |> mean()\n'
        '    |> set(key: "_field", value: "power_mean_w")\n'
        "union(tables: [energy, peak, avg])\n"
        '    |> keep(columns: ["circuit", "phase", "interval", "_field", "_value"])\n'
        "    |> group()\n"
        '    |> sort(columns: ["circuit", "phase", "_field"])'
    )
