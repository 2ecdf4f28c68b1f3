"""``gridguard influx setup`` and ``gridguard influx backfill``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from collector.influx_admin.connection import ENV_ORG, ENV_TOKEN, ENV_URL, resolve
from collector.influx_admin.setup import COLLECTOR, DAY_S, SetupSettings, run_setup
from collector.influx_admin.tasks import ROLLUPS, backfill_query, load_templates, render
from collector.sinks.influx.errors import InfluxError
from collector.timefmt import parse_iso_utc

UrlOpt = Annotated[str | None, typer.Option("--url", envvar=ENV_URL, help="InfluxDB URL.")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", envvar=ENV_TOKEN, help="Operator (all-access) token.", show_default=False)]
OrgOpt = Annotated[str | None, typer.Option("--org", envvar=ENV_ORG, help="Organisation.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="GridGuard config file (its `influx` section).", exists=True,
    dir_okay=False)]


def influx_group(app: typer.Typer) -> typer.Typer:
    """The ``influx`` sub-command group, created once and shared with other modules."""
    for group in app.registered_groups:
        if group.name == "influx" and group.typer_instance is not None:
            return group.typer_instance
    sub = typer.Typer(help="InfluxDB: buckets, tokens and tasks.", no_args_is_help=True)
    app.add_typer(sub, name="influx")
    return sub


def _days(days: int | None, default_s: int) -> int:
    return default_s if days is None else days * DAY_S


def register(app: typer.Typer) -> None:
    group = influx_group(app)

    @group.command("setup")
    def setup(
        url: UrlOpt = None,
        token: TokenOpt = None,
        org: OrgOpt = None,
        config: ConfigOpt = None,
        token_dir: Annotated[Path | None, typer.Option(
            help="Save new credentials here as <role>.token (mode 0600) instead of "
            "printing them; the collector's is user:password (write-only, see "
            "docs/storage.md).")] = None,
        raw_days: Annotated[int | None, typer.Option(help="Raw retention [days].")] = None,
        rollup_1m_days: Annotated[int | None, typer.Option(
            help="1-minute rollup retention [days].")] = None,
        rollup_1h_days: Annotated[int | None, typer.Option(
            help="1-hour rollup retention [days].")] = None,
        events_days: Annotated[int | None, typer.Option(
            help="Events retention [days].")] = None,
        tasks_dir: Annotated[Path | None, typer.Option(
            help="Folder of the rollup .flux files (default: influx/tasks).")] = None,
        name_prefix: Annotated[str, typer.Option(
            help="Prefix of token descriptions, the collector's user name and task "
            "names.")] = "gridguard",
    ) -> None:
        """Create buckets, least-privilege credentials and rollup tasks; safe to run again."""
        console = Console()
        try:
            conn = resolve(url, token, org, config)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        base = SetupSettings()
        cfg_days = conn.retention_days

        def pick(role: str, opt: int | None, default_s: int) -> int:
            if opt is not None:
                return opt * DAY_S
            if role in cfg_days:
                value = cfg_days[role]
                return 0 if value is None else value * DAY_S
            return default_s

        try:
            settings = SetupSettings(
                raw_bucket=conn.buckets["raw"],
                raw_retention_s=pick("raw", raw_days, base.raw_retention_s),
                rollup_1m_bucket=conn.buckets["rollup_1m"],
                rollup_1m_retention_s=pick("rollup_1m", rollup_1m_days,
                                           base.rollup_1m_retention_s),
                rollup_1h_bucket=conn.buckets["rollup_1h"],
                rollup_1h_retention_s=pick("rollup_1h", rollup_1h_days,
                                           base.rollup_1h_retention_s),
                events_bucket=conn.buckets["events"],
                events_retention_s=pick("events", events_days, base.events_retention_s),
                analytics_bucket=conn.buckets["analytics"],
                analytics_retention_s=pick("analytics", None, base.analytics_retention_s),
                token_dir=token_dir,
                tasks_dir=tasks_dir,
                name_prefix=name_prefix,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        api = conn.api()
        try:
            result = run_setup(api, settings, report=console.print)
        except InfluxError as exc:
            console.print(f"[red]influx setup failed:[/red] {exc}")
            raise typer.Exit(1) from exc
        finally:
            api.close()
        for role, tok in result.tokens.items():
            if token_dir is None:
                kind = "credential (user:password)" if role == COLLECTOR else "token"
                console.print(f"{role} {kind}: {tok}", soft_wrap=True)
        for problem in result.problems:
            console.print(f"[red]not done:[/red] {problem}", soft_wrap=True)
        if result.problems:
            raise typer.Exit(1)
        console.print("nothing changed" if not result.changed else "done")

    @group.command("backfill")
    def backfill(
        start: Annotated[str, typer.Option(help="Start (ISO 8601, UTC if no offset).")],
        end: Annotated[str, typer.Option(help="End (ISO 8601).")],
        url: UrlOpt = None,
        token: TokenOpt = None,
        org: OrgOpt = None,
        config: ConfigOpt = None,
        tasks_dir: Annotated[Path | None, typer.Option(help="Folder of the .flux files.")] = None,
    ) -> None:
        """Recompute the rollups over a range (after an outage was replayed from the spool)."""
        console = Console()
        try:
            conn = resolve(url, token, org, config)
            start_ns, stop_ns = parse_iso_utc(start), parse_iso_utc(end)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        api = conn.api()
        try:
            templates = load_templates(tasks_dir)
            for task in ROLLUPS:  # 1m first: the 1h rollup reads it
                flux = render(templates[task.key], {
                    "task_name": task.key,
                    "raw_bucket": conn.buckets["raw"],
                    "rollup_1m_bucket": conn.buckets["rollup_1m"],
                    "rollup_1h_bucket": conn.buckets["rollup_1h"],
                })
                api.query_csv(backfill_query(flux, start_ns, stop_ns))
                console.print(f"recomputed {task.key} for {start} .. {end}")
        except InfluxError as exc:
            console.print(f"[red]backfill failed:[/red] {exc}")
            raise typer.Exit(1) from exc
        finally:
            api.close()
