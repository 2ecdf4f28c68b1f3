"""The `gridguard` command: one typer app; each command module registers itself."""

from __future__ import annotations

import typer

from collector.cli import (
    calibrate_cmd,
    config_cmd,
    export_cmd,
    influx_cmd,
    replay_cmd,
    rules_cmd,
    run_cmd,
    sensors_cmd,
    simulate_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="gridguard",
    help="GridGuard: power monitoring and fault detection for the Raspberry Pi.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (
    run_cmd, replay_cmd, simulate_cmd, config_cmd, influx_cmd, rules_cmd, export_cmd,
    sensors_cmd, calibrate_cmd, worker_cmd,
):
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
