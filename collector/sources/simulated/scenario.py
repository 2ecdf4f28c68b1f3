"""Scenario files: a panel (a preset with overrides), a seed, a duration and events.

Validation is pydantic and does no I/O; :func:`load_scenario` reads the file. Every
problem names its key path and line, e.g.
``events[2].residual_pct: must be between 0 and 100, got 140 (line 31)``.
docs/simulation.md lists every key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from collector.config.base import PhaseName, Slug, StrictModel
from collector.config.errors import (
    ConfigError,
    ConfigProblem,
    LocatedProblem,
    dedupe,
    format_path,
    format_value,
    problems_error,
    problems_from_validation_error,
)
from collector.config.load import read_config_file, with_lines
from collector.config.system import SystemType
from collector.sources.simulated.adc import AdcSpec, Sampling
from collector.sources.simulated.disturbances import (
    Arcing,
    Disturbance,
    DisturbanceType,
    FrequencyExcursion,
    GroundFault,
    HarmonicPollution,
    OpenNeutral,
    Overload,
    SensorFault,
    SensorFaultKind,
    VoltageChange,
    reference_problems,
)
from collector.sources.simulated.loads import LoadSpec, LoadType, PfSense
from collector.sources.simulated.mains import MainsSpec, SupplyImpedance, VoltageHarmonic
from collector.sources.simulated.panel import CircuitSpec, PanelSpec, Schedule
from collector.sources.simulated.presets import PRESETS


def _between(lo: float, hi: float) -> AfterValidator:
    def check(value: float) -> float:
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"must be between {format_value(lo)} and {format_value(hi)}")
        return value

    return AfterValidator(check)


def _positive(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be > 0")
    return value


def _non_negative(value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError("must be >= 0")
    return value


Positive = Annotated[float, AfterValidator(_positive)]
NonNegative = Annotated[float, AfterValidator(_non_negative)]
Percent = Annotated[float, _between(0, 100)]
Angle = Annotated[float, _between(0, 360)]


class HarmonicConfig(StrictModel):
    order: Annotated[int, _between(2, 50)] = Field(description="Harmonic order 2..50.")
    pct: Percent = Field(description="Magnitude, % of nominal voltage.")
    angle_deg: float = Field(default=0.0, description="Angle, sine reference [deg].")


class ImpedanceConfig(StrictModel):
    line_r_ohm: NonNegative = Field(description="Line conductor resistance [Ω].")
    line_x_ohm: NonNegative = Field(description="Line conductor reactance at nominal f [Ω].")
    neutral_r_ohm: NonNegative = Field(description="Neutral resistance [Ω].")
    neutral_x_ohm: NonNegative = Field(description="Neutral reactance at nominal f [Ω].")


_NAMED_IMPEDANCES: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "iec_60725": {
        "line_r_ohm": 0.24,
        "line_x_ohm": 0.15,
        "neutral_r_ohm": 0.16,
        "neutral_x_ohm": 0.10,
    },
    "none": {"line_r_ohm": 0.0, "line_x_ohm": 0.0, "neutral_r_ohm": 0.0, "neutral_x_ohm": 0.0},
})


def _named_impedance(value: Any) -> Any:
    # 'iec_60725' and 'none' are shorthands for the mappings above
    if isinstance(value, str):
        if value not in _NAMED_IMPEDANCES:
            raise ValueError(
                f"must be {' or '.join(repr(k) for k in _NAMED_IMPEDANCES)} or a mapping "
                "with line_r_ohm, line_x_ohm, neutral_r_ohm, neutral_x_ohm"
            )
        return dict(_NAMED_IMPEDANCES[value])
    return value


class MainsConfig(StrictModel):
    harmonics: tuple[HarmonicConfig, ...] | None = Field(
        default=None, description="Supply voltage harmonics (replace the default 3/5/7)."
    )
    frequency_drift_hz: NonNegative | None = Field(
        default=None, description="Bound of the frequency random walk [Hz]."
    )
    frequency_walk_hz_per_sqrt_s: NonNegative | None = Field(
        default=None, description="Diffusion of the frequency walk [Hz/√s]."
    )
    noise_v: NonNegative | None = Field(default=None, description="RMS voltage noise [V].")
    impedance: Annotated[ImpedanceConfig, BeforeValidator(_named_impedance)] | None = Field(
        default=None,
        description="Supply impedance: explicit, 'iec_60725' (reference impedance) or 'none'.",
    )


class AdcConfig(StrictModel):
    bits: Annotated[int, _between(8, 24)] | None = Field(default=None, description="Resolution.")
    sampling: Sampling | None = Field(default=None, description="simultaneous or multiplexed.")
    noise_lsb: NonNegative | None = Field(default=None, description="RMS noise [LSB].")
    gain_error_pct: NonNegative | None = Field(default=None, description="Gain error bound [%].")
    offset_lsb: NonNegative | None = Field(default=None, description="Offset bound [LSB].")


class ScheduleConfig(StrictModel):
    period_s: Positive = Field(description="Cycle length [s].")
    on_s: NonNegative = Field(description="On time at the start of each cycle [s].")
    offset_s: float = Field(default=0.0, description="Shift of the cycle [s].")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.on_s > self.period_s:
            raise problems_error(
                [
                    LocatedProblem(
                        ("on_s",),
                        f"must be between 0 and period_s ({format_value(self.period_s)})",
                        format_value(self.on_s),
                    )
                ]
            )
        return self


class LoadConfig(StrictModel):
    type: LoadType = Field(description="Load model.")
    power_w: Positive = Field(description="Active power at nominal voltage [W], total.")
    power_factor: Annotated[float, _between(0.01, 1)] | None = Field(
        default=None, description="Displacement power factor cos φ1."
    )
    pf_sense: PfSense | None = Field(default=None, description="lagging or leading.")
    inrush_factor: Annotated[float, _between(1, 20)] | None = Field(
        default=None, description="Start current / running current."
    )
    inrush_tau_s: Positive | None = Field(default=None, description="Inrush decay [s].")


class CircuitConfig(StrictModel):
    id: Slug = Field(description="Circuit id.")
    name: str | None = Field(default=None, description="Display name (default: the id).")
    phases: tuple[PhaseName, ...] = Field(min_length=1, description="[A], [A, B], [A, B, C]...")
    load: LoadConfig
    breaker_rating_a: Annotated[float, _between(0.1, 6300)] = Field(
        description="Breaker rating [A]."
    )
    critical: bool = Field(default=False, description="Never shed.")
    schedule: ScheduleConfig | None = Field(default=None, description="Duty cycle.")
    current_full_scale_a: Positive | None = Field(
        default=None, description="Peak current at converter full scale [A]."
    )


class PanelConfig(StrictModel):
    preset: str | None = Field(default=None, description="Preset panel to start from.")
    name: str | None = Field(default=None, description="Panel name.")
    system: SystemType | None = Field(default=None, description="Supply type.")
    nominal_voltage_v: Annotated[float, _between(50, 1000)] | None = Field(
        default=None, description="Phase-to-neutral nominal voltage [V]."
    )
    nominal_frequency_hz: Annotated[float, _between(10, 1000)] | None = Field(
        default=None, description="Nominal frequency [Hz]."
    )
    sample_rate_hz: Annotated[float, _between(100, 1_000_000)] | None = Field(
        default=None, description="Per-channel sample rate [Hz]."
    )
    mains: MainsConfig | None = None
    adc: AdcConfig | None = None
    circuits: tuple[CircuitConfig, ...] | None = Field(
        default=None, description="Circuits (replace the preset's)."
    )
    residual_channel: bool | None = Field(default=None, description="Residual CT channel.")
    voltage_full_scale_v: Positive | None = None
    residual_full_scale_a: Positive | None = None
    standing_leakage_a: NonNegative | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        if self.preset is not None and self.preset not in PRESETS:
            problems.append(
                LocatedProblem(
                    ("preset",),
                    f"must be one of {', '.join(sorted(PRESETS))}",
                    format_value(self.preset),
                )
            )
        if self.preset is None and self.circuits is None:
            problems.append(
                LocatedProblem(("circuits",), "is required when no preset is given", None)
            )
        ids = [c.id for c in self.circuits or ()]
        for k, cid in enumerate(ids):
            if cid in ids[:k]:
                problems.append(
                    LocatedProblem(("circuits", k, "id"), "duplicate circuit id", format_value(cid))
                )
        if problems:
            raise problems_error(problems)
        return self


class _Event(StrictModel):
    at_s: NonNegative = Field(description="Start, seconds after the start of the run.")
    duration_s: Positive = Field(description="Duration [s].")


class _VoltageEvent(_Event):
    phases: tuple[PhaseName, ...] | None = Field(
        default=None, min_length=1, description="Affected phases (default: all)."
    )
    onset_deg: Annotated[float, _between(0, 359.999)] | None = Field(
        default=None, description="Point on wave of the start [deg] (default: exactly at_s)."
    )


class VoltageDipConfig(_VoltageEvent):
    type: Literal["voltage_dip"]
    residual_pct: Percent = Field(description="Remaining voltage, % of normal.")


class VoltageSwellConfig(_VoltageEvent):
    type: Literal["voltage_swell"]
    magnitude_pct: Annotated[float, _between(100, 200)] = Field(
        description="Raised voltage, % of normal."
    )


class VoltageInterruptionConfig(_VoltageEvent):
    type: Literal["voltage_interruption"]


class OverloadConfig(_Event):
    type: Literal["overload"]
    circuit: str = Field(description="Circuit id.")
    factor: Annotated[float, _between(1, 100)] = Field(description="Current multiplier.")


class GroundFaultConfig(_Event):
    type: Literal["ground_fault"]
    circuit: str = Field(description="Circuit id.")
    leakage_a: Annotated[float, _between(0.0001, 1000)] = Field(
        description="Earth leakage current [A RMS]."
    )


class OpenNeutralConfig(_Event):
    type: Literal["open_neutral"]
    shift_pct: Annotated[float, _between(0.1, 99)] = Field(
        description="Star-point shift, % of nominal."
    )


class FrequencyExcursionConfig(_Event):
    type: Literal["frequency_excursion"]
    frequency_hz: Annotated[float, _between(10, 1000)] = Field(description="Target [Hz].")
    rocof_hz_per_s: Positive = Field(default=1.0, description="Rate of change [Hz/s].")


class HarmonicPollutionConfig(_Event):
    type: Literal["harmonic_pollution"]
    order: Annotated[int, _between(2, 50)] = Field(description="Harmonic order.")
    pct: Annotated[float, _between(0.01, 100)] = Field(description="% of nominal voltage.")
    angle_deg: float = Field(default=0.0, description="Angle, sine reference [deg].")
    phases: tuple[PhaseName, ...] | None = Field(default=None, min_length=1)


class ArcingConfig(_Event):
    type: Literal["arcing"]
    circuit: str = Field(description="Circuit id.")
    shoulder_deg: Annotated[float, _between(1, 89)] = Field(
        default=20.0, description="Dead time after each current zero [deg]."
    )
    burst_pct: Percent = Field(default=10.0, description="Burst noise, % of peak current.")
    burst_probability: Annotated[float, _between(0, 1)] = Field(
        default=0.7, description="Share of half-cycles with a burst."
    )


class SensorFaultConfig(_Event):
    type: Literal["sensor_fault"]
    channel: str = Field(description="Channel id, e.g. i_kitchen or v_a.")
    kind: SensorFaultKind = Field(description="disconnected, stuck or clipping.")


EventConfig = Annotated[
    VoltageDipConfig
    | VoltageSwellConfig
    | VoltageInterruptionConfig
    | OverloadConfig
    | GroundFaultConfig
    | OpenNeutralConfig
    | FrequencyExcursionConfig
    | HarmonicPollutionConfig
    | ArcingConfig
    | SensorFaultConfig,
    Field(discriminator="type"),
]


class ScenarioConfig(StrictModel):
    """Root of a scenario file."""

    description: str | None = Field(default=None, description="What the scenario shows.")
    seed: Annotated[int, _between(0, 2**63 - 1)] = Field(default=0, description="Random seed.")
    duration_s: Positive | None = Field(default=None, description="Run length [s]; null: forever.")
    panel: PanelConfig
    events: tuple[EventConfig, ...] = Field(default=(), description="Scheduled disturbances.")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario, ready for :class:`SimulatedSource`."""

    panel: PanelSpec
    seed: int
    duration_s: float | None
    disturbances: tuple[Disturbance, ...]
    description: str | None = None


