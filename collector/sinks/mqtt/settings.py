"""What the MQTT sink needs to know: broker settings and a description of the site.

Both are plain frozen dataclasses so the sink does not depend on the shape of the
configuration models; :mod:`collector.sinks.mqtt.config_adapter` builds them from a
:class:`collector.config.models.GridGuardConfig`, tests build them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from collector.model import Quantity, SourceCapabilities

_TOPIC_SEGMENT = re.compile(r"^[^/#+\s]+$")
_TOPIC_PREFIX = re.compile(r"^[^/#+\s]+(/[^/#+\s]+)*$")


class MqttRole(StrEnum):
    """Which process a sink serves; each announces and cleans up only its own entities.

    The collector measures, the rule worker owns the relays and the alert book: with
    both connected to one broker, each publishes its half of the site's Home Assistant
    device under its own availability topic, and neither removes the other's entities.
    """

    STANDALONE = "standalone"  # one process does everything (readings, faults, control)
    COLLECTOR = "collector"  # readings and faults; relays and acknowledgement are the worker's
    WORKER = "worker"  # relay switches and the acknowledge button, and the signed commands


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS towards the broker; None files mean the system CAs / no client certificate."""

    ca_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Broker connection, topics and publishing behaviour of the MQTT sink."""

    host: str = "localhost"
    port: int = 1883
    tls: TlsSettings | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    topic_prefix: str = "gridguard"
    discovery_prefix: str = "homeassistant"
    qos: int = 1
    publish_interval_s: float = 10.0
    control_enabled: bool = False
    shared_secret: str | None = field(default=None, repr=False)
    command_max_age_s: float = 30.0  # accepted clock difference of a command's ts [s]
    event_hold_s: float = 60.0  # a fault binary sensor stays on this long after the event [s]
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    max_queued_messages: int = 1000  # paho's outgoing queue bound while the link is slow
    discovery_sync_timeout_s: float = 5.0
    role: MqttRole = MqttRole.STANDALONE

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host: must be a broker host name, got ''")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: must be in 1..65535, got {self.port}")
        for name in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, name)
            if not _TOPIC_PREFIX.match(value):
                raise ValueError(
                    f"{name}: must be a topic prefix without wildcards, spaces or empty "
                    f"levels, got {value!r}"
                )
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos: must be 0, 1 or 2, got {self.qos}")
        positive = ("publish_interval_s", "command_max_age_s", "event_hold_s",
                    "discovery_sync_timeout_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0 s, got {getattr(self, name)}")
        if self.keepalive_s < 5:
            raise ValueError(f"keepalive_s: must be >= 5 s, got {self.keepalive_s}")
        if not 1 <= self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError(
                "reconnect_min_s/reconnect_max_s: need 1 <= min <= max, got "
                f"{self.reconnect_min_s}/{self.reconnect_max_s}"
            )
        if self.max_queued_messages < 1:
            raise ValueError(f"max_queued_messages: must be >= 1, got {self.max_queued_messages}")
        if self.control_enabled and not self.shared_secret:
            raise ValueError("shared_secret: is required when control_enabled is true")
        if self.role is MqttRole.WORKER and not self.control_enabled:
            raise ValueError("role: 'worker' publishes only the control entities and needs "
                             "control_enabled true, got false")
        if self.password is not None and self.username is None:
            raise ValueError("username: is required when a password is given")


@dataclass(frozen=True, slots=True)
class CircuitDescription:
    """One circuit as Home Assistant sees it.

    ``kind`` is ``load``, ``generation``, ``storage`` or ``main`` (config
    ``circuits[].kind``); ``relay`` says a relay can switch it; ``critical`` circuits
    are never switched off remotely.
    """

    id: str
    name: str
    phases: tuple[str, ...]
    kind: str = "load"
    critical: bool = False
    relay: bool = False

    def __post_init__(self) -> None:
        _check_segment("circuit id", self.id)
        if not self.phases:
            raise ValueError(f"phases: circuit {self.id!r} needs at least one phase, got ()")

    @property
    def phase_keys(self) -> tuple[str, ...]:
        """Phase labels of its metrics records: each phase, plus the joined total."""
        if len(self.phases) == 1:
            return self.phases
        return (*self.phases, "".join(self.phases))


@dataclass(frozen=True, slots=True)
class VoltageChannelDescription:
    id: str
    phase: str | None

    def __post_init__(self) -> None:
        _check_segment("voltage channel id", self.id)


@dataclass(frozen=True, slots=True)
class SiteDescription:
    """The device Home Assistant gets: one per site, with its circuits and channels."""

    id: str
    name: str
    circuits: tuple[CircuitDescription, ...] = ()
    voltage_channels: tuple[VoltageChannelDescription, ...] = ()
    residual_channels: tuple[str, ...] = ()  # measured residual current (core-balance CT)
    polyphase: bool = False  # a three-phase voltage set: the "system" unbalance record exists

    def __post_init__(self) -> None:
        _check_segment("site id", self.id)
        for rid in self.residual_channels:
            _check_segment("residual channel id", rid)
        ids = [c.id for c in self.circuits] + [v.id for v in self.voltage_channels]
        ids += list(self.residual_channels)
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"circuits/voltage_channels: ids must be unique, got {dupes}")

    def circuit(self, circuit_id: str) -> CircuitDescription | None:
        return next((c for c in self.circuits if c.id == circuit_id), None)


def site_from_capabilities(site_id: str, caps: SourceCapabilities,
                           name: str | None = None) -> SiteDescription:
    """A site description from a source alone (no configuration file, e.g. a replay)."""
    circuits: dict[str, list[str]] = {}
    volts: list[VoltageChannelDescription] = []
    residual: list[str] = []
    for ch in caps.channels:
        phase = ch.phase.value if ch.phase is not None else None
        if ch.quantity is Quantity.VOLTAGE:
            volts.append(VoltageChannelDescription(ch.id, phase))
        elif ch.quantity is Quantity.RESIDUAL_CURRENT:
            residual.append(ch.id)
        else:
            phases = circuits.setdefault(ch.circuit or ch.id, [])
            if phase in ("A", "B", "C") and phase not in phases:
                phases.append(phase)
    return SiteDescription(
        id=site_id,
        name=name or site_id,
        circuits=tuple(
            CircuitDescription(cid, cid, tuple(sorted(ph)) or ("A",))
            for cid, ph in circuits.items()
        ),
        voltage_channels=tuple(volts),
        residual_channels=tuple(residual),
        polyphase={v.phase for v in volts} >= {"A", "B", "C"},
    )


def _check_segment(what: str, value: str) -> None:
    # Ids become MQTT topic levels: a '/', '+' or '#' would change the topic's meaning.
    if not _TOPIC_SEGMENT.match(value):
        raise ValueError(
            f"{what}: must be usable as one MQTT topic level (no '/', '+', '#', spaces), "
            f"got {value!r}"
        )
