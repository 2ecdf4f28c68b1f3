"""`gridguard calibrate`: offsets, gains and phase against a reference meter.

Interactive (prompts between steps and for the meter's readings) or scripted
(``--yes`` with ``--reference`` values for one channel, or a ``--readings`` YAML
plan for several)::

    # one CT, two loads read on a clamp meter, then the phase with a kettle
    gridguard calibrate -c gridguard.yaml --channel i_kitchen --reference 5.02 \\
        --reference 12.1 --yes

    # a plan for several channels
    gridguard calibrate -c gridguard.yaml --readings plan.yaml --yes

    # plan.yaml
    reference_instrument: Fluke 87V
    reference_accuracy_pct: 0.7     # the meter's ± % of reading at 50 Hz
    zero: true                      # loads off first: offsets
    gain:                           # one entry per load, reference RMS per channel
      - {v_a: 230.4, i_kitchen: 5.02}
      - {i_kitchen: 12.1}
    phase: true                     # a resistive load (kettle, heater) last

The result is printed (fits, residuals, uncertainties) and written as a versioned
calibration file (docs/calibration.md); ``--verify`` instead measures with the
current calibration and compares with the reference readings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from collector.calibration.file_format import (
    CalibrationFile,
    CalibrationFileError,
    read_calibration,
    write_calibration,
)
from collector.calibration.procedure import (
    CalibrationRun,
    ChannelResult,
    calibration_file,
    default_calibration_id,
)
from collector.calibration.resolve import calibration_for
from collector.cli.common import err_console, fail, setup_logging
from collector.config.errors import ConfigError
from collector.config.load import load_config
from collector.config.models import GridGuardConfig
from collector.model import NS_PER_S
from collector.sources.hardware.environment import HardwareUnavailableError, hardware_environment
from collector.sources.hardware.registry import open_sampler
from collector.sources.hardware.samples import Sampler
from collector.sources.hardware.slow_adc import SlowAdcSettings, estimate_channels


class Plan:
    """What to do: steps and the reference readings, from options or a YAML plan."""

    def __init__(self, *, zero: bool, phase: bool, gain: list[dict[str, float]],
                 accuracy_pct: float, instrument: str | None) -> None:
        self.zero = zero
        self.phase = phase
        self.gain = gain
        self.accuracy_pct = accuracy_pct
        self.instrument = instrument


def _plan_from_yaml(path: Path, zero: bool, phase: bool, accuracy_pct: float,
                    instrument: str | None) -> Plan:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"--readings {path}: {exc}")
    if not isinstance(data, dict):
        fail(f"--readings {path}: expected a mapping with gain, zero, phase")
    unknown = set(data) - {"zero", "gain", "phase", "reference_accuracy_pct",
                           "reference_instrument"}
    if unknown:
        fail(f"--readings {path}: unknown keys {sorted(unknown)}")
    gain: list[dict[str, float]] = []
    for k, point in enumerate(data.get("gain") or []):
        if not isinstance(point, dict) or not point:
            fail(f"--readings {path}: gain[{k}]: expected {{channel: reference RMS}}, "
                 f"got {point!r}")
        try:
            gain.append({str(c): float(v) for c, v in point.items()})
        except (TypeError, ValueError):
            fail(f"--readings {path}: gain[{k}]: references must be numbers, got {point!r}")
    return Plan(
        zero=bool(data.get("zero", zero)),
        phase=bool(data.get("phase", phase)),
        gain=gain,
        accuracy_pct=float(data.get("reference_accuracy_pct", accuracy_pct)),
        instrument=data.get("reference_instrument", instrument),
    )


def _partners(cfg: GridGuardConfig) -> dict[str, str]:
    out = {}
    for c in cfg.circuits:
        volts = cfg.voltage_channels_for(c.id)
        for cur, volt in zip(c.current_channels, volts, strict=False):
            out[cur] = volt
    return out


def _wait(console: Console, message: str, yes: bool) -> None:
    console.print(f"[bold]{message}[/]")
    if not yes:
        typer.prompt("Press Enter when ready", default="", show_default=False)


def _ask_references(channels: Sequence[str], units: Mapping[str, str], k: int
                    ) -> dict[str, float] | None:
    refs: dict[str, float] = {}
    for cid in channels:
        text = typer.prompt(
            f"load {k}: reference reading of {cid} [{units[cid]}] (empty: skip, 'done': finish)",
            default="", show_default=False,
        ).strip()
        if text.lower() == "done":
            return refs or None
        if text:
            try:
                refs[cid] = float(text)
            except ValueError:
                fail(f"{cid}: {text!r} is not a number")
    return refs or None


def _print_results(console: Console, results: Mapping[str, ChannelResult],
                   units: Mapping[str, str]) -> None:
    table = Table(title="offsets (no load)")
    for col in ("channel", "offset", "± (k=2)", "noise floor"):
        table.add_column(col, justify="right")
    for cid, r in results.items():
        if r.offset:
            u = units[cid]
            table.add_row(cid, f"{r.offset.offset:.5g} {u}", f"{r.offset.uncertainty:.2g} {u}",
                          f"{r.offset.noise_rms:.3g} {u}")
    console.print(table)
    table = Table(title="gain")
    for col in ("channel", "reading", "reference", "residual", "gain", "model", "± (k=2)"):
        table.add_column(col, justify="right")
    for cid, r in results.items():
        if not r.gain:
            continue
        u = units[cid]
        for k, (p, res) in enumerate(zip(r.gain.points, r.gain.residuals_pct, strict=True)):
            last = k == len(r.gain.points) - 1
            table.add_row(
                cid if k == 0 else "", f"{p.reading:.5g} {u}", f"{p.reference:.5g} {u}",
                f"{res:+.3f} %", f"{r.gain.gain:.5f}" if last else "",
                r.gain.model if last else "", f"{r.gain.uncertainty_pct:.2f} %" if last else "",
            )
    console.print(table)
    table = Table(title="phase (resistive load)")
    for col in ("channel", "lead of the channel", "± (k=2)", "windows"):
        table.add_column(col, justify="right")
    for cid, r in results.items():
        if r.phase:
            table.add_row(cid, f"{r.phase.phase_deg:+.3f}°", f"{r.phase.uncertainty_deg:.2f}°",
                          str(len(r.phase.angles_deg)))
    console.print(table)


def calibrate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Configuration YAML file.")],
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="Channel to calibrate (repeat; default: all)."),
    ] = None,
    reference: Annotated[
        list[float] | None,
        typer.Option("--reference", help="Reference RMS of one load (repeat per load; one "
                     "channel only)."),
    ] = None,
    readings: Annotated[
        Path | None, typer.Option("--readings", help="YAML plan with reference readings.")
    ] = None,
    zero: Annotated[bool, typer.Option("--zero/--no-zero", help="Measure offsets.")] = True,
    phase: Annotated[
        bool, typer.Option("--phase/--no-phase", help="Phase step with a resistive load.")
    ] = True,
    reference_accuracy_pct: Annotated[
        float, typer.Option("--reference-accuracy", help="Reference meter ± % of reading.")
    ] = 0.5,
    reference_instrument: Annotated[
        str | None, typer.Option("--instrument", help="Reference meter, for the record.")
    ] = None,
    seconds: Annotated[float, typer.Option(help="Measuring time per step [s].")] = 3.0,
    settle_s: Annotated[
        float, typer.Option("--settle", help="Wait after each confirmation [s].")
    ] = 2.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt between steps.")] = False,
    calibration_id: Annotated[
        str | None, typer.Option("--id", help="Calibration id (default cal-<UTC time>).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default calibration/<id>.yaml "
                     "next to the config)."),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Compare the calibrated readings with references.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Calibrate channels (offset, gain, phase) against a reference meter."""
    setup_logging(verbose)
    if not seconds > 0:
        fail(f"--seconds: must be > 0, got {seconds}")
    if not settle_s >= 0:
        fail(f"--settle: must be >= 0, got {settle_s}")
    try:
        cfg = load_config(config, resolve_secrets=False)
    except ConfigError as exc:
        fail(str(exc))
    all_ids = [ch.id for _, _, ch in cfg.channels.all()]
    channels = list(channel or all_ids)
    for cid in channels:
        if cid not in all_ids:
            fail(f"--channel: no channel {cid!r}; have {', '.join(all_ids)}")
    if reference and len(channels) != 1:
        fail(f"--reference: applies to one channel; got {len(channels)} (use --readings)")
    if readings is not None:
        plan = _plan_from_yaml(readings, zero, phase, reference_accuracy_pct,
                               reference_instrument)
    else:
        plan = Plan(zero=zero, phase=phase, gain=[{channels[0]: r} for r in reference or []],
                    accuracy_pct=reference_accuracy_pct, instrument=reference_instrument)
    for k, point in enumerate(plan.gain):
        for cid in point:
            if cid not in channels:
                fail(f"gain[{k}]: channel {cid!r} is not being calibrated "
                     f"({', '.join(channels)})")
    if yes and not plan.gain and not verify and not (plan.zero or plan.phase):
        fail("nothing to do: give --reference values, a --readings plan, or allow --zero")
    try:
        sampler, settings = open_sampler(cfg, hardware=hardware_environment(),
                                         calibrated=verify)
    except (HardwareUnavailableError, KeyError) as exc:
        fail(str(exc).strip("'\""))
    console = Console()
    units = {c.id: c.unit for c in sampler.capabilities.channels}
    try:
        if verify:
            failures = _verify(console, cfg, sampler, settings, channels, plan, units, yes,
                               seconds, settle_s)
            if failures:
                err_console.print(f"[bold red]{failures} reading(s) outside the stated "
                                  "uncertainty[/]")
                raise typer.Exit(1)
            console.print("[green]all readings within the stated uncertainty[/]")
            return
        results = _calibrate(console, cfg, sampler, settings, channels, plan, units, yes,
                             seconds, settle_s)
    finally:
        sampler.close()
    _print_results(console, results, units)
    cal_id = calibration_id or default_calibration_id(sampler.clock.now_ns())
    path = output or config.parent / "calibration" / f"{cal_id}.yaml"
    keep: CalibrationFile | None = None
    if path.exists():
        try:
            keep = read_calibration(path)
        except CalibrationFileError as exc:
            fail(str(exc))
    try:
        cal = calibration_file(
            results, calibration_id=cal_id,
            nominal_frequency_hz=float(cfg.system.nominal_frequency_hz),
            reference_instrument=plan.instrument, keep=keep,
            created=datetime.fromtimestamp(sampler.clock.now_ns() / NS_PER_S, UTC),
        )
        write_calibration(cal, path)
    except (ValueError, OSError) as exc:
        fail(f"{path}: cannot write the calibration: {exc}")
    console.print(f"wrote [bold]{path}[/] (id {cal_id}); use it in the configuration:")
    for cid in results:
        console.print(f"  {cid}: calibration: {{file: {path}}}", highlight=False)


