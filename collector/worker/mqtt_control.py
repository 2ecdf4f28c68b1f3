"""Home Assistant's signed relay and acknowledge commands, carried out by the rule worker.

The worker owns the relays and the alert book, so it runs the MQTT control client: a
:class:`collector.sinks.mqtt.MqttSink` in the ``worker`` role (the HMAC check, the
topics, and the relay switch / acknowledge button entities of :mod:`collector.sinks.mqtt`;
the collector's own sink publishes the measurements). Two adapters connect it here:

* :class:`ManualRelays` sits between the engine and the outputs. Load shedding switches
  the relays through it (it is the engine's :class:`~collector.worker.outputs.Outputs`)
  and so does a manual command (it is the sink's ``RelayController``), so both follow
  one set of rules (docs/alerting.md, "Manual switching"):

  1. a critical circuit is never switched off (control.py refuses it first; this is
     the second lock);
  2. a relay is not switched again before ``min_on_s`` (after switching on) or
     ``min_off_s`` (after switching off), counted from the worker's start too —
     the load-shedding rule that keeps compressors from short-cycling;
  3. a manual *off* holds until a manual *on*: load shedding never restores a circuit
     somebody switched off;
  4. a manual *on* holds for ``on_hold_s``: in that time load shedding does not open the
     relay (it sheds the next circuit instead); afterwards the relay follows load
     shedding again. A thermal emergency (the main incomer or the circuit itself at
     ``emergency_level`` of its trip heat) ends the hold at once;
  5. every manual switching, and every automatic action a hold suppressed or deferred,
     is audited; refused commands are audited by :class:`MqttControl`.

* :class:`EngineAcknowledger` acknowledges through :meth:`WorkerEngine.ack`, which
  audits it, stops escalation and silences the buzzer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from collector.clock import Clock
from collector.model import NS_PER_S
from collector.sinks.mqtt import (
    AlertAcknowledger,
    CommandRefusedError,
    CommandResult,
    MqttSettings,
    MqttSink,
    SiteDescription,
)
from collector.worker.alerts import AckResult, AlertState, UnknownAlertError
from collector.worker.audit import AuditAction, AuditLog, AuditRecord, Outcome
from collector.worker.outputs import RELAY_PREFIX, Outputs, relay_output

log = logging.getLogger(__name__)

ACK_ALL = "all"
RETRY_S = 15.0  # a relay that failed to switch when a hold ended is tried again after this


@dataclass(frozen=True, slots=True)
class ManualPolicy:
    """Rules for manual switching (times [s], heat level [fraction of trip heat])."""

    min_on_s: float = 300.0
    min_off_s: float = 300.0
    on_hold_s: float = 3600.0
    emergency_level: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_on_s", "min_off_s", "on_hold_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0 s, got {getattr(self, name)}")
        if not self.emergency_level > 0:
            raise ValueError(f"emergency_level: must be > 0, got {self.emergency_level}")


class HeatLevels(Protocol):
    """I²t heat of a circuit [fraction of trip heat]; the engine's ThermalMonitor."""

    def level(self, circuit: str) -> float: ...


@dataclass(frozen=True, slots=True)
class _Hold:
    """A manual command in force: the relay energised (load off) or not, until when."""

    energised: bool
    until_s: float | None  # monotonic [s]; None: until the next manual command


