"""Home Assistant MQTT discovery: which entities a site gets, and their config payloads.

One Home Assistant *device* per GridGuard site; one *entity* per published metric,
per fault type and per relay. Two processes share the device (:class:`MqttRole`): the
collector announces the measurements, the rule worker the relay switches and the
acknowledge button; each removes stale entities of its own components only.
Units, ``device_class`` and ``state_class`` come from :mod:`collector.nomenclature`
(the one table); this module only chooses which fields become entities and how they
are named. Payload keys follow the MQTT discovery
documentation (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery and
the per-platform pages ``sensor.mqtt``, ``binary_sensor.mqtt``, ``switch.mqtt``,
``button.mqtt``); tests/mqtt/test_discovery.py checks them against those pages.

Energy semantics (the Energy dashboard needs them right):

* ``energy_import_wh`` and ``energy_export_wh`` are separate ``total_increasing``
  sensors; a counter that starts again from zero (collector restart) is read by Home
  Assistant as a new meter cycle, not as negative energy.
* Grid power follows the nomenclature's sign: ``power_active_w`` > 0 is import (energy
  flowing into the circuit from the supply), < 0 is export. On a ``generation``
  circuit (PV inverter) production is therefore *export*, and is named so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collector.model import EventType
from collector.nomenclature import field_spec
from collector.sinks.mqtt.settings import CircuitDescription, MqttRole, SiteDescription
from collector.sinks.mqtt.topics import Topics, object_id

PAYLOAD_ON = "ON"
PAYLOAD_OFF = "OFF"
PAYLOAD_PRESS = "PRESS"
PAYLOAD_ONLINE = "online"
PAYLOAD_OFFLINE = "offline"

MANUFACTURER = "GridGuard"
MODEL = "Raspberry Pi power monitor"

MEASUREMENT_COMPONENTS = frozenset({"sensor", "binary_sensor"})
"""Entities of what is measured: the collector's."""
CONTROL_COMPONENTS = frozenset({"switch", "button"})
"""Entities that command the relays and the alert book: the rule worker's."""


@dataclass(frozen=True, slots=True)
class SensorDescription:
    """A metrics field shown as a sensor: label, display precision, diagnostic or not."""

    field: str
    label: str
    precision: int | None = None
    diagnostic: bool = False  # entity_category diagnostic, disabled until the user enables it


_POWER = (
    SensorDescription("power_active_w", "power", 0),
    SensorDescription("power_apparent_va", "apparent power", 0),
    SensorDescription("power_reactive_var", "reactive power", 0),
    SensorDescription("power_factor", "power factor", 3),
    SensorDescription("energy_import_wh", "energy imported", 0),
    SensorDescription("energy_export_wh", "energy exported", 0),
    SensorDescription("power_factor_displacement", "displacement power factor", 3, True),
    SensorDescription("power_nonactive_var", "non-active power", 0, True),
)
CIRCUIT_PHASE_SENSORS: tuple[SensorDescription, ...] = (
    SensorDescription("current_rms_a", "current", 2),
    SensorDescription("current_thd_pct", "current THD", 1),
    *_POWER,
    SensorDescription("current_peak_a", "peak current", 2, True),
    SensorDescription("current_crest_factor", "current crest factor", 2, True),
)
CIRCUIT_TOTAL_SENSORS: tuple[SensorDescription, ...] = _POWER
THREE_PHASE_TOTAL_SENSORS: tuple[SensorDescription, ...] = (
    SensorDescription("current_unbalance_neg_pct", "current unbalance", 1),
)
VOLTAGE_SENSORS: tuple[SensorDescription, ...] = (
    SensorDescription("voltage_rms_v", "voltage", 1),
    SensorDescription("voltage_thd_pct", "voltage THD", 2),
    SensorDescription("frequency_hz", "frequency", 3),
    SensorDescription("voltage_peak_v", "peak voltage", 1, True),
    SensorDescription("voltage_crest_factor", "voltage crest factor", 3, True),
)
SYSTEM_SENSORS: tuple[SensorDescription, ...] = (
    SensorDescription("voltage_unbalance_neg_pct", "voltage unbalance", 2),
    SensorDescription("neutral_voltage_divergence_pct", "neutral voltage divergence", 1),
    SensorDescription("voltage_unbalance_zero_pct", "zero-sequence voltage unbalance", 2, True),
)
RESIDUAL_SENSORS: tuple[SensorDescription, ...] = (
    SensorDescription("residual_current_a", "residual current", 4),
)

