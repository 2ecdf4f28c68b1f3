"""The one place that talks to paho-mqtt: connect, reconnect with backoff, publish.

paho runs its own network thread (``loop_start``); it connects asynchronously and,
when the broker goes away, reconnects with exponential backoff between
``reconnect_min_s`` and ``reconnect_max_s``. The last will marks the site offline
when the collector dies without saying goodbye. Nothing here raises for a broker
problem: publish/subscribe return False and the caller carries on.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from collector.sinks.mqtt.settings import MqttSettings

log = logging.getLogger(__name__)


def _not_benign(record: logging.LogRecord) -> bool:
    # paho logs this at ERROR when its loop is stopped while no socket is open (our
    # close() during an outage); it is expected there and not a fault.
    return not record.getMessage().startswith("Client is not connected")


_paho_log = logging.getLogger(f"{__name__}.paho")
_paho_log.addFilter(_not_benign)

OnConnect = Callable[[], None]
OnMessage = Callable[[str, bytes, bool], None]


class Connection:
    """A paho client with its network thread, callbacks translated to plain calls."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        will_topic: str,
        will_payload: str,
        on_connect: OnConnect,
        on_message: OnMessage,
    ) -> None:
        self._settings = settings
        self._on_connect_cb = on_connect
        self._on_message_cb = on_message
        self._connected = threading.Event()
        self._failures = 0
        self._started = False
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        client.enable_logger(_paho_log)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            tls = settings.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.certfile) if tls.certfile else None,
                keyfile=str(tls.keyfile) if tls.keyfile else None,
                cert_reqs=ssl.CERT_REQUIRED if tls.verify else ssl.CERT_NONE,
            )
            if not tls.verify:
                client.tls_insecure_set(True)
        client.will_set(will_topic, will_payload, qos=1, retain=True)
        client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        # While the link is slow or down paho would otherwise queue QoS>0 messages
        # without bound; beyond this, publish() reports the drop instead.
        client.max_queued_messages_set(settings.max_queued_messages)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        self._client = client

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._started:
            return
        self._started = True
        s = self._settings
        # connect_async only records the target: DNS and TCP happen on paho's thread,
        # which retries the first connection too (loop_forever(retry_first_connection)).
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()

    def publish(self, topic: str, payload: str | bytes, *, qos: int, retain: bool) -> bool:
        """Hand a message to paho; False when it was not queued (not connected, full)."""
        if not self.connected:
            return False
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, OSError) as exc:  # bad topic / payload, socket trouble
            log.warning("MQTT publish to %s failed: %s", topic, exc)
            return False
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def publish_and_wait(self, topic: str, payload: str, *, qos: int, retain: bool,
                         timeout_s: float) -> bool:
        """Publish and wait until the broker has it (used for the goodbye message)."""
        if not self.connected:
            return False
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
            info.wait_for_publish(timeout_s)
            return info.is_published()
        except (ValueError, RuntimeError, OSError) as exc:
            log.debug("MQTT publish to %s not confirmed: %s", topic, exc)
            return False

    def subscribe(self, topics: Sequence[tuple[str, int]]) -> bool:
        if not self.connected or not topics:
            return False
        try:
            rc, _mid = self._client.subscribe(list(topics))
        except (ValueError, OSError) as exc:
            log.warning("MQTT subscribe failed: %s", exc)
            return False
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def unsubscribe(self, topics: Sequence[str]) -> bool:
        if not self.connected or not topics:
            return False
        try:
            rc, _mid = self._client.unsubscribe(list(topics))
        except (ValueError, OSError) as exc:
            log.warning("MQTT unsubscribe failed: %s", exc)
            return False
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def stop(self) -> None:
        """Disconnect cleanly (no last will) and stop the network thread."""
        if not self._started:
            return
        self._started = False
        if self._connected.is_set():
            with contextlib.suppress(ValueError, OSError):
                self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    # -- paho callbacks (paho's network thread) -----------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            self._failures += 1
            if self._failures == 1 or self._failures % 20 == 0:
                log.error("MQTT broker %s:%d refused the connection: %s (attempt %d)",
                          self._settings.host, self._settings.port, reason_code, self._failures)
            return
        if self._failures:
            log.info("MQTT connected to %s:%d after %d failed attempt(s)",
                     self._settings.host, self._settings.port, self._failures)
        else:
            log.info("MQTT connected to %s:%d", self._settings.host, self._settings.port)
        self._failures = 0
        self._connected.set()
        self._on_connect_cb()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            log.warning("MQTT connection to %s:%d lost (%s); reconnecting with backoff",
                        self._settings.host, self._settings.port, reason_code)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._failures += 1
        if self._failures == 1 or self._failures % 20 == 0:
            log.warning("MQTT broker %s:%d unreachable (attempt %d); retrying with backoff",
                        self._settings.host, self._settings.port, self._failures)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            self._on_message_cb(message.topic, bytes(message.payload), bool(message.retain))
        except Exception:
            # An exception here would end paho's network thread: log and carry on.
            log.exception("handling MQTT message on %s failed", message.topic)
