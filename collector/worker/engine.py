"""The rule worker's engine: metrics and Grafana alerts in; alerts, alarms, relays, messages out.

Inputs (any thread):

* :meth:`WorkerEngine.on_metrics` — stored metrics records (polled from InfluxDB by
  :mod:`collector.worker.feed`, or handed over in-process by :class:`WorkerSink`):
  I²t thermal state, sensor health, and the power readings load shedding works on;
* :meth:`WorkerEngine.on_grafana` — signals from Grafana webhook notifications;
* :meth:`WorkerEngine.ack` — an acknowledgement from ``gridguard alerts ack``.

Periodic (the worker's loop):

* :meth:`WorkerEngine.tick` (every ~50 ms) — escalations and resolutions due, load
  shedding decisions and relay switching, the local alarm pattern;
* :meth:`WorkerEngine.deliver_pending` (its own thread) — sends queued notifications,
  retrying retryable failures after ``retry_delays_s``. Network I/O never happens
  under the engine's lock, so a slow SMTP server cannot delay an alarm or a relay.

Every action is written to the audit log; the worker's own findings (I²t, sensor
health) become ``faults`` records and alerts keyed like Grafana's fault alerts.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from collector.clock import Clock
from collector.config.base import is_email, is_phone
from collector.config.circuits import CircuitKind
from collector.model import NS_PER_S, Event, Metrics, Severity
from collector.nomenclature import field_spec
from collector.rules.faults import FaultState
from collector.worker.alerts import (
    AckResult,
    AlertBook,
    AlertSignal,
    AlertSource,
    NotifyAction,
    NotifyReason,
    fault_key,
)
from collector.worker.audit import (
    AuditAction,
    AuditLog,
    AuditRecord,
    FaultRecord,
    Outcome,
)
from collector.worker.notify.base import Channel, Delivery, Message, Notifier, alert_message
from collector.worker.outputs import AlarmDriver, Outputs, relay_output
from collector.worker.sensor_health import SensorFinding, SensorHealth
from collector.worker.settings import WorkerSettings
from collector.worker.shedding import (
    LoadShedder,
    RelayAction,
    RelayActionKind,
    Sheddable,
    SheddingInputs,
)
from collector.worker.thermal import ThermalMonitor, ThermalParams, ThermalReading, ThermalStatus

log = logging.getLogger(__name__)

THERMAL_FAULT = "thermal_overload"
LOAD_SHED_FAULT = "load_shed"
POWER_FIELD = "power_active_w"


@dataclass(frozen=True, slots=True)
class _Pending:
    """A notification waiting to be sent (or re-sent) to one recipient."""

    message: Message
    channel: Channel
    to: str
    due_s: float
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class _Power:
    time_ns: int
    power_w: float
    total: bool  # the circuit's total record (all phases) rather than one phase


class WorkerEngine:
    """Ties the rules, the alert book, the outputs and the channels together."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        clock: Clock,
        outputs: Outputs,
        notifiers: Sequence[Notifier],
        audit: AuditLog,
        book: AlertBook | None = None,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._outputs = outputs
        self._audit = audit
        self._lock = threading.RLock()
        self._book = book if book is not None else AlertBook(settings.alert_policy)
        th = settings.thermal
        self._thermal = ThermalMonitor(
            {c.id: ThermalParams(c.breaker_rating_a, th.time_constant_s, th.pickup,
                                 th.approach_level) for c in settings.circuits},
            intervals=settings.intervals, nominal_frequency_hz=settings.nominal_frequency_hz,
        )
        self._thermal_active: dict[tuple[str, str | None], Severity] = {}
        ratings = {c.id: c.breaker_rating_a for c in settings.circuits}
        ratings.update(settings.sensor.ratings_a)
        self._sensors = SensorHealth(replace(settings.sensor, ratings_a=ratings))
        self._shedder: LoadShedder | None = None
        if settings.shedding is not None and settings.relays:
            by_id = {c.id: c for c in settings.circuits}
            self._shedder = LoadShedder(
                [Sheddable(r.circuit, by_id[r.circuit].priority, by_id[r.circuit].critical)
                 for r in settings.relays],
                settings.shedding,
            )
            for circuit in self._shedder.excluded_critical:
                log.error("relay on critical circuit %r ignored: critical circuits are never "
                          "shed", circuit)
            self._shed_state = self._shedder.initial_state(clock.monotonic())
        self._alarm = AlarmDriver(outputs)
        self._alarm_state: tuple[Severity, bool] | None = None
        self._notifiers = {n.channel: n for n in notifiers}
        self._queue: deque[_Pending] = deque()
        self._power: dict[tuple[str, str | None], _Power] = {}
        self._rejected_times: deque[float] = deque()

    # -- read-only views -----------------------------------------------------------

    @property
    def book(self) -> AlertBook:
        return self._book

    @property
    def thermal(self) -> ThermalMonitor:
        return self._thermal

    def shed_circuits(self) -> tuple[str, ...]:
        with self._lock:
            return self._shed_state.shed_circuits() if self._shedder is not None else ()

    def state_snapshot(self, known_revision: int) -> tuple[int, dict[str, Any] | None]:
        """(revision, saved form of the alert book), or (revision, None) if unchanged."""
        with self._lock:
            revision = self._book.revision
            if revision == known_revision:
                return revision, None
            return revision, self._book.to_dict()

    def pending_notifications(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- inputs -------------------------------------------------------------------

    def on_metrics(self, metrics: Sequence[Metrics]) -> None:
        """New stored records: thermal state, sensor health and power readings."""
        # one aggregation only: mixing 3 s and 10 min records would count energy twice
        # and make a frozen value look alive
        chosen = [m for m in metrics if m.interval in self._s.intervals]
        if not chosen:
            return
        with self._lock:
            now_ns = self._clock.now_ns()
            for reading in self._thermal.update(chosen):
                self._thermal_rule(reading, now_ns)
            for finding in self._sensors.update(chosen):
                self._sensor_rule(finding, now_ns)
            for m in chosen:
                self._note_power(m)

    def on_grafana(self, signals: list[AlertSignal]) -> None:
        with self._lock:
            now_ns = self._clock.now_ns()
            for sig in signals:
                self._signal(sig, now_ns)

    def ack(self, alert_id: str, by: str) -> AckResult:
        with self._lock:
            now_ns = self._clock.now_ns()
            result = self._book.ack(alert_id, by, now_ns)
            a = result.alert
            self._audit.record(AuditRecord(
                now_ns, AuditAction.ACKNOWLEDGE,
                Outcome.OK if result.changed else Outcome.SUPPRESSED, result.message,
                circuit=a.circuit, severity=a.severity, target=by, alert_id=a.id,
            ))
            self._render_alarm()
            return result

    def list_alerts(self, include_resolved: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [a.to_dict() for a in self._book.alerts(open_only=not include_resolved)]

    def rejected(self, client: str, status: int, reason: str) -> None:
        """A refused HTTP request; audited, at most ``rejected_audit_per_min`` a minute."""
        with self._lock:
            now_s = self._clock.monotonic()
            while self._rejected_times and now_s - self._rejected_times[0] > 60.0:
                self._rejected_times.popleft()
            if len(self._rejected_times) >= self._s.rejected_audit_per_min:
                return  # a flood must not flood the audit log too
            self._rejected_times.append(now_s)
            self._audit.record(AuditRecord(
                self._clock.now_ns(), AuditAction.WEBHOOK_REJECTED, Outcome.FAILED,
                f"HTTP {status}: {reason}", target=client,
            ))

    # -- periodic -------------------------------------------------------------------

    def tick(self) -> None:
        """Escalations/resolutions due, load shedding, alarm outputs."""
        with self._lock:
            now_ns = self._clock.now_ns()
            for action in self._book.tick(now_ns):
                self._dispatch(action, now_ns)
            if self._shedder is not None:
                self._shed(now_ns)
            self._render_alarm()

    def deliver_pending(self) -> list[Delivery]:
        """Send every notification that is due; returns what happened."""
        with self._lock:
            now_s = self._clock.monotonic()
            due = [p for p in self._queue if p.due_s <= now_s]
            self._queue = deque(p for p in self._queue if p.due_s > now_s)
        results: list[Delivery] = []
        for p in due:
            notifier = self._notifiers.get(p.channel)
            if notifier is None:
                result = Delivery(p.channel, p.to, False, "channel not configured")
            else:
                try:
                    result = notifier.send(p.message, p.to)
                except Exception as exc:  # a channel bug must not stop the others
                    log.exception("notifier %s failed", p.channel)
                    result = Delivery(p.channel, p.to, False, f"internal error: {exc}")
            results.append(result)
            self._after_delivery(p, result)
        return results

    def close(self) -> None:
        """De-energise every output (relays back to 'loads on')."""
        with self._lock:
            for circuit in self.shed_circuits():
                self._outputs.set(relay_output(circuit), False)
            self._alarm.update(self._clock.monotonic(), None)

    # -- rules ------------------------------------------------------------------------

    def _thermal_rule(self, r: ThermalReading, now_ns: int) -> None:
        # faults records carry the heat in % of the trip heat, like a protection relay's
        # thermal state; one record per transition (a severity change resolves the old
        # severity's series and activates the new one, as the Flux tasks do)
        th = self._s.thermal
        key = (r.circuit, r.phase)
        active = self._thermal_active.get(key)
        level_pct = 100.0 * r.level
        if r.status is ThermalStatus.TRIPPED and active is not Severity.CRITICAL:
            severity = Severity.CRITICAL
        elif r.status is ThermalStatus.APPROACHING and active is None:
            severity = Severity.WARNING
        elif active is not None and r.level < th.approach_level - th.clear_margin:
            del self._thermal_active[key]
            self._fault(now_ns, THERMAL_FAULT, active, FaultState.RESOLVED, r.circuit, r.phase,
                        level_pct, self._thermal_threshold_pct(active), "%")
            self._signal(AlertSignal(
                fault_key(THERMAL_FAULT, r.circuit, r.phase), False, active, THERMAL_FAULT,
                AlertSource.WORKER, r.circuit, r.phase, value=level_pct,
                threshold=self._thermal_threshold_pct(active)), now_ns)
            return
        else:
            return
        if active is not None:
            self._fault(now_ns, THERMAL_FAULT, active, FaultState.RESOLVED, r.circuit, r.phase,
                        level_pct, self._thermal_threshold_pct(active), "%")
        self._thermal_active[key] = severity
        threshold = self._thermal_threshold_pct(severity)
        eta = ("at the trip heat: the breaker may open any moment"
               if severity is Severity.CRITICAL
               else "approaching the trip heat")
        summary = (f"I²t thermal overload on {r.circuit}"
                   + (f" phase {r.phase}" if r.phase else "")
                   + f": {r.current_a:.1f} A on a {r.rating_a:g} A breaker "
                   f"({r.current_a / r.rating_a:.0%}), heat at {r.level:.0%} of trip, {eta}")
        self._fault(now_ns, THERMAL_FAULT, severity, FaultState.ACTIVE, r.circuit, r.phase,
                    level_pct, threshold, "%")
        self._signal(AlertSignal(
            fault_key(THERMAL_FAULT, r.circuit, r.phase), True, severity, THERMAL_FAULT,
            AlertSource.WORKER, r.circuit, r.phase, summary, level_pct, threshold), now_ns)

    def _thermal_threshold_pct(self, severity: Severity) -> float:
        return 100.0 if severity is Severity.CRITICAL else 100.0 * self._s.thermal.approach_level

    def _fault(self, now_ns: int, fault_type: str, severity: Severity, state: FaultState,
               circuit: str | None, phase: str | None, value: float | None,
               threshold: float | None, unit: str) -> None:
        self._audit.fault(FaultRecord(now_ns, fault_type, severity, state, circuit, phase,
                                      value, threshold, unit))

    def _sensor_rule(self, f: SensorFinding, now_ns: int) -> None:
        state = FaultState.ACTIVE if f.active else FaultState.RESOLVED
        try:
            unit = field_spec(f.field).unit
        except KeyError:
            unit = ""
        self._fault(now_ns, f.kind.value, Severity.WARNING, state, f.channel, f.phase, f.value,
                    f.threshold, unit)
        self._signal(AlertSignal(
            fault_key(f.kind.value, f.channel, f.phase), f.active, Severity.WARNING,
            f.kind.value, AlertSource.WORKER, f.channel, f.phase,
            f"sensor problem on {f.channel}: {f.detail}", f.value, f.threshold), now_ns)

    def _note_power(self, m: Metrics) -> None:
        p = m.fields.get(POWER_FIELD)
        if isinstance(p, bool) or not isinstance(p, int | float):
            return
        total = "current_rms_a" not in m.fields  # circuit totals carry no current
        prev = self._power.get((m.channel, m.phase))
        if prev is None or m.time_ns >= prev.time_ns:
            self._power[(m.channel, m.phase)] = _Power(m.time_ns, float(p), total)

    def _circuit_power_w(self, circuit: str, now_ns: int) -> float | None:
        oldest = now_ns - round(self._s.power_stale_s * NS_PER_S)
        fresh = [v for (c, _), v in self._power.items() if c == circuit and v.time_ns >= oldest]
        totals = [v for v in fresh if v.total]
        if totals:
            return max(totals, key=lambda v: v.time_ns).power_w
        if not fresh:
            return None
        return sum(v.power_w for v in fresh)

    def _site_power_w(self, now_ns: int) -> float | None:
        mains = [c.id for c in self._s.circuits if c.kind is CircuitKind.MAIN]
        ids = mains or [c.id for c in self._s.circuits]
        values = [self._circuit_power_w(c, now_ns) for c in ids]
        if mains and any(v is None for v in values):
            return None  # the incomer is the site's meter: without it there is no reading
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    # -- load shedding -------------------------------------------------------------------

    def _shed(self, now_ns: int) -> None:
        assert self._shedder is not None
        mains = [c.id for c in self._s.circuits if c.kind is CircuitKind.MAIN]
        circuit_power: dict[str, float] = {}
        for c in self._s.circuits:
            value = self._circuit_power_w(c.id, now_ns)
            if value is not None:
                circuit_power[c.id] = value
        inputs = SheddingInputs(
            now_s=self._clock.monotonic(),
            site_power_w=self._site_power_w(now_ns),
            circuit_power_w=circuit_power,
            circuit_level={c.id: self._thermal.level(c.id) for c in self._s.circuits},
            main_level=max((self._thermal.level(m) for m in mains), default=None),
            main_heating=any(self._thermal.heating(m) for m in mains),
        )
        actions, state = self._shedder.decide(self._shed_state, inputs)
        for a in actions:
            if not self._switch(a, now_ns):
                return  # keep the old state: the decision is repeated next tick
        self._shed_state = state

    def _switch(self, a: RelayAction, now_ns: int) -> bool:
        opening = a.kind is RelayActionKind.OPEN
        action = AuditAction.RELAY_OPEN if opening else AuditAction.RELAY_CLOSE
        try:
            self._outputs.set(relay_output(a.circuit), opening)
        except Exception as exc:
            log.exception("relay %s could not be switched", a.circuit)
            self._audit.record(AuditRecord(now_ns, action, Outcome.FAILED,
                                           f"{a.reason.value}: {exc}", circuit=a.circuit,
                                           channel="relay", value=a.value,
                                           threshold=a.threshold))
            return False
        self._audit.record(AuditRecord(
            now_ns, action, Outcome.OK,
            f"{a.reason.value} ({a.priority.value} priority): {a.detail}",
            circuit=a.circuit, channel="relay", target=relay_output(a.circuit),
            value=a.value, threshold=a.threshold,
        ))
        self._signal(AlertSignal(
            fault_key(LOAD_SHED_FAULT, a.circuit, None), opening, Severity.INFO,
            LOAD_SHED_FAULT, AlertSource.WORKER, a.circuit, None,
            f"{a.circuit} switched off by load shedding: {a.detail}", a.value, a.threshold,
        ), now_ns)
        return True

    # -- alerts and notifications ---------------------------------------------------------

    def _signal(self, sig: AlertSignal, now_ns: int) -> None:
        before = self._book.open_for(sig.key)
        actions = self._book.signal(sig, now_ns)
        after = self._book.open_for(sig.key)
        if after is not None and (before is None or before.id != after.id):
            self._audit.record(AuditRecord(
                now_ns, AuditAction.ALERT_OPENED, Outcome.OK, after.summary or after.type,
                circuit=after.circuit, severity=after.severity, channel=after.source.value,
                alert_id=after.id, value=after.value, threshold=after.threshold,
            ))
        for action in actions:
            self._dispatch(action, now_ns)

    def _dispatch(self, action: NotifyAction, now_ns: int) -> None:
        alert = action.alert
        policy = self._book.policy
        message = alert_message(alert, action.reason, self._s.site, now_ns,
                                policy.escalation_after_s)
        if action.reason is NotifyReason.RESOLVED:
            self._audit.record(AuditRecord(
                now_ns, AuditAction.RESOLVE, Outcome.OK, alert.summary or alert.type,
                circuit=alert.circuit, severity=alert.severity, alert_id=alert.id,
            ))
        targets: list[tuple[Channel, str]] = []
        if action.contacts is None:
            routing = (self._s.worker_channels if alert.source is AlertSource.WORKER
                       else self._s.channels)
            for channel in routing.get(alert.severity, ()):
                notifier = self._notifiers.get(channel)
                if notifier is not None:
                    targets += [(channel, to) for to in notifier.recipients]
        else:
            for contact in action.contacts:
                via: Channel | None = (Channel.SMS if is_phone(contact)
                                       else Channel.EMAIL if is_email(contact) else None)
                ok = via is not None and via in self._notifiers
                self._audit.record(AuditRecord(
                    now_ns, AuditAction.ESCALATE, Outcome.OK if ok else Outcome.FAILED,
                    f"escalation level {alert.escalation_level}: unacknowledged"
                    + ("" if ok else " (no channel configured for this contact)"),
                    circuit=alert.circuit, severity=alert.severity,
                    channel=via.value if via else None, target=contact,
                    alert_id=alert.id,
                ))
                if ok and via is not None:
                    targets.append((via, contact))
        if action.reason is NotifyReason.RESOLVED:
            # whoever was pulled in by escalation hears that it is over, too
            for contact in policy.escalation_contacts[:alert.escalation_level]:
                via = (Channel.SMS if is_phone(contact)
                       else Channel.EMAIL if is_email(contact) else None)
                if via is not None and via in self._notifiers:
                    targets.append((via, contact))
        if not targets and action.reason is not NotifyReason.RESOLVED:
            self._audit.record(AuditRecord(
                now_ns, AuditAction.NOTIFY, Outcome.SUPPRESSED,
                f"{action.reason.value}: no channel configured for {alert.severity.value}",
                circuit=alert.circuit, severity=alert.severity, alert_id=alert.id,
            ))
        due = self._clock.monotonic()
        for channel, to in targets:
            self._queue.append(_Pending(message, channel, to, due))

    def _after_delivery(self, p: _Pending, result: Delivery) -> None:
        delays = self._s.retry_delays_s
        retry = not result.ok and result.retryable and p.attempt < len(delays)
        detail = f"{p.message.reason}: {result.detail}"
        if retry:
            detail += f" (retry {p.attempt + 1}/{len(delays)} in {delays[p.attempt]:g} s)"
        with self._lock:
            self._audit.record(AuditRecord(
                self._clock.now_ns(), AuditAction.NOTIFY,
                Outcome.OK if result.ok else Outcome.FAILED, detail,
                circuit=p.message.circuit, severity=p.message.severity,
                channel=p.channel.value, target=result.target, alert_id=p.message.alert_id,
            ))
            if retry:
                self._queue.append(_Pending(p.message, p.channel, p.to,
                                            self._clock.monotonic() + delays[p.attempt],
                                            p.attempt + 1))

    def _render_alarm(self) -> None:
        alarm = self._book.alarm()
        if alarm != self._alarm_state:
            self._alarm_state = alarm
            detail = ("off" if alarm is None
                      else f"{alarm[0].value}, {'unacknowledged' if alarm[1] else 'acknowledged'}")
            self._audit.record(AuditRecord(
                self._clock.now_ns(), AuditAction.ALARM, Outcome.OK, f"local alarm {detail}",
                severity=alarm[0] if alarm else None, channel=Channel.LOCAL.value,
            ))
        self._alarm.update(self._clock.monotonic(), alarm)


class WorkerSink:
    """A :class:`collector.model.Sink` feeding the engine in-process (``publish`` never raises)."""

    def __init__(self, engine: WorkerEngine) -> None:
        self._engine = engine

    def publish(self, metrics: Sequence[Metrics], events: Sequence[Event]) -> None:
        try:
            self._engine.on_metrics(metrics)
        except Exception:
            log.exception("worker: %d metrics records not processed", len(metrics))

    def close(self) -> None:
        return None

