"""Shared test helpers: an MQTT observer client, a small site, settings for a broker."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from collector.sinks.mqtt.settings import (
    CircuitDescription,
    MqttSettings,
    SiteDescription,
    VoltageChannelDescription,
)

SECRET = "c0ffee-7f3a9b2e5d4c1a08-test-secret"
WAIT_S = 15.0
_ids = itertools.count()


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")


class Observer:
    """A plain paho client that records every message on its subscriptions."""

    def __init__(self, host: str, port: int, topics: Iterable[str], *,
                 username: str | None = None, password: str | None = None) -> None:
        self.messages: list[Msg] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._topics = list(topics)
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"observer-{next(_ids)}-{time.monotonic_ns()}")
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(WAIT_S):
            raise AssertionError(f"observer could not subscribe to {self._topics}")

    def _on_connect(self, client: paho.Client, *args: object) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_message(self, client: paho.Client, userdata: object, m: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Msg(m.topic, bytes(m.payload), bool(m.retain)))
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[Msg]], bool], timeout: float = WAIT_S,
                 what: str = "condition") -> list[Msg]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"timed out waiting for {what}; topics seen: {seen}")
                self._cond.wait(left)
            return list(self.messages)

    def last(self, topic: str) -> Msg | None:
        with self._cond:
            for m in reversed(self.messages):
                if m.topic == topic:
                    return m
        return None

    def wait_payload(self, topic: str, payload: str, timeout: float = WAIT_S) -> Msg:
        def pred(msgs: list[Msg]) -> bool:
            return any(m.topic == topic and m.text == payload for m in msgs)
        self.wait_for(pred, timeout, f"{payload!r} on {topic}")
        m = self.last(topic)
        assert m is not None
        return m

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def site(circuits: Iterable[CircuitDescription] | None = None, site_id: str | None = None
         ) -> SiteDescription:
    """A small single-phase site: kitchen (relay), fridge (critical, relay), PV, main."""
    default = (
        CircuitDescription("main", "Main", ("A",), kind="main"),
        CircuitDescription("kitchen", "Kitchen", ("A",), relay=True),
        CircuitDescription("fridge", "Fridge", ("A",), critical=True, relay=True),
        CircuitDescription("pv", "PV inverter", ("A",), kind="generation"),
    )
    return SiteDescription(
        id=site_id or f"site{next(_ids)}",
        name="Test house",
        circuits=tuple(circuits) if circuits is not None else default,
        voltage_channels=(VoltageChannelDescription("va", "A"),),
    )


def settings(host: str, port: int, **kw: object) -> MqttSettings:
    base = MqttSettings(host=host, port=port, client_id=f"gg-test-{next(_ids)}",
                        publish_interval_s=0.2, reconnect_min_s=1, reconnect_max_s=1,
                        keepalive_s=5, discovery_sync_timeout_s=5.0)
    return replace(base, **kw)  # type: ignore[arg-type]