def _calibrate(
    console: Console, cfg: GridGuardConfig, sampler: Sampler, settings: SlowAdcSettings,
    channels: list[str], plan: Plan, units: Mapping[str, str], yes: bool, seconds: float,
    settle_s: float,
) -> dict[str, ChannelResult]:
    partners = {c: v for c, v in _partners(cfg).items() if c in channels}
    run = CalibrationRun(
        source=sampler, settings=settings, channels=channels, partners=partners,
        resolutions={c.id: c.resolution or 0.0 for c in sampler.capabilities.channels},
        seconds=seconds, settle_s=settle_s,
    )
    try:
        if plan.zero:
            _wait(console, "Step 1: switch off every load on the calibrated circuits "
                  "(voltages may stay on).", yes)
            run.zero()
        points = list(plan.gain)
        k = 0
        while True:
            if k < len(points):
                refs: dict[str, float] | None = points[k]
                _wait(console, f"Step 2.{k + 1}: switch on load {k + 1} and read it on the "
                      "reference meter.", yes)
            elif yes or points:
                break
            else:
                _wait(console, f"Step 2.{k + 1}: switch on a load (or enter 'done').", False)
                refs = _ask_references(channels, units, k + 1)
                if refs is None:
                    break
            assert refs is not None
            run.gain_point(refs)
            k += 1
        if plan.phase and partners:
            _wait(console, "Step 3: switch on a resistive load (kettle, heater) on "
                  + ", ".join(partners) + ".", yes)
            run.phase()
    except ValueError as exc:
        fail(str(exc))
    quantities = {c.id: c.quantity for c in sampler.capabilities.channels}
    return run.result(quantities, reference_accuracy_pct=plan.accuracy_pct)


