"""``MqttSink``: live readings, faults and Home Assistant discovery over MQTT.

Threads and what each may do:

* the sampler calls :meth:`MqttSink.publish`; it only folds values into the books
  under a lock and returns (microseconds, whatever the broker does);
* the sink's worker thread publishes: discovery after each (re)connect, the latest
  readings every ``publish_interval_s``, events and fault changes at once, control
  results;
* paho's network thread connects, reconnects with backoff and receives messages.

On every connect the worker first reads back this site's retained discovery configs
(subscribe, then a marker message through the broker as a barrier: once it comes
back every retained config has arrived), clears those that the site no longer has
(a removed circuit disappears from Home Assistant), publishes the current ones and
marks the site online.

Roles (:class:`MqttRole`): the collector's sink publishes the measurements, the rule
worker's (:mod:`collector.worker.mqtt_control`) the relay switches and the acknowledge
button, carries out the signed commands and publishes the relay states whenever they
change (:meth:`MqttSink.relays_changed`). Each has its own availability topic and last
will, and removes only stale entities of its own components, so neither deletes the
other's entities.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from collector.clock import Clock, SystemClock
from collector.model import Event, EventType, Metrics
from collector.sinks.mqtt.connection import Connection
from collector.sinks.mqtt.control import (
    AlertAcknowledger,
    CommandResult,
    ControlHandler,
    RelayController,
)
from collector.sinks.mqtt.discovery import (
    PAYLOAD_OFF,
    PAYLOAD_OFFLINE,
    PAYLOAD_ON,
    PAYLOAD_ONLINE,
    DiscoveryPlan,
    discovery_plan,
    owned_components,
    stale_config_topics,
)
from collector.sinks.mqtt.readings import FaultBook, ReadingsBook
from collector.sinks.mqtt.settings import MqttRole, MqttSettings, SiteDescription
from collector.sinks.mqtt.topics import Topics

log = logging.getLogger(__name__)

MAX_PENDING_EVENTS = 1000
MAX_PENDING_COMMANDS = 100
CLOSE_TIMEOUT_S = 5.0


def gridguard_version() -> str:
    try:
        return metadata.version("gridguard")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class MqttSinkStats:
    """Counters for health reporting and tests."""

    connected: bool
    connects: int
    readings_published: int
    events_published: int
    events_dropped: int
    commands_accepted: int
    commands_rejected: int
    stale_entities_removed: int


class MqttSink:
    """A :class:`collector.model.Sink` publishing to an MQTT broker (and Home Assistant)."""

    def __init__(
        self,
        settings: MqttSettings,
        site: SiteDescription,
        *,
        relays: RelayController | None = None,
        acknowledger: AlertAcknowledger | None = None,
        clock: Clock | None = None,
        sw_version: str | None = None,
        on_command: Callable[[CommandResult], None] | None = None,
    ) -> None:
        self._settings = settings
        self._site = site
        self._clock: Clock = clock or SystemClock()
        self._relays = relays
        self._on_command = on_command
        self._topics = Topics(settings.topic_prefix, settings.discovery_prefix, site.id)
        role = settings.role
        self._measures = role is not MqttRole.WORKER
        self._availability = (self._topics.worker_availability if role is MqttRole.WORKER
                              else self._topics.availability)
        self._owned = owned_components(role, settings.control_enabled)
        expire_s = max(60, round(5 * settings.publish_interval_s))
        self._plan: DiscoveryPlan = discovery_plan(
            site, self._topics, qos=settings.qos, sw_version=sw_version or gridguard_version(),
            expire_after_s=expire_s, control=settings.control_enabled, role=role,
        )
        self._control: ControlHandler | None = None
        if settings.control_enabled and role is not MqttRole.COLLECTOR:
            assert settings.shared_secret is not None  # MqttSettings validated it
            self._control = ControlHandler(
                site, settings.shared_secret, relays=relays, acknowledger=acknowledger,
                clock=self._clock, max_age_s=settings.command_max_age_s,
            )
        self._lock = threading.Lock()
        self._readings = ReadingsBook(self._plan.readings)
        self._faults = FaultBook(settings.event_hold_s)
        self._pending_events: deque[dict[str, Any]] = deque()
        self._commands: deque[bytes] = deque(maxlen=MAX_PENDING_COMMANDS)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connect_gen = 0
        self._ha_restarted = False
        self._sync_token = ""
        self._synced = threading.Event()
        self._retained_configs: set[str] = set()
        self._relays_dirty = False
        self._relay_published: dict[str, bool] = {}  # worker thread only
        self._counts = {"connects": 0, "readings": 0, "events": 0, "events_dropped": 0,
                        "stale": 0}
        self._conn = Connection(
            settings,
            settings.client_id or f"gridguard-{site.id}",
            will_topic=self._availability,
            will_payload=PAYLOAD_OFFLINE,
            on_connect=self._on_connect,
            on_message=self._on_message,
        )
        self._worker = threading.Thread(target=self._run, name="mqtt-sink", daemon=True)
        self._worker.start()
        self._conn.start()

    # -- the Sink protocol ---------------------------------------------------------

    def publish(self, metrics: Sequence[Metrics], events: Sequence[Event]) -> None:
        """Fold metrics and events into the latest state; never blocks on the broker."""
        try:
            now_s = self._clock.monotonic()
            with self._lock:
                self._readings.add(metrics)
                if events:
                    for obj in self._faults.add(events, now_s):
                        if len(self._pending_events) >= MAX_PENDING_EVENTS:
                            self._pending_events.popleft()
                            self._counts["events_dropped"] += 1
                        self._pending_events.append(obj)
            if events:
                self._wake.set()  # faults go out at once, not at the next interval
        except Exception:
            log.exception("MqttSink.publish failed; %d metrics and %d events not published",
                          len(metrics), len(events))

    def close(self) -> None:
        """Say goodbye (final relay states, availability offline), disconnect, stop."""
        self._stopping.set()
        self._wake.set()
        self._worker.join(CLOSE_TIMEOUT_S)
        if not self._worker.is_alive():
            # the owner released its relays before closing: leave the truth retained
            self._publish_relay_states(force=False)
        self._conn.publish_and_wait(self._availability, PAYLOAD_OFFLINE, qos=1,
                                    retain=True, timeout_s=2.0)
        self._conn.stop()

    def relays_changed(self) -> None:
        """A relay may have switched: publish the changed states now (any thread)."""
        with self._lock:
            self._relays_dirty = True
        self._wake.set()

    # -- for the CLI, health and tests ----------------------------------------------

    @property
    def topics(self) -> Topics:
        return self._topics

    @property
    def availability_topic(self) -> str:
        """This sink's online/offline topic (the collector's or the worker's)."""
        return self._availability

    @property
    def plan(self) -> DiscoveryPlan:
        return self._plan

    @property
    def connected(self) -> bool:
        return self._conn.connected

    def wait_connected(self, timeout_s: float) -> bool:
        return self._conn.wait_connected(timeout_s)

    def stats(self) -> MqttSinkStats:
        with self._lock:
            c = dict(self._counts)
        ctl = self._control
        return MqttSinkStats(
            connected=self._conn.connected,
            connects=c["connects"],
            readings_published=c["readings"],
            events_published=c["events"],
            events_dropped=c["events_dropped"],
            commands_accepted=ctl.accepted if ctl else 0,
            commands_rejected=ctl.rejected if ctl else 0,
            stale_entities_removed=c["stale"],
        )

    # -- paho thread ---------------------------------------------------------------

    def _on_connect(self) -> None:
        with self._lock:
            self._connect_gen += 1
            self._counts["connects"] += 1
        self._wake.set()

    def _on_message(self, topic: str, payload: bytes, retain: bool) -> None:
        t = self._topics
        if topic == t.control:
            if retain:
                # A retained command would be re-run on every reconnect; never obey one.
                log.warning("control: ignoring a retained command on %s (clear it with an "
                            "empty retained publish)", topic)
                return
            self._commands.append(payload)
            self._wake.set()
        elif topic == t.sync:
            if payload.decode("utf-8", "replace") == self._sync_token:
                self._synced.set()
        elif topic == t.ha_status:
            if payload == PAYLOAD_ONLINE.encode():
                with self._lock:
                    self._ha_restarted = True
                self._wake.set()
        elif topic.startswith(f"{self._settings.discovery_prefix}/") and retain and payload:
            with self._lock:
                self._retained_configs.add(topic)

    # -- worker thread --------------------------------------------------------------

    def _run(self) -> None:
        handled_gen = 0
        next_due = self._clock.monotonic()
        while not self._stopping.is_set():
            now = self._clock.monotonic()
            with self._lock:
                hold = self._faults.next_change_s(now)
            deadline = next_due if hold is None else min(next_due, hold)
            self._wake.wait(max(0.0, deadline - now))
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                with self._lock:
                    gen = self._connect_gen
                    ha_restarted, self._ha_restarted = self._ha_restarted, False
                if gen != handled_gen and self._conn.connected:
                    handled_gen = gen
                    self._after_connect()
                    next_due = self._clock.monotonic()
                elif ha_restarted:
                    self._republish_all()
                self._run_commands()
                with self._lock:
                    relays_dirty, self._relays_dirty = self._relays_dirty, False
                if relays_dirty:
                    self._publish_relay_states(force=False)
                self._publish_events_and_faults(force=False)
                now = self._clock.monotonic()
                if now >= next_due:
                    self._publish_readings()
                    # also catches a relay switched without relays_changed()
                    self._publish_relay_states(force=False)
                    next_due = now + self._settings.publish_interval_s
            except Exception:
                # The worker must survive anything: it is the only publisher.
                log.exception("MQTT worker round failed; continuing")

    def _after_connect(self) -> None:
        self._remove_stale_entities()
        self._republish_all()
        subs = [(self._topics.ha_status, 1)]
        if self._control is not None:
            subs.append((self._topics.control, 1))
        self._conn.subscribe(subs)

    def _remove_stale_entities(self) -> None:
        t = self._topics
        with self._lock:
            self._retained_configs.clear()
        self._synced.clear()
        self._sync_token = secrets.token_hex(8)
        if not self._conn.subscribe([(t.discovery_wildcard, 1), (t.sync, 1)]):
            return
        self._conn.publish(t.sync, self._sync_token, qos=1, retain=False)
        synced = self._synced.wait(self._settings.discovery_sync_timeout_s)
        self._conn.unsubscribe([t.discovery_wildcard, t.sync])
        if not synced:
            log.warning("could not read back retained discovery configs within %.0f s; "
                        "entities of removed circuits stay until the next connect",
                        self._settings.discovery_sync_timeout_s)
            return
        with self._lock:
            stale = stale_config_topics(self._retained_configs, self._plan, self._owned)
        for topic in stale:
            # An empty retained payload deletes the entity in HA and the retained message.
            self._conn.publish(topic, b"", qos=1, retain=True)
        if stale:
            log.info("removed %d Home Assistant entities no longer in the configuration",
                     len(stale))
            with self._lock:
                self._counts["stale"] += len(stale)

    def _republish_all(self) -> None:
        qos = self._settings.qos
        for e in self._plan.entities:
            self._conn.publish(e.topic, json.dumps(e.payload, allow_nan=False), qos=qos,
                               retain=True)
        self._conn.publish(self._availability, PAYLOAD_ONLINE, qos=1, retain=True)
        self._publish_relay_states(force=True)
        if not self._measures:
            return
        with self._lock:
            self._faults.forget_published()
            self._readings.mark_all_dirty()
        self._publish_events_and_faults(force=True)
        self._publish_readings()

    def _publish_readings(self) -> None:
        if not self._measures or not self._conn.connected:
            return  # stay dirty: published after the reconnect
        with self._lock:
            keys = self._readings.take_dirty()
            payloads = [(k, self._readings.payload(k)) for k in keys]
        sent = 0
        for (channel, phase), payload in payloads:
            text = json.dumps(payload, allow_nan=False)
            if self._conn.publish(self._topics.reading(channel, phase), text,
                                  qos=self._settings.qos, retain=True):
                sent += 1
        with self._lock:
            self._counts["readings"] += sent

    def _publish_events_and_faults(self, *, force: bool) -> None:
        if not self._measures or not self._conn.connected:
            return
        qos = self._settings.qos
        now = self._clock.monotonic()
        with self._lock:
            events = list(self._pending_events)
            self._pending_events.clear()
            changes = self._faults.changes(now, force=force)
            attrs = {t: self._faults.attributes(t) for t, _ in changes}
        sent = 0
        for obj in events:
            if self._conn.publish(self._topics.events, json.dumps(obj, allow_nan=False),
                                  qos=qos, retain=False):
                sent += 1
        for event_type, on in changes:
            self._publish_fault(event_type, on, attrs[event_type])
        with self._lock:
            self._counts["events"] += sent

    def _publish_fault(self, event_type: EventType, on: bool, attributes: dict[str, Any]) -> None:
        t, qos = self._topics, self._settings.qos
        if attributes:
            self._conn.publish(t.fault_attributes(event_type.value),
                               json.dumps(attributes, allow_nan=False), qos=qos, retain=True)
        ok = self._conn.publish(t.fault_state(event_type.value), PAYLOAD_ON if on else PAYLOAD_OFF,
                                qos=qos, retain=True)
        if ok:
            with self._lock:
                self._faults.mark_published(event_type, on)

    def _publish_relay_states(self, *, force: bool) -> None:
        if self._relays is None:
            return
        for circuit in sorted(self._relays.relay_circuits()):
            self._publish_relay_state(circuit, force=force)

    def _publish_relay_state(self, circuit: str, *, force: bool) -> None:
        """Publish one relay's state (retained) if it changed since last sent, or ``force``."""
        assert self._relays is not None
        try:
            on = self._relays.is_on(circuit)
        except Exception:
            log.exception("reading relay %s failed", circuit)
            return
        if not force and self._relay_published.get(circuit) == on:
            return
        if self._conn.publish(self._topics.relay_state(circuit),
                              PAYLOAD_ON if on else PAYLOAD_OFF,
                              qos=self._settings.qos, retain=True):
            self._relay_published[circuit] = on

    def _run_commands(self) -> None:
        if self._control is None:
            self._commands.clear()
            return
        while self._commands:
            payload = self._commands.popleft()
            result: CommandResult = self._control.handle(payload)
            self._conn.publish(self._topics.control_result, json.dumps(result.as_json()),
                               qos=self._settings.qos, retain=False)
            if self._on_command is not None:
                try:
                    self._on_command(result)
                except Exception:
                    log.exception("control: the command hook failed for %s", result.cmd)
            if (result.circuit is not None and self._relays is not None
                    and result.circuit in self._relays.relay_circuits()):
                # also after a refusal: Home Assistant's switch snaps back to the truth
                self._publish_relay_state(result.circuit, force=True)