def _mains(base: MainsSpec, cfg: PanelConfig) -> MainsSpec:
    m = cfg.mains
    changes: dict[str, Any] = {}
    for name in ("system", "nominal_voltage_v", "nominal_frequency_hz"):
        if getattr(cfg, name) is not None:
            changes[name] = getattr(cfg, name)
    if m is not None:
        if m.harmonics is not None:
            changes["harmonics"] = tuple(
                VoltageHarmonic(h.order, h.pct, h.angle_deg) for h in m.harmonics
            )
        for name in ("frequency_drift_hz", "frequency_walk_hz_per_sqrt_s", "noise_v"):
            if getattr(m, name) is not None:
                changes[name] = getattr(m, name)
        if m.impedance is not None:
            i = m.impedance
            z = SupplyImpedance(i.line_r_ohm, i.line_x_ohm, i.neutral_r_ohm, i.neutral_x_ohm)
            stiff = not any((z.line_r_ohm, z.line_x_ohm, z.neutral_r_ohm, z.neutral_x_ohm))
            changes["impedance"] = None if stiff else z
    return replace(base, **changes)


def _adc(base: AdcSpec, cfg: AdcConfig | None) -> AdcSpec:
    if cfg is None:
        return base
    changes = {k: v for k, v in cfg.model_dump().items() if v is not None}
    return replace(base, **changes)


