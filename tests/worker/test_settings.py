"""Worker settings from the shipped example configuration, checked against the raw YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from collector.config.load import load_config
from collector.model import Severity
from collector.worker.assembly import output_pins
from collector.worker.notify.base import Channel
from collector.worker.outputs import BUZZER, LED_CRITICAL, LED_WARNING, relay_output
from collector.worker.settings import worker_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "gridguard.example.yaml"


def test_example_config_maps_onto_the_worker() -> None:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    cfg = load_config(EXAMPLE, resolve_secrets=False)
    s = worker_settings(cfg)
    lc, alerts = raw["load_control"], raw["alerts"]
    assert s.site == raw["site"]["id"]
    assert [r.circuit for r in s.relays] == [r["circuit"] for r in lc["relays"]]
    assert s.shedding is not None
    # load_control.demand_limit_w wins over the demand alarm of thresholds
    assert s.shedding.demand_limit_w == float(lc["demand_limit_w"])
    assert (s.shedding.min_off_s, s.shedding.min_on_s, s.shedding.hysteresis_pct) == (
        lc["min_off_s"], lc["min_on_s"], lc["hysteresis_pct"])
    assert s.alert_policy.escalation_after_s == alerts["escalation"]["after_min"] * 60.0
    assert s.alert_policy.escalation_contacts == tuple(alerts["escalation"]["contacts"])
    assert s.intervals == frozenset({"150c"})  # 50 Hz, the ~3 s records
    critical = {c["id"] for c in raw["circuits"] if c.get("critical")}
    assert {c.id for c in s.circuits if c.critical} == critical
    assert not critical & {r.circuit for r in s.relays}
    # Grafana emails (policies.yaml); the worker adds SMS for critical and webhooks
    assert s.channels[Severity.CRITICAL] == (Channel.SMS, Channel.WEBHOOK)
    assert s.channels[Severity.WARNING] == (Channel.WEBHOOK,)
    # influx is enabled in the example: the worker's own faults reach Grafana too
    assert raw["influx"]["enabled"]
    assert s.worker_channels == s.channels
    pins = output_pins(cfg)
    local = alerts["local"]
    assert (pins[BUZZER].pin, pins[LED_WARNING].pin, pins[LED_CRITICAL].pin) == (
        local["buzzer_pin"], local["led_pins"]["warning"], local["led_pins"]["critical"])
    for r in lc["relays"]:
        spec = pins[relay_output(r["circuit"])]
        assert (spec.pin, spec.active_high) == (r["gpio_pin"], r.get("active_high", True))
