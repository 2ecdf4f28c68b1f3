"""The virtual switchboard: circuits, their schedules and sensors, and the panel around them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from collector.config.system import SystemType
from collector.model import Phase
from collector.sources.simulated.adc import AdcSpec
from collector.sources.simulated.loads import LoadSpec
from collector.sources.simulated.mains import MainsSpec, system_phases

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

RESIDUAL_CHANNEL_ID = "i_residual"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Duty cycle: on for ``on_s`` at the start of every ``period_s``, shifted by ``offset_s``.

    The load is on at time t when ``(t - offset_s) mod period_s < on_s``; each on-edge
    is a switch-on (motors draw inrush there, including at t = 0 when an edge falls
    exactly on it).
    """

    period_s: float
    on_s: float
    offset_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"period_s: must be > 0, got {self.period_s}")
        if not 0 <= self.on_s <= self.period_s:
            raise ValueError(
                f"on_s: must be between 0 and period_s ({self.period_s}), got {self.on_s}"
            )
        if not math.isfinite(self.offset_s):
            raise ValueError(f"offset_s: must be a finite number, got {self.offset_s}")


@dataclass(frozen=True, slots=True)
class CircuitSpec:
    """One breaker-protected circuit with its load and current sensor(s).

    Attributes
    ----------
    id : str
        Circuit id (slug); current channels are ``i_<id>`` or ``i_<id>_<phase>``.
    name : str
        Display name.
    phases : tuple[Phase, ...]
        Line conductors: one phase (to neutral), both legs of a split-phase supply
        (a 240 V line-to-line load) or all three phases (a balanced star load).
    load : LoadSpec
    breaker_rating_a : float
        Rated current of the protective device [A] (the EventEngine's overload limit).
    critical : bool
        Never shed (passed through to load control).
    schedule : Schedule | None
        Duty cycle; None: always on.
    current_full_scale_a : float | None
        Peak current at converter full scale [A]; None: 3·√2·breaker_rating_a (room
        for crest factor and inrush, as a CT and burden are usually chosen).
    """

    id: str
    name: str
    phases: tuple[Phase, ...]
    load: LoadSpec
    breaker_rating_a: float
    critical: bool = False
    schedule: Schedule | None = None
    current_full_scale_a: float | None = None

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(
                f"id: must be a slug (lowercase letters, digits, '_', '-'), got {self.id!r}"
            )
        if not self.phases or len(set(self.phases)) != len(self.phases):
            raise ValueError(f"phases: must be distinct line phases, got {list(self.phases)}")
        if not self.breaker_rating_a > 0:
            raise ValueError(f"breaker_rating_a: must be > 0, got {self.breaker_rating_a}")
        if self.current_full_scale_a is not None and not self.current_full_scale_a > 0:
            raise ValueError(f"current_full_scale_a: must be > 0, got {self.current_full_scale_a}")

    @property
    def full_scale_a(self) -> float:
        """Peak current at converter full scale [A]."""
        if self.current_full_scale_a is not None:
            return self.current_full_scale_a
        return 3.0 * math.sqrt(2.0) * self.breaker_rating_a

    def channel_id(self, phase: Phase) -> str:
        """Id of the current channel of this circuit on ``phase``."""
        if len(self.phases) == 1:
            return f"i_{self.id}"
        return f"i_{self.id}_{phase.value.lower()}"


def voltage_channel_id(phase: Phase) -> str:
    """Id of the voltage channel of ``phase``."""
    return f"v_{phase.value.lower()}"


def allowed_phase_sets(system: SystemType) -> tuple[tuple[Phase, ...], ...]:
    """Connections the simulation models for a supply type."""
    if system is SystemType.SINGLE_PHASE:
        return ((Phase.A,),)
    if system is SystemType.SPLIT_PHASE:
        return ((Phase.A,), (Phase.B,), (Phase.A, Phase.B))
    return ((Phase.A,), (Phase.B,), (Phase.C,), (Phase.A, Phase.B, Phase.C))


@dataclass(frozen=True, slots=True)
class PanelSpec:
    """Everything the simulated source needs to know about the installation.

    Attributes
    ----------
    name : str
    mains : MainsSpec
    adc : AdcSpec
    sample_rate_hz : float
        Per-channel sample rate [Hz].
    circuits : tuple[CircuitSpec, ...]
    voltage_full_scale_v : float | None
        Peak voltage at converter full scale [V]; None: 1.5·√2·nominal.
    residual_channel : bool
        True when a core-balance CT around all live conductors feeds a channel.
    residual_full_scale_a : float
        Its peak full scale [A].
    standing_leakage_a : float
        Healthy installation's residual current (capacitive, from EMC filters) [A RMS].
    """

    name: str
    mains: MainsSpec
    adc: AdcSpec
    sample_rate_hz: float
    circuits: tuple[CircuitSpec, ...]
    voltage_full_scale_v: float | None = None
    residual_channel: bool = False
    residual_full_scale_a: float = 1.0
    standing_leakage_a: float = 0.003

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz: must be > 0, got {self.sample_rate_hz}")
        if self.sample_rate_hz < 4 * self.mains.nominal_frequency_hz:
            raise ValueError(
                f"sample_rate_hz: must be at least 4x the mains frequency "
                f"({4 * self.mains.nominal_frequency_hz} Hz), got {self.sample_rate_hz}"
            )
        ids = [c.id for c in self.circuits]
        for k, cid in enumerate(ids):
            if cid in ids[:k]:
                raise ValueError(f"circuits[{k}].id: duplicate circuit id {cid!r}")
        allowed = allowed_phase_sets(self.mains.system)
        for k, c in enumerate(self.circuits):
            if tuple(sorted(c.phases)) not in allowed:
                raise ValueError(
                    f"circuits[{k}].phases: must be one of "
                    f"{[[p.value for p in s] for s in allowed]} for a {self.mains.system} "
                    f"supply, got {[p.value for p in c.phases]}"
                )
        if self.voltage_full_scale_v is not None and not self.voltage_full_scale_v > 0:
            raise ValueError(f"voltage_full_scale_v: must be > 0, got {self.voltage_full_scale_v}")
        if not self.residual_full_scale_a > 0:
            raise ValueError(
                f"residual_full_scale_a: must be > 0, got {self.residual_full_scale_a}"
            )
        if not self.standing_leakage_a >= 0:
            raise ValueError(f"standing_leakage_a: must be >= 0, got {self.standing_leakage_a}")

    @property
    def phases(self) -> tuple[Phase, ...]:
        return system_phases(self.mains.system)

    @property
    def full_scale_v(self) -> float:
        """Peak voltage at converter full scale [V]."""
        if self.voltage_full_scale_v is not None:
            return self.voltage_full_scale_v
        return 1.5 * math.sqrt(2.0) * self.mains.nominal_voltage_v

    def circuit(self, circuit_id: str) -> CircuitSpec:
        for c in self.circuits:
            if c.id == circuit_id:
                return c
        raise KeyError(f"no circuit {circuit_id!r}; have {[c.id for c in self.circuits]}")

    def channel_ids(self) -> tuple[str, ...]:
        """Channel ids in row order: voltages, circuit currents, residual current."""
        ids = [voltage_channel_id(p) for p in self.phases]
        for c in self.circuits:
            ids += [c.channel_id(p) for p in sorted(c.phases)]
        if self.residual_channel:
            ids.append(RESIDUAL_CHANNEL_ID)
        return tuple(ids)
