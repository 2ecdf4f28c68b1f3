"""The alert state machine: de-duplication, notification, escalation, ack, flap suppression.

::

    signal firing ──► NEW ──(severity >= notify_min)──► NOTIFIED ──(N min unacked)──► ESCALATED
                       │                                   │  ▲ (severity raised)        │
                       │                                   ▼  │                          ▼
                       └──────────── ack ─────────────► ACKNOWLEDGED ◄──── ack ──────────┘
    signal resolved ──► (held for resolve_hold_s; a re-fire cancels it: a flap) ──► RESOLVED

* **De-duplication**: an alert is identified by its *key*. Faults use
  ``fault:<type>:<circuit>:<phase>`` whoever raised them (the worker's own rules or a
  Grafana rule on the ``faults`` records), so one fault is one alert; Grafana alerts
  without a ``type`` label are keyed by Grafana's fingerprint. A signal for a key
  with an open alert updates it and notifies nobody (Grafana repeats firing alerts
  every repeat interval), unless the severity went up.
* **Notification**: a new alert at or above ``notify_min`` is handed to the primary
  channels at once (NEW → NOTIFIED); below it stays NEW: listed, audited, silent.
* **Escalation**: while NOTIFIED/ESCALATED and unacknowledged, the k-th escalation
  contact is told at exactly ``notified + k·escalation_after_s`` (k = 1, 2, ...);
  after the last contact only the local alarm keeps going.
* **Acknowledgement** stops escalation and silences the buzzer; a later severity
  increase un-acknowledges (the person acked a lesser problem).
* **Flap suppression**: a resolved signal only starts a hold of ``resolve_hold_s``; a
  re-fire within it cancels the resolution silently and counts a flap. From
  ``flap_limit`` flaps on, the alert is *flapping*: one notification says so and the
  hold becomes ``flap_hold_s``, so a chattering contact produces one alert, not
  hundreds.

Pure logic: every method takes the time (``now_ns``, wall clock, injected) and returns
the actions for the engine to carry out; nothing here sends, sleeps or reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from collector.model import NS_PER_S, Severity

_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
STATE_VERSION = 1


def severity_rank(severity: Severity) -> int:
    return _SEVERITY_RANK[severity]


class AlertState(StrEnum):
    NEW = "new"
    NOTIFIED = "notified"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertSource(StrEnum):
    GRAFANA = "grafana"
    WORKER = "worker"


def fault_key(fault_type: str, circuit: str | None, phase: str | None) -> str:
    """Alert key of a fault, the same for the worker's rules and Grafana's."""
    return f"fault:{fault_type}:{circuit or ''}:{phase or ''}"


@dataclass(frozen=True, slots=True)
class AlertSignal:
    """An observation: the condition ``key`` is firing or has cleared."""

    key: str
    firing: bool
    severity: Severity
    type: str
    source: AlertSource
    circuit: str | None = None
    phase: str | None = None
    summary: str = ""
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert and where it stands; times are [ns since epoch, UTC]."""

    id: str
    key: str
    type: str
    severity: Severity
    source: AlertSource
    circuit: str | None
    phase: str | None
    summary: str
    value: float | None
    threshold: float | None
    state: AlertState
    opened_ns: int
    updated_ns: int
    notified_ns: int | None = None
    escalation_level: int = 0
    acked_ns: int | None = None
    acked_by: str | None = None
    clear_since_ns: int | None = None
    resolved_ns: int | None = None
    flaps: int = 0
    flapping: bool = False

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        values = dict(data)
        values["severity"] = Severity(values["severity"])
        values["source"] = AlertSource(values["source"])
        values["state"] = AlertState(values["state"])
        return cls(**values)


