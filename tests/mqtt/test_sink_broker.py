"""MqttSink against a real mosquitto on loopback (tests/mosquitto_fixture.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.model import Event, EventType, Metrics, Severity
from collector.sinks.mqtt import (
    InMemoryAcknowledger,
    MqttSink,
    SimulatedRelayController,
    SiteDescription,
    signing,
)
from tests.mosquitto_fixture import MosquittoFactory, MosquittoServer
from tests.mqtt.helpers import SECRET, WAIT_S, Observer, settings, site

REPO = Path(__file__).resolve().parents[2]
T0 = time.time_ns()


def observe(server: MosquittoServer, s: SiteDescription, **kw: str) -> Observer:
    return Observer(server.host, server.port,
                    [f"gridguard/{s.id}/#", f"homeassistant/+/gridguard_{s.id}/+/config"], **kw)


Fx = tuple[Observer, MqttSink, SimulatedRelayController]


@pytest.fixture
def obs_and_sink(mosquitto: MosquittoServer) -> Iterator[Fx]:
    s = site()
    obs = observe(mosquitto, s)
    relays = SimulatedRelayController(["kitchen", "fridge"])
    sink = MqttSink(settings(mosquitto.host, mosquitto.port, control_enabled=True,
                             shared_secret=SECRET, event_hold_s=1.0),
                    s, relays=relays, acknowledger=InMemoryAcknowledger(), sw_version="9.9.9")
    try:
        yield obs, sink, relays
    finally:
        sink.close()
        obs.close()


def readings(obs: Observer, topic: str) -> list[dict[str, object]]:
    return [json.loads(m.text) for m in obs.messages if m.topic == topic]


def test_discovery_configs_are_published_retained_as_planned(obs_and_sink: Fx) -> None:
    obs, sink, _ = obs_and_sink
    want = {e.topic: e.payload for e in sink.plan.entities}
    obs.wait_for(lambda msgs: want.keys() <= {m.topic for m in msgs}, what="all configs")
    for topic, payload in want.items():
        m = obs.last(topic)
        assert m is not None
        assert json.loads(m.text) == json.loads(json.dumps(payload))
    obs.wait_payload(sink.topics.availability, "online")
    # a late subscriber (Home Assistant starting later) gets them as retained messages
    late = observe_host(obs_and_sink)
    try:
        late.wait_for(lambda msgs: want.keys() <= {m.topic for m in msgs if m.retain},
                      what="retained configs")
        assert late.last(sink.topics.availability).text == "online"  # type: ignore[union-attr]
    finally:
        late.close()


def observe_host(fx: Fx) -> Observer:
    obs, sink, _ = fx
    host, port = obs.client.host, obs.client.port
    return Observer(host, port, [f"{sink.topics.base}/#",
                                 f"homeassistant/+/{sink.topics.node_id}/+/config"])


def test_values_arrive_with_their_numbers_and_fill_every_sensor(obs_and_sink: Fx) -> None:
    obs, sink, _ = obs_and_sink
    sink.publish([
        Metrics(T0, "150c", "kitchen", "A", {
            "power_active_w": 1234.5, "current_rms_a": 5.367, "power_factor": 0.987,
            "energy_import_wh": 5678.25, "energy_export_wh": 0.0, "current_thd_pct": 12.5,
            "power_reactive_var": float("nan")}),
        Metrics(T0, "150c", "va", "A", {"voltage_rms_v": 230.1, "frequency_hz": 50.021,
                                        "voltage_thd_pct": 2.34}),
        Metrics(T0, "150c", "pv", "A", {"power_active_w": -2500.0, "energy_export_wh": 12.5}),
    ], [])
    topic = sink.topics.reading("kitchen", "A")
    obs.wait_for(lambda msgs: any(m.topic == topic for m in msgs), what=topic)
    k = readings(obs, topic)[-1]
    assert k["power_active_w"] == 1234.5
    assert k["current_rms_a"] == 5.367
    assert k["power_factor"] == 0.987
    assert k["energy_import_wh"] == 5678.25
    assert k["current_thd_pct"] == 12.5
    assert k["power_reactive_var"] is None  # NaN is "unknown", never a number
    assert k["interval"] == "150c"
    assert obs.last(topic).retain is False  # type: ignore[union-attr]
    vtopic = sink.topics.reading("va", "A")
    obs.wait_for(lambda msgs: any(m.topic == vtopic for m in msgs), what=vtopic)
    v = readings(obs, vtopic)[-1]
    assert (v["voltage_rms_v"], v["frequency_hz"], v["voltage_thd_pct"]) == (230.1, 50.021, 2.34)
    pv = sink.topics.reading("pv", "A")
    obs.wait_for(lambda msgs: any(m.topic == pv for m in msgs), what=pv)
    assert readings(obs, pv)[-1]["power_active_w"] == -2500.0  # export keeps its sign
    # every sensor's value_template names a member of the JSON on its state topic
    for e in sink.plan.entities:
        if e.component != "sensor" or e.payload["state_topic"] not in (topic, vtopic):
            continue
        field = re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", e.payload["value_template"])
        assert field is not None
        body = readings(obs, e.payload["state_topic"])[-1]
        assert field.group(1) in body, (e.topic, field.group(1))


def test_a_fault_turns_its_binary_sensor_on_at_once_then_off(obs_and_sink: Fx) -> None:
    obs, sink, _ = obs_and_sink
    state = sink.topics.fault_state("voltage_dip")
    obs.wait_payload(state, "OFF")
    sink.publish([], [Event(EventType.VOLTAGE_DIP, T0, 0.061, ("A",), Severity.WARNING, "va",
                            residual_voltage_pct=72.9, category="instantaneous sag")])
    obs.wait_payload(state, "ON", timeout=5)
    attrs = json.loads(obs.last(sink.topics.fault_attributes("voltage_dip")).text)  # type: ignore[union-attr]
    assert attrs["residual_voltage_pct"] == 72.9
    assert attrs["duration_s"] == 0.061
    ev = [json.loads(m.text) for m in obs.messages if m.topic == sink.topics.events]
    assert ev
    assert ev[-1]["type"] == "voltage_dip"
    assert ev[-1]["category"] == "instantaneous sag"
    obs.clear()
    obs.wait_payload(state, "OFF", timeout=5)  # event_hold_s = 1 s in this fixture


def test_signed_command_switches_and_bad_ones_do_nothing(obs_and_sink: Fx) -> None:
    obs, sink, relays = obs_and_sink
    t = sink.topics
    obs.wait_payload(t.relay_state("kitchen"), "ON")

    def send(obj: object | bytes, retain: bool = False) -> None:
        obs.publish(t.control, obj if isinstance(obj, bytes) else json.dumps(obj), retain)

    def results() -> list[dict[str, object]]:
        return [json.loads(m.text) for m in obs.messages if m.topic == t.control_result]

    site_id = sink.topics.site
    good = signing.sign_command(site_id, "relay", {"circuit": "kitchen", "state": "off"}, SECRET)
    forged = {**good, "nonce": signing.new_nonce()}  # signature no longer matches
    stale = signing.sign_command(site_id, "relay", {"circuit": "kitchen", "state": "off"},
                                 SECRET, ts=int(time.time()) - 3600)
    critical = signing.sign_command(site_id, "relay", {"circuit": "fridge", "state": "off"},
                                    SECRET)
    for bad in (forged, stale, critical, b"{malformed", {"cmd": "relay"}):
        send(bad)
    obs.wait_for(lambda msgs: len(results()) >= 5, what="5 results")
    assert [r["accepted"] for r in results()] == [False] * 5
    reasons = " | ".join(str(r["reason"]) for r in results())
    for part in ("bad signature", "stale", "critical", "malformed", "unsigned"):
        assert part in reasons
    assert relays.history == []
    assert sink.stats().commands_rejected == 5
    send(good)
    obs.wait_for(lambda msgs: len(results()) >= 6, what="6th result")
    assert results()[-1]["accepted"] is True
    obs.wait_payload(t.relay_state("kitchen"), "OFF")
    assert relays.history == [("kitchen", False)]
    send(good)  # the same message again: a replay
    obs.wait_for(lambda msgs: len(results()) >= 7, what="7th result")
    assert "replayed" in str(results()[-1]["reason"])
    assert relays.history == [("kitchen", False)]


def test_retained_command_is_never_obeyed(mosquitto: MosquittoServer) -> None:
    s = site()
    obs = observe(mosquitto, s)
    relays = SimulatedRelayController(["kitchen"])
    control = f"gridguard/{s.id}/control"
    stale_off = signing.sign_command(s.id, "relay", {"circuit": "kitchen", "state": "off"},
                                     SECRET)
    obs.publish(control, json.dumps(stale_off), retain=True)
    sink = MqttSink(settings(mosquitto.host, mosquitto.port, control_enabled=True,
                             shared_secret=SECRET), s, relays=relays)
    try:
        obs.wait_payload(f"gridguard/{s.id}/status", "online")
        # The retained command reaches the sink first (on subscribe); a live command
        # sent afterwards is handled after it, so its result proves the first was seen.
        live_on = signing.sign_command(s.id, "relay", {"circuit": "kitchen", "state": "on"},
                                       SECRET)
        obs.publish(control, json.dumps(live_on))
        obs.wait_for(lambda msgs: any(m.topic.endswith("/control/result") for m in msgs),
                     what="result of the live command")
        assert relays.history == [("kitchen", True)]
    finally:
        obs.publish(control, b"", retain=True)
        sink.close()
        obs.close()


def test_availability_goes_offline_when_the_collector_is_killed(
        mosquitto: MosquittoServer) -> None:
    site_id = f"killed{os.getpid()}"
    obs = Observer(mosquitto.host, mosquitto.port, [f"gridguard/{site_id}/status"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mqtt.publisher_proc", mosquitto.host,
         str(mosquitto.port), site_id],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        err = "" if line == "ready" or proc.stderr is None else proc.stderr.read()
        assert line == "ready", f"publisher said {line!r}; stderr: {err}"
        obs.wait_payload(f"gridguard/{site_id}/status", "online")
        proc.send_signal(signal.SIGKILL)  # no goodbye: the broker must send the last will
        proc.wait(WAIT_S)
        m = obs.wait_payload(f"gridguard/{site_id}/status", "offline")
        assert m.topic.endswith("/status")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT_S)
        obs.close()
    late = Observer(mosquitto.host, mosquitto.port, [f"gridguard/{site_id}/status"])
    try:  # retained, so Home Assistant starting later also shows it unavailable
        assert late.wait_payload(f"gridguard/{site_id}/status", "offline").retain
    finally:
        late.close()


def test_graceful_close_marks_the_site_offline(mosquitto: MosquittoServer) -> None:
    s = site()
    obs = observe(mosquitto, s)
    sink = MqttSink(settings(mosquitto.host, mosquitto.port), s)
    try:
        obs.wait_payload(f"gridguard/{s.id}/status", "online")
    finally:
        sink.close()
    obs.wait_payload(f"gridguard/{s.id}/status", "offline")
    obs.close()


def _timed_publishes(sink: MqttSink, value: float, n: int = 50) -> float:
    worst = 0.0
    for _ in range(n):
        t = time.perf_counter()
        sink.publish([Metrics(time.time_ns(), "150c", "kitchen", "A",
                              {"power_active_w": value})], [])
        worst = max(worst, time.perf_counter() - t)
    return worst


def test_broker_down_at_start_and_mid_run_never_blocks_publish(
        mosquitto_factory: MosquittoFactory) -> None:
    server = mosquitto_factory(start=False)
    s = site()
    sink = MqttSink(settings(server.host, server.port), s)
    reading = f"gridguard/{s.id}/reading/kitchen/A"
    try:
        # down at start: publish returns (and quickly: no network on this path)
        worst = _timed_publishes(sink, 111.0)
        assert not sink.connected
        print(f"publish() while the broker was down at start: worst {worst * 1e3:.3f} ms")
        server.start()
        assert sink.wait_connected(WAIT_S), "sink did not connect after the broker came up"
        obs = Observer(server.host, server.port, [reading])
        try:
            obs.wait_for(lambda msgs: any(json.loads(m.text)["power_active_w"] == 111.0
                                          for m in msgs), what="value from before the broker")
        finally:
            obs.close()
        # down mid-run
        server.stop()
        deadline = time.monotonic() + WAIT_S
        while sink.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sink.connected
        worst = _timed_publishes(sink, 222.0)
        print(f"publish() while the broker was down mid-run: worst {worst * 1e3:.3f} ms")
        server.start()
        assert sink.wait_connected(WAIT_S), "sink did not reconnect"
        obs = Observer(server.host, server.port, [reading])
        try:
            obs.wait_for(lambda msgs: any(json.loads(m.text)["power_active_w"] == 222.0
                                          for m in msgs), what="value from the outage")
        finally:
            obs.close()
        assert sink.stats().connects == 2
    finally:
        sink.close()


def test_removing_a_circuit_removes_its_entities(mosquitto: MosquittoServer) -> None:
    full = site()
    first = MqttSink(settings(mosquitto.host, mosquitto.port), full)
    kitchen = {e.topic for e in first.plan.entities if "/kitchen_" in e.topic}
    assert kitchen
    obs = observe(mosquitto, full)
    try:
        obs.wait_for(lambda msgs: kitchen <= {m.topic for m in msgs}, what="kitchen configs")
        first.close()
        obs.clear()
        smaller = SiteDescription(full.id, full.name,
                                  tuple(c for c in full.circuits if c.id != "kitchen"),
                                  full.voltage_channels)
        second = MqttSink(settings(mosquitto.host, mosquitto.port), smaller)
        try:
            obs.wait_for(lambda msgs: kitchen <= {m.topic for m in msgs if m.payload == b""},
                         what="empty configs for the kitchen")
            assert second.stats().stale_entities_removed == len(kitchen)
            others = {e.topic for e in second.plan.entities}
            cleared = {m.topic for m in obs.messages if m.payload == b""}
            assert not cleared & others, "only the removed circuit's entities are cleared"
        finally:
            second.close()
    finally:
        obs.close()
    late = observe(mosquitto, full)
    try:
        late.wait_payload(f"gridguard/{full.id}/status", "offline")
        assert not kitchen & {m.topic for m in late.messages}, "retained configs remain"
    finally:
        late.close()


def _acl_from_docs(site_id: str) -> str:
    doc = (REPO / "docs" / "home-assistant.md").read_text()
    m = re.search(r"```conf\n(# /etc/mosquitto/acl.*?)```", doc, re.S)
    assert m, "docs/home-assistant.md must contain the ACL as a ```conf block"
    return m.group(1).replace("home-berlin", site_id)


def test_documented_acl_lets_only_home_assistant_command_and_hides_commands(
        mosquitto_factory: MosquittoFactory) -> None:
    s = site()
    users = {"gridguard": "gg-pass-123456", "homeassistant": "ha-pass-123456",
             "zigbee2mqtt": "z2m-pass-123456"}
    server = mosquitto_factory(users=users, acl=_acl_from_docs(s.id))
    relays = SimulatedRelayController(["kitchen"])
    sink = MqttSink(settings(server.host, server.port, username="gridguard",
                             password=users["gridguard"], control_enabled=True,
                             shared_secret=SECRET), s, relays=relays)
    ha = Observer(server.host, server.port, [f"gridguard/{s.id}/#", "homeassistant/#"],
                  username="homeassistant", password=users["homeassistant"])
    other = Observer(server.host, server.port, ["#"], username="zigbee2mqtt",
                     password=users["zigbee2mqtt"])
    try:
        assert sink.wait_connected(WAIT_S), "the gridguard user must be able to connect"
        ha.wait_payload(f"gridguard/{s.id}/status", "online")  # HA reads states
        # another broker user may not command GridGuard ...
        good = signing.sign_command(s.id, "relay", {"circuit": "kitchen", "state": "off"},
                                    SECRET)
        other.publish(f"gridguard/{s.id}/control", json.dumps(good))
        time.sleep(0.5)
        assert relays.history == []
        assert sink.stats().commands_rejected == 0
        # ... Home Assistant may; and nobody but the collector reads commands
        ha.publish(f"gridguard/{s.id}/control", json.dumps(good))
        ha.wait_for(lambda msgs: any(m.topic.endswith("/control/result") for m in msgs),
                    what="result")
        assert relays.history == [("kitchen", False)]
        assert not [m for m in ha.messages + other.messages
                    if m.topic == f"gridguard/{s.id}/control"], "commands leaked to a reader"
    finally:
        sink.close()
        ha.close()
        other.close()


def test_wrong_password_is_refused_and_publish_still_returns(
        mosquitto_factory: MosquittoFactory) -> None:
    server = mosquitto_factory(users={"gridguard": "right-password-1"})
    sink = MqttSink(settings(server.host, server.port, username="gridguard",
                             password="wrong-password-1"), site())
    try:
        assert not sink.wait_connected(2.0)
        assert _timed_publishes(sink, 1.0, n=10) < 1.0
    finally:
        sink.close()
