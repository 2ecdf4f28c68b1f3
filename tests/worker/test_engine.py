"""The engine end to end on an injected clock: rules -> alerts -> channels, escalation,
ack, local alarm, load shedding through relays, retries, and the audit trail."""

from __future__ import annotations

import email
import email.policy
from urllib.parse import parse_qs

import pytest

from collector.clock import FakeClock
from collector.config.alerts import SmtpSecurity
from collector.config.circuits import CircuitKind, Priority
from collector.model import NS_PER_S, Metrics, Severity
from collector.worker.alerts import AlertPolicy, AlertSignal, AlertSource, AlertState
from collector.worker.audit import AuditAction, MemoryAudit, Outcome
from collector.worker.engine import WorkerEngine, WorkerSink
from collector.worker.notify.base import Notifier
from collector.worker.notify.email_smtp import SmtpEmail, SmtpSettings
from collector.worker.notify.sms_twilio import TwilioSettings, TwilioSms
from collector.worker.notify.webhook import OutgoingWebhooks, WebhookTarget
from collector.worker.outputs import BUZZER, LED_CRITICAL, SimulatedOutputs, relay_output
from collector.worker.settings import CircuitSpec, RelaySpec, WorkerSettings
from collector.worker.shedding import SheddingPolicy
from collector.worker.thermal import trip_time_s
from tests.worker.conftest import HttpReceiver, SmtpServer

SID = "AC" + "0123456789abcdef" * 2
OWNER = "owner@example.org"
ELECTRICIAN_SMS = "+4915100000001"
BOSS = "boss@example.org"


class Rig:
    def __init__(self, settings: WorkerSettings, notifiers: list[Notifier]) -> None:
        self.clock = FakeClock()
        self.outputs = SimulatedOutputs(self.clock)
        self.audit = MemoryAudit()
        self.engine = WorkerEngine(settings, clock=self.clock, outputs=self.outputs,
                                   notifiers=notifiers, audit=self.audit)

    def advance(self, seconds: float, step_s: float = 1.0) -> None:
        """Let time pass, ticking like the worker's loop (coarser, same logic)."""
        end = self.clock.t_s + seconds
        while self.clock.t_s < end - 1e-9:
            self.clock.sleep(min(step_s, end - self.clock.t_s))
            self.engine.tick()

    def records(self, circuit: str, seconds: float, jitter: float = 0.0,
                **fields: float) -> None:
        """Feed 3 s records covering the next ``seconds`` as the collector would;
        ``jitter`` varies the values like real measurements (else they look stuck)."""
        for k in range(round(seconds / 3.0)):
            t_ns = self.clock.now_ns()
            values = {n: v * (1 + jitter * (k % 5 - 2)) for n, v in fields.items()}
            self.engine.on_metrics([Metrics(t_ns, "150c", circuit, "A", values)])
            self.advance(3.0)


def _settings(**kw: object) -> WorkerSettings:
    base: dict[str, object] = {
        "site": "home",
        "circuits": (CircuitSpec("heater", 16.0, priority=Priority.HIGH),),
        "alert_policy": AlertPolicy(escalation_after_s=15 * 60.0,
                                    escalation_contacts=(BOSS,), resolve_hold_s=60.0),
    }
    base.update(kw)
    return WorkerSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
def channels(smtp_server: SmtpServer, http_receiver: HttpReceiver) -> list[Notifier]:
    http_receiver.status = 201
    http_receiver.reply = {"sid": "SM1"}
    return [
        SmtpEmail(SmtpSettings("127.0.0.1", smtp_server.port, "gridguard@example.org",
                               (OWNER,), security=SmtpSecurity.NONE)),
        TwilioSms(TwilioSettings(SID, "t0k3n-t0k3n-t0k3n-t0k3n", "+4915100000000",
                                 (ELECTRICIAN_SMS,), api_url=http_receiver.url)),
        OutgoingWebhooks((WebhookTarget(http_receiver.url + "/hook"),)),
    ]


def _subjects(smtp: SmtpServer, n: int) -> list[tuple[list[str], str]]:
    out = []
    for mail in smtp.wait_for(n):
        msg = email.message_from_bytes(mail.content, policy=email.policy.default)
        out.append((mail.rcpt_tos, str(msg["Subject"]).strip()))
    return out


