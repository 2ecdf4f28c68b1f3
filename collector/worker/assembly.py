"""Building the worker's parts from a validated, secret-resolved configuration."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from collector.clock import Clock
from collector.config.circuits import CircuitKind
from collector.config.models import GridGuardConfig
from collector.influx_admin.api import InfluxApi
from collector.sinks.influx.spool import Spool
from collector.sinks.influx.transport import HttpTransport, is_v1_credential
from collector.sinks.influx.writer import InfluxWriter, WriterSettings
from collector.worker.audit import AuditLog, InfluxAudit, LoggingAudit, TeeAudit
from collector.worker.engine import WorkerEngine
from collector.worker.feed import InfluxMetricsFeed
from collector.worker.mqtt_control import (
    EngineAcknowledger,
    ManualPolicy,
    ManualRelays,
    MqttControl,
)
from collector.worker.notify.base import Notifier
from collector.worker.notify.email_smtp import SmtpEmail, SmtpSettings
from collector.worker.notify.sms_twilio import TwilioSettings, TwilioSms
from collector.worker.notify.webhook import OutgoingWebhooks, WebhookTarget
from collector.worker.outputs import (
    BUZZER,
    LED_CRITICAL,
    LED_WARNING,
    GpioOutputs,
    Outputs,
    PinSpec,
    SimulatedOutputs,
    is_raspberry_pi,
    relay_output,
)
from collector.worker.settings import WorkerSettings
from collector.worker.shedding import SheddingPolicy
from collector.worker.state_file import STATE_FILE

log = logging.getLogger(__name__)

ENV_WORKER_INFLUX_TOKEN = "GRIDGUARD_WORKER_INFLUX_TOKEN"
"""Token with read access to the raw bucket (and write to events); the collector's
write-only token cannot read the metrics back."""
WORKER_SPOOL_FILE = "worker-spool.sqlite"


def build_notifiers(cfg: GridGuardConfig, webhook_urls: Sequence[str] = ()) -> list[Notifier]:
    """The enabled channels (email, SMS) plus outgoing webhooks given by URL."""
    out: list[Notifier] = []
    email = cfg.alerts.email
    if email.enabled and email.smtp_host and email.from_address:
        out.append(SmtpEmail(SmtpSettings(
            host=email.smtp_host, port=email.smtp_port, from_address=email.from_address,
            to=tuple(email.to), security=email.security, username=email.username,
            password=email.password.get_secret_value() if email.password else None,
        )))
    sms = cfg.alerts.sms
    if sms.enabled and sms.account_sid and sms.auth_token and sms.from_number:
        out.append(TwilioSms(TwilioSettings(
            account_sid=sms.account_sid, auth_token=sms.auth_token.get_secret_value(),
            from_number=sms.from_number, to=tuple(sms.to), api_url=sms.api_url,
        )))
    if webhook_urls:
        out.append(OutgoingWebhooks(tuple(WebhookTarget(u) for u in webhook_urls)))
    return out


def output_pins(cfg: GridGuardConfig) -> dict[str, PinSpec]:
    """Logical output -> GPIO pin, from ``alerts.local`` and ``load_control.relays``."""
    pins: dict[str, PinSpec] = {}
    local = cfg.alerts.local
    if local.buzzer_pin is not None:
        pins[BUZZER] = PinSpec(local.buzzer_pin)
    if local.led_pins.warning is not None:
        pins[LED_WARNING] = PinSpec(local.led_pins.warning)
    if local.led_pins.critical is not None:
        pins[LED_CRITICAL] = PinSpec(local.led_pins.critical)
    for relay in cfg.load_control.relays:
        pins[relay_output(relay.circuit)] = PinSpec(relay.gpio_pin, relay.active_high)
    return pins


def build_outputs(cfg: GridGuardConfig, clock: Clock, *, simulate: bool) -> tuple[Outputs, str]:
    """GPIO on a Raspberry Pi (unless ``simulate``), else the recording simulation."""
    if not simulate and is_raspberry_pi():
        try:
            return GpioOutputs(output_pins(cfg)), "GPIO (rpi-lgpio)"
        except ImportError as exc:
            raise RuntimeError(
                "GPIO outputs need rpi-lgpio on the Raspberry Pi (pip install rpi-lgpio, "
                f"the `pi` extra); or run with --simulate-outputs: {exc}"
            ) from exc
    why = "requested" if simulate else "not a Raspberry Pi"
    return SimulatedOutputs(clock, log_changes=True), f"simulated ({why})"


def state_path(cfg: GridGuardConfig) -> Path:
    """Default alert state file: next to the spool directory, in ``worker/``."""
    return cfg.influx.spool.path.parent / "worker" / STATE_FILE


def worker_influx_token(cfg: GridGuardConfig, env: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if env is None else env
    token = environ.get(ENV_WORKER_INFLUX_TOKEN)
    if token:
        return token
    if cfg.influx.token is not None and cfg.influx.token.is_resolved:
        token = cfg.influx.token.get_secret_value()
        if is_v1_credential(token):
            raise ValueError(
                f"{ENV_WORKER_INFLUX_TOKEN}: not set, and influx.token is the collector's "
                "write-only credential, which cannot read the metrics; set it to the worker "
                "token (worker.token in the --token-dir of `gridguard influx setup`)"
            )
        return token
    return None


def build_audit(cfg: GridGuardConfig, clock: Clock, token: str | None
                ) -> tuple[AuditLog, InfluxAudit | None]:
    """Audit to the process log, and to InfluxDB's events bucket when influx is enabled."""
    if not cfg.influx.enabled or token is None:
        return LoggingAudit(), None
    influx = cfg.influx
    verify: bool | str = bool(influx.verify_tls)
    if verify and influx.ca_file is not None:
        verify = str(influx.ca_file)
    writer = InfluxWriter(
        HttpTransport(influx.url, influx.org, token, timeout_s=influx.write.timeout_s,
                      verify=verify),
        Spool(influx.spool.path / WORKER_SPOOL_FILE, 16 * 1024 * 1024),
        WriterSettings(flush_interval_s=1.0, retry_attempts=influx.write.max_retries + 1),
        clock=clock,
    )
    writer.start()
    store = InfluxAudit(writer, cfg.site.id, influx.buckets.events)
    return TeeAudit(LoggingAudit(), store), store


