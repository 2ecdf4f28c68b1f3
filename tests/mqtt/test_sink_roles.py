"""The collector's and the worker's sinks on one broker, for one site: each announces its
own half of the Home Assistant device, neither removes the other's entities, and only
the worker (which owns the relays) answers commands."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from collector.config.load import parse_config
from collector.sinks.mqtt import (
    InMemoryAcknowledger,
    MqttRole,
    MqttSettings,
    MqttSink,
    SimulatedRelayController,
    SiteDescription,
    mqtt_from_config,
    signing,
)
from collector.sinks.mqtt.discovery import (
    CONTROL_COMPONENTS,
    MEASUREMENT_COMPONENTS,
    discovery_plan,
    owned_components,
    stale_config_topics,
)
from collector.sinks.mqtt.topics import Topics
from tests.mosquitto_fixture import MosquittoFactory, MosquittoServer
from tests.mqtt.helpers import SECRET, Msg, Observer, settings, site
from tests.mqtt.test_sink_broker import _acl_from_docs


def _plan(s: SiteDescription, role: MqttRole, control: bool = True) -> frozenset[str]:
    topics = Topics("gridguard", "homeassistant", s.id)
    return discovery_plan(s, topics, qos=1, sw_version="0", expire_after_s=60,
                          control=control, role=role).topics


def _component(topic: str) -> str:
    return topic.split("/")[1]


def test_the_two_plans_split_the_device_without_overlap() -> None:
    s = site(site_id="home")
    standalone = _plan(s, MqttRole.STANDALONE)
    collector = _plan(s, MqttRole.COLLECTOR)
    worker = _plan(s, MqttRole.WORKER)
    assert collector | worker == standalone
    assert not collector & worker
    assert {_component(t) for t in collector} == MEASUREMENT_COMPONENTS
    assert {_component(t) for t in worker} == CONTROL_COMPONENTS
    # with control off the collector's plan is the same, and nobody has switches
    assert _plan(s, MqttRole.COLLECTOR, control=False) == collector


def test_stale_configs_are_only_the_owners() -> None:
    s = site(site_id="home")
    collector, worker = _plan(s, MqttRole.COLLECTOR), _plan(s, MqttRole.WORKER)
    topics = Topics("gridguard", "homeassistant", s.id)
    full = discovery_plan(s, topics, qos=1, sw_version="0", expire_after_s=60,
                          control=True, role=MqttRole.COLLECTOR)
    on_broker = collector | worker
    # the collector finds the worker's switches retained: not stale for it
    assert stale_config_topics(on_broker, full,
                               owned_components(MqttRole.COLLECTOR, True)) == ()
    wplan = discovery_plan(s, topics, qos=1, sw_version="0", expire_after_s=60,
                           control=True, role=MqttRole.WORKER)
    assert stale_config_topics(on_broker, wplan, owned_components(MqttRole.WORKER, True)) == ()
    # control turned off: the collector removes the leftover switches and button
    assert set(stale_config_topics(on_broker, full,
                                   owned_components(MqttRole.COLLECTOR, False))) == worker


def test_the_collector_and_the_worker_connect_as_two_clients() -> None:
    # one client id for two connections would make the broker drop one for the other
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "config"
                           / "gridguard.example.yaml").read_text())
    data["mqtt"] = {"enabled": True, "client_id": "gg-box",
                    "control": {"enabled": True,
                                "shared_secret": "8c1e5b7a3d9f2c4e6a8b0d1f3e5a7c9b"}}
    cfg = parse_config(data)
    collector, _ = mqtt_from_config(cfg)
    worker, _ = mqtt_from_config(cfg, MqttRole.WORKER)
    assert (collector.role, collector.client_id) == (MqttRole.COLLECTOR, "gg-box")
    assert (worker.role, worker.client_id) == (MqttRole.WORKER, "gg-box-worker")


def test_a_worker_sink_needs_control() -> None:
    with pytest.raises(ValueError, match="role: 'worker'"):
        MqttSettings(role=MqttRole.WORKER)


Pair = tuple[Observer, SiteDescription, SimulatedRelayController]


@pytest.fixture
def observed(mosquitto: MosquittoServer) -> Iterator[Pair]:
    s = site()
    obs = Observer(mosquitto.host, mosquitto.port,
                   [f"gridguard/{s.id}/#", f"homeassistant/+/gridguard_{s.id}/+/config"])
    try:
        yield obs, s, SimulatedRelayController(["kitchen"])
    finally:
        obs.close()


def _collector(server: MosquittoServer, s: SiteDescription, control: bool = True) -> MqttSink:
    return MqttSink(settings(server.host, server.port, control_enabled=control,
                             shared_secret=SECRET if control else None,
                             role=MqttRole.COLLECTOR), s)


def _worker(server: MosquittoServer, s: SiteDescription,
            relays: SimulatedRelayController) -> MqttSink:
    return MqttSink(settings(server.host, server.port, control_enabled=True,
                             shared_secret=SECRET, role=MqttRole.WORKER), s,
                    relays=relays, acknowledger=InMemoryAcknowledger())


def _configs(obs: Observer) -> list[Msg]:
    return [m for m in obs.messages if m.topic.startswith("homeassistant/")]


def test_restarts_of_either_process_never_remove_the_others_entities(
        mosquitto: MosquittoServer, observed: Pair) -> None:
    obs, s, relays = observed
    collector = _collector(mosquitto, s)
    worker = _worker(mosquitto, s, relays)
    everything = collector.plan.topics | worker.plan.topics
    try:
        obs.wait_for(lambda ms: everything <= {m.topic for m in ms if m.payload},
                     what="both halves of the device")
        for restart in ("collector", "worker", "collector"):
            if restart == "collector":
                collector.close()
                collector = _collector(mosquitto, s)
                assert collector.wait_connected(10.0)
            else:
                worker.close()
                worker = _worker(mosquitto, s, relays)
                assert worker.wait_connected(10.0)
            obs.wait_payload(collector.availability_topic, "online")
            obs.wait_payload(worker.availability_topic, "online")
        time.sleep(0.5)  # a removal would follow the read-back; give it the chance
        assert not [m.topic for m in _configs(obs) if not m.payload], "an entity was removed"
        assert collector.stats().stale_entities_removed == 0
        assert worker.stats().stale_entities_removed == 0
        # every switch is available while the worker is, whatever the collector does
        switch = json.loads(obs.last(next(t for t in worker.plan.topics  # type: ignore[union-attr]
                                          if "/switch/" in t)).text)
        assert switch["availability_topic"] == f"gridguard/{s.id}/worker/status"
        collector.close()
        obs.wait_payload(f"gridguard/{s.id}/status", "offline")
        assert obs.last(worker.availability_topic).text == "online"  # type: ignore[union-attr]
    finally:
        collector.close()
        worker.close()


def test_only_the_worker_answers_a_command(mosquitto: MosquittoServer, observed: Pair) -> None:
    obs, s, relays = observed
    collector = _collector(mosquitto, s)
    worker = _worker(mosquitto, s, relays)
    try:
        obs.wait_payload(collector.availability_topic, "online")
        obs.wait_payload(worker.availability_topic, "online")
        obs.wait_payload(f"gridguard/{s.id}/relay/kitchen/state", "ON")
        command = signing.sign_command(s.id, "relay", {"circuit": "kitchen", "state": "off"},
                                       SECRET)
        obs.publish(f"gridguard/{s.id}/control", json.dumps(command))
        obs.wait_payload(f"gridguard/{s.id}/relay/kitchen/state", "OFF")
        time.sleep(0.5)  # a second answer (the collector's) would arrive by now
        results = [json.loads(m.text) for m in obs.messages
                   if m.topic == f"gridguard/{s.id}/control/result"]
        assert [(r["accepted"], r["nonce"]) for r in results] == [(True, command["nonce"])]
        assert relays.history == [("kitchen", False)]
        assert collector.stats().commands_rejected == 0
        # the relay changes by itself (load shedding): the worker publishes it at once
        relays.switch("kitchen", True)
        worker.relays_changed()
        obs.wait_payload(f"gridguard/{s.id}/relay/kitchen/state", "ON", timeout=5)
    finally:
        collector.close()
        worker.close()


def test_a_collector_with_control_off_removes_leftover_switches(
        mosquitto: MosquittoServer, observed: Pair) -> None:
    obs, s, relays = observed
    worker = _worker(mosquitto, s, relays)
    controls = worker.plan.topics
    obs.wait_for(lambda ms: controls <= {m.topic for m in ms if m.payload}, what="switches")
    worker.close()
    collector = _collector(mosquitto, s, control=False)
    try:
        obs.wait_for(lambda ms: controls <= {m.topic for m in ms if not m.payload},
                     what="the switches removed")
        assert collector.stats().stale_entities_removed == len(controls)
    finally:
        collector.close()


def test_documented_acl_lets_home_assistant_see_and_command_the_worker(
        mosquitto_factory: MosquittoFactory) -> None:
    s = site()
    users = {"gridguard": "gg-pass-123456", "homeassistant": "ha-pass-123456"}
    server = mosquitto_factory(users=users, acl=_acl_from_docs(s.id))
    relays = SimulatedRelayController(["kitchen"])
    worker = MqttSink(settings(server.host, server.port, username="gridguard",
                               password=users["gridguard"], control_enabled=True,
                               shared_secret=SECRET, role=MqttRole.WORKER), s, relays=relays)
    ha = Observer(server.host, server.port, [f"gridguard/{s.id}/#", "homeassistant/#"],
                  username="homeassistant", password=users["homeassistant"])
    try:
        ha.wait_payload(f"gridguard/{s.id}/worker/status", "online")
        ha.wait_payload(f"gridguard/{s.id}/relay/kitchen/state", "ON")
        assert worker.plan.topics <= {m.topic for m in ha.wait_for(
            lambda ms: worker.plan.topics <= {m.topic for m in ms}, what="the worker's configs")}
        command = signing.sign_command(s.id, "relay", {"circuit": "kitchen", "state": "off"},
                                       SECRET)
        ha.publish(f"gridguard/{s.id}/control", json.dumps(command))
        ha.wait_payload(f"gridguard/{s.id}/relay/kitchen/state", "OFF")
    finally:
        worker.close()
        ha.close()
