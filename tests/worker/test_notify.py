"""Channels against real local servers: SMTP (aiosmtpd), a Twilio stand-in, a webhook."""

from __future__ import annotations

import base64
import email
import email.policy
from urllib.parse import parse_qs

import pytest

from collector.config.alerts import SmtpSecurity
from collector.model import NS_PER_S, Severity
from collector.worker.alerts import Alert, AlertSource, AlertState, NotifyReason
from collector.worker.notify.base import Channel, alert_message, mask_phone
from collector.worker.notify.email_smtp import SmtpEmail, SmtpSettings
from collector.worker.notify.sms_twilio import TwilioSettings, TwilioSms
from collector.worker.notify.webhook import OutgoingWebhooks, WebhookTarget
from tests.influxd_fixture import free_port
from tests.worker.conftest import HttpReceiver, SmtpServer, TlsFiles

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
T0 = 1_700_000_000 * NS_PER_S


def _alert() -> Alert:
    return Alert(
        id="42", key="fault:overcurrent:freezer:A", type="overcurrent",
        severity=Severity.CRITICAL, source=AlertSource.GRAFANA, circuit="freezer", phase="A",
        summary="Freezer circuit at 21.3 A for 60 s", value=21.3, threshold=16.0,
        state=AlertState.NOTIFIED, opened_ns=T0, updated_ns=T0, notified_ns=T0,
    )


def _message(reason: NotifyReason = NotifyReason.NEW):  # type: ignore[no-untyped-def]
    return alert_message(_alert(), reason, "home", T0 + 5 * NS_PER_S)


def test_email_arrives_with_subject_and_body(smtp_server: SmtpServer) -> None:
    mailer = SmtpEmail(SmtpSettings("127.0.0.1", smtp_server.port, "gridguard@example.org",
                                    ("sparky@example.org",), security=SmtpSecurity.NONE))
    result = mailer.send(_message(), "sparky@example.org")
    assert result.ok, result.detail
    (mail,) = smtp_server.wait_for(1)
    assert mail.mail_from == "gridguard@example.org"
    assert mail.rcpt_tos == ["sparky@example.org"]
    msg = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert msg["Subject"].strip() == (
        "[GridGuard home] CRITICAL overcurrent on freezer phase A (alert 42)")
    assert msg["X-GridGuard-Severity"] == "critical"
    body = msg.get_content()
    assert "Freezer circuit at 21.3 A for 60 s" in body
    assert "Value:     21.3   Threshold: 16" in body
    assert "gridguard alerts ack 42" in body


def test_email_starttls_and_login_only_over_tls(smtp_starttls: SmtpServer,
                                                tls_files: TlsFiles) -> None:
    settings = SmtpSettings("127.0.0.1", smtp_starttls.port, "alarm@example.org",
                            ("sparky@example.org",), security=SmtpSecurity.STARTTLS,
                            username="alarm@example.org", password="s3cret-pass")
    mailer = SmtpEmail(settings, tls_context=tls_files.client_context())
    result = mailer.send(_message(NotifyReason.RESOLVED), "sparky@example.org")
    assert result.ok, result.detail
    (mail,) = smtp_starttls.wait_for(1)
    assert mail.tls
    assert smtp_starttls.logins == [("alarm@example.org", "s3cret-pass", True)]
    msg = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert msg["Subject"].strip().startswith("[GridGuard home] RESOLVED: OK overcurrent")
    # a wrong password is reported as a non-retryable failure
    bad = SmtpEmail(SmtpSettings("127.0.0.1", smtp_starttls.port, "alarm@example.org",
                                 ("x@example.org",), username="alarm@example.org",
                                 password="wrong-password"),
                    tls_context=tls_files.client_context())
    failed = bad.send(_message(), "x@example.org")
    assert not failed.ok
    assert not failed.retryable
    assert "login refused" in failed.detail


def test_email_starttls_required_but_not_offered_is_an_error(smtp_server: SmtpServer) -> None:
    mailer = SmtpEmail(SmtpSettings("127.0.0.1", smtp_server.port, "a@example.org",
                                    ("b@example.org",), security=SmtpSecurity.STARTTLS))
    result = mailer.send(_message(), "b@example.org")
    assert not result.ok
    assert "STARTTLS" in result.detail
    assert smtp_server.mails == []  # nothing went out in clear text


def test_email_server_down_is_retryable() -> None:
    mailer = SmtpEmail(SmtpSettings("127.0.0.1", free_port(), "a@example.org",
                                    ("b@example.org",), security=SmtpSecurity.NONE,
                                    timeout_s=2.0))
    result = mailer.send(_message(), "b@example.org")
    assert not result.ok
    assert result.retryable


def test_twilio_messages_request_is_form_encoded_and_basic_authenticated(
        http_receiver: HttpReceiver) -> None:
    http_receiver.status = 201
    http_receiver.reply = {"sid": "SM0123", "status": "queued"}
    sms = TwilioSms(TwilioSettings(SID, TOKEN, "+4915100000000", ("+4915100000001",),
                                   api_url=http_receiver.url))
    result = sms.send(_message(), "+4915100000001")
    assert result.ok, result.detail
    assert "SM0123" in result.detail
    assert result.target == "+49151*****001"
    (req,) = http_receiver.received()
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    scheme, _, cred = req.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(cred).decode() == f"{SID}:{TOKEN}"
    form = parse_qs(req.body.decode(), strict_parsing=True)
    assert form["To"] == ["+4915100000001"]
    assert form["From"] == ["+4915100000000"]
    (body,) = form["Body"]
    assert body.startswith("GridGuard home CRITICAL overcurrent freezer phase A: Freezer")
    assert body.endswith("ack: gridguard alerts ack 42")


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (400, False), (429, True),
                                                    (503, True)])
def test_twilio_errors_are_classified(http_receiver: HttpReceiver, status: int,
                                      retryable: bool) -> None:
    http_receiver.status = status
    http_receiver.reply = {"code": 20003, "message": "Authenticate", "status": status}
    sms = TwilioSms(TwilioSettings(SID, TOKEN, "+4915100000000", ("+4915100000001",),
                                   api_url=http_receiver.url))
    result = sms.send(_message(), "+4915100000001")
    assert not result.ok
    assert result.retryable is retryable
    assert f"HTTP {status}" in result.detail
    assert TOKEN not in result.detail


def test_outgoing_webhook_posts_the_alert_as_json(http_receiver: HttpReceiver) -> None:
    url = http_receiver.url + "/hooks/gridguard"
    hooks = OutgoingWebhooks((WebhookTarget(url, bearer_token="hook-token-1234567890"),))
    result = hooks.send(_message(NotifyReason.ESCALATION), url)
    assert result.ok
    assert result.channel is Channel.WEBHOOK
    (req,) = http_receiver.received()
    assert req.path == "/hooks/gridguard"
    assert req.headers["Authorization"] == "Bearer hook-token-1234567890"
    body = req.json()
    assert body["alert_id"] == "42"
    assert body["severity"] == "critical"
    assert body["reason"] == "escalation"
    assert body["circuit"] == "freezer"
    assert body["value"] == 21.3
    assert body["time"] == "2023-11-14T22:13:25.000000Z"


def test_phone_numbers_are_masked_in_the_audit_target() -> None:
    assert mask_phone("+4915112345678") == "+49151*****678"