def _circuit(c: CircuitConfig) -> CircuitSpec:
    load = LoadSpec(
        c.load.type,
        c.load.power_w,
        c.load.power_factor,
        c.load.pf_sense,
        c.load.inrush_factor,
        c.load.inrush_tau_s,
    )
    schedule = None
    if c.schedule is not None:
        schedule = Schedule(c.schedule.period_s, c.schedule.on_s, c.schedule.offset_s)
    return CircuitSpec(
        c.id,
        c.name or c.id,
        tuple(c.phases),
        load,
        c.breaker_rating_a,
        c.critical,
        schedule,
        c.current_full_scale_a,
    )


def _panel(cfg: PanelConfig) -> PanelSpec:
    if cfg.preset is not None:
        base = PRESETS[cfg.preset]()
    else:
        base = PanelSpec(
            name="custom", mains=MainsSpec(), adc=AdcSpec(), sample_rate_hz=6400.0, circuits=()
        )
    changes: dict[str, Any] = {"mains": _mains(base.mains, cfg), "adc": _adc(base.adc, cfg.adc)}
    if cfg.circuits is not None:
        changes["circuits"] = tuple(_circuit(c) for c in cfg.circuits)
    for name in (
        "name",
        "sample_rate_hz",
        "residual_channel",
        "voltage_full_scale_v",
        "residual_full_scale_a",
        "standing_leakage_a",
    ):
        if getattr(cfg, name) is not None:
            changes[name] = getattr(cfg, name)
    return replace(base, **changes)


