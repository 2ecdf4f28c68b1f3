"""Alert state machine: de-duplication, escalation timing, acknowledgement, flapping."""

from __future__ import annotations

import pytest

from collector.model import NS_PER_S, Severity
from collector.worker.alerts import (
    AlertBook,
    AlertPolicy,
    AlertSignal,
    AlertSource,
    AlertState,
    NotifyReason,
    UnknownAlertError,
    fault_key,
)

T0 = 1_700_000_000 * NS_PER_S
MIN = 60 * NS_PER_S
CONTACTS = ("+4915100000002", "boss@example.org")


def _policy(**kw: object) -> AlertPolicy:
    base: dict[str, object] = {"escalation_after_s": 15 * 60.0, "escalation_contacts": CONTACTS,
                               "resolve_hold_s": 120.0, "flap_limit": 3, "flap_hold_s": 1800.0}
    base.update(kw)
    return AlertPolicy(**base)  # type: ignore[arg-type]


def _sig(firing: bool = True, severity: Severity = Severity.CRITICAL,
         circuit: str = "freezer") -> AlertSignal:
    return AlertSignal(fault_key("overcurrent", circuit, "A"), firing, severity, "overcurrent",
                       AlertSource.GRAFANA, circuit, "A", "too much current")


def test_new_alert_is_notified_once_and_duplicates_are_silent() -> None:
    book = AlertBook(_policy())
    actions = book.signal(_sig(), T0)
    assert [a.reason for a in actions] == [NotifyReason.NEW]
    alert = actions[0].alert
    assert alert.state is AlertState.NOTIFIED
    # Grafana repeats a firing alert every repeat interval: same key, no new alert
    for k in range(1, 5):
        assert book.signal(_sig(), T0 + k * MIN) == []
    assert [a.id for a in book.alerts()] == [alert.id]


def test_info_alert_stays_new_and_is_never_notified_or_escalated() -> None:
    book = AlertBook(_policy())
    assert book.signal(_sig(severity=Severity.INFO), T0) == []
    (alert,) = book.alerts()
    assert alert.state is AlertState.NEW
    assert book.tick(T0 + 60 * MIN) == []


def test_unacknowledged_alert_escalates_after_exactly_n_minutes_to_each_next_contact() -> None:
    book = AlertBook(_policy())
    book.signal(_sig(), T0)
    assert book.tick(T0 + 15 * MIN - 1) == []  # one nanosecond early: nothing
    (first,) = book.tick(T0 + 15 * MIN)
    assert first.reason is NotifyReason.ESCALATION
    assert first.contacts == (CONTACTS[0],)
    assert first.alert.state is AlertState.ESCALATED
    assert book.tick(T0 + 15 * MIN + 1) == []  # once per level
    assert book.tick(T0 + 30 * MIN - 1) == []
    (second,) = book.tick(T0 + 30 * MIN)
    assert second.contacts == (CONTACTS[1],)
    assert book.tick(T0 + 24 * 60 * MIN) == []  # contacts exhausted


def test_acknowledged_alert_does_not_escalate() -> None:
    book = AlertBook(_policy())
    (new,) = book.signal(_sig(), T0)
    result = book.ack(new.alert.id, "electrician", T0 + 14 * MIN)
    assert result.changed
    assert result.alert.state is AlertState.ACKNOWLEDGED
    assert book.tick(T0 + 15 * MIN) == []
    assert book.tick(T0 + 600 * MIN) == []
    assert not book.ack(new.alert.id, "someone else", T0 + 16 * MIN).changed
    with pytest.raises(UnknownAlertError):
        book.ack("999", "x", T0)


def test_ack_after_first_escalation_stops_the_second() -> None:
    book = AlertBook(_policy())
    (new,) = book.signal(_sig(), T0)
    assert len(book.tick(T0 + 15 * MIN)) == 1
    book.ack(new.alert.id, "boss", T0 + 20 * MIN)
    assert book.tick(T0 + 30 * MIN) == []


def test_severity_raise_renotifies_and_undoes_an_ack() -> None:
    book = AlertBook(_policy())
    (new,) = book.signal(_sig(severity=Severity.WARNING), T0)
    book.ack(new.alert.id, "me", T0 + MIN)
    (raised,) = book.signal(_sig(severity=Severity.CRITICAL), T0 + 2 * MIN)
    assert raised.reason is NotifyReason.SEVERITY_RAISED
    assert raised.alert.state is AlertState.NOTIFIED
    assert raised.alert.acked_by is None
    # escalation restarts from the new notification
    assert book.tick(T0 + 16 * MIN) == []
    assert len(book.tick(T0 + 17 * MIN)) == 1


