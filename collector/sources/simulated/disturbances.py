"""Scheduled disturbances a scenario injects into the simulated panel.

Each starts at ``at_s`` (seconds after the start of the run) and lasts
``duration_s``. Voltage events may instead start at the first instant at or after
``at_s`` where the affected phase's fundamental is at ``onset_deg`` (0° = its
positive-going zero crossing), with the same duration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from collector.config.errors import LocatedProblem, format_value
from collector.config.system import SystemType
from collector.model import Phase
from collector.sources.simulated.panel import PanelSpec


class DisturbanceType(StrEnum):
    VOLTAGE_DIP = "voltage_dip"
    VOLTAGE_SWELL = "voltage_swell"
    VOLTAGE_INTERRUPTION = "voltage_interruption"
    OVERLOAD = "overload"
    GROUND_FAULT = "ground_fault"
    OPEN_NEUTRAL = "open_neutral"
    FREQUENCY_EXCURSION = "frequency_excursion"
    HARMONIC_POLLUTION = "harmonic_pollution"
    ARCING = "arcing"
    SENSOR_FAULT = "sensor_fault"


class SensorFaultKind(StrEnum):
    DISCONNECTED = "disconnected"  # the sensor reads nothing: converter noise around 0
    STUCK = "stuck"  # the reading freezes at the last value before the fault
    CLIPPING = "clipping"  # gain jumps so the nominal peak is twice the full scale


def _check_window(at_s: float, duration_s: float) -> None:
    if not (math.isfinite(at_s) and at_s >= 0):
        raise ValueError(f"at_s: must be >= 0, got {at_s}")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s: must be > 0, got {duration_s}")


@dataclass(frozen=True, slots=True)
class VoltageChange:
    """Dip, swell or interruption: the supply of ``phases`` (None: all) is scaled.

    ``magnitude_pct`` is the remaining (dip), raised (swell) or zero (interruption)
    magnitude in % of what it was.
    """

    type: DisturbanceType
    at_s: float
    duration_s: float
    magnitude_pct: float
    phases: tuple[Phase, ...] | None = None
    onset_deg: float | None = None

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)
        if self.type not in (
            DisturbanceType.VOLTAGE_DIP,
            DisturbanceType.VOLTAGE_SWELL,
            DisturbanceType.VOLTAGE_INTERRUPTION,
        ):
            raise ValueError(f"type: must be a dip, swell or interruption, got {self.type}")
        if not 0 <= self.magnitude_pct <= 200:
            raise ValueError(f"magnitude_pct: must be between 0 and 200, got {self.magnitude_pct}")
        if self.onset_deg is not None and not 0 <= self.onset_deg < 360:
            raise ValueError(f"onset_deg: must be in [0, 360), got {self.onset_deg}")


@dataclass(frozen=True, slots=True)
class Overload:
    """The load of ``circuit`` draws ``factor`` times its rated current."""

    at_s: float
    duration_s: float
    circuit: str
    factor: float

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)
        if not self.factor > 0:
            raise ValueError(f"factor: must be > 0, got {self.factor}")


@dataclass(frozen=True, slots=True)
class GroundFault:
    """``leakage_a`` [A RMS] flows from the line of ``circuit`` to earth (resistive, in
    phase with that line's voltage): its phase CT and the residual CT see it."""

    at_s: float
    duration_s: float
    circuit: str
    leakage_a: float

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)
        if not self.leakage_a > 0:
            raise ValueError(f"leakage_a: must be > 0, got {self.leakage_a}")


@dataclass(frozen=True, slots=True)
class OpenNeutral:
    """The neutral breaks: the star point shifts by ``shift_pct`` of nominal towards the
    most heavily loaded phase, whose voltage falls while the others rise."""

    at_s: float
    duration_s: float
    shift_pct: float

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)
        if not 0 < self.shift_pct < 100:
            raise ValueError(f"shift_pct: must be between 0 and 100, got {self.shift_pct}")


@dataclass(frozen=True, slots=True)
class FrequencyExcursion:
    """The frequency moves to ``frequency_hz`` (plus the ongoing drift) at
    ``rocof_hz_per_s``, holds, and returns at the same rate after ``duration_s``."""

    at_s: float
    duration_s: float
    frequency_hz: float
    rocof_hz_per_s: float = 1.0

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)
        if not self.frequency_hz > 0:
            raise ValueError(f"frequency_hz: must be > 0, got {self.frequency_hz}")
        if not self.rocof_hz_per_s > 0:
            raise ValueError(f"rocof_hz_per_s: must be > 0, got {self.rocof_hz_per_s}")


