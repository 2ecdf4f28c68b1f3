"""Warnings about a valid configuration that will probably measure something wrong.

Nothing here rejects a configuration; each warning says what will go wrong and
what to change. Pure functions of the validated config (no I/O).
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from collections.abc import Iterator

from pydantic import BaseModel

from collector.config.channels import AdcRef
from collector.config.errors import ConfigProblem, format_path, format_value
from collector.config.models import GridGuardConfig
from collector.config.secrets import Secret
from collector.config.sensors import AnySensor
from collector.config.source import SourceType
from collector.config.system import STANDARD_PHASE_VOLTAGES_V

# Per-channel sample rate below which the arc signature (broadband bursts of a few
# kHz riding on the current) cannot be seen.
ARC_MIN_RATE_HZ = 4000.0


def config_warnings(config: GridGuardConfig) -> list[ConfigProblem]:
    """Every warning for a validated configuration."""
    return [
        *_inline_secrets(config),
        *_unused_source_sections(config),
        *_nominal_voltage(config),
        *_sensor_ranges(config),
        *_adc_headroom(config),
        *_calibration_gains(config),
        *_unassigned_channels(config),
        *_capabilities(config),
        *_mqtt(config),
        *_retention(config),
    ]


def _secrets(value: object, path: str) -> Iterator[tuple[str, Secret]]:
    if isinstance(value, Secret):
        yield path, value
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            key = info.alias or name
            yield from _secrets(getattr(value, name), f"{path}.{key}" if path else key)
    elif isinstance(value, tuple):
        for k, item in enumerate(value):
            yield from _secrets(item, f"{path}[{k}]")


def _inline_secrets(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    for path, secret in _secrets(config, ""):
        if secret.is_inline:
            name = path.rsplit(".", 1)[-1]
            yield ConfigProblem(
                path,
                f"secret given inline; use {name}_env or {name}_file so it stays out of "
                "the configuration file, its backups and version control",
            )


def _unused_source_sections(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    for t in SourceType:
        if t is not config.source.type and getattr(config.source, t.value) is not None:
            yield ConfigProblem(
                f"source.{t.value}", f"is ignored because source.type is {config.source.type}"
            )


def _nominal_voltage(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    v = config.system.nominal_voltage_v
    if not any(abs(v - s) < 0.5 for s in STANDARD_PHASE_VOLTAGES_V):
        yield ConfigProblem(
            "system.nominal_voltage_v",
            "is not a standard phase-to-neutral voltage (IEC 60038: 230, 120, 127, 220, "
            "240, 277...); dips and swells are percentages of it. A line-to-line value "
            "(400, 208) here would be wrong",
            format_value(v),
        )


def _current_paths(config: GridGuardConfig) -> dict[str, str]:
    return {ch.id: f"channels.current[{k}]" for k, ch in enumerate(config.channels.current)}


def _sensor_ranges(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    paths = _current_paths(config)
    for c in config.circuits:
        for cid in c.current_channels:
            ch = config.channel(cid)
            rated = getattr(ch.sensor, "rated_rms", None)
            if rated is not None and c.breaker_rating_a > rated:
                yield ConfigProblem(
                    f"{paths[cid]}.sensor",
                    f"is rated for {format_value(rated)} A RMS but circuit {c.id!r} has a "
                    f"{format_value(c.breaker_rating_a)} A breaker: currents above the rating "
                    "saturate or clip, so overloads read low",
                )
        if c.max_power_w is not None:
            capacity = c.breaker_rating_a * config.system.nominal_voltage_v * len(c.phases)
            if c.max_power_w > capacity:
                yield ConfigProblem(
                    f"circuits[{config.circuits.index(c)}].max_power_w",
                    f"exceeds what the breaker allows (~{capacity:.0f} W); the breaker trips "
                    "first",
                    format_value(c.max_power_w),
                )


def _pin_range(config: GridGuardConfig, ref: AdcRef) -> tuple[float, float] | None:
    """Voltage range [V] the ADC input can represent (single-ended: 0..FS)."""
    src = config.source
    if src.type is SourceType.ADS1115 and src.ads1115 is not None:
        dev = next(
            (d for d in src.ads1115.devices if ref.device in (None, d.address)), None
        )
        if dev is None:
            return None
        fs = dev.full_scale_v
        return (-fs, fs) if ref.differential is not None else (0.0, fs)
    if src.type is SourceType.MCP3008 and src.mcp3008 is not None:
        # pseudo-differential inputs are also 0..VREF (IN- is only a reference)
        return (0.0, src.mcp3008.vref_v)
    return None


def _adc_headroom(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    if not config.source.is_hardware_adc:
        return
    swell = config.thresholds.voltage.swell_threshold_pct / 100.0
    breaker = {cid: c.breaker_rating_a for c in config.circuits for cid in c.current_channels}
    for kind, k, ch in config.channels.all():
        sensor: AnySensor | None = ch.sensor
        if ch.adc is None or sensor is None:
            continue
        span = _pin_range(config, ch.adc)
        if span is None:
            continue
        if kind == "voltage":
            # must still read a swell at the threshold to report it
            peak = config.system.nominal_voltage_v * math.sqrt(2.0) * swell
            what = f"a swell to {config.thresholds.voltage.swell_threshold_pct:g} % of Udin"
        elif ch.id in breaker:
            peak = breaker[ch.id] * math.sqrt(2.0)
            what = f"the breaker rating ({format_value(breaker[ch.id])} A RMS)"
        else:
            continue
        swing = peak / sensor.units_per_volt
        lo, hi = sensor.zero_v - swing, sensor.zero_v + swing
        if lo < span[0] - 1e-9 or hi > span[1] + 1e-9:
            yield ConfigProblem(
                format_path(("channels", kind, k, "adc")),
                f"{what} swings the pin over {lo:.2f}..{hi:.2f} V but the input reads "
                f"{span[0]:.2f}..{span[1]:.2f} V: the waveform clips (check zero_v bias, "
                "sensor scale and ADC range)",
            )


def _calibration_gains(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    for kind, k, ch in config.channels.all():
        cal = ch.calibration
        if cal is None or cal.file is not None:
            continue
        gains = [cal.gain] + [p.gain for p in cal.gain_points]
        worst = max(gains, key=lambda g: abs(math.log(g)))
        if not 0.8 <= worst <= 1.25:
            yield ConfigProblem(
                f"channels.{kind}[{k}].calibration",
                f"corrects by a factor {worst:.3g}; a good sensor setting needs a few % at "
                "most - check the sensor variant, burden or ratio",
            )


def _unassigned_channels(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    used = {cid for c in config.circuits for cid in c.current_channels}
    for k, ch in enumerate(config.channels.current):
        if ch.id not in used:
            yield ConfigProblem(
                f"channels.current[{k}]",
                "belongs to no circuit: it is sampled but nothing is reported for it",
                repr(ch.id),
            )


def _per_channel_rate_hz(config: GridGuardConfig) -> float | None:
    src = config.source
    n = len(config.channels.all())
    if src.type is SourceType.ADS1115 and src.ads1115 is not None:
        return min(d.data_rate_sps for d in src.ads1115.devices) / max(1, min(4, n))
    if src.type is SourceType.MCP3008 and src.mcp3008 is not None:
        return src.mcp3008.sample_rate_hz / max(1, n)
    if src.type is SourceType.PZEM:
        return 0.0
    return None


def _capabilities(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    rate = _per_channel_rate_hz(config)
    if rate is None:
        return
    if config.events.arc_detection.enabled and rate < ARC_MIN_RATE_HZ:
        yield ConfigProblem(
            "events.arc_detection.enabled",
            f"needs about {ARC_MIN_RATE_HZ:g} samples/s per channel; the {config.source.type} "
            f"source gives ~{rate:.0f}, so no arc signature can be seen",
        )
    if config.events.waveform_capture.enabled and config.source.type is SourceType.PZEM:
        yield ConfigProblem(
            "events.waveform_capture.enabled",
            "a PZEM meter delivers readings, not waveforms: nothing can be captured",
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mqtt(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    m = config.mqtt
    if m.enabled and m.password is not None and m.tls is None and not _is_loopback(m.host):
        yield ConfigProblem(
            "mqtt.tls", f"is not configured: the password to {m.host} travels in clear text"
        )


def _retention(config: GridGuardConfig) -> Iterator[ConfigProblem]:
    r = config.influx.retention
    order = [("raw_days", r.raw_days), ("rollup_1m_days", r.rollup_1m_days),
             ("rollup_1h_days", r.rollup_1h_days)]
    for (a, da), (b, db) in itertools.pairwise(order):
        if da is None:
            continue
        if db is not None and db < da:
            yield ConfigProblem(
                f"influx.retention.{b}",
                f"is shorter than {a} ({da}); a rollup normally outlives its source",
                str(db),
            )
