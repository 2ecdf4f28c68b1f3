"""``gridguard export``: metrics over a time range to CSV, JSON or XLSX, queried in chunks.

One row per record (measurement, site, circuit, phase, interval, time) with one column
per field. Times are UTC: RFC 3339 text with nanoseconds in CSV/JSON, an Excel date
(UTC, millisecond resolution like the stored data) in XLSX. Numbers are written as
stored (CSV/JSON use Python's shortest round-trip text, so no digit is lost).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.queries import (
    export_query,
    flux_set,
    flux_string,
    flux_time,
    metrics_measurements,
)
from collector.nomenclature import FIELDS

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
TAG_COLUMNS = ("measurement", "site", "circuit", "phase", "interval")


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    XLSX = "xlsx"


class Aggregate(StrEnum):
    """Resolution of the export: the bucket read, and a further aggregation for days."""

    RAW = "raw"
    M1 = "1m"
    H1 = "1h"
    D1 = "1d"


# Query chunk per resolution: a few thousand rows per circuit per request.
_CHUNK_NS = {
    Aggregate.RAW: 3600 * NS_PER_S,
    Aggregate.M1: DAY_NS,
    Aggregate.H1: 31 * DAY_NS,
    Aggregate.D1: 366 * DAY_NS,
}


@dataclass(frozen=True, slots=True)
class ExportRequest:
    start_ns: int
    stop_ns: int
    aggregate: Aggregate = Aggregate.RAW
    circuits: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.stop_ns <= self.start_ns:
            raise ValueError(f"end: must be after start, got start={self.start_ns} ns, "
                             f"end={self.stop_ns} ns")


def source(aggregate: Aggregate, buckets: dict[str, str]) -> tuple[str, str | None]:
    """(bucket to read, window to aggregate to or None)."""
    if aggregate is Aggregate.RAW:
        return buckets["raw"], None
    if aggregate is Aggregate.M1:
        return buckets["rollup_1m"], None
    if aggregate is Aggregate.H1:
        return buckets["rollup_1h"], None
    return buckets["rollup_1h"], "1d"


def chunks(start_ns: int, stop_ns: int, chunk_ns: int) -> list[tuple[int, int]]:
    """[start, stop) cut at multiples of ``chunk_ns`` since the epoch.

    Aligned cuts never split an aggregation window (a day chunk ends at UTC midnight).
    """
    out: list[tuple[int, int]] = []
    a = start_ns
    while a < stop_ns:
        b = min(stop_ns, (a // chunk_ns + 1) * chunk_ns)
        out.append((a, b))
        a = b
    return out


_FIELD_ORDER = {f.name: k for k, f in enumerate(FIELDS)}
_HARMONIC = re.compile(r"^(voltage|current)_h(\d+)_(v|a)$")


def field_order(name: str) -> tuple[int, int, str]:
    """Nomenclature order; harmonics after the table, voltage before current, by order."""
    if name in _FIELD_ORDER:
        return (0, _FIELD_ORDER[name], name)
    match = _HARMONIC.match(name)
    if match:
        return (1, (0 if match[1] == "voltage" else 1000) + int(match[2]), name)
    return (2, 0, name)


def field_columns(api: InfluxApi, bucket: str, req: ExportRequest) -> list[str]:
    """The fields present in the range (or the requested ones), in nomenclature order."""
    if req.fields:
        return sorted(req.fields, key=field_order)
    flux = (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: {flux_time(req.start_ns)}, stop: {flux_time(req.stop_ns)})\n"
        f"    |> filter(fn: (r) => contains(value: r._measurement, "
        f"set: {flux_set(metrics_measurements())}))\n"
        + (f"    |> filter(fn: (r) => contains(value: r.circuit, set: {flux_set(req.circuits)}))\n"
           if req.circuits else "")
        + '    |> keep(columns: ["_field"])\n    |> group()\n    |> distinct(column: "_field")'
    )
    names = {str(row["_value"]) for row in api.query(flux) if row.get("_value") is not None}
    return sorted(names, key=field_order)


def iter_rows(
    api: InfluxApi, buckets: dict[str, str], req: ExportRequest,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[dict[str, object]]:
    """Export rows, chunk by chunk, each with ``time_ns``, the tag columns and fields."""
    bucket, every = source(req.aggregate, buckets)
    parts = chunks(req.start_ns, req.stop_ns, _CHUNK_NS[req.aggregate])
    for k, (a, b) in enumerate(parts):
        flux = export_query(bucket, a, b, circuits=req.circuits or None,
                            fields=req.fields or None, every=every)
        rows = []
        for raw in api.query(flux):
            row: dict[str, object] = {"time_ns": raw.pop("_time")}
            row["measurement"] = raw.pop("_measurement", None)
            for tag in TAG_COLUMNS[1:]:
                row[tag] = raw.pop(tag, None)
            raw.pop("result", None)
            raw.pop("table", None)
            row.update(raw)
            rows.append(row)
        rows.sort(key=lambda r: (r["time_ns"], str(r["circuit"]), str(r["measurement"]),
                                 str(r["phase"]), str(r["interval"])))
        yield from rows
        if progress is not None:
            progress(k + 1, len(parts))


def iso_ns(t_ns: int) -> str:
    """RFC 3339 UTC with nanoseconds (trailing zeros kept: fixed width sorts as text)."""
    seconds, rem = divmod(t_ns, NS_PER_S)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:09d}Z"


def excel_time(t_ns: int) -> datetime:
    """Naive UTC datetime (Excel has no time zones) to the microsecond."""
    seconds, rem = divmod(t_ns, NS_PER_S)
    return datetime(1970, 1, 1) + timedelta(seconds=seconds, microseconds=rem // 1000)


def _write_csv(rows: Iterator[dict[str, object]], columns: list[str], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", *TAG_COLUMNS, *columns])
    n = 0
    for row in rows:
        writer.writerow([iso_ns(int(row["time_ns"]))]  # type: ignore[call-overload]
                        + [_csv_cell(row.get(c)) for c in (*TAG_COLUMNS, *columns)])
        n += 1
    return n


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_json(rows: Iterator[dict[str, object]], columns: list[str], out: IO[str]) -> int:
    out.write("[")
    n = 0
    for row in rows:
        obj: dict[str, Any] = {"time": iso_ns(int(row["time_ns"]))}  # type: ignore[call-overload]
        for c in TAG_COLUMNS:
            obj[c] = row.get(c)
        for c in columns:
            if row.get(c) is not None:
                obj[c] = row[c]
        out.write(("\n" if n == 0 else ",\n") + json.dumps(obj, allow_nan=False))
        n += 1
    out.write("\n]\n")
    return n


def _write_xlsx(rows: Iterator[dict[str, object]], columns: list[str], path: Path) -> int:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("gridguard")
    ws.append(["time (UTC)", *TAG_COLUMNS, *columns])
    n = 0
    for row in rows:
        ws.append([excel_time(int(row["time_ns"]))]  # type: ignore[call-overload]
                  + [row.get(c) for c in (*TAG_COLUMNS, *columns)])
        n += 1
    wb.save(str(path))
    return n


def export(
    api: InfluxApi,
    buckets: dict[str, str],
    req: ExportRequest,
    fmt: ExportFormat,
    output: Path,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the export file; returns the number of rows."""
    bucket, _ = source(req.aggregate, buckets)
    columns = field_columns(api, bucket, req)
    rows = iter_rows(api, buckets, req, progress)
    if fmt is ExportFormat.XLSX:
        return _write_xlsx(rows, columns, output)
    with output.open("w", encoding="utf-8", newline="") as out:
        if fmt is ExportFormat.CSV:
            return _write_csv(rows, columns, out)
        return _write_json(rows, columns, out)
