"""`gridguard replay`: process a COMTRADE or WAV recording faster than real time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collector.assembly import RunSettings, build_pipeline, settings_from_config
from collector.cli.common import err_console, fail, open_output, setup_logging
from collector.config.errors import ConfigError
from collector.config.load import load_config
from collector.model import Event
from collector.sinks.jsonl import JsonLinesSink
from collector.sources.errors import RecordingError
from collector.sources.replay import ReplaySource
from collector.timefmt import iso_utc


def replay(
    recording: Annotated[Path, typer.Argument(help="COMTRADE .cfg/.cff or .wav file.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file: thresholds, nominal values.")
    ] = None,
    nominal_voltage: Annotated[
        float | None,
        typer.Option("--nominal-voltage", help="Nominal phase voltage [V] (Udin) for events."),
    ] = None,
    nominal_frequency: Annotated[
        float | None, typer.Option("--nominal-frequency", help="Nominal frequency [Hz].")
    ] = None,
    metrics_out: Annotated[
        Path | None,
        typer.Option("--metrics-out", help="JSON Lines file for metrics ('-' = stdout)."),
    ] = None,
    events_out: Annotated[
        Path | None, typer.Option("--events-out", help="JSON Lines file for events ('-' = stdout).")
    ] = None,
    intervals: Annotated[
        str, typer.Option(help="Comma-separated intervals to write: basic,150c,180c,10min,2h.")
    ] = "basic",
    harmonics: Annotated[
        bool, typer.Option("--harmonics", help="Add harmonic group lists to metrics.")
    ] = False,
    channels: Annotated[
        str | None,
        typer.Option(help="Comma-separated channel ids, names or 1-based numbers to replay."),
    ] = None,
    capture_dir: Annotated[
        Path | None, typer.Option(help="Write a COMTRADE waveform capture per event here.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Replay RECORDING through the measurement chain and write JSON Lines."""
    setup_logging(verbose)
    settings = RunSettings()
    if config is not None:
        try:
            settings = settings_from_config(load_config(config, resolve_secrets=False))
        except ConfigError as exc:
            fail(str(exc))
    if nominal_voltage is not None and not nominal_voltage > 0:
        fail(f"--nominal-voltage: must be > 0, got {nominal_voltage}")
    if nominal_frequency is not None and not 10 <= nominal_frequency <= 1000:
        fail(f"--nominal-frequency: expected 10..1000 Hz (50 or 60), got {nominal_frequency}")
    wanted: list[str | int] | None = None
    if channels:
        wanted = [int(c) if c.strip().isdigit() else c.strip() for c in channels.split(",")]
    try:
        source = ReplaySource.open(
            recording,
            channels=wanted,
            nominal_frequency_hz=nominal_frequency or settings.nominal_frequency_hz,
            nominal_voltage_v=nominal_voltage or settings.nominal_voltage_v,
        )
    except RecordingError as exc:
        fail(str(exc))
    except (ValueError, KeyError) as exc:
        fail(f"{recording}: {exc}")
    except OSError as exc:
        fail(f"{recording}: {exc.strerror or exc}")

    caps = source.capabilities
    table = Table(title=f"{recording.name}: channels replayed", title_justify="left")
    for col in ("id", "name", "#", "quantity", "phase", "circuit", "rate Hz"):
        table.add_column(col)
    rows = {r.id: r for r in source.channel_table()}
    for ch in caps.channels:
        row = rows[ch.id]
        table.add_row(ch.id, row.name, str(row.number), str(ch.quantity), str(ch.phase or ""),
                      ch.circuit or "", f"{ch.rate_hz:g}")
    err_console.print(table)
    for note in source.notes:
        err_console.print(f"[dim]note:[/] {note}", highlight=False)
    err_console.print(
        f"nominal {caps.nominal_frequency_hz:g} Hz, reference voltage "
        + (f"{caps.nominal_voltage_v:.3f} V (declared)" if caps.nominal_voltage_v
           else "pre-event level (sliding reference)"),
        highlight=False,
    )

    chosen = {i.strip() for i in intervals.split(",") if i.strip()}
    if capture_dir is not None:
        settings = RunSettings(**{**settings.__dict__, "capture_dir": capture_dir})
    total_s = sum(seg.duration_s for seg in source.segments)
    events: list[Event] = []
    started = time.perf_counter()
    with open_output(metrics_out) as m_out, open_output(events_out) as e_out:
        sink = JsonLinesSink(m_out, e_out, intervals=chosen, harmonics=harmonics)
        pipeline = build_pipeline(caps, settings, [sink])
        with Progress(TextColumn("replaying"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeRemainingColumn(), console=err_console, transient=True) as progress:
            task = progress.add_task("replay", total=max(total_s, 1e-9))
            for block in source.blocks():
                events.extend(pipeline.process(block).events)
                progress.advance(task, block.duration_s)
            events.extend(pipeline.finish().events)
    elapsed = time.perf_counter() - started
    stats = pipeline.stats
    err_console.print(
        f"{total_s:.3f} s of recording in {elapsed:.2f} s "
        f"({total_s / elapsed if elapsed > 0 else float('inf'):.0f}x real time): "
        f"{stats.metrics} metric records, {len(events)} events",
        highlight=False,
    )
    for e in events:
        depth = (f"residual {e.residual_voltage_pct:.1f} %" if e.residual_voltage_pct is not None
                 else f"extreme {e.extreme_pct:.1f} %" if e.extreme_pct is not None else "")
        dur = f"{e.duration_s:.4f} s" if e.duration_s is not None else "open-ended"
        err_console.print(f"  {iso_utc(e.start_ns)} {e.type} {''.join(e.phases)} {dur} {depth}",
                          highlight=False)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
