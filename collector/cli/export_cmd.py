"""``gridguard export``, ``gridguard status`` and ``gridguard stats``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from collector.cli.influx_cmd import ConfigOpt, OrgOpt, TokenOpt, UrlOpt
from collector.influx_admin.connection import Connection, resolve
from collector.influx_admin.export import (
    Aggregate,
    ExportFormat,
    ExportRequest,
    export,
    iso_ns,
)
from collector.influx_admin.queries import latest_query, stats_query
from collector.sinks.influx.errors import InfluxError
from collector.sinks.influx.spool import read_depth
from collector.timefmt import parse_iso_utc

NS_PER_S = 1_000_000_000
STATUS_FIELDS = ("voltage_rms_v", "current_rms_a", "power_active_w", "power_factor",
                 "frequency_hz", "energy_import_wh", "energy_export_wh")
STATS_INTERVALS = ("150c", "180c")


def _connect(url: str | None, token: str | None, org: str | None,
             config: Path | None) -> Connection:
    try:
        return resolve(url, token, org, config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _csv_list(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else ()


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        start: Annotated[str, typer.Option(help="Start, ISO 8601 (UTC if no offset).")],
        end: Annotated[str, typer.Option(help="End (exclusive), ISO 8601.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
        fmt: Annotated[ExportFormat, typer.Option("--format", help="csv, json or xlsx.")] = (
            ExportFormat.CSV),
        aggregate: Annotated[Aggregate, typer.Option(
            help="raw, 1m, 1h (rollup buckets) or 1d (days from the 1-hour rollup).")] = (
            Aggregate.RAW),
        circuits: Annotated[str | None, typer.Option(
            help="Comma-separated circuit ids (default: all).")] = None,
        fields: Annotated[str | None, typer.Option(
            help="Comma-separated field names (default: all present).")] = None,
        url: UrlOpt = None,
        token: TokenOpt = None,
        org: OrgOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        """Export stored metrics for a time range."""
        conn = _connect(url, token, org, config)
        try:
            req = ExportRequest(
                start_ns=parse_iso_utc(start), stop_ns=parse_iso_utc(end),
                aggregate=aggregate, circuits=_csv_list(circuits), fields=_csv_list(fields),
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        console = Console(stderr=True)
        api = conn.api()
        try:
            with Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=True) as bar:
                job = bar.add_task("chunks", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(job, completed=done, total=total)

                n = export(api, conn.buckets, req, fmt, output, progress=advance)
        except (InfluxError, KeyError) as exc:
            console.print(f"[red]export failed:[/red] {exc}")
            raise typer.Exit(1) from exc
        finally:
            api.close()
        console.print(f"wrote {n} rows to {output}")

    @app.command("status")
    def status_cmd(
        url: UrlOpt = None,
        token: TokenOpt = None,
        org: OrgOpt = None,
        config: ConfigOpt = None,
        lookback: Annotated[str, typer.Option(help="How far back to look (Flux duration).")] = (
            "1h"),
        spool: Annotated[Path | None, typer.Option(
            help="Spool file (default: from the config).")] = None,
    ) -> None:
        """Latest readings per circuit from InfluxDB, and the local spool depth."""
        conn = _connect(url, token, org, config)
        console = Console()
        spool_path = spool or conn.spool_path
        depth = read_depth(spool_path)
        if depth is None:
            console.print(f"spool {spool_path}: none")
        else:
            console.print(f"spool {spool_path}: {depth.points} points in {depth.batches} "
                          f"batches ({depth.bytes / 1e6:.1f} MB)")
        api = conn.api()
        try:
            rows = api.query(latest_query(conn.buckets["raw"], lookback, STATUS_FIELDS))
        except InfluxError as exc:
            console.print(f"[red]InfluxDB:[/red] {exc}")
            raise typer.Exit(1) from exc
        finally:
            api.close()
        table = Table(title=f"latest readings (last {lookback})")
        for col in ("circuit", "phase", "interval", "time (UTC)", *STATUS_FIELDS):
            table.add_column(col)
        for row in rows:
            table.add_row(
                _fmt(row.get("circuit")), _fmt(row.get("phase")), _fmt(row.get("interval")),
                iso_ns(int(row["_time"]))[:23] + "Z",  # type: ignore[call-overload]
                *[_fmt(row.get(f), 3 if f == "power_factor" else 2) for f in STATUS_FIELDS],
            )
        console.print(table if rows else f"no readings in the last {lookback}")

    @app.command("stats")
    def stats_cmd(
        days: Annotated[int, typer.Option(min=1, help="Days back from now.")] = 1,
        url: UrlOpt = None,
        token: TokenOpt = None,
        org: OrgOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        """Per circuit: energy imported/exported, peak and average active power."""
        conn = _connect(url, token, org, config)
        console = Console()
        stop_ns = time.time_ns()
        start_ns = stop_ns - days * 86_400 * NS_PER_S
        raw_days = conn.retention_days.get("raw", 7) or 10**6
        m1_days = conn.retention_days.get("rollup_1m", 90) or 10**6
        if days <= raw_days:
            bucket, note = conn.buckets["raw"], "peak of ~3 s values"
        elif days <= m1_days:
            bucket, note = conn.buckets["rollup_1m"], "peak of 1-minute means"
        else:
            bucket, note = conn.buckets["rollup_1h"], "peak of 1-hour means"
        api = conn.api()
        try:
            rows = api.query(stats_query(bucket, start_ns, stop_ns, STATS_INTERVALS))
        except InfluxError as exc:
            console.print(f"[red]InfluxDB:[/red] {exc}")
            raise typer.Exit(1) from exc
        finally:
            api.close()
        per: dict[tuple[str, str], dict[str, object]] = {}
        for row in rows:
            key = (str(row.get("circuit")), str(row.get("phase") or ""))
            per.setdefault(key, {})[str(row["_field"])] = row.get("_value")
        table = Table(title=f"last {days} d ({bucket}; {note})")
        for col in ("circuit", "phase", "import Wh", "export Wh", "peak W", "mean W"):
            table.add_column(col)
        for (circuit, phase), vals in sorted(per.items()):
            imp, exp = vals.get("energy_import_wh"), vals.get("energy_export_wh")
            table.add_row(
                circuit, phase or "-",
                _fmt(imp, 1), _fmt(exp, 1),
                _fmt(vals.get("power_peak_w"), 1), _fmt(vals.get("power_mean_w"), 1),
            )
        console.print(table if per else "no data in that period")