# binary_sensor device classes (https://www.home-assistant.io/integrations/binary_sensor/):
# "safety" = on means unsafe; "problem" = on means a problem was detected.
FAULT_DEVICE_CLASS: Mapping[EventType, str] = {
    EventType.VOLTAGE_DIP: "problem",
    EventType.VOLTAGE_SWELL: "problem",
    EventType.VOLTAGE_INTERRUPTION: "problem",
    EventType.OVERCURRENT: "safety",
    EventType.GROUND_FAULT: "safety",
    EventType.OPEN_NEUTRAL: "safety",
    EventType.FREQUENCY_DEVIATION: "problem",
    EventType.ARC_FAULT_SUSPECTED: "safety",
    EventType.SENSOR_FAULT: "problem",
}
FAULT_LABEL: Mapping[EventType, str] = {
    EventType.VOLTAGE_DIP: "Voltage dip",
    EventType.VOLTAGE_SWELL: "Voltage swell",
    EventType.VOLTAGE_INTERRUPTION: "Supply interruption",
    EventType.OVERCURRENT: "Overcurrent",
    EventType.GROUND_FAULT: "Ground fault (residual current)",
    EventType.OPEN_NEUTRAL: "Open neutral",
    EventType.FREQUENCY_DEVIATION: "Frequency deviation",
    EventType.ARC_FAULT_SUSPECTED: "Arc fault suspected (advisory)",
    EventType.SENSOR_FAULT: "Sensor fault",
}


@dataclass(frozen=True, slots=True)
class DiscoveryEntity:
    """One discovery message: its component, object id, config topic and payload."""

    component: str
    object_id: str
    topic: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReadingTopic:
    """A ``reading`` topic and the fields its JSON always carries (null until known)."""

    channel: str
    phase: str | None
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DiscoveryPlan:
    """Everything discovery-related for a site: entities and the reading topics they read."""

    entities: tuple[DiscoveryEntity, ...]
    readings: tuple[ReadingTopic, ...]

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(e.topic for e in self.entities)


def device_info(site: SiteDescription, sw_version: str) -> dict[str, Any]:
    """The ``device`` map shared by every entity of the site."""
    return {
        "identifiers": [object_id("gridguard", site.id)],
        "name": site.name,
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "sw_version": sw_version,
    }


def origin_info(sw_version: str) -> dict[str, Any]:
    """The ``origin`` map Home Assistant logs with discovered entities."""
    return {"name": "GridGuard", "sw_version": sw_version}


def _energy_label(circuit: CircuitDescription, field: str, default: str) -> str:
    # Name the energy flows the way the Energy dashboard asks for them.
    if circuit.kind == "main":
        return {"energy_import_wh": "energy imported from grid",
                "energy_export_wh": "energy exported to grid"}.get(field, default)
    if circuit.kind == "generation":
        return {"energy_export_wh": "energy produced",
                "energy_import_wh": "energy consumed"}.get(field, default)
    if circuit.kind == "storage":
        return {"energy_export_wh": "energy discharged",
                "energy_import_wh": "energy charged"}.get(field, default)
    return {"energy_import_wh": "energy"}.get(field, default)


def _circuit_label(circuit: CircuitDescription, desc: SensorDescription) -> str:
    label = _energy_label(circuit, desc.field, desc.label)
    if desc.field == "power_active_w":
        # The sign convention is part of the name: HA users pick the grid sensor by it.
        label = "power (import +, export −)" if circuit.kind in ("main", "storage") else label
        label = "power (production −)" if circuit.kind == "generation" else label
    return label


