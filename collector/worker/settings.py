"""The worker's settings: built once from the validated configuration (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from collector.config.circuits import CircuitKind, Priority
from collector.config.models import GridGuardConfig
from collector.model import Severity
from collector.worker.alerts import AlertPolicy
from collector.worker.notify.base import Channel
from collector.worker.sensor_health import SensorHealthSettings
from collector.worker.shedding import SheddingPolicy

GRAFANA_ROUTED_CHANNELS: Mapping[Severity, tuple[Channel, ...]] = MappingProxyType({
    Severity.INFO: (),
    Severity.WARNING: (Channel.WEBHOOK,),
    Severity.CRITICAL: (Channel.SMS, Channel.WEBHOOK),
})
"""What the worker adds for alerts Grafana routes (Grafana's own contact points send
the email, grafana/provisioning/alerting/policies.yaml): SMS wakes people up, so only
for critical alerts. Escalations use email and SMS alike."""

STANDALONE_CHANNELS: Mapping[Severity, tuple[Channel, ...]] = MappingProxyType({
    Severity.INFO: (),
    Severity.WARNING: (Channel.EMAIL, Channel.WEBHOOK),
    Severity.CRITICAL: (Channel.EMAIL, Channel.SMS, Channel.WEBHOOK),
})
"""For the worker's own findings when nothing else will email them (no InfluxDB, so
no Grafana rule sees their ``faults`` records)."""


@dataclass(frozen=True, slots=True)
class CircuitSpec:
    """What the worker needs of a configured circuit."""

    id: str
    breaker_rating_a: float
    kind: CircuitKind = CircuitKind.LOAD
    priority: Priority = Priority.MEDIUM
    critical: bool = False


@dataclass(frozen=True, slots=True)
class RelaySpec:
    circuit: str
    gpio_pin: int
    active_high: bool = True


@dataclass(frozen=True, slots=True)
class ThermalSettings:
    """I²t model parameters shared by all circuits (see :mod:`collector.worker.thermal`)."""

    time_constant_s: float = 240.0
    pickup: float = 1.10
    approach_level: float = 0.9
    clear_margin: float = 0.05  # resolve below approach_level - this (hysteresis)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything the engine needs; times in seconds."""

    site: str
    circuits: tuple[CircuitSpec, ...]
    relays: tuple[RelaySpec, ...] = ()
    shedding: SheddingPolicy | None = None  # None: load control disabled
    alert_policy: AlertPolicy = field(default_factory=AlertPolicy)
    channels: Mapping[Severity, tuple[Channel, ...]] = field(
        default_factory=lambda: GRAFANA_ROUTED_CHANNELS)
    worker_channels: Mapping[Severity, tuple[Channel, ...]] = field(
        default_factory=lambda: STANDALONE_CHANNELS)
    thermal: ThermalSettings = field(default_factory=ThermalSettings)
    sensor: SensorHealthSettings = field(default_factory=SensorHealthSettings)
    nominal_frequency_hz: float = 50.0
    intervals: frozenset[str] = frozenset({"150c", "180c"})
    power_stale_s: float = 60.0  # a power reading older than this is no reading
    retry_delays_s: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0)
    rejected_audit_per_min: int = 10

    def __post_init__(self) -> None:
        ids = [c.id for c in self.circuits]
        for r in self.relays:
            if r.circuit not in ids:
                raise ValueError(f"relays: circuit {r.circuit!r} is not configured; have {ids}")

    def circuit(self, circuit_id: str) -> CircuitSpec:
        for c in self.circuits:
            if c.id == circuit_id:
                return c
        raise KeyError(f"no circuit {circuit_id!r}")


def worker_settings(cfg: GridGuardConfig) -> WorkerSettings:
    """Settings from a validated configuration."""
    circuits = tuple(
        CircuitSpec(c.id, c.breaker_rating_a, c.kind, c.priority, c.critical)
        for c in cfg.circuits
    )
    lc = cfg.load_control
    relays = tuple(RelaySpec(r.circuit, r.gpio_pin, r.active_high) for r in lc.relays)
    shedding = None
    if lc.enabled:
        shedding = SheddingPolicy(
            demand_limit_w=lc.demand_limit_w or cfg.thresholds.demand_limit_w,
            hysteresis_pct=lc.hysteresis_pct, min_off_s=lc.min_off_s, min_on_s=lc.min_on_s,
        )
    esc = cfg.alerts.escalation
    policy = AlertPolicy(
        escalation_after_s=esc.after_min * 60.0 if esc.enabled else None,
        escalation_contacts=tuple(esc.contacts) if esc.enabled else (),
    )
    f_hz = float(cfg.system.nominal_frequency_hz)
    sensor = SensorHealthSettings(
        nominal_voltage_v=cfg.system.nominal_voltage_v, nominal_frequency_hz=f_hz,
        ratings_a={c.id: c.breaker_rating_a for c in cfg.circuits},
    )
    # the records the raw bucket receives (influx.write.interval): ~3 s, or basic ~0.2 s
    if cfg.influx.write.interval.value == "basic":
        intervals = frozenset({"basic"})
    else:
        intervals = frozenset({"150c"}) if f_hz == 50.0 else frozenset({"180c"})
    # with InfluxDB, the worker's faults records reach Grafana, which emails them
    worker_channels = GRAFANA_ROUTED_CHANNELS if cfg.influx.enabled else STANDALONE_CHANNELS
    return WorkerSettings(
        site=cfg.site.id, circuits=circuits, relays=relays, shedding=shedding,
        alert_policy=policy, sensor=sensor, nominal_frequency_hz=f_hz, intervals=intervals,
        worker_channels=worker_channels,
    )