def _verify(
    console: Console, cfg: GridGuardConfig, sampler: Sampler, settings: SlowAdcSettings,
    channels: list[str], plan: Plan, units: Mapping[str, str], yes: bool, seconds: float,
    settle_s: float,
) -> int:
    if not plan.gain:
        fail("--verify: give the reference readings (--reference or a --readings plan)")
    stated: dict[str, float | None] = {}
    for cid in channels:
        try:
            stated[cid] = calibration_for(cfg.channel(cid)).gain_uncertainty_pct
        except CalibrationFileError as exc:
            fail(str(exc))
    table = Table(title="verification against the reference meter")
    for col in ("load", "channel", "reading", "reference", "error", "allowed", "result"):
        table.add_column(col, justify="right")
    failures = 0
    for k, refs in enumerate(plan.gain):
        _wait(console, f"Load {k + 1}: switch it on and read it on the reference meter.", yes)
        if settle_s > 0:
            sampler.clock.sleep(settle_s)
        samples = sampler.acquire(seconds, calibrated=True)
        _, est = estimate_channels(samples, settings)
        for cid, ref in refs.items():
            reading = est[cid].rms
            u = units[cid]
            if reading is None:
                table.add_row(str(k + 1), cid, "-", f"{ref:.5g} {u}", "-", "-", "[red]no reading")
                failures += 1
                continue
            error = 100.0 * (reading - ref) / ref
            allowed = (stated[cid] or 0.0) + settings.accuracy_rms_pct + plan.accuracy_pct
            ok = abs(error) <= allowed and math.isfinite(error)
            failures += 0 if ok else 1
            table.add_row(str(k + 1), cid, f"{reading:.5g} {u}", f"{ref:.5g} {u}",
                          f"{error:+.3f} %", f"±{allowed:.2f} %",
                          "[green]pass" if ok else "[red]FAIL")
    console.print(table)
    console.print("allowed = the calibration's gain uncertainty + the source's RMS promise + "
                  "the reference meter's accuracy")
    return failures


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)


__all__ = ["calibrate", "register"]
