"""`gridguard sensors`: find the converters, watch a channel, check the wiring.

- ``scan``: which I2C addresses answer, and which of them look like an ADS1115;
- ``test --channel ID``: live readings of one channel (RMS, DC, noise floor,
  clipping, achieved rate) for a few seconds, repeatedly if asked;
- ``diagnostic``: every channel and circuit: stuck, disconnected or pinned
  sensors, clipping and headroom, bias, reversed clamps (negative power), clamps
  on the wrong phase. Exits 1 when it finds a fault.

The hardware comes from :func:`collector.sources.hardware.environment.hardware_environment`:
the Pi's buses, or the emulator named by ``GRIDGUARD_HARDWARE_EMULATOR``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from collector.cli.common import err_console, fail, setup_logging
from collector.config.errors import ConfigError
from collector.config.load import load_config
from collector.config.models import GridGuardConfig
from collector.config.source import ADS1115_ADDRESSES, SourceType
from collector.sources.hardware.ads1115 import circuits_of
from collector.sources.hardware.diagnostics import Finding, Level, diagnose
from collector.sources.hardware.environment import (
    HardwareEnvironment,
    HardwareUnavailableError,
    I2cBus,
    hardware_environment,
)
from collector.sources.hardware.meter import MeterSource
from collector.sources.hardware.registry import open_hardware_source, open_sampler
from collector.sources.hardware.samples import Sampler
from collector.sources.hardware.slow_adc import SlowAdcSettings

ADS1X15_CONFIG_RESET = 0x8583  # SBAS444 §9.6.3
_ADDR_PIN = {0x48: "ADDR to GND", 0x49: "ADDR to VDD", 0x4A: "ADDR to SDA", 0x4B: "ADDR to SCL"}
_LEVEL_STYLE = {Level.INFO: "cyan", Level.WARNING: "yellow", Level.FAULT: "bold red"}

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Configuration YAML file.")]


def _config(path: Path) -> GridGuardConfig:
    try:
        return load_config(path, resolve_secrets=False)
    except ConfigError as exc:
        fail(str(exc))


def _hardware() -> HardwareEnvironment:
    try:
        return hardware_environment()
    except HardwareUnavailableError as exc:
        fail(str(exc))


def _sampler(cfg: GridGuardConfig, hw: HardwareEnvironment, *, calibrated: bool = True
             ) -> tuple[Sampler, SlowAdcSettings]:
    try:
        return open_sampler(cfg, hardware=hw, calibrated=calibrated)
    except HardwareUnavailableError as exc:
        fail(str(exc))


def _meter(cfg: GridGuardConfig, hw: HardwareEnvironment) -> MeterSource:
    try:
        # a pzem source is a meter source (registry kind "meter")
        return cast(MeterSource, open_hardware_source(cfg, hardware=hw))
    except HardwareUnavailableError as exc:
        fail(str(exc))


def _read_register(bus: I2cBus, address: int, reg: int) -> int | None:
    buf = bytearray(2)
    while not bus.try_lock():
        pass
    try:
        bus.writeto_then_readfrom(address, bytes([reg]), buf)
    except OSError:
        return None
    finally:
        bus.unlock()
    return (buf[0] << 8) | buf[1]


def scan(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Compare with this configuration.")
    ] = None,
    bus_number: Annotated[
        int | None, typer.Option("--bus", help="I2C bus number (default: the config's, or 1).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """List the I2C addresses that answer and which look like an ADS1115."""
    setup_logging(verbose)
    cfg = _config(config) if config is not None else None
    expected: list[int] = []
    if cfg is not None and cfg.source.type is SourceType.ADS1115 and cfg.source.ads1115:
        expected = [d.address for d in cfg.source.ads1115.devices]
        if bus_number is None:
            bus_number = cfg.source.ads1115.bus
    number = 1 if bus_number is None else bus_number
    hw = _hardware()
    try:
        bus = hw.i2c(number)
    except (HardwareUnavailableError, OSError) as exc:
        fail(f"I2C bus {number}: {exc}")
    while not bus.try_lock():
        pass
    try:
        found = bus.scan()
    finally:
        bus.unlock()
    table = Table(title=f"I2C bus {number}")
    for col in ("address", "device", "notes"):
        table.add_column(col)
    for address in found:
        device, notes = "unknown", ""
        if address in ADS1115_ADDRESSES:
            value = _read_register(bus, address, 0x01)
            if value is not None:
                device = "ADS1115/ADS1015?"
                state = "power-on default" if value == ADS1X15_CONFIG_RESET else "configured"
                notes = f"config register 0x{value:04X} ({state}); {_ADDR_PIN[address]}"
        if address in expected:
            notes = (notes + "; " if notes else "") + "in the configuration"
        table.add_row(f"0x{address:02X}", device, notes)
    console = Console()
    console.print(table)
    if not found:
        console.print("no device answers: check 3.3 V, GND, SDA (pin 3), SCL (pin 5) and that "
                      "I2C is enabled (dtparam=i2c_arm=on)")
    missing = [a for a in expected if a not in found]
    if missing:
        fail("configured but not answering: " + ", ".join(f"0x{a:02X}" for a in missing)
             + " (check the ADDR pin wiring and power)")


def _fmt(value: float | None, unit: str, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g} {unit}".strip()


def channel_readings(
    config: ConfigOption,
    channel: Annotated[str, typer.Option("--channel", help="Channel id, or its 1-based number.")],
    seconds: Annotated[float, typer.Option(help="Length of each reading [s].")] = 3.0,
    repeat: Annotated[int, typer.Option(help="How many readings (live view).")] = 1,
    raw: Annotated[bool, typer.Option("--raw", help="Without calibration.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Live readings of one channel: RMS, DC, noise floor, clipping, sample rate."""
    setup_logging(verbose)
    if not seconds > 0:
        fail(f"--seconds: must be > 0, got {seconds}")
    cfg = _config(config)
    ids = [ch.id for _, _, ch in cfg.channels.all()]
    if channel.isdigit() and 1 <= int(channel) <= len(ids):
        channel = ids[int(channel) - 1]
    if channel not in ids:
        fail(f"--channel: no channel {channel!r}; have {', '.join(ids)}")
    hw = _hardware()
    console = Console()
    if cfg.source.type is SourceType.PZEM:
        _test_meter(cfg, hw, channel, repeat, console)
        return
    sampler, settings = _sampler(cfg, hw, calibrated=not raw)
    table = Table(title=f"channel {channel} ({'raw' if raw else 'calibrated'})")
    for col in ("time (s)", "samples/s", "RMS", "DC", "noise", "min", "max", "clipped",
                "of full scale", "codes"):
        table.add_column(col, justify="right")
    t0 = sampler.clock.monotonic()
    try:
        for _ in range(max(repeat, 1)):
            samples = sampler.acquire(seconds, calibrated=not raw)
            diag = diagnose(samples, cfg, settings, circuits_of(cfg))
            s = next(x for x in diag.summaries if x.channel == channel)
            used = s.headroom_used
            codes = "-" if s.code_min is None else f"{s.code_min}..{s.code_max}"
            table.add_row(
                f"{sampler.clock.monotonic() - t0:.1f}", f"{s.rate_hz:.0f}",
                _fmt(s.rms, s.unit), _fmt(s.mean, s.unit), _fmt(s.noise_rms, s.unit),
                _fmt(s.minimum, s.unit), _fmt(s.maximum, s.unit), str(s.clipped),
                "-" if used is None else f"{100 * used:.0f} %", codes,
            )
    finally:
        sampler.close()
    console.print(table)
    info = next(c for c in sampler.capabilities.channels if c.id == channel)
    console.print(f"full scale ±{_fmt(info.full_scale, info.unit)}, one step "
                  f"{_fmt(info.resolution, info.unit)}; noise = what a harmonic fit leaves")
    for f in diag.findings:
        if f.channel == channel:
            _print_finding(console, f)