def test_overload_to_email_sms_webhook_then_escalation_and_ack(
        channels: list[Notifier], smtp_server: SmtpServer, http_receiver: HttpReceiver) -> None:
    rig = Rig(_settings(), channels)
    rig.records("heater", 60.0, current_rms_a=16.0)  # warm, at rating: quiet
    assert rig.engine.book.alerts() == []
    # sustained 125 %: the warning comes first, the trip level after the closed-form time
    rig.records("heater", 261.0, current_rms_a=20.0)  # heat 90 % of trip after ~250 s
    (alert,) = rig.engine.book.alerts()
    assert (alert.type, alert.severity) == ("thermal_overload", Severity.WARNING)
    results = rig.engine.deliver_pending()
    assert sorted((d.channel.value, d.ok) for d in results) == [("email", True),
                                                                 ("webhook", True)]
    heat_after_warm = 1 - 2.718281828 ** (-60 / 240)  # heat after 60 s at In from cold
    expected_trip_s = trip_time_s(1.25, rig.engine.thermal.params("heater"), heat_after_warm)
    rig.records("heater", expected_trip_s - 261.0 + 6.0, current_rms_a=20.0)
    (alert,) = rig.engine.book.alerts()
    assert alert.severity is Severity.CRITICAL
    results = rig.engine.deliver_pending()
    assert sorted(d.channel.value for d in results if d.ok) == ["email", "sms", "webhook"]
    sms = [r for r in http_receiver.received() if r.path.endswith("Messages.json")]
    assert parse_qs(sms[0].body.decode())["To"] == [ELECTRICIAN_SMS]
    critical_at = alert.notified_ns
    assert critical_at is not None

    # unacknowledged: the boss is told exactly 15 minutes after the critical notification
    due_s = (critical_at + 15 * 60 * NS_PER_S - rig.clock.now_ns()) / NS_PER_S
    rig.advance(due_s - 1.0)
    rig.engine.deliver_pending()
    assert [r for _, r in ((m, m.rcpt_tos) for m in smtp_server.mails) if r == [BOSS]] == []
    rig.advance(1.0)
    rig.engine.deliver_pending()
    subjects = _subjects(smtp_server, 3)
    assert [r for r, _ in subjects] == [[OWNER], [OWNER], [BOSS]]  # warning, critical, boss
    assert ([BOSS], f"[GridGuard home] ESCALATED: CRITICAL thermal_overload on heater phase A "
            f"(alert {alert.id})") in subjects
    escalations = rig.audit.actions(AuditAction.ESCALATE)
    assert [(e.target, e.outcome) for e in escalations] == [(BOSS, Outcome.OK)]

    # the local alarm: critical LED blinking and buzzer until acknowledged
    assert rig.outputs.changes(BUZZER)
    rig.engine.ack(alert.id, "sam")
    rig.advance(5.0, step_s=0.05)
    assert rig.engine.book.get(alert.id).state is AlertState.ACKNOWLEDGED
    assert not rig.outputs.state(BUZZER)
    assert rig.outputs.state(LED_CRITICAL)  # steady while the fault lasts
    acks = rig.audit.actions(AuditAction.ACKNOWLEDGE)
    assert [(a.target, a.outcome) for a in acks] == [("sam", Outcome.OK)]

    # the overload ends; the fault clears with hysteresis and the alert resolves
    rig.records("heater", 900.0, jitter=1e-3, current_rms_a=5.0)
    rig.advance(120.0)
    assert rig.engine.book.get(alert.id).state is AlertState.RESOLVED
    rig.engine.deliver_pending()
    resolved = [r for r, subj in _subjects(smtp_server, 5) if "RESOLVED" in subj]
    assert resolved == [[OWNER], [BOSS]]  # the escalated contact hears it is over too
    faults = [(f.type, f.severity, f.state.value, f.unit) for f in rig.audit.faults]
    assert faults == [("thermal_overload", Severity.WARNING, "active", "%"),
                      ("thermal_overload", Severity.WARNING, "resolved", "%"),
                      ("thermal_overload", Severity.CRITICAL, "active", "%"),
                      ("thermal_overload", Severity.CRITICAL, "resolved", "%")]
    assert rig.audit.faults[2].value is not None
    assert rig.audit.faults[2].value >= 100.0  # heat in % of the trip heat
    assert not rig.outputs.state(LED_CRITICAL)


def test_acknowledged_alert_is_not_escalated(channels: list[Notifier],
                                             smtp_server: SmtpServer) -> None:
    rig = Rig(_settings(), channels)
    rig.engine.on_grafana([AlertSignal("fault:overvoltage:mains:A", True, Severity.CRITICAL,
                                       "overvoltage", AlertSource.GRAFANA, "mains", "A",
                                       "voltage 260 V")])
    (alert,) = rig.engine.book.alerts()
    rig.engine.deliver_pending()
    rig.advance(10 * 60)
    rig.engine.ack(alert.id, "sam")
    rig.advance(60 * 60)
    rig.engine.deliver_pending()
    assert rig.audit.actions(AuditAction.ESCALATE) == []
    assert all(m.rcpt_tos != [BOSS] for m in smtp_server.mails)


def test_retryable_failure_is_retried_after_the_delay(channels: list[Notifier],
                                                      http_receiver: HttpReceiver) -> None:
    http_receiver.status = 503
    rig = Rig(_settings(), [channels[1]])  # SMS only
    rig.engine.on_grafana([AlertSignal("k", True, Severity.CRITICAL, "x",
                                       AlertSource.GRAFANA, summary="boom")])
    (first,) = rig.engine.deliver_pending()
    assert not first.ok
    assert first.retryable
    rig.advance(29.0)
    assert rig.engine.deliver_pending() == []
    http_receiver.status = 201
    rig.advance(1.0)
    (second,) = rig.engine.deliver_pending()
    assert second.ok
    notes = [(r.outcome, r.channel) for r in rig.audit.actions(AuditAction.NOTIFY)]
    assert notes == [(Outcome.FAILED, "sms"), (Outcome.OK, "sms")]
    assert len([r for r in http_receiver.received() if r.path.endswith(".json")]) == 2


