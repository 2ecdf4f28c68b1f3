"""Discovery payloads against Home Assistant's documented MQTT discovery schema.

The keys below are transcribed from Home Assistant's documentation, not from our
code:

* https://www.home-assistant.io/integrations/sensor.mqtt/        (sensor)
* https://www.home-assistant.io/integrations/binary_sensor.mqtt/ (binary_sensor)
* https://www.home-assistant.io/integrations/switch.mqtt/        (switch)
* https://www.home-assistant.io/integrations/button.mqtt/        (button)
* https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery (topic format,
  ``device`` and ``origin`` maps, removal by an empty retained payload)
* https://www.home-assistant.io/integrations/sensor/#device-class (units per class)
* https://www.home-assistant.io/integrations/binary_sensor/#device-class
* https://developers.home-assistant.io/docs/core/entity/sensor/#available-state-classes
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from collector.model import EventType
from collector.sinks.mqtt.discovery import DiscoveryPlan, discovery_plan, stale_config_topics
from collector.sinks.mqtt.settings import CircuitDescription, SiteDescription
from collector.sinks.mqtt.topics import Topics
from tests.mqtt.helpers import site

# Options every MQTT entity platform page lists (availability block, device, naming...).
COMMON = frozenset({
    "availability", "availability_mode", "availability_template", "availability_topic",
    "device", "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon",
    "json_attributes_template", "json_attributes_topic", "name", "object_id",
    "default_entity_id", "origin", "payload_available", "payload_not_available", "platform",
    "qos", "unique_id",
})
SCHEMA: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    # component: (required, allowed beyond COMMON)
    "sensor": (frozenset({"state_topic"}), frozenset({
        "device_class", "expire_after", "force_update", "last_reset_value_template",
        "options", "suggested_display_precision", "state_class", "state_topic",
        "unit_of_measurement", "value_template",
    })),
    "binary_sensor": (frozenset({"state_topic"}), frozenset({
        "device_class", "expire_after", "force_update", "off_delay", "payload_off",
        "payload_on", "state_topic", "value_template",
    })),
    "switch": (frozenset({"command_topic"}), frozenset({
        "command_template", "command_topic", "device_class", "optimistic", "payload_off",
        "payload_on", "retain", "state_off", "state_on", "state_topic", "value_template",
    })),
    "button": (frozenset({"command_topic"}), frozenset({
        "command_template", "command_topic", "device_class", "payload_press", "retain",
    })),
}
DEVICE_KEYS = frozenset({
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
})
ORIGIN_KEYS = frozenset({"name", "sw_version", "support_url"})
STATE_CLASSES = frozenset({"measurement", "measurement_angle", "total", "total_increasing"})
# Units Home Assistant accepts for the sensor device classes we use (None = no unit).
SENSOR_UNITS: Mapping[str, frozenset[str | None]] = {
    "voltage": frozenset({"V", "mV", "µV", "kV", "MV"}),
    "current": frozenset({"A", "mA"}),
    "power": frozenset({"W", "mW", "kW", "MW", "GW", "TW", "BTU/h"}),
    "apparent_power": frozenset({"VA", "mVA", "kVA"}),
    "reactive_power": frozenset({"var", "mvar", "kvar"}),
    "power_factor": frozenset({"%", None}),
    "frequency": frozenset({"Hz", "kHz", "MHz", "GHz"}),
    "energy": frozenset({"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh",
                         "cal", "kcal", "Mcal", "Gcal"}),
    "duration": frozenset({"d", "h", "min", "s", "ms", "µs"}),
}
# The energy device class only with these state classes (sensor docs, "energy").
ENERGY_STATE_CLASSES = frozenset({"total", "total_increasing"})
BINARY_SENSOR_CLASSES = frozenset({
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
})
SWITCH_CLASSES = frozenset({"outlet", "switch"})
BUTTON_CLASSES = frozenset({"identify", "restart", "update"})
ID_PART = r"[a-zA-Z0-9_-]+"


def plan_for(s: SiteDescription, control: bool = True) -> DiscoveryPlan:
    return discovery_plan(s, Topics("gridguard", "homeassistant", s.id), qos=1,
                          sw_version="0.1.0", expire_after_s=60, control=control)


def three_phase_site() -> SiteDescription:
    from collector.sinks.mqtt.settings import VoltageChannelDescription as V
    return SiteDescription(
        id="plant", name="Plant",
        circuits=(CircuitDescription("incomer", "Incomer", ("A", "B", "C"), kind="main"),
                  CircuitDescription("pump", "Pump", ("A", "B", "C"), relay=True),
                  CircuitDescription("pv", "PV", ("A", "B", "C"), kind="generation")),
        voltage_channels=(V("va", "A"), V("vb", "B"), V("vc", "C")),
        residual_channels=("ir_main",),
        polyphase=True,
    )


@pytest.fixture(params=["single", "three"])
def plan(request: pytest.FixtureRequest) -> DiscoveryPlan:
    return plan_for(site(site_id="home") if request.param == "single" else three_phase_site())


def test_every_payload_has_only_documented_keys_and_the_required_ones(plan: DiscoveryPlan) -> None:
    assert {e.component for e in plan.entities} == set(SCHEMA)
    for e in plan.entities:
        required, allowed = SCHEMA[e.component]
        keys = set(e.payload)
        assert not keys - COMMON - allowed, f"{e.topic}: undocumented {keys - COMMON - allowed}"
        assert required <= keys, f"{e.topic}: missing {required - keys}"
        # Device discovery needs `platform`; in single-component discovery it is not allowed.
        assert "platform" not in keys
        # entity registry: needs unique_id for `device` to be used
        assert isinstance(e.payload["unique_id"], str)
        assert e.payload["unique_id"]


def test_topics_follow_the_discovery_topic_format(plan: DiscoveryPlan) -> None:
    components = "sensor|binary_sensor|switch|button"
    fmt = re.compile(rf"^homeassistant/({components})/{ID_PART}/{ID_PART}/config$")
    for e in plan.entities:
        m = fmt.match(e.topic)
        assert m, e.topic
        assert m.group(1) == e.component


def test_ids_are_unique_and_names_do_not_repeat_the_device_name(plan: DiscoveryPlan) -> None:
    uids = [e.payload["unique_id"] for e in plan.entities]
    assert len(uids) == len(set(uids))
    assert len(plan.topics) == len(plan.entities)
    names = [e.payload["name"] for e in plan.entities]
    assert len(names) == len(set(names)), "two entities of one device with the same name"
    device_name = plan.entities[0].payload["device"]["name"]
    # HA warns when an entity name starts with the device name (it prefixes it itself).
    assert not [n for n in names if n.lower().startswith(device_name.lower() + " ")]


def test_device_and_origin_maps(plan: DiscoveryPlan) -> None:
    devices = {repr(e.payload["device"]) for e in plan.entities}
    assert len(devices) == 1, "one device per site"
    for e in plan.entities:
        dev: dict[str, Any] = e.payload["device"]
        assert set(dev) <= DEVICE_KEYS
        assert dev.get("identifiers") or dev.get("connections")
        assert set(e.payload["origin"]) <= ORIGIN_KEYS
        assert e.payload["origin"]["name"]


def test_value_types(plan: DiscoveryPlan) -> None:
    for e in plan.entities:
        p = e.payload
        assert p["qos"] in (0, 1, 2)
        assert isinstance(p["name"], str)
        for key in ("enabled_by_default", "optimistic", "retain", "force_update"):
            if key in p:
                assert isinstance(p[key], bool), (e.topic, key)
        if "expire_after" in p:
            assert isinstance(p["expire_after"], int)
            assert p["expire_after"] > 0
        if "suggested_display_precision" in p:
            assert isinstance(p["suggested_display_precision"], int)
            assert p["suggested_display_precision"] >= 0
        if "entity_category" in p:
            # sensors may only be diagnostic (sensor.mqtt page)
            assert p["entity_category"] == "diagnostic" or e.component != "sensor"
        assert p["availability_topic"].endswith("/status")


def test_sensor_units_and_classes_are_ones_home_assistant_accepts(plan: DiscoveryPlan) -> None:
    sensors = [e for e in plan.entities if e.component == "sensor"]
    assert sensors
    for e in sensors:
        p = e.payload
        dc, unit, sc = p.get("device_class"), p.get("unit_of_measurement"), p.get("state_class")
        if dc is not None:
            assert dc in SENSOR_UNITS, f"{e.topic}: device class {dc} not checked here"
            assert unit in SENSOR_UNITS[dc], f"{e.topic}: {unit!r} invalid for {dc}"
        if sc is not None:
            assert sc in STATE_CLASSES
        if dc == "energy":
            assert sc in ENERGY_STATE_CLASSES
        elif dc in ("voltage", "current", "power", "apparent_power", "reactive_power",
                    "frequency", "power_factor"):
            assert sc == "measurement", f"{e.topic}: {dc} should be a measurement"
        assert unit != "", "an empty unit must be omitted, not sent"
        assert p["value_template"].startswith("{{ value_json.")


def test_binary_switch_and_button_device_classes(plan: DiscoveryPlan) -> None:
    for e in plan.entities:
        dc = e.payload.get("device_class")
        if e.component == "binary_sensor":
            assert dc in BINARY_SENSOR_CLASSES
        elif e.component == "switch":
            assert dc in SWITCH_CLASSES
        elif e.component == "button" and dc is not None:
            assert dc in BUTTON_CLASSES


def test_one_binary_sensor_per_event_type() -> None:
    p = plan_for(site(site_id="home"))
    binaries = [e for e in p.entities if e.component == "binary_sensor"]
    assert len(binaries) == len(EventType)
    for et in EventType:
        (e,) = [b for b in binaries if b.payload["state_topic"].endswith(f"/fault/{et}/state")]
        assert e.payload["payload_on"] == "ON"
        assert e.payload["payload_off"] == "OFF"
        assert e.payload["json_attributes_topic"].endswith(f"/fault/{et}/attributes")


def _entities(plan: DiscoveryPlan, channel: str, field: str) -> list[Mapping[str, Any]]:
    return [e.payload for e in plan.entities if e.component == "sensor"
            and f"/reading/{channel}/" in e.payload["state_topic"]
            and e.payload["value_template"] == "{{ value_json." + field + " }}"]


def test_energy_dashboard_entities_are_separate_total_increasing_counters() -> None:
    p = plan_for(three_phase_site())
    for circuit in ("incomer", "pump", "pv"):
        for field in ("energy_import_wh", "energy_export_wh"):
            totals = [e for e in _entities(p, circuit, field)
                      if e["state_topic"].endswith("/ABC")]
            assert len(totals) == 1, (circuit, field)
            (e,) = totals
            assert e["device_class"] == "energy"
            assert e["state_class"] == "total_increasing"
            assert e["unit_of_measurement"] == "Wh"
    incomer = _entities(p, "incomer", "energy_import_wh")
    assert any("from grid" in e["name"] for e in incomer)
    assert any("to grid" in e["name"] for e in _entities(p, "incomer", "energy_export_wh"))
    # PV production is the export counter of the generation circuit, and enabled
    (prod,) = [e for e in _entities(p, "pv", "energy_export_wh")
               if e["state_topic"].endswith("/ABC")]
    assert "produced" in prod["name"]
    assert prod.get("enabled_by_default", True) is True
    # per-phase energy of a three-phase circuit exists but is not enabled by default
    per_phase = [e for e in _entities(p, "pump", "energy_import_wh")
                 if not e["state_topic"].endswith("/ABC")]
    assert len(per_phase) == 3
    assert all(e["enabled_by_default"] is False for e in per_phase)


def test_grid_power_name_states_the_sign_convention() -> None:
    p = plan_for(site(site_id="home"))
    (main,) = _entities(p, "main", "power_active_w")
    assert "import +" in main["name"]
    assert "export −" in main["name"]
    assert main["device_class"] == "power"
    assert main["unit_of_measurement"] == "W"


def test_relay_switches_only_for_circuits_with_relays_and_only_with_control() -> None:
    s = site(site_id="home")
    with_control = plan_for(s, control=True)
    switches = [e for e in with_control.entities if e.component == "switch"]
    assert sorted(e.payload["name"] for e in switches) == ["Fridge relay", "Kitchen relay"]
    for e in switches:
        assert e.payload["state_topic"].endswith("/state")
        assert e.payload["command_topic"].endswith("/request")
        assert e.payload["optimistic"] is False  # state comes from the collector
    assert [e.component for e in with_control.entities].count("button") == 1
    without = plan_for(s, control=False)
    assert not [e for e in without.entities if e.component in ("switch", "button")]


def test_removed_circuit_config_topics_are_stale() -> None:
    before = plan_for(site(site_id="home"))
    after = plan_for(site([c for c in site(site_id="x").circuits if c.id != "kitchen"],
                          site_id="home"))
    stale = stale_config_topics(before.topics, after)
    assert stale, "removing a circuit must leave config topics to clear"
    assert all("kitchen" in t for t in stale)
    kitchen_before = {t for t in before.topics if "/gridguard_home/kitchen" in t}
    assert set(stale) == kitchen_before
    assert stale_config_topics(after.topics, after) == ()
