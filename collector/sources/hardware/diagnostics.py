"""Wiring and sensor checks on a window of samples (`gridguard sensors test/diagnostic`).

Pure functions over a :class:`~.samples.SampleSet` and the config; the CLI only
prints what they find. Levels: ``fault`` (the numbers would be wrong: the command
exits non-zero), ``warning`` (worth a look), ``info``.

What the samples can and cannot tell: a current channel reading zero is an idle
circuit or an open clamp - indistinguishable, so it is only ``info``; a biased
sensor (ZMPT101B, ACS712, a CT on a mid-rail bias) that lost its connection floats
to a rail or sits far from its bias, which *is* visible; a reversed clamp shows as
negative active power on a consuming circuit; a clamp on the wrong phase of a
three-phase supply shows its current ~120° away from its voltage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from collector.config.circuits import CircuitKind
from collector.config.models import GridGuardConfig
from collector.config.system import SystemType
from collector.metrics_engine import CircuitSpec
from collector.model import Metrics, Quantity
from collector.sources.hardware.samples import ChannelSamples, SampleSet
from collector.sources.hardware.slow_adc import (
    ChannelEstimate,
    EnergyCounters,
    SlowAdcSettings,
    estimate_channels,
    window_metrics,
)

STUCK_STEPS = 2.0  # peak-to-peak within this many ADC steps: not moving
MISSING_WARN_FRACTION = 0.01
RAIL_FAULT_FRACTION = 0.9  # this much of the window at a rail: pinned
HEADROOM_WARN_FRACTION = 0.9  # peaks above this share of full scale
OFFSET_WARN_FRACTION = 0.05  # DC part of full scale
OFFSET_FAULT_FRACTION = 0.25
VOLTAGE_LOW_FRACTION = 0.5  # of the nominal voltage
NEGATIVE_POWER_W = 5.0
NEGATIVE_POWER_FRACTION = 0.02  # of S


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    FAULT = "fault"


@dataclass(frozen=True, slots=True)
class Finding:
    channel: str
    level: Level
    check: str
    message: str


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """What one channel delivered over the window, in its unit (V or A)."""

    channel: str
    unit: str
    samples: int
    missing: int
    rate_hz: float
    mean: float
    rms: float | None
    ac_rms: float
    noise_rms: float | None
    minimum: float
    maximum: float
    clipped: int
    full_scale: float | None
    resolution: float | None
    code_min: int | None
    code_max: int | None

    @property
    def headroom_used(self) -> float | None:
        """Largest |sample| as a share of full scale."""
        if not self.full_scale:
            return None
        return max(abs(self.minimum), abs(self.maximum)) / self.full_scale


def summarize(cs: ChannelSamples, estimate: ChannelEstimate | None) -> ChannelSummary:
    ok = np.isfinite(cs.values)
    x = cs.values[ok]
    codes = cs.codes[ok] if cs.codes is not None else None
    empty = x.size == 0
    return ChannelSummary(
        channel=cs.info.id,
        unit=cs.info.unit,
        samples=cs.n,
        missing=int(np.count_nonzero(~ok)),
        rate_hz=cs.rate_hz(),
        mean=float(np.mean(x)) if not empty else math.nan,
        rms=estimate.rms if estimate is not None else None,
        ac_rms=float(np.std(x)) if not empty else math.nan,
        noise_rms=estimate.fit.residual_rms if estimate is not None and estimate.fit else None,
        minimum=float(np.min(x)) if not empty else math.nan,
        maximum=float(np.max(x)) if not empty else math.nan,
        clipped=int(np.count_nonzero(cs.clipped)),
        full_scale=cs.info.full_scale,
        resolution=cs.info.resolution,
        code_min=int(codes.min()) if codes is not None and codes.size else None,
        code_max=int(codes.max()) if codes is not None and codes.size else None,
    )


def check_channel(s: ChannelSummary, quantity: Quantity, nominal_voltage_v: float
                  ) -> list[Finding]:
    """Findings of one channel (see the module docstring)."""
    out: list[Finding] = []

    def add(level: Level, check: str, message: str) -> None:
        out.append(Finding(s.channel, level, check, message))

    u = s.unit
    if s.samples == 0 or s.missing == s.samples:
        add(Level.FAULT, "no_data", "no sample could be read: the converter does not "
            "answer (wiring, address, power)")
        return out
    if s.missing > MISSING_WARN_FRACTION * s.samples:
        add(Level.WARNING, "bus_errors",
            f"{s.missing} of {s.samples} reads failed: check the bus wiring and pull-ups")
    step = s.resolution or 0.0
    ptp = s.maximum - s.minimum
    fs = s.full_scale
    if s.clipped >= RAIL_FAULT_FRACTION * (s.samples - s.missing):
        add(Level.FAULT, "pinned",
            f"pinned at the input's limit ({s.mean:.4g} {u}): the sensor is unpowered or "
            "disconnected and its input floats to a rail, or its bias is missing")
        return out
    if step > 0 and ptp <= STUCK_STEPS * step:
        if abs(s.mean) > STUCK_STEPS * step:
            add(Level.FAULT, "stuck",
                f"stuck at {s.mean:.4g} {u} (moves less than {STUCK_STEPS:g} steps): a "
                "frozen converter or a sensor output that lost its signal")
        elif quantity is Quantity.VOLTAGE:
            add(Level.FAULT, "no_voltage",
                "reads 0 V without even noise: the voltage sensor is disconnected or "
                "unpowered (or the supply is off)")
        else:
            add(Level.INFO, "no_current",
                "no current: an idle circuit, or the clamp is not connected (the samples "
                "cannot tell these apart)")
    if s.clipped:
        add(Level.FAULT, "clipping",
            f"{s.clipped} samples at full scale: the signal exceeds the input range; "
            "RMS, peak and power read low (smaller burden, larger PGA range, or a sensor "
            "with a higher rating)")
    elif fs and s.headroom_used is not None and s.headroom_used > HEADROOM_WARN_FRACTION:
        add(Level.WARNING, "headroom",
            f"peaks reach {100 * s.headroom_used:.0f} % of full scale: little room left "
            "for a swell or an overload")
    if fs and math.isfinite(s.mean):
        share = abs(s.mean) / fs
        if share > OFFSET_FAULT_FRACTION:
            add(Level.FAULT, "bias",
                f"DC offset {s.mean:.4g} {u} is {100 * share:.0f} % of full scale: the "
                "sensor's bias (zero_v) is wrong or the sensor is disconnected")
        elif share > OFFSET_WARN_FRACTION:
            add(Level.WARNING, "offset",
                f"DC offset {s.mean:.4g} {u} ({100 * share:.1f} % of full scale): check "
                "zero_v or run the zero step of `gridguard calibrate`")
    if (quantity is Quantity.VOLTAGE and s.rms is not None and nominal_voltage_v > 0
            and 0 < s.rms < VOLTAGE_LOW_FRACTION * nominal_voltage_v
            and ptp > STUCK_STEPS * step):
            add(Level.WARNING, "voltage_low",
                f"{s.rms:.1f} V is far below the nominal {nominal_voltage_v:g} V: check the "
                "transformer ratio in the config and the module's trimmer")
    return out


def check_circuits(metrics: Sequence[Metrics], cfg: GridGuardConfig) -> list[Finding]:
    """Reversed clamps and clamps on the wrong phase, from one window's metrics."""
    out: list[Finding] = []
    kinds = {c.id: c.kind for c in cfg.circuits}
    for m in metrics:
        if m.channel not in kinds:
            continue
        p = m.fields.get("power_active_w")
        s = m.fields.get("power_apparent_va")
        q = m.fields.get("power_reactive_var")
        if not isinstance(p, float) or not isinstance(s, float) or s <= 0:
            continue
        kind = kinds[m.channel]
        limit = max(NEGATIVE_POWER_W, NEGATIVE_POWER_FRACTION * s)
        if p < -limit and kind in (CircuitKind.LOAD, CircuitKind.MAIN):
            out.append(Finding(
                m.channel, Level.FAULT, "reversed",
                f"negative active power ({p:.0f} W) on a consuming circuit: the clamp sits "
                "the wrong way round - turn it, or set `polarity: reversed` on its channel",
            ))
        if cfg.system.type is SystemType.THREE_PHASE and isinstance(q, float) and s > 0:
            angle = math.degrees(math.atan2(-q, p))  # current angle relative to voltage
            if 90.0 < abs(angle) < 150.0 and abs(p) > limit:
                out.append(Finding(
                    m.channel, Level.WARNING, "phase",
                    f"the current is {angle:+.0f}° from its voltage: is the clamp on the "
                    "phase the config says (a neighbour phase is 120° away)?",
                ))
    return out


@dataclass(frozen=True, slots=True)
class Diagnosis:
    summaries: tuple[ChannelSummary, ...]
    findings: tuple[Finding, ...]
    metrics: tuple[Metrics, ...]

    @property
    def faults(self) -> int:
        return sum(1 for f in self.findings if f.level is Level.FAULT)


def diagnose(samples: SampleSet, cfg: GridGuardConfig, settings: SlowAdcSettings,
             circuits: Sequence[CircuitSpec]) -> Diagnosis:
    """Summaries and findings of every channel and circuit over one window."""
    _, est = estimate_channels(samples, settings)
    summaries = tuple(summarize(c, est.get(c.info.id)) for c in samples.channels)
    findings: list[Finding] = []
    for cs, summary in zip(samples.channels, summaries, strict=True):
        findings += check_channel(summary, cs.info.quantity, cfg.system.nominal_voltage_v)
    metrics, _ = window_metrics(samples, circuits, settings, EnergyCounters())
    findings += check_circuits(metrics, cfg)
    return Diagnosis(summaries, tuple(findings), tuple(metrics))