def _shedding_settings() -> WorkerSettings:
    circuits = (
        CircuitSpec("main", 63.0, kind=CircuitKind.MAIN, priority=Priority.HIGH),
        CircuitSpec("ev", 20.0, priority=Priority.LOW),
        CircuitSpec("heat_pump", 16.0, priority=Priority.MEDIUM),
        CircuitSpec("freezer", 10.0, priority=Priority.LOW, critical=True),
    )
    relays = (RelaySpec("ev", 5), RelaySpec("heat_pump", 6), RelaySpec("freezer", 13))
    return _settings(circuits=circuits, relays=relays, shedding=SheddingPolicy(
        demand_limit_w=11_000.0, hysteresis_pct=5.0, min_off_s=300.0, min_on_s=0.0,
        settle_s=15.0))


def test_demand_shedding_switches_relays_low_first_never_critical_and_restores() -> None:
    rig = Rig(_shedding_settings(), [])
    loads = {"ev": 7400.0, "heat_pump": 2500.0, "freezer": 150.0}

    def feed(base_w: float, seconds: float) -> None:
        for _ in range(round(seconds / 3.0)):
            t_ns = rig.clock.now_ns()
            on = {c: (0.0 if rig.outputs.state(relay_output(c)) else w)
                  for c, w in loads.items()}
            recs = [Metrics(t_ns, "150c", c, "A", {"power_active_w": w}) for c, w in on.items()]
            recs.append(Metrics(t_ns, "150c", "main", "ABC",
                                {"power_active_w": base_w + sum(on.values())}))
            rig.engine.on_metrics(recs)
            rig.advance(3.0)

    feed(2000.0, 60.0)  # 12 050 W > 11 000 W
    assert rig.outputs.state(relay_output("ev"))
    assert not rig.outputs.state(relay_output("heat_pump"))  # ev alone was enough
    feed(4000.0, 60.0)  # 4000 + 2650 = 6650 W: fine
    feed(9000.0, 60.0)  # 9000 + 2650 = 11 650 W: the medium circuit goes next
    assert rig.outputs.state(relay_output("heat_pump"))
    assert not rig.outputs.changes(relay_output("freezer"))  # critical: never touched
    feed(0.0, 600.0)  # both come back, last shed first
    closes = [r.circuit for r in rig.audit.actions(AuditAction.RELAY_CLOSE)]
    assert closes == ["heat_pump", "ev"]
    opens = [(r.circuit, r.outcome) for r in rig.audit.actions(AuditAction.RELAY_OPEN)]
    assert opens == [("ev", Outcome.OK), ("heat_pump", Outcome.OK)]
    # an INFO alert per shed circuit: listed, never sent
    assert {a.type for a in rig.engine.book.alerts()} == {"load_shed"}


def test_worker_sink_feeds_the_engine_and_never_raises() -> None:
    rig = Rig(_settings(), [])
    sink = WorkerSink(rig.engine)
    sink.publish([Metrics(rig.clock.now_ns(), "150c", "heater", "A",
                          {"current_rms_a": 40.0})] * 1, [])
    assert rig.engine.thermal.level("heater") > 0
    sink.publish([Metrics(0, "bogus-interval", "heater", "A", {"current_rms_a": 1.0})], [])
    sink.close()


def test_rejected_requests_are_audited_but_rate_limited() -> None:
    rig = Rig(_settings(), [])
    for _ in range(50):
        rig.engine.rejected("10.0.0.9", 401, "missing or wrong bearer token")
    assert len(rig.audit.actions(AuditAction.WEBHOOK_REJECTED)) == 10
    rig.advance(61.0)
    rig.engine.rejected("10.0.0.9", 401, "again")
    assert len(rig.audit.actions(AuditAction.WEBHOOK_REJECTED)) == 11


def test_escalation_contact_without_a_channel_is_audited_as_failed() -> None:
    rig = Rig(_settings(alert_policy=AlertPolicy(escalation_after_s=60.0,
                                                 escalation_contacts=("+4915199999999",))),
              [])
    rig.engine.on_grafana([AlertSignal("k", True, Severity.WARNING, "x", AlertSource.GRAFANA)])
    rig.advance(60.0)
    (esc,) = rig.audit.actions(AuditAction.ESCALATE)
    assert esc.outcome is Outcome.FAILED
    suppressed = [r for r in rig.audit.actions(AuditAction.NOTIFY)
                  if r.outcome is Outcome.SUPPRESSED]
    assert suppressed  # the primary notification had no channel either, and says so
