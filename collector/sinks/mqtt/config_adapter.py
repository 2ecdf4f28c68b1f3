"""The one function that reads the configuration models for the MQTT sink.

Everything else in this package sees only :class:`MqttSettings` and
:class:`SiteDescription`, so a change to the configuration's shape is fixed here.
"""

from __future__ import annotations

from collector.config.models import GridGuardConfig
from collector.sinks.mqtt.settings import (
    CircuitDescription,
    MqttRole,
    MqttSettings,
    SiteDescription,
    TlsSettings,
    VoltageChannelDescription,
)


def mqtt_from_config(
    cfg: GridGuardConfig, role: MqttRole = MqttRole.COLLECTOR
) -> tuple[MqttSettings, SiteDescription]:
    """Broker settings and the site description from a loaded configuration.

    ``role``: the collector (``gridguard run``) publishes the measurements; the rule
    worker (``gridguard worker``, with ``mqtt.control.enabled``) the relays and the
    acknowledge button, and connects as ``<client_id>-worker`` so the broker does not
    take one connection for the other. Secrets must have been resolved
    (``load_config(..., resolve_secrets=True)``).
    """
    m = cfg.mqtt
    tls = None
    if m.tls is not None:
        tls = TlsSettings(ca_file=m.tls.ca_file, certfile=m.tls.certfile,
                          keyfile=m.tls.keyfile, verify=m.tls.verify)
    secret = m.control.shared_secret
    client_id = m.client_id or f"gridguard-{cfg.site.id}"
    if role is MqttRole.WORKER:
        # one client id per connection: a second client with the same id would make the
        # broker drop the first, and the two would take turns forever
        client_id = f"{client_id}-worker"
    settings = MqttSettings(
        host=m.host,
        port=m.effective_port,
        tls=tls,
        username=m.username,
        password=m.password.get_secret_value() if m.password is not None else None,
        client_id=client_id,
        topic_prefix=m.topic_prefix,
        discovery_prefix=m.discovery_prefix,
        qos=m.qos,
        publish_interval_s=m.publish_interval_s,
        control_enabled=m.control.enabled,
        shared_secret=secret.get_secret_value() if secret is not None else None,
        role=role,
    )
    relays = {r.circuit for r in cfg.load_control.relays}
    circuits = tuple(
        CircuitDescription(
            id=c.id,
            name=c.display_name,
            phases=tuple(p.value for p in c.phases),
            kind=c.kind.value,
            critical=c.critical,
            relay=c.id in relays,
        )
        for c in cfg.circuits
    )
    volts = tuple(
        VoltageChannelDescription(v.id, v.phase.value)
        for v in cfg.channels.voltage
    )
    site = SiteDescription(
        id=cfg.site.id,
        name=cfg.site.display_name,
        circuits=circuits,
        voltage_channels=volts,
        residual_channels=tuple(r.id for r in cfg.channels.residual),
        polyphase=cfg.system.type.value == "three_phase" and len(volts) >= 3,
    )
    return settings, site