def _disturbance(e: Any) -> Disturbance:
    phases = tuple(e.phases) if getattr(e, "phases", None) is not None else None
    if isinstance(e, VoltageDipConfig):
        return VoltageChange(
            DisturbanceType.VOLTAGE_DIP, e.at_s, e.duration_s, e.residual_pct, phases, e.onset_deg
        )
    if isinstance(e, VoltageSwellConfig):
        return VoltageChange(
            DisturbanceType.VOLTAGE_SWELL,
            e.at_s,
            e.duration_s,
            e.magnitude_pct,
            phases,
            e.onset_deg,
        )
    if isinstance(e, VoltageInterruptionConfig):
        return VoltageChange(
            DisturbanceType.VOLTAGE_INTERRUPTION, e.at_s, e.duration_s, 0.0, phases, e.onset_deg
        )
    if isinstance(e, OverloadConfig):
        return Overload(e.at_s, e.duration_s, e.circuit, e.factor)
    if isinstance(e, GroundFaultConfig):
        return GroundFault(e.at_s, e.duration_s, e.circuit, e.leakage_a)
    if isinstance(e, OpenNeutralConfig):
        return OpenNeutral(e.at_s, e.duration_s, e.shift_pct)
    if isinstance(e, FrequencyExcursionConfig):
        return FrequencyExcursion(e.at_s, e.duration_s, e.frequency_hz, e.rocof_hz_per_s)
    if isinstance(e, HarmonicPollutionConfig):
        return HarmonicPollution(e.at_s, e.duration_s, e.order, e.pct, e.angle_deg, phases)
    if isinstance(e, ArcingConfig):
        return Arcing(
            e.at_s, e.duration_s, e.circuit, e.shoulder_deg, e.burst_pct, e.burst_probability
        )
    assert isinstance(e, SensorFaultConfig)
    return SensorFault(e.at_s, e.duration_s, e.channel, e.kind)


