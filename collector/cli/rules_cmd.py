"""``gridguard influx sync``: install, update and remove the fault-rule tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from collector.cli.influx_cmd import OrgOpt, TokenOpt, UrlOpt, influx_group
from collector.influx_admin.connection import resolve
from collector.sinks.influx.errors import InfluxError


def register(app: typer.Typer) -> None:
    group = influx_group(app)

    @group.command("sync")
    def sync(
        config: Annotated[Path, typer.Option(
            "--config", help="GridGuard config file: thresholds, circuits, buckets.",
            exists=True, dir_okay=False)],
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Show what would change; change nothing.")] = False,
        diff: Annotated[bool, typer.Option(
            "--diff/--no-diff", help="Print the Flux diff of created, updated and removed "
            "tasks.")] = True,
        url: UrlOpt = None,
        token: TokenOpt = None,
        org: OrgOpt = None,
        name_prefix: Annotated[str, typer.Option(
            help="Prefix of the task names (<prefix>-rule/<site>/<type>).")] = "gridguard",
    ) -> None:
        """Make the fault-rule tasks match the config; safe to run again."""
        from collector.config.errors import ConfigError
        from collector.config.load import load_config
        from collector.rules.flux_rules import task_prefix, tasks_from_config
        from collector.rules.sync import Action, sync_tasks

        console = Console(highlight=False)
        try:
            cfg = load_config(config, resolve_secrets=False)
        except ConfigError as exc:
            console.print(f"[red]config:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from exc
        try:
            conn = resolve(url, token, org, config)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        tasks = tasks_from_config(cfg, name_prefix)
        api = conn.api()

        def report(line: str) -> None:
            console.print(escape(line))

        try:
            result = sync_tasks(
                api, tasks, task_prefix(cfg.site.id, name_prefix),
                events_bucket=cfg.influx.buckets.events, site=cfg.site.id,
                dry_run=dry_run, report=report,
            )
        except InfluxError as exc:
            console.print(f"[red]influx sync failed:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from exc
        finally:
            api.close()
        if diff:
            for change in result.changes:
                if change.action is not Action.UNCHANGED and change.diff:
                    console.print(escape(change.diff.rstrip("\n")), soft_wrap=True)
        if result.resolved_faults:
            console.print(f"resolved {result.resolved_faults} fault(s) of removed rules")
        summary = result.summary()
        console.print(f"dry run: {summary}" if dry_run else summary)
