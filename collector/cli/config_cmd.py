"""`gridguard config`: check a configuration file, print the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from collector.config import (
    ConfigError,
    ConfigProblem,
    GridGuardConfig,
    check_environment,
    load_config_with_warnings,
    parse_config,
)
from collector.config.dump import to_yaml
from collector.config.summary import summary_renderables


def minimal_config() -> dict[str, object]:
    """The smallest configuration the simulator runs with; show-defaults fills in the rest."""
    return {
        "site": {"id": "demo"},
        "system": {"type": "three_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "simulated", "simulated": {"scenario": "scenarios/demo.yaml"}},
        "channels": {
            "voltage": [{"id": "va", "phase": "A"}, {"id": "vb", "phase": "B"},
                        {"id": "vc", "phase": "C"}],
            "current": [{"id": "i_kitchen", "phase": "A"}],
        },
        "circuits": [
            {"id": "kitchen", "phases": ["A"], "current_channels": ["i_kitchen"],
             "breaker_rating_a": 16},
        ],
    }


def _print_problems(console: Console, title: str, problems: tuple[ConfigProblem, ...]) -> None:
    # soft_wrap: one problem per line, however long, so the lines can be grepped
    console.print(f"[bold red]{title}[/]", highlight=False, soft_wrap=True)
    for p in problems:
        console.print(f"  - {p}", markup=False, highlight=False, soft_wrap=True)


def check(
    file: Annotated[Path, typer.Argument(help="Configuration YAML file.")],
    secrets: Annotated[
        bool,
        typer.Option(
            "--secrets/--no-secrets",
            help="Read *_env / *_file secrets (as the service would at start).",
        ),
    ] = True,
    strict: Annotated[bool, typer.Option(help="Treat warnings as errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print problems only.")] = False,
) -> None:
    """Validate FILE and print a summary; exit code 1 when it is invalid."""
    console = Console()
    errors = Console(stderr=True)
    try:
        config, warnings = load_config_with_warnings(file, resolve_secrets=secrets)
    except ConfigError as exc:
        n = len(exc.problems)
        _print_problems(errors, f"{exc.source}: invalid configuration ({n} problem"
                        f"{'s' if n != 1 else ''})", exc.problems)
        raise typer.Exit(1) from None
    env_problems = tuple(check_environment(config))
    if env_problems:
        _print_problems(errors, f"{file}: {len(env_problems)} problem(s) on this machine",
                        env_problems)
    if not quiet:
        console.print(summary_renderables(config, warnings))
    elif warnings:
        _print_problems(console, f"{len(warnings)} warning(s)", warnings)
    if env_problems or (strict and warnings):
        raise typer.Exit(1)
    console.print(f"[bold green]{file}: configuration is valid[/]"
                  + (f" ({len(warnings)} warning(s))" if warnings else ""), highlight=False,
                  soft_wrap=True)


def show_defaults(
    file: Annotated[
        Path | None,
        typer.Argument(help="Configuration to fill in; default: a minimal simulator config."),
    ] = None,
) -> None:
    """Print a configuration with every default filled in, as YAML (secrets masked)."""
    errors = Console(stderr=True)
    try:
        if file is None:
            config: GridGuardConfig = parse_config(minimal_config(), source="<minimal>")
        else:
            config, _ = load_config_with_warnings(file, resolve_secrets=False)
    except ConfigError as exc:
        _print_problems(errors, f"{exc.source}: invalid configuration", exc.problems)
        raise typer.Exit(1) from None
    typer.echo(to_yaml(config), nl=False)


def register(app: typer.Typer) -> None:
    """Add the `config` command group to the gridguard CLI."""
    group = typer.Typer(
        help="Validate and inspect configuration files.", no_args_is_help=True
    )
    group.command("check")(check)
    group.command("show-defaults")(show_defaults)
    app.add_typer(group, name="config")