def _enabled(circuit: CircuitDescription, phase: str, desc: SensorDescription) -> bool:
    if desc.diagnostic:
        return False
    energy = desc.field in ("energy_import_wh", "energy_export_wh")
    per_phase_of_many = len(circuit.phases) > 1 and len(phase) == 1
    if energy and per_phase_of_many:
        return False  # the total is what the Energy dashboard uses
    # A plain load never exports; its export counter only clutters the entity list.
    return not (desc.field == "energy_export_wh" and circuit.kind == "load")


class _Builder:
    def __init__(self, site: SiteDescription, topics: Topics, qos: int, sw_version: str,
                 expire_after_s: int, availability_topic: str) -> None:
        self.site = site
        self.topics = topics
        self.qos = qos
        self.expire_after_s = expire_after_s
        self.availability_topic = availability_topic
        self.device = device_info(site, sw_version)
        self.origin = origin_info(sw_version)
        self.entities: list[DiscoveryEntity] = []
        self.readings: list[ReadingTopic] = []

    def _common(self, obj_id: str, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "unique_id": f"{self.topics.node_id}_{obj_id}",
            "availability_topic": self.availability_topic,
            "payload_available": PAYLOAD_ONLINE,
            "payload_not_available": PAYLOAD_OFFLINE,
            "device": self.device,
            "origin": self.origin,
            "qos": self.qos,
        }

    def _add(self, component: str, obj_id: str, payload: dict[str, Any]) -> None:
        self.entities.append(
            DiscoveryEntity(component, obj_id, self.topics.discovery(component, obj_id), payload)
        )

    def sensors(self, channel: str, phase: str | None, descs: Iterable[SensorDescription],
                name_of: Any, enabled_of: Any) -> None:
        descs = tuple(descs)
        self.readings.append(ReadingTopic(channel, phase, tuple(d.field for d in descs)))
        for desc in descs:
            spec = field_spec(desc.field)
            obj_id = object_id(channel, phase or "", desc.field)
            payload = self._common(obj_id, name_of(desc))
            payload["state_topic"] = self.topics.reading(channel, phase)
            # null in the JSON renders as "None", which HA shows as "unknown".
            payload["value_template"] = "{{ value_json." + desc.field + " }}"
            if spec.unit:
                payload["unit_of_measurement"] = spec.unit
            if spec.device_class:
                payload["device_class"] = spec.device_class
            if spec.state_class:
                payload["state_class"] = spec.state_class
            if desc.precision is not None:
                payload["suggested_display_precision"] = desc.precision
            # A sensor chain that stops producing must not leave a stale number on
            # screen: without fresh readings the entity becomes unavailable.
            payload["expire_after"] = self.expire_after_s
            if desc.diagnostic:
                payload["entity_category"] = "diagnostic"
            if not enabled_of(desc):
                payload["enabled_by_default"] = False
            self._add("sensor", obj_id, payload)

    def circuit(self, c: CircuitDescription) -> None:
        for phase in c.phase_keys:
            total = len(phase) > 1
            descs: tuple[SensorDescription, ...] = (
                CIRCUIT_TOTAL_SENSORS if total else CIRCUIT_PHASE_SENSORS
            )
            if total and len(c.phases) == 3:
                descs = (*descs, *THREE_PHASE_TOTAL_SENSORS)
            suffix = f" phase {phase}" if len(c.phases) > 1 and not total else ""

            def name_of(d: SensorDescription, c: CircuitDescription = c, s: str = suffix) -> str:
                return f"{c.name} {_circuit_label(c, d)}{s}"

            def enabled_of(d: SensorDescription, c: CircuitDescription = c,
                           p: str = phase) -> bool:
                return _enabled(c, p, d)

            self.sensors(c.id, phase, descs, name_of, enabled_of)

    def faults(self) -> None:
        for et in EventType:
            obj_id = object_id("fault", et.value)
            payload = self._common(obj_id, FAULT_LABEL[et])
            payload.update({
                "state_topic": self.topics.fault_state(et.value),
                "payload_on": PAYLOAD_ON,
                "payload_off": PAYLOAD_OFF,
                "device_class": FAULT_DEVICE_CLASS[et],
                "json_attributes_topic": self.topics.fault_attributes(et.value),
            })
            self._add("binary_sensor", obj_id, payload)

    def controls(self) -> None:
        for c in self.site.circuits:
            if not c.relay:
                continue
            obj_id = object_id(c.id, "relay")
            payload = self._common(obj_id, f"{c.name} relay")
            payload.update({
                "state_topic": self.topics.relay_state(c.id),
                "command_topic": self.topics.relay_request(c.id),
                "payload_on": PAYLOAD_ON,
                "payload_off": PAYLOAD_OFF,
                "optimistic": False,
                "retain": False,
                "device_class": "switch",
            })
            self._add("switch", obj_id, payload)
        obj_id = object_id("acknowledge_alerts")
        payload = self._common(obj_id, "Acknowledge alerts")
        payload.update({
            "command_topic": self.topics.ack_request,
            "payload_press": PAYLOAD_PRESS,
            "retain": False,
        })
        self._add("button", obj_id, payload)