class NotifyReason(StrEnum):
    NEW = "new"
    SEVERITY_RAISED = "severity_raised"
    ESCALATION = "escalation"
    FLAPPING = "flapping"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class NotifyAction:
    """Tell someone about ``alert``: the primary channels (``contacts`` None) or the
    escalation contacts listed."""

    alert: Alert
    reason: NotifyReason
    contacts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Timing and thresholds of the state machine (times in seconds)."""

    escalation_after_s: float | None = None  # None: no escalation
    escalation_contacts: tuple[str, ...] = ()
    notify_min: Severity = Severity.WARNING
    resolve_hold_s: float = 120.0
    flap_limit: int = 3
    flap_hold_s: float = 1800.0
    keep_resolved_s: float = 7 * 86_400.0

    def __post_init__(self) -> None:
        if self.escalation_after_s is not None and not self.escalation_after_s > 0:
            raise ValueError(
                f"escalation_after_s: must be > 0 s or None, got {self.escalation_after_s}"
            )
        for name in ("resolve_hold_s", "flap_hold_s", "keep_resolved_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0 s, got {getattr(self, name)}")
        if self.flap_limit < 1:
            raise ValueError(f"flap_limit: must be >= 1, got {self.flap_limit}")


class UnknownAlertError(KeyError):
    """No alert with that id."""


@dataclass(frozen=True, slots=True)
class AckResult:
    alert: Alert
    changed: bool  # False: it was already acknowledged or resolved
    message: str


def _s_to_ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


class AlertBook:
    """All alerts; the only mutable piece is the mapping id -> frozen Alert."""

    def __init__(self, policy: AlertPolicy) -> None:
        self._policy = policy
        self._alerts: dict[str, Alert] = {}
        self._open_by_key: dict[str, str] = {}
        self._next_id = 1
        self.revision = 0  # bumps on every change (the engine persists on change)

    @property
    def policy(self) -> AlertPolicy:
        return self._policy

    # -- queries ---------------------------------------------------------------

    def get(self, alert_id: str) -> Alert:
        try:
            return self._alerts[alert_id]
        except KeyError:
            raise UnknownAlertError(f"no alert with id {alert_id!r}") from None

    def open_for(self, key: str) -> Alert | None:
        alert_id = self._open_by_key.get(key)
        return self._alerts[alert_id] if alert_id is not None else None

    def alerts(self, *, open_only: bool = False) -> list[Alert]:
        chosen = [a for a in self._alerts.values() if a.is_open or not open_only]
        return sorted(chosen, key=lambda a: int(a.id))

    def alarm(self) -> tuple[Severity, bool] | None:
        """Local alarm: (highest open severity >= warning, any of those unacknowledged)."""
        open_ = [a for a in self._alerts.values()
                 if a.is_open and severity_rank(a.severity) >= severity_rank(Severity.WARNING)]
        if not open_:
            return None
        top = max(severity_rank(a.severity) for a in open_)
        at_top = [a for a in open_ if severity_rank(a.severity) == top]
        severity = next(s for s, r in _SEVERITY_RANK.items() if r == top)
        return severity, any(a.state is not AlertState.ACKNOWLEDGED for a in at_top)

    # -- inputs ----------------------------------------------------------------

    def signal(self, sig: AlertSignal, now_ns: int) -> list[NotifyAction]:
        """A firing or resolved observation."""
        current = self.open_for(sig.key)
        if sig.firing:
            if current is None:
                return self._open(sig, now_ns)
            return self._refire(current, sig, now_ns)
        if current is None or current.clear_since_ns is not None:
            return []  # nothing open, or the hold already runs
        if severity_rank(sig.severity) < severity_rank(current.severity):
            # the lower severity's series ended because the fault got worse
            # (faults records resolve the old severity when the severity changes)
            return []
        self._put(replace(current, clear_since_ns=now_ns, updated_ns=now_ns,
                          value=sig.value if sig.value is not None else current.value))
        return []

    def ack(self, alert_id: str, by: str, now_ns: int) -> AckResult:
        alert = self.get(alert_id)
        if alert.state is AlertState.RESOLVED:
            return AckResult(alert, False, f"alert {alert_id} is already resolved")
        if alert.state is AlertState.ACKNOWLEDGED:
            return AckResult(alert, False,
                             f"alert {alert_id} was already acknowledged by {alert.acked_by}")
        acked = replace(alert, state=AlertState.ACKNOWLEDGED, acked_ns=now_ns, acked_by=by,
                        updated_ns=now_ns)
        self._put(acked)
        return AckResult(acked, True, f"alert {alert_id} acknowledged by {by}")

    def tick(self, now_ns: int) -> list[NotifyAction]:
        """Escalations and resolutions due at ``now_ns``; forgets old resolved alerts."""
        out: list[NotifyAction] = []
        for alert in list(self._alerts.values()):
            if alert.is_open:
                out += self._resolve_due(alert, now_ns)
            current = self._alerts.get(alert.id)
            if current is not None and current.is_open:
                out += self._escalate_due(current, now_ns)
        keep_ns = _s_to_ns(self._policy.keep_resolved_s)
        for alert in list(self._alerts.values()):
            if alert.resolved_ns is not None and now_ns - alert.resolved_ns > keep_ns:
                del self._alerts[alert.id]
                self.revision += 1
        return out

    # -- transitions -----------------------------------------------------------

    def _put(self, alert: Alert) -> None:
        self._alerts[alert.id] = alert
        if alert.is_open:
            self._open_by_key[alert.key] = alert.id
        elif self._open_by_key.get(alert.key) == alert.id:
            del self._open_by_key[alert.key]
        self.revision += 1

    def _notifies(self, severity: Severity) -> bool:
        return severity_rank(severity) >= severity_rank(self._policy.notify_min)

    def _open(self, sig: AlertSignal, now_ns: int) -> list[NotifyAction]:
        alert = Alert(
            id=str(self._next_id), key=sig.key, type=sig.type, severity=sig.severity,
            source=sig.source, circuit=sig.circuit, phase=sig.phase, summary=sig.summary,
            value=sig.value, threshold=sig.threshold, state=AlertState.NEW,
            opened_ns=now_ns, updated_ns=now_ns,
        )
        self._next_id += 1
        if not self._notifies(alert.severity):
            self._put(alert)
            return []
        alert = replace(alert, state=AlertState.NOTIFIED, notified_ns=now_ns)
        self._put(alert)
        return [NotifyAction(alert, NotifyReason.NEW)]

    def _refire(self, alert: Alert, sig: AlertSignal, now_ns: int) -> list[NotifyAction]:
        out: list[NotifyAction] = []
        changes: dict[str, Any] = {
            "updated_ns": now_ns,
            "value": sig.value if sig.value is not None else alert.value,
            "threshold": sig.threshold if sig.threshold is not None else alert.threshold,
            "summary": sig.summary or alert.summary,
        }
        if alert.clear_since_ns is not None:
            changes["clear_since_ns"] = None
            if sig.severity is alert.severity:
                # fired again within the resolve hold: a flap, not a new alert (a
                # different severity is the fault changing level, not chatter)
                changes["flaps"] = alert.flaps + 1
                if changes["flaps"] >= self._policy.flap_limit and not alert.flapping:
                    changes["flapping"] = True
        raised = severity_rank(sig.severity) > severity_rank(alert.severity)
        changes["severity"] = sig.severity
        updated = replace(alert, **changes)
        if raised and self._notifies(sig.severity):
            # a worse condition than the one acknowledged or escalated: start over
            updated = replace(updated, state=AlertState.NOTIFIED, notified_ns=now_ns,
                              escalation_level=0, acked_ns=None, acked_by=None)
            out.append(NotifyAction(updated, NotifyReason.SEVERITY_RAISED))
        self._put(updated)
        if updated.flapping and not alert.flapping:
            out.append(NotifyAction(updated, NotifyReason.FLAPPING))
        return out

    def _resolve_due(self, alert: Alert, now_ns: int) -> list[NotifyAction]:
        if alert.clear_since_ns is None:
            return []
        hold = self._policy.flap_hold_s if alert.flapping else self._policy.resolve_hold_s
        if now_ns - alert.clear_since_ns < _s_to_ns(hold):
            return []
        resolved = replace(alert, state=AlertState.RESOLVED, resolved_ns=now_ns,
                           updated_ns=now_ns)
        self._put(resolved)
        if alert.notified_ns is None:
            return []
        return [NotifyAction(resolved, NotifyReason.RESOLVED)]

    def _escalate_due(self, alert: Alert, now_ns: int) -> list[NotifyAction]:
        after = self._policy.escalation_after_s
        contacts = self._policy.escalation_contacts
        if (after is None or alert.notified_ns is None
                or alert.state not in (AlertState.NOTIFIED, AlertState.ESCALATED)
                or alert.escalation_level >= len(contacts)):
            return []
        due_ns = alert.notified_ns + (alert.escalation_level + 1) * _s_to_ns(after)
        if now_ns < due_ns:
            return []
        contact = contacts[alert.escalation_level]
        escalated = replace(alert, state=AlertState.ESCALATED,
                            escalation_level=alert.escalation_level + 1, updated_ns=now_ns)
        self._put(escalated)
        return [NotifyAction(escalated, NotifyReason.ESCALATION, (contact,))]

    # -- persistence -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "next_id": self._next_id,
            "alerts": [a.to_dict() for a in self.alerts()],
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        """Replace the book's content with a saved state (from :meth:`to_dict`)."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(
                f"version: expected alert state version {STATE_VERSION}, got "
                f"{data.get('version')!r}"
            )
        alerts = [Alert.from_dict(a) for a in data.get("alerts", [])]
        self._alerts = {}
        self._open_by_key = {}
        for alert in alerts:
            self._put(alert)
        self._next_id = max([int(data.get("next_id", 1))] + [int(a.id) + 1 for a in alerts])