@dataclass(frozen=True, slots=True)
class HarmonicPollution:
    """A voltage harmonic of ``order`` at ``pct`` of nominal is added to ``phases``."""

    at_s: float
    duration_s: float
    order: int
    pct: float
    angle_deg: float = 0.0
    phases: tuple[Phase, ...] | None = None

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)
        if not 2 <= self.order <= 50:
            raise ValueError(f"order: must be between 2 and 50, got {self.order}")
        if not 0 < self.pct <= 100:
            raise ValueError(f"pct: must be between 0 and 100, got {self.pct}")


@dataclass(frozen=True, slots=True)
class Arcing:
    """A series arc in ``circuit`` (advisory signature, not an AFCI test waveform).

    After each current zero the arc stays extinguished for ``shoulder_deg`` (the flat
    "shoulder"), and in a random ``burst_probability`` share of half-cycles it
    re-ignites with broadband noise of ``burst_pct`` % of the circuit's peak current
    for 0.15 cycle.
    """

    at_s: float
    duration_s: float
    circuit: str
    shoulder_deg: float = 20.0
    burst_pct: float = 10.0
    burst_probability: float = 0.7

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)
        if not 0 < self.shoulder_deg < 90:
            raise ValueError(f"shoulder_deg: must be between 0 and 90, got {self.shoulder_deg}")
        if not 0 <= self.burst_pct <= 100:
            raise ValueError(f"burst_pct: must be between 0 and 100, got {self.burst_pct}")
        if not 0 <= self.burst_probability <= 1:
            raise ValueError(
                f"burst_probability: must be between 0 and 1, got {self.burst_probability}"
            )


@dataclass(frozen=True, slots=True)
class SensorFault:
    """Channel ``channel`` misbehaves (the physics is unchanged)."""

    at_s: float
    duration_s: float
    channel: str
    kind: SensorFaultKind

    def __post_init__(self) -> None:
        _check_window(self.at_s, self.duration_s)


Disturbance = (
    VoltageChange
    | Overload
    | GroundFault
    | OpenNeutral
    | FrequencyExcursion
    | HarmonicPollution
    | Arcing
    | SensorFault
)


def disturbance_type(d: Disturbance) -> DisturbanceType:
    """The scenario ``type`` of a disturbance."""
    if isinstance(d, VoltageChange):
        return d.type
    return {
        Overload: DisturbanceType.OVERLOAD,
        GroundFault: DisturbanceType.GROUND_FAULT,
        OpenNeutral: DisturbanceType.OPEN_NEUTRAL,
        FrequencyExcursion: DisturbanceType.FREQUENCY_EXCURSION,
        HarmonicPollution: DisturbanceType.HARMONIC_POLLUTION,
        Arcing: DisturbanceType.ARCING,
        SensorFault: DisturbanceType.SENSOR_FAULT,
    }[type(d)]


def reference_problems(
    panel: PanelSpec, disturbances: Sequence[Disturbance]
) -> list[LocatedProblem]:
    """Disturbances naming circuits, channels or phases the panel does not have.

    Locations are ``("events", index, key)``, as in a scenario file.
    """
    circuits = [c.id for c in panel.circuits]
    channels = list(panel.channel_ids())
    phases = [p.value for p in panel.phases]
    out: list[LocatedProblem] = []
    for k, d in enumerate(disturbances):
        if isinstance(d, Overload | GroundFault | Arcing) and d.circuit not in circuits:
            out.append(
                LocatedProblem(
                    ("events", k, "circuit"),
                    f"must be a circuit of the panel {circuits}",
                    format_value(d.circuit),
                )
            )
        if isinstance(d, SensorFault) and d.channel not in channels:
            out.append(
                LocatedProblem(
                    ("events", k, "channel"),
                    f"must be a channel of the panel {channels}",
                    format_value(d.channel),
                )
            )
        if isinstance(d, VoltageChange | HarmonicPollution) and d.phases is not None:
            for j, p in enumerate(d.phases):
                if p.value not in phases:
                    out.append(
                        LocatedProblem(
                            ("events", k, "phases", j),
                            f"must be a line phase of this {panel.mains.system} panel {phases}",
                            format_value(p.value),
                        )
                    )
        if isinstance(d, OpenNeutral) and panel.mains.system is SystemType.SINGLE_PHASE:
            out.append(
                LocatedProblem(
                    ("events", k, "type"),
                    "needs a split_phase or three_phase panel (a single-phase supply has no "
                    "star point to shift)",
                    format_value("open_neutral"),
                )
            )
    return out