def discovery_plan(
    site: SiteDescription,
    topics: Topics,
    *,
    qos: int,
    sw_version: str,
    expire_after_s: int,
    control: bool,
    role: MqttRole = MqttRole.STANDALONE,
) -> DiscoveryPlan:
    """The discovery messages of a site that ``role`` publishes (a pure function).

    The collector's plan has the measurements (sensors, fault binary sensors), the
    worker's the relay switches and the acknowledge button (with ``control``), a
    standalone sink's both. Every entity is available while its publisher is online:
    the worker's under :attr:`Topics.worker_availability`, the others under
    :attr:`Topics.availability`.
    """
    availability = (topics.worker_availability if role is MqttRole.WORKER
                    else topics.availability)
    b = _Builder(site, topics, qos, sw_version, expire_after_s, availability)
    if role is not MqttRole.WORKER:
        _measurements(b, site)
    if control and role is not MqttRole.COLLECTOR:
        b.controls()
    return DiscoveryPlan(tuple(b.entities), tuple(b.readings))


def _measurements(b: _Builder, site: SiteDescription) -> None:
    for c in site.circuits:
        b.circuit(c)
    for v in site.voltage_channels:
        suffix = f" phase {v.phase}" if v.phase else ""
        b.sensors(v.id, v.phase, VOLTAGE_SENSORS,
                  lambda d, s=suffix: f"Supply {d.label}{s}", lambda d: not d.diagnostic)
    if site.polyphase:
        b.sensors("system", "ABC", SYSTEM_SENSORS,
                  lambda d: f"Supply {d.label}", lambda d: not d.diagnostic)
    for rid in site.residual_channels:
        b.sensors(rid, "G", RESIDUAL_SENSORS,
                  lambda d, r=rid: f"{d.label.capitalize()} {r}", lambda d: True)
    b.faults()


def owned_components(role: MqttRole, control: bool) -> frozenset[str]:
    """Discovery components whose stale configs a sink of ``role`` may remove.

    Each process cleans up only its own kind of entity, so the collector never deletes
    the worker's switches and the worker never deletes the collector's sensors. With
    control off nobody publishes switches or buttons; the collector then removes any
    left over from when it was on.
    """
    if role is MqttRole.WORKER:
        return CONTROL_COMPONENTS
    if role is MqttRole.COLLECTOR and control:
        return MEASUREMENT_COMPONENTS
    return MEASUREMENT_COMPONENTS | CONTROL_COMPONENTS


def config_component(topic: str) -> str:
    """The component of a discovery config topic (``<prefix>/<component>/<node>/<id>/config``)."""
    parts = topic.split("/")
    # the discovery prefix may itself have levels: count from the end
    return parts[-4] if len(parts) >= 5 else ""


def stale_config_topics(retained: Iterable[str], plan: DiscoveryPlan,
                        owned: frozenset[str] | None = None) -> tuple[str, ...]:
    """Config topics found on the broker that the current plan no longer has (sorted).

    Only topics of the ``owned`` components count (None: all); the others belong to
    another process of the same site. Publishing an empty retained payload to each
    removes the entity from Home Assistant and the retained message from the broker.
    """
    return tuple(sorted(t for t in set(retained) - plan.topics
                        if owned is None or config_component(t) in owned))
