"""What every notification channel shares: the message, the delivery result, the protocol."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from collector.model import Severity
from collector.timefmt import iso_utc
from collector.worker.alerts import Alert, NotifyReason

SMS_MAX_CHARS = 1600  # Twilio Messages resource: Body up to 1600 characters


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Message:
    """A notification, rendered once for every channel.

    ``subject``/``body`` for email, ``short`` for SMS, and the structured fields for
    webhooks.
    """

    subject: str
    body: str
    short: str
    severity: Severity
    reason: str
    site: str
    alert_id: str | None = None
    alert_key: str | None = None
    alert_type: str | None = None
    circuit: str | None = None
    phase: str | None = None
    state: str | None = None
    value: float | None = None
    threshold: float | None = None
    time_ns: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "site": self.site,
            "reason": self.reason,
            "severity": self.severity.value,
            "subject": self.subject,
            "text": self.body,
            "alert_id": self.alert_id,
            "key": self.alert_key,
            "type": self.alert_type,
            "circuit": self.circuit,
            "phase": self.phase,
            "state": self.state,
            "value": self.value,
            "threshold": self.threshold,
            "time": iso_utc(self.time_ns),
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """Outcome of one send: which channel, to whom, whether it worked and why not.

    ``retryable``: the failure may go away by itself (network, 5xx, 429, SMTP 4xx);
    a non-retryable one needs a person (bad credentials, refused recipient).
    """

    channel: Channel
    target: str
    ok: bool
    detail: str
    retryable: bool = False


class Notifier(Protocol):
    """One channel. ``send`` never raises: every failure becomes a Delivery."""

    @property
    def channel(self) -> Channel: ...

    @property
    def recipients(self) -> tuple[str, ...]: ...

    def send(self, message: Message, to: str) -> Delivery: ...


_HEADLINE = {
    NotifyReason.NEW: "",
    NotifyReason.SEVERITY_RAISED: "WORSE: ",
    NotifyReason.ESCALATION: "ESCALATED: ",
    NotifyReason.FLAPPING: "FLAPPING: ",
    NotifyReason.RESOLVED: "RESOLVED: ",
}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def alert_message(alert: Alert, reason: NotifyReason, site: str, now_ns: int,
                  escalation_after_s: float | None = None) -> Message:
    """Render an alert for people: subject, body, a short SMS text."""
    where = alert.circuit or "site"
    if alert.phase:
        where += f" phase {alert.phase}"
    head = _HEADLINE[reason]
    level = "OK" if reason is NotifyReason.RESOLVED else alert.severity.value.upper()
    subject = f"[GridGuard {site}] {head}{level} {alert.type} on {where} (alert {alert.id})"
    lines = [alert.summary or alert.type, ""]
    if reason is NotifyReason.ESCALATION and escalation_after_s is not None:
        minutes = escalation_after_s * alert.escalation_level / 60.0
        lines.append(f"Nobody has acknowledged this alert for {minutes:g} min.")
    if reason is NotifyReason.FLAPPING:
        lines.append(f"The condition has come and gone {alert.flaps} times; further "
                     "changes are held back until it stays clear.")
    lines += [
        f"Site:      {site}",
        f"Circuit:   {alert.circuit or '-'}   Phase: {alert.phase or '-'}",
        f"Type:      {alert.type}   Severity: {alert.severity.value}",
        f"Value:     {_fmt(alert.value)}   Threshold: {_fmt(alert.threshold)}",
        f"Since:     {iso_utc(alert.opened_ns)}",
        f"State:     {alert.state.value}   (source: {alert.source.value})",
    ]
    if reason is not NotifyReason.RESOLVED:
        lines += ["", f"Acknowledge: gridguard alerts ack {alert.id}"]
    short = (f"GridGuard {site} {head}{level} {alert.type} {where}: "
             f"{alert.summary or alert.type}")
    if reason is not NotifyReason.RESOLVED:
        short += f" - ack: gridguard alerts ack {alert.id}"
    return Message(
        subject=subject, body="\n".join(lines), short=short[:SMS_MAX_CHARS],
        severity=alert.severity, reason=reason.value, site=site, alert_id=alert.id,
        alert_key=alert.key, alert_type=alert.type, circuit=alert.circuit, phase=alert.phase,
        state=alert.state.value, value=alert.value, threshold=alert.threshold, time_ns=now_ns,
    )


def channel_test_message(site: str, now_ns: int) -> Message:
    """The message ``gridguard test-alerts`` sends through every channel."""
    text = (f"This is a test of the GridGuard alert channels of site {site}, sent at "
            f"{iso_utc(now_ns)}. No action is needed.")
    return Message(
        subject=f"[GridGuard {site}] TEST notification", body=text,
        short=f"GridGuard {site}: test notification, no action needed.",
        severity=Severity.INFO, reason="test", site=site, time_ns=now_ns,
    )


def mask_phone(number: str) -> str:
    """``+4915112345678`` -> ``+49151*****678`` for logs and the audit trail."""
    if len(number) <= 8:
        return number
    return number[:6] + "*" * (len(number) - 9) + number[-3:]