def _cross_problems(cfg: ScenarioConfig, panel: PanelSpec) -> list[ConfigProblem]:
    """Checks that need the merged panel: event references, frequency range."""
    problems: list[ConfigProblem] = []
    disturbances = [_disturbance(e) for e in cfg.events]
    for p in reference_problems(panel, disturbances):
        problems.append(ConfigProblem(format_path(p.loc), p.message, p.got))
    nominal = panel.mains.nominal_frequency_hz
    for k, e in enumerate(cfg.events):
        if isinstance(e, FrequencyExcursionConfig) and abs(e.frequency_hz / nominal - 1) > 0.5:
            problems.append(ConfigProblem(
                format_path(("events", k, "frequency_hz")),
                f"must be between {0.5 * nominal:g} and {1.5 * nominal:g} "
                f"(within 50 % of the nominal {nominal:g} Hz)",
                format_value(e.frequency_hz),
            ))
    return problems


def parse_scenario(
    data: Any, *, source: str = "<scenario>", lines: Mapping[str, int] | None = None
) -> Scenario:
    """Validate scenario data (a mapping as read from YAML); raises ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            [
                ConfigProblem(
                    "",
                    "a scenario must be a mapping of keys to values",
                    format_value(type(data).__name__),
                )
            ],
            source=source,
        )
    try:
        cfg = ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        problems = dedupe(problems_from_validation_error(exc, ScenarioConfig))
        raise ConfigError(with_lines(problems, lines), source=source) from None
    try:
        panel = _panel(cfg.panel)
    except ValueError as exc:
        # checks that need the merged panel (phases per supply type...) live in the
        # dataclasses; their messages start with the key path inside the panel
        m = re.match(r"^([A-Za-z_][\w\[\].]*): (.*)$", str(exc), re.DOTALL)
        problem = (
            ConfigProblem(f"panel.{m.group(1)}", m.group(2))
            if m
            else ConfigProblem("panel", str(exc))
        )
        raise ConfigError(with_lines([problem], lines), source=source) from None
    cross = _cross_problems(cfg, panel)
    if cross:
        raise ConfigError(with_lines(cross, lines), source=source)
    return Scenario(
        panel=panel,
        seed=cfg.seed,
        duration_s=cfg.duration_s,
        disturbances=tuple(_disturbance(e) for e in cfg.events),
        description=cfg.description,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file; raises ConfigError naming the file and lines."""
    p = Path(path)
    data, lines = read_config_file(p)
    return parse_scenario(data, source=str(p), lines=lines)
