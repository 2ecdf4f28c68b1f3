"""`gridguard run`: the collector, live, on the configured source or the simulated panel."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.live import Live

from collector.assembly import RunSettings, build_pipeline, settings_from_config
from collector.cli.common import (
    err_console,
    fail,
    open_output,
    setup_logging,
    stop_on_signals,
)
from collector.clock import Pacer, SystemClock
from collector.config.errors import ConfigError
from collector.config.load import load_config
from collector.config.models import GridGuardConfig
from collector.config.source import SourceType
from collector.live import LiveView
from collector.model import Sink, Source
from collector.sinks.jsonl import JsonLinesSink
from collector.sources.errors import RecordingError
from collector.sources.replay import ReplaySource
from collector.sources.simulated.source import SimulatedSource
from collector.sources.threaded import ThreadedSource

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = REPO_ROOT / "config" / "scenarios" / "demo.yaml"


def _simulated(scenario: Path, duration_s: float | None, seed: int | None,
               sample_rate_hz: float | None, start_ns: int) -> SimulatedSource:
    try:
        return SimulatedSource.from_scenario(
            scenario, seed=seed, sample_rate_hz=sample_rate_hz,
            duration_s=duration_s, start_ns=start_ns,
        )
    except FileNotFoundError:
        fail(f"{scenario}: scenario file not found")
    except (ValueError, ConfigError) as exc:
        fail(f"{scenario}: {exc}")


def source_from_config(cfg: GridGuardConfig, duration_s: float | None, start_ns: int) -> Source:
    """The configured source; hardware sources are imported only when configured."""
    src = cfg.source
    if src.type is SourceType.SIMULATED and src.simulated is not None:
        return _simulated(src.simulated.scenario, duration_s, src.simulated.seed,
                          src.simulated.sample_rate_hz, start_ns)
    if src.type is SourceType.REPLAY and src.replay is not None:
        try:
            return ReplaySource.open(src.replay.path,
                                     nominal_frequency_hz=float(cfg.system.nominal_frequency_hz),
                                     nominal_voltage_v=cfg.system.nominal_voltage_v)
        except RecordingError as exc:
            fail(str(exc))
    from collector.sources.hardware.registry import open_hardware_source

    try:
        hardware = open_hardware_source(cfg)
    except (KeyError, ValueError, OSError, ImportError) as exc:
        fail(f"source.type: {src.type}: {exc}")
    # meters (is_meter) never get here: run() hands them to run_meter. A converter is
    # read in its own thread so a busy pipeline (a spool fsync) never delays sampling.
    return ThreadedSource(cast(Source, hardware))


def is_meter(cfg: GridGuardConfig) -> bool:
    """True for sources that deliver finished readings (ADS1115, PZEM), not waveforms."""
    if cfg.source.type in (SourceType.SIMULATED, SourceType.REPLAY):
        return False
    from collector.sources.hardware.registry import source_kind

    return source_kind(cfg.source.type) == "meter"


def run_meter(cfg: GridGuardConfig, sinks: list[Sink], view: LiveView, live: bool,
              duration_s: float | None) -> None:
    """Read a meter source until stopped (or for ``duration_s`` of wall time)."""
    from collector.sources.hardware.meter import MeterSource, PublishStats, publish
    from collector.sources.hardware.registry import open_hardware_source

    try:
        source = cast(MeterSource, open_hardware_source(cfg))
    except (KeyError, ValueError, OSError, ImportError) as exc:
        fail(f"source.type: {cfg.source.type}: {exc}")
    stats = PublishStats()
    started = time.monotonic()
    with stop_on_signals() as stop, (
        Live(view.render(), console=err_console, refresh_per_second=2)
        if live else contextlib.nullcontext()
    ) as display:
        try:
            while not stop.is_set():
                if duration_s is not None and time.monotonic() - started >= duration_s:
                    break
                batch = source.read()
                publish(batch, sinks, stats)
                view.update(batch.metrics, batch.events, batch.started)
                for error in batch.errors:
                    err_console.print(f"[yellow]meter:[/] {error}", highlight=False)
                if display is not None:
                    display.update(view.render())
        finally:
            publish(source.close(), sinks, stats)
            for sink in sinks:
                sink.close()
    err_console.print(f"{stats.batches} readings, {stats.metrics} metric records, "
                      f"{stats.events} events"
                      + (f", sink errors {stats.sink_errors}" if stats.sink_errors else ""),
                      highlight=False)


def sinks_from_config(cfg: GridGuardConfig, *, meter: bool = False) -> list[Sink]:
    """The configured sinks (InfluxDB, MQTT when enabled); each is isolated.

    ``influx.write.interval`` chooses between the basic and the 150/180-cycle records
    of a waveform source; a meter's records (a PZEM reading, an ADS1115's 150 cycles)
    are all it makes, so every one of them is stored.
    """
    sinks: list[Sink] = []
    if cfg.influx.enabled:
        from collector.sinks.influx.from_config import sink_settings
        from collector.sinks.influx.sink import InfluxSink

        try:
            settings = sink_settings(cfg.influx, cfg.site.id)
            if meter:
                settings = dataclasses.replace(settings, intervals=None)
            sinks.append(InfluxSink(settings))
        except (ValueError, OSError) as exc:
            fail(f"influx: {exc}")
    if cfg.mqtt.enabled:
        from collector.sinks.mqtt.config_adapter import mqtt_from_config
        from collector.sinks.mqtt.sink import MqttSink

        try:
            sinks.append(MqttSink(*mqtt_from_config(cfg)))
        except (ValueError, OSError) as exc:
            fail(f"mqtt: {exc}")
    return sinks


def check_channels(cfg: GridGuardConfig, source: Source) -> None:
    """Every channel the config's circuits use must exist in the source."""
    have = {c.id for c in source.capabilities.channels}
    missing = sorted({ch for c in cfg.circuits for ch in c.current_channels} - have)
    if missing:
        fail(f"circuits[].current_channels: the source has no channel(s) {missing}; "
             f"it has {sorted(have)}")