def test_resolution_waits_for_the_hold_and_tells_whoever_was_told() -> None:
    book = AlertBook(_policy())
    book.signal(_sig(), T0)
    assert book.signal(_sig(firing=False), T0 + MIN) == []
    assert book.tick(T0 + 3 * MIN - 1) == []
    (done,) = book.tick(T0 + 3 * MIN)
    assert done.reason is NotifyReason.RESOLVED
    assert done.alert.state is AlertState.RESOLVED
    # a later firing is a new alert with a new id
    (again,) = book.signal(_sig(), T0 + 10 * MIN)
    assert again.alert.id != done.alert.id


def test_flapping_produces_one_alert_one_flap_notice_and_no_resolution_spam() -> None:
    book = AlertBook(_policy())
    notes = book.signal(_sig(), T0)
    t = T0
    for _ in range(10):  # contact chatter: clear 30 s, fire again, ...
        t += 30 * NS_PER_S
        notes += book.signal(_sig(firing=False), t)
        notes += book.tick(t)
        t += 30 * NS_PER_S
        notes += book.signal(_sig(), t)
        notes += book.tick(t)
    reasons = [n.reason for n in notes]
    assert reasons.count(NotifyReason.NEW) == 1
    assert reasons.count(NotifyReason.FLAPPING) == 1
    assert NotifyReason.RESOLVED not in reasons
    (alert,) = book.alerts()
    assert alert.flapping
    assert alert.flaps == 10
    # once quiet, a flapping alert resolves after the longer flap hold
    book.signal(_sig(firing=False), t + 1)
    assert book.tick(t + 1 + 2 * MIN) == []
    (done,) = book.tick(t + 1 + 30 * MIN)
    assert done.reason is NotifyReason.RESOLVED


def test_state_round_trip_keeps_ids_and_escalation() -> None:
    book = AlertBook(_policy())
    (new,) = book.signal(_sig(), T0)
    book.tick(T0 + 15 * MIN)
    again = AlertBook(_policy())
    again.load_dict(book.to_dict())
    assert again.get(new.alert.id) == book.get(new.alert.id)
    (second,) = again.tick(T0 + 30 * MIN)
    assert second.contacts == (CONTACTS[1],)
    (other,) = again.signal(_sig(circuit="oven"), T0 + 31 * MIN)
    assert int(other.alert.id) > int(new.alert.id)


def test_alarm_summary() -> None:
    book = AlertBook(_policy())
    assert book.alarm() is None
    book.signal(_sig(severity=Severity.WARNING, circuit="a"), T0)
    assert book.alarm() == (Severity.WARNING, True)
    (c,) = book.signal(_sig(severity=Severity.CRITICAL, circuit="b"), T0)
    assert book.alarm() == (Severity.CRITICAL, True)
    book.ack(c.alert.id, "me", T0)
    assert book.alarm() == (Severity.CRITICAL, False)


def test_severity_change_from_grafana_is_neither_a_resolution_nor_a_flap() -> None:
    """Fault series are keyed by severity: warning -> critical resolves the warning
    series and activates the critical one (in either order in one notification)."""
    book = AlertBook(_policy())
    book.signal(_sig(severity=Severity.WARNING), T0)
    notes = book.signal(_sig(firing=False, severity=Severity.WARNING), T0 + MIN)
    notes += book.signal(_sig(severity=Severity.CRITICAL), T0 + MIN)
    assert [n.reason for n in notes] == [NotifyReason.SEVERITY_RAISED]
    # critical -> warning: critical resolved first, then warning firing
    book.signal(_sig(firing=False, severity=Severity.CRITICAL), T0 + 2 * MIN)
    assert book.signal(_sig(severity=Severity.WARNING), T0 + 2 * MIN) == []
    assert book.tick(T0 + 10 * MIN) == []  # no resolution: the warning still fires
    (alert,) = book.alerts()
    assert (alert.severity, alert.flaps, alert.is_open) == (Severity.WARNING, 0, True)