class ManualRelays:
    """The worker's relay outputs with manual commands on top of load shedding.

    ``set``/``close`` are the engine's (called under its lock); ``relay_circuits``,
    ``is_on`` and ``switch`` the MQTT sink's; ``tick`` the runner's. A relay output
    that is *on* is energised, which sheds the load (docs/alerting.md, fail-safe
    wiring); a circuit that is *on* is supplied.
    """

    def __init__(
        self,
        outputs: Outputs,
        circuits: Iterable[str],
        *,
        policy: ManualPolicy,
        clock: Clock,
        audit: AuditLog,
        critical: Iterable[str] = (),
        mains: Iterable[str] = (),
        who: str = "MQTT control",
    ) -> None:
        self._outputs = outputs
        self._policy = policy
        self._clock = clock
        self._audit = audit
        self._critical = frozenset(critical)
        self._mains = tuple(mains)
        self._who = who
        self._lock = threading.Lock()
        now = clock.monotonic()
        ids = tuple(circuits)
        # Relays start de-energised (every load on), and that counts as a switching:
        # the load may have started just now (rule 2, as in the shedder).
        self._energised = dict.fromkeys(ids, False)
        self._wanted = dict.fromkeys(ids, False)  # what load shedding last asked for
        self._changed_s = dict.fromkeys(ids, now)
        self._holds: dict[str, _Hold] = {}
        self._listeners: list[Callable[[], None]] = []
        self._heat: HeatLevels | None = None

    def watch_heat(self, heat: HeatLevels) -> None:
        """Use ``heat`` (the engine's thermal monitor) to recognise an emergency."""
        self._heat = heat

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (outside any lock) after a relay switched."""
        self._listeners.append(listener)

    # -- Outputs: the engine ---------------------------------------------------------

    def set(self, name: str, on: bool) -> None:
        circuit = name.removeprefix(RELAY_PREFIX) if name.startswith(RELAY_PREFIX) else None
        if circuit is None or circuit not in self._energised:
            self._outputs.set(name, on)
            return
        with self._lock:
            self._wanted[circuit] = on
            hold = self._holds.get(circuit)
            if hold is None or hold.energised == on:
                changed = self._apply(circuit, on)
            elif on and self._emergency(circuit):
                del self._holds[circuit]
                changed = self._apply(circuit, on)
                self._record(AuditAction.RELAY_OPEN, Outcome.OK,
                             f"manual on hold ended early: thermal emergency (heat at "
                             f"{self._emergency_heat(circuit):.0%} of trip); load shedding "
                             f"opened it", circuit)
            else:
                changed = False
                self._record(
                    AuditAction.RELAY_OPEN if on else AuditAction.RELAY_CLOSE, Outcome.SUPPRESSED,
                    f"load shedding's {'opening' if on else 'restore'} not carried out: "
                    f"switched {'off' if hold.energised else 'on'} manually"
                    + self._until_text(hold), circuit)
        if changed:
            self._notify()

    def close(self) -> None:
        """De-energise everything (the wrapped outputs' close)."""
        self._outputs.close()
        with self._lock:
            changed = any(self._energised.values())
            self._holds.clear()
            for c in self._energised:
                self._energised[c] = False
        if changed:
            self._notify()

    # -- RelayController: the MQTT sink ------------------------------------------------

    def relay_circuits(self) -> frozenset[str]:
        return frozenset(self._energised)

    def is_on(self, circuit: str) -> bool:
        with self._lock:
            return not self._energised[circuit]

    def switch(self, circuit: str, on: bool) -> None:
        """A manual command; raises CommandRefusedError when the rules forbid it now."""
        if not on and circuit in self._critical:
            raise CommandRefusedError(f"{circuit!r} is a critical circuit and is never "
                                      "switched off")
        if circuit not in self._energised:
            raise CommandRefusedError(f"no relay on circuit {circuit!r}; have "
                                      f"{sorted(self._energised)}")
        energise = not on
        state = "on" if on else "off"
        with self._lock:
            now = self._clock.monotonic()
            already = self._energised[circuit] == energise
            if not already:
                self._check_min_time(circuit, now)
                self._apply(circuit, energise)  # a hardware error propagates: "relay failed"
            hold = _Hold(energise, None if not on
                         else now + max(self._policy.on_hold_s, self._policy.min_on_s))
            self._holds[circuit] = hold
            if on:
                shed = " (load shedding had it off)" if self._wanted[circuit] else ""
                rule = f"load shedding may not open it{self._until_text(hold)}{shed}"
            else:
                rule = "stays off until switched on again; load shedding does not restore it"
            self._record(AuditAction.RELAY_CLOSE if on else AuditAction.RELAY_OPEN, Outcome.OK,
                         f"manual {state} ({self._who})"
                         + (f": already {state}; " if already else ": ") + rule, circuit)
        if not already:
            self._notify()

    # -- the runner --------------------------------------------------------------------

    def tick(self) -> None:
        """End manual *on* holds that are due: the relay follows load shedding again."""
        changed = False
        with self._lock:
            now = self._clock.monotonic()
            for circuit, hold in list(self._holds.items()):
                if hold.until_s is None or now < hold.until_s:
                    continue
                del self._holds[circuit]
                want = self._wanted[circuit]
                if want == self._energised[circuit]:
                    continue
                try:
                    self._apply(circuit, want)
                except Exception as exc:
                    log.exception("relay %s could not be switched after its manual hold",
                                  circuit)
                    self._record(AuditAction.RELAY_OPEN if want else AuditAction.RELAY_CLOSE,
                                 Outcome.FAILED, f"manual on hold ended; switching failed "
                                 f"(retry in {RETRY_S:g} s): {exc}", circuit)
                    self._holds[circuit] = _Hold(hold.energised, now + RETRY_S)
                    continue
                changed = True
                self._record(AuditAction.RELAY_OPEN if want else AuditAction.RELAY_CLOSE,
                             Outcome.OK, "manual on hold ended: load shedding still has it "
                             + ("off" if want else "on"), circuit)
        if changed:
            self._notify()

    def release(self) -> None:
        """The worker is stopping: every relay de-energised (load on), holds forgotten."""
        changed = False
        with self._lock:
            self._holds.clear()
            for circuit, energised in self._energised.items():
                self._wanted[circuit] = False
                if not energised:
                    continue
                try:
                    self._apply(circuit, False)
                except Exception as exc:
                    log.exception("relay %s could not be released", circuit)
                    self._record(AuditAction.RELAY_CLOSE, Outcome.FAILED,
                                 f"worker stopping: release failed: {exc}", circuit)
                    continue
                changed = True
                self._record(AuditAction.RELAY_CLOSE, Outcome.OK,
                             "worker stopping: relay released, load on (fail-safe)", circuit)
        if changed:
            self._notify()

    # -- internals (under the lock) ------------------------------------------------------

    def _apply(self, circuit: str, energise: bool) -> bool:
        if self._energised[circuit] == energise:
            return False
        self._outputs.set(relay_output(circuit), energise)
        self._energised[circuit] = energise
        self._changed_s[circuit] = self._clock.monotonic()
        return True

    def _check_min_time(self, circuit: str, now_s: float) -> None:
        # energised = the circuit is off now, so min_off_s applies, else min_on_s
        is_off = self._energised[circuit]
        minimum = self._policy.min_off_s if is_off else self._policy.min_on_s
        age = now_s - self._changed_s[circuit]
        if age < minimum:
            raise CommandRefusedError(
                f"{circuit} has been {'off' if is_off else 'on'} for {age:.0f} s; minimum "
                f"{'off' if is_off else 'on'} time {minimum:g} s (compressors must not "
                f"short-cycle), try again in {minimum - age:.0f} s")

    def _emergency_heat(self, circuit: str) -> float:
        if self._heat is None:
            return 0.0
        return max([self._heat.level(circuit)] + [self._heat.level(m) for m in self._mains])

    def _emergency(self, circuit: str) -> bool:
        return self._emergency_heat(circuit) >= self._policy.emergency_level

    def _until_text(self, hold: _Hold) -> str:
        if hold.until_s is None:
            return " until switched on again"
        left_s = hold.until_s - self._clock.monotonic()
        until_ns = self._clock.now_ns() + round(left_s * NS_PER_S)
        until = datetime.fromtimestamp(until_ns / NS_PER_S, UTC)
        return f" before {until:%Y-%m-%d %H:%M:%S} UTC ({left_s / 60:.0f} min)"

    def _record(self, action: AuditAction, outcome: Outcome, detail: str, circuit: str) -> None:
        self._audit.record(AuditRecord(self._clock.now_ns(), action, outcome, detail,
                                       circuit=circuit, channel="relay",
                                       target=relay_output(circuit)))

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("relay change listener failed")


class AckApi(Protocol):
    """What acknowledging needs of the engine."""

    def ack(self, alert_id: str, by: str) -> AckResult: ...

    def list_alerts(self, include_resolved: bool = False) -> list[dict[str, Any]]: ...


class EngineAcknowledger:
    """An :class:`AlertAcknowledger` acknowledging in the worker's alert book."""

    def __init__(self, engine: AckApi, by: str = "MQTT control") -> None:
        self._engine = engine
        self._by = by

    def acknowledge(self, alert: str, source: str) -> None:
        if alert == ACK_ALL:
            # Home Assistant's button: everything open and not yet acknowledged
            done = (AlertState.ACKNOWLEDGED.value, AlertState.RESOLVED.value)
            for a in self._engine.list_alerts(False):
                if a.get("state") not in done:
                    try:
                        self._engine.ack(str(a["id"]), self._by)
                    except UnknownAlertError:
                        continue  # forgotten since it was listed: nothing to acknowledge
            return
        try:
            result = self._engine.ack(alert, self._by)
        except UnknownAlertError:
            raise CommandRefusedError(f"no alert with id {alert!r}") from None
        if not result.changed:
            raise CommandRefusedError(result.message)


class MqttControl:
    """The worker's MQTT client: relay switches, the acknowledge button, signed commands."""

    def __init__(
        self,
        settings: MqttSettings,
        site: SiteDescription,
        relays: ManualRelays,
        acknowledger: AlertAcknowledger,
        *,
        audit: AuditLog,
        clock: Clock,
        sw_version: str | None = None,
    ) -> None:
        self._audit = audit
        self._clock = clock
        self._sink = MqttSink(settings, site, relays=relays, acknowledger=acknowledger,
                              clock=clock, sw_version=sw_version,
                              on_command=self._audit_refusal)
        relays.add_listener(self._sink.relays_changed)

    @property
    def sink(self) -> MqttSink:
        return self._sink

    def close(self) -> None:
        """Publish the final relay states, mark the worker offline, disconnect."""
        self._sink.close()

    def _audit_refusal(self, result: CommandResult) -> None:
        # Genuine relay commands that were not carried out (critical circuit, minimum
        # time, hardware failure) are audited; forged or malformed ones are only logged
        # and counted by the sink, so a flood cannot fill the audit log.
        if (result.accepted or not result.verified or result.cmd != "relay"
                or result.state not in ("on", "off")):
            return
        failed = result.reason.startswith("relay failed")
        self._audit.record(AuditRecord(
            self._clock.now_ns(),
            AuditAction.RELAY_CLOSE if result.state == "on" else AuditAction.RELAY_OPEN,
            Outcome.FAILED if failed else Outcome.SUPPRESSED,
            f"manual {result.state} (MQTT control) not carried out: {result.reason}",
            circuit=result.circuit, channel="relay",
        ))