def run(
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Use the simulated panel (no hardware).")
    ] = False,
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario file for --simulate (default: demo).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Configuration file.")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds of signal.")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Pace relative to real time; 0 = as fast as possible.")
    ] = 1.0,
    live: Annotated[bool, typer.Option(help="Show the live table.")] = True,
    metrics_out: Annotated[
        Path | None, typer.Option("--metrics-out", help="Also write metrics as JSON Lines.")
    ] = None,
    events_out: Annotated[
        Path | None, typer.Option("--events-out", help="Also write events as JSON Lines.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Simulator seed override.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the collector: measure, detect events, write to the configured sinks."""
    setup_logging(verbose)
    if speed < 0:
        fail(f"--speed: must be >= 0, got {speed}")
    if not simulate and config is None:
        fail("nothing to run: give --simulate (simulated panel) or --config FILE")
    clock = SystemClock()
    start_ns = clock.now_ns()
    cfg: GridGuardConfig | None = None
    settings = RunSettings()
    if config is not None:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            fail(str(exc))
        settings = settings_from_config(cfg)
    if cfg is not None and not simulate and is_meter(cfg):
        view = LiveView(f"GridGuard — {cfg.source.type} readings — Ctrl-C to stop")
        with open_output(metrics_out) as m_out, open_output(events_out) as e_out:
            meter_sinks = sinks_from_config(cfg, meter=True)
            if m_out is not None or e_out is not None:
                # a meter has no basic intervals: every reading it makes is written
                meter_sinks.append(JsonLinesSink(m_out, e_out, intervals=None))
            run_meter(cfg, meter_sinks, view, live, duration)
        return
    if simulate:
        source: Source = _simulated(scenario or DEFAULT_SCENARIO, duration, seed, None, start_ns)
        if cfg is not None and cfg.source.type is not SourceType.SIMULATED:
            err_console.print("[yellow]--simulate overrides source.type from the config[/]")
    else:
        assert cfg is not None
        source = source_from_config(cfg, duration, start_ns)
    if cfg is not None:
        check_channels(cfg, source)
    else:
        ratings = (
            {c.id: c.breaker_rating_a for c in source.panel.circuits}
            if isinstance(source, SimulatedSource) else {}
        )
        settings = RunSettings(
            nominal_voltage_v=source.capabilities.nominal_voltage_v, circuit_ratings_a=ratings
        )

    caps = source.capabilities
    title = (f"GridGuard — {len(caps.channels)} channels, "
             f"{caps.nominal_frequency_hz:g} Hz nominal — Ctrl-C to stop")
    view = LiveView(title)
    pacer = Pacer(clock, speed) if speed > 0 else None
    with open_output(metrics_out) as m_out, open_output(events_out) as e_out:
        sinks: list[Sink] = sinks_from_config(cfg) if cfg is not None else []
        if m_out is not None or e_out is not None:
            sinks.append(JsonLinesSink(m_out, e_out))
        pipeline = build_pipeline(caps, settings, sinks)
        started = time.monotonic()
        with stop_on_signals() as stop, (
            Live(view.render(), console=err_console, refresh_per_second=4, transient=False)
            if live else contextlib.nullcontext()
        ) as display:
            last_draw = 0.0
            for block in source.blocks():
                step = pipeline.process(block)
                view.update(step.metrics, step.events, step.started)
                if not live:
                    for e in step.events:
                        err_console.print(f"event: {e.type} {''.join(e.phases)} "
                                          f"{e.duration_s}", highlight=False)
                now = time.monotonic()
                if display is not None and now - last_draw > 0.2:
                    display.update(view.render())
                    last_draw = now
                if stop.is_set():
                    break
                if duration is not None and pipeline.stats.signal_s >= duration - 1e-9:
                    break  # sources without a length of their own (converters)
                if pacer is not None:
                    pacer.wait_for(block.duration_s)
            final = pipeline.finish()
            view.update(final.metrics, final.events, final.started)
            if display is not None:
                display.update(view.render())
        source.close()
    stats = pipeline.stats
    err_console.print(
        f"processed {stats.signal_s:.1f} s of signal in "
        f"{time.monotonic() - started:.1f} s: {stats.metrics} metric records, "
        f"{stats.events} events"
        + (f", sink errors {stats.sink_errors}" if stats.sink_errors else ""),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("run")(run)
