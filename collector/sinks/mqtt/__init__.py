"""MQTT sink: live readings, faults and relay control for Home Assistant (and others)."""

from collector.sinks.mqtt.config_adapter import mqtt_from_config
from collector.sinks.mqtt.control import (
    AlertAcknowledger,
    CommandRefusedError,
    CommandResult,
    ControlHandler,
    InMemoryAcknowledger,
    RelayController,
    SimulatedRelayController,
)
from collector.sinks.mqtt.settings import (
    CircuitDescription,
    MqttRole,
    MqttSettings,
    SiteDescription,
    TlsSettings,
    VoltageChannelDescription,
    site_from_capabilities,
)
from collector.sinks.mqtt.sink import MqttSink, MqttSinkStats

__all__ = [
    "AlertAcknowledger",
    "CircuitDescription",
    "CommandRefusedError",
    "CommandResult",
    "ControlHandler",
    "InMemoryAcknowledger",
    "MqttRole",
    "MqttSettings",
    "MqttSink",
    "MqttSinkStats",
    "RelayController",
    "SimulatedRelayController",
    "SiteDescription",
    "TlsSettings",
    "VoltageChannelDescription",
    "mqtt_from_config",
    "site_from_capabilities",
]