def _test_meter(cfg: GridGuardConfig, hw: HardwareEnvironment, channel: str, repeat: int,
                console: Console) -> None:
    meter = _meter(cfg, hw)
    circuit = cfg.circuit_of_channel(channel) or channel
    try:
        for _ in range(max(repeat, 1)):
            batch = meter.read()
            for problem in batch.errors:
                console.print(f"[yellow]{problem}[/]")
            for m in batch.metrics:
                if m.channel in (channel, circuit):
                    values = ", ".join(f"{k}={v:.4g}" for k, v in m.fields.items()
                                       if isinstance(v, float))
                    console.print(f"{m.channel}: {values}")
    finally:
        meter.close()


def _print_finding(console: Console, f: Finding) -> None:
    style = _LEVEL_STYLE[f.level]
    console.print(f"[{style}]{f.level.value:7}[/] {f.channel}: {f.message} [dim]({f.check})[/]",
                  highlight=False)


def diagnostic(
    config: ConfigOption,
    seconds: Annotated[float, typer.Option(help="Length of the window [s].")] = 3.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Check every channel and circuit; exit 1 when a fault is found."""
    setup_logging(verbose)
    if not seconds > 0:
        fail(f"--seconds: must be > 0, got {seconds}")
    cfg = _config(config)
    hw = _hardware()
    console = Console()
    if cfg.source.type is SourceType.PZEM:
        _diagnose_meters(cfg, hw, console)
        return
    sampler, settings = _sampler(cfg, hw)
    try:
        samples = sampler.acquire(seconds, calibrated=True)
    finally:
        sampler.close()
    diag = diagnose(samples, cfg, settings, circuits_of(cfg))
    table = Table(title=f"{len(diag.summaries)} channels over {samples.duration_s:.1f} s")
    for col in ("channel", "samples/s", "RMS", "DC", "min", "max", "clipped", "of full scale"):
        table.add_column(col, justify="right")
    for s in diag.summaries:
        used = s.headroom_used
        table.add_row(s.channel, f"{s.rate_hz:.0f}", _fmt(s.rms, s.unit), _fmt(s.mean, s.unit),
                      _fmt(s.minimum, s.unit), _fmt(s.maximum, s.unit), str(s.clipped),
                      "-" if used is None else f"{100 * used:.0f} %")
    console.print(table)
    circuits = Table(title="circuits")
    for col in ("circuit", "phase", "P", "S", "PF"):
        circuits.add_column(col, justify="right")
    for m in diag.metrics:
        if m.fields.get("power_active_w") is None:
            continue
        p, va, pf = (m.fields.get(k) for k in ("power_active_w", "power_apparent_va",
                                                "power_factor"))
        circuits.add_row(m.channel, m.phase or "",
                         _fmt(p if isinstance(p, float) else None, "W"),
                         _fmt(va if isinstance(va, float) else None, "VA"),
                         f"{pf:.3f}" if isinstance(pf, float) else "-")
    console.print(circuits)
    for f in diag.findings:
        _print_finding(console, f)
    if diag.faults:
        err_console.print(f"[bold red]{diag.faults} fault(s)[/]")
        raise typer.Exit(1)
    console.print("[green]no faults found[/]")


def _diagnose_meters(cfg: GridGuardConfig, hw: HardwareEnvironment, console: Console) -> None:
    meter = _meter(cfg, hw)
    try:
        batch = meter.read()
    finally:
        meter.close()
    for m in batch.metrics:
        console.print(f"[green]ok[/]     {m.channel}: answers")
    for problem in batch.errors:
        console.print(f"[bold red]fault[/]  {problem}", highlight=False)
    if batch.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    sensors = typer.Typer(
        name="sensors",
        help="Find the converters, watch a channel, check the wiring.",
        no_args_is_help=True,
    )
    sensors.command("scan")(scan)
    sensors.command("test")(channel_readings)
    sensors.command("diagnostic")(diagnostic)
    app.add_typer(sensors, name="sensors")
