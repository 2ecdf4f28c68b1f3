"""The adapter from the configuration models, on the shipped example configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config.load import parse_config
from collector.sinks.mqtt import mqtt_from_config
from collector.sinks.mqtt.discovery import discovery_plan
from collector.sinks.mqtt.topics import Topics

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "gridguard.example.yaml"


@pytest.fixture
def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["mqtt"] = {
        "enabled": True, "host": "broker.lan", "tls": {"verify": True},
        "username": "gridguard", "password": "a-real-broker-pw-9f3k",
        "qos": 2, "publish_interval_s": 5,
        "control": {"enabled": True, "shared_secret": "8c1e5b7a3d9f2c4e6a8b0d1f3e5a7c9b"},
    }
    return data


def test_settings_and_site_from_the_example(example: dict[str, Any]) -> None:
    settings, site = mqtt_from_config(parse_config(example))
    assert (settings.host, settings.port, settings.qos) == ("broker.lan", 8883, 2)
    assert settings.tls is not None
    assert settings.tls.verify
    assert settings.password == "a-real-broker-pw-9f3k"
    assert settings.shared_secret == "8c1e5b7a3d9f2c4e6a8b0d1f3e5a7c9b"
    assert "a-real-broker-pw" not in repr(settings), "secrets stay out of repr/logs"
    assert settings.control_enabled
    assert settings.publish_interval_s == 5
    assert settings.client_id == "gridguard-home-berlin"
    assert (site.id, site.name) == ("home-berlin", "Home, Berlin")
    by_id = {c.id: c for c in site.circuits}
    assert {c for c, d in by_id.items() if d.relay} == {"ev_charger", "water_heater",
                                                        "heat_pump"}
    assert {c for c, d in by_id.items() if d.critical} == {"server", "ventilation"}
    assert by_id["solar"].kind == "generation"
    assert by_id["heat_pump"].phases == ("A", "B", "C")
    assert [v.id for v in site.voltage_channels] == ["v_a", "v_b", "v_c"]
    assert site.residual_channels == ("i_residual",)
    assert site.polyphase


def test_the_example_site_gets_a_consistent_discovery_plan(example: dict[str, Any]) -> None:
    _settings, site = mqtt_from_config(parse_config(example))
    plan = discovery_plan(site, Topics("gridguard", "homeassistant", site.id), qos=1,
                          sw_version="0", expire_after_s=60, control=True)
    assert len({e.payload["unique_id"] for e in plan.entities}) == len(plan.entities)
    switches = sorted(e.payload["name"] for e in plan.entities if e.component == "switch")
    assert switches == ["EV charger (11 kW) relay", "Heat pump relay", "Water heater relay"]