def build_feed(cfg: GridGuardConfig, intervals: frozenset[str], token: str | None
               ) -> InfluxMetricsFeed | None:
    if not cfg.influx.enabled or token is None:
        return None
    api = InfluxApi(cfg.influx.url, token, cfg.influx.org, timeout_s=cfg.influx.write.timeout_s)
    return InfluxMetricsFeed(api, cfg.influx.buckets.raw, intervals)


def mqtt_control_enabled(cfg: GridGuardConfig) -> bool:
    """The worker runs the MQTT control client (relays and acknowledgement from HA)."""
    return cfg.mqtt.enabled and cfg.mqtt.control.enabled


def build_manual_relays(cfg: GridGuardConfig, settings: WorkerSettings, outputs: Outputs,
                        clock: Clock, audit: AuditLog, *, on_hold_s: float
                        ) -> ManualRelays | None:
    """The relay outputs with manual commands on top, when MQTT control is enabled.

    The engine is then built on the returned object instead of ``outputs``; the minimum
    on/off times are those of ``load_control`` (they protect the loads whether or not
    automatic shedding is enabled).
    """
    if not mqtt_control_enabled(cfg):
        return None
    lc = cfg.load_control
    emergency = (settings.shedding or SheddingPolicy()).thermal_emergency_level
    policy = ManualPolicy(min_on_s=lc.min_on_s, min_off_s=lc.min_off_s, on_hold_s=on_hold_s,
                          emergency_level=emergency)
    return ManualRelays(
        outputs, [r.circuit for r in settings.relays], policy=policy, clock=clock, audit=audit,
        critical=[c.id for c in settings.circuits if c.critical],
        mains=[c.id for c in settings.circuits if c.kind is CircuitKind.MAIN],
    )


def build_mqtt_control(cfg: GridGuardConfig, relays: ManualRelays, engine: WorkerEngine,
                       audit: AuditLog, clock: Clock) -> MqttControl:
    """Connect (in the background) the worker's MQTT control client; secrets resolved."""
    from collector.sinks.mqtt import MqttRole, mqtt_from_config

    settings, site = mqtt_from_config(cfg, MqttRole.WORKER)
    relays.watch_heat(engine.thermal)
    return MqttControl(settings, site, relays, EngineAcknowledger(engine), audit=audit,
                       clock=clock)
