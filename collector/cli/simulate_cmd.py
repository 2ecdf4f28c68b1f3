"""`gridguard simulate`: write the simulated panel as a COMTRADE recording."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer
from rich.progress import Progress

from collector.capture.comtrade_writer import write_comtrade
from collector.cli.common import err_console, fail
from collector.config.errors import ConfigError
from collector.sources.simulated.scenario import load_scenario
from collector.sources.simulated.source import SimulatedSource

# 15 channels x 6.4 kS/s x 8 bytes: about 46 MB per minute held in memory
MAX_DURATION_S = 600.0


def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML (see docs/simulation.md).")],
    out: Annotated[Path, typer.Option("--out", help="COMTRADE .cfg to write (.dat beside it).")],
    duration: Annotated[
        float | None, typer.Option(help="Seconds to simulate (default: the scenario's).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed override.")] = None,
    sample_rate: Annotated[
        float | None, typer.Option("--sample-rate", help="Sample rate override [Hz].")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="BINARY, BINARY32, FLOAT32 or ASCII.")
    ] = "BINARY32",
) -> None:
    """Run SCENARIO on the simulated panel and write it as a COMTRADE 2013 recording."""
    if out.suffix.lower() != ".cfg":
        fail(f"--out: expected a .cfg file name, got {out}")
    if fmt not in ("BINARY", "BINARY32", "FLOAT32", "ASCII"):
        fail(f"--format: expected BINARY, BINARY32, FLOAT32 or ASCII, got {fmt}")
    if duration is not None and not duration > 0:
        fail(f"--duration: must be > 0 s, got {duration}")
    try:
        loaded = load_scenario(scenario)
    except FileNotFoundError:
        fail(f"{scenario}: scenario file not found")
    except ConfigError as exc:
        fail(str(exc))
    total = duration if duration is not None else loaded.duration_s
    if total is None:
        fail(f"{scenario}: the scenario runs forever (duration_s: null); give --duration")
    if total > MAX_DURATION_S:
        fail(f"--duration: at most {MAX_DURATION_S:g} s per recording, got {total:g}")
    try:
        source = SimulatedSource.from_scenario(
            loaded, seed=seed, sample_rate_hz=sample_rate, duration_s=total
        )
    except ValueError as exc:
        fail(f"{scenario}: {exc}")
    pieces = []
    t0_ns: int | None = None
    fs = 0.0
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("simulating", total=total)
        for block in source.blocks():
            if t0_ns is None:
                t0_ns, fs = block.t0_ns, block.fs_hz
            pieces.append(block.samples)
            progress.advance(task, block.duration_s)
    if t0_ns is None:
        fail(f"{scenario}: the simulation produced no samples")
    samples = np.concatenate(pieces, axis=1)
    kind: Literal["BINARY", "BINARY32", "FLOAT32", "ASCII"] = fmt  # type: ignore[assignment]
    try:
        cfg, dat = write_comtrade(
            out, source.capabilities.channels, samples, fs, t0_ns, fmt=kind,
            station="GridGuard simulated panel",
            line_frequency_hz=source.capabilities.nominal_frequency_hz,
        )
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror or exc}")
    err_console.print(
        f"wrote {cfg} and {dat.name}: {samples.shape[0]} channels, {samples.shape[1]} samples "
        f"at {fs:g} Hz ({samples.shape[1] / fs:.2f} s)", highlight=False,
    )
    for d in source.scheduled:
        err_console.print(f"  scheduled: {d.label} at {d.start_s:.3f} s to {d.end_s:.3f} s",
                          highlight=False)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
