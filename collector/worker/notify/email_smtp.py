"""Email through an SMTP server with ``smtplib``: STARTTLS (587), implicit TLS (465) or none.

STARTTLS is required when chosen: a server that does not offer it is an error, never
a silent fall-back to plain text (the password would travel in clear). Certificates
are verified against the system CAs (``SSL_CERT_FILE`` is honoured for a private CA).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from collector.config.alerts import SmtpSecurity
from collector.worker.notify.base import Channel, Delivery, Message


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    from_address: str
    to: tuple[str, ...]
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    password: str | None = None
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host: an SMTP server is required")
        if not 0 < self.port < 65536:
            raise ValueError(f"port: must be 1..65535, got {self.port}")
        if self.password is not None and self.username is None:
            raise ValueError("username: required with a password")

    def __repr__(self) -> str:  # never print the password
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, "
                f"security={self.security.value!r}, to={self.to!r})")


def build_email(message: Message, from_address: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = message.subject
    msg["From"] = from_address
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    msg["X-GridGuard-Severity"] = message.severity.value
    if message.alert_id is not None:
        msg["X-GridGuard-Alert"] = message.alert_id
    msg.set_content(message.body)
    return msg


class SmtpEmail:
    """Sends one email per recipient, one SMTP session per send."""

    def __init__(self, settings: SmtpSettings, tls_context: ssl.SSLContext | None = None) -> None:
        self._s = settings
        self._tls = tls_context

    @property
    def channel(self) -> Channel:
        return Channel.EMAIL

    @property
    def recipients(self) -> tuple[str, ...]:
        return self._s.to

    def _context(self) -> ssl.SSLContext:
        return self._tls if self._tls is not None else ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        s = self._s
        if s.security is SmtpSecurity.TLS:
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._context())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.security is SmtpSecurity.STARTTLS:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "the server does not offer STARTTLS (security: starttls)"
                    )
                smtp.starttls(context=self._context())
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Message, to: str) -> Delivery:
        s = self._s
        try:
            with self._connect() as smtp:
                if s.username is not None and s.password is not None:
                    smtp.login(s.username, s.password)
                refused = smtp.send_message(build_email(message, s.from_address, to))
        except smtplib.SMTPAuthenticationError as exc:
            return self._fail(to, f"login refused ({exc.smtp_code})", retryable=False)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()), (550, b""))[0]
            return self._fail(to, f"recipient refused ({code})", retryable=400 <= code < 500)
        except smtplib.SMTPNotSupportedError as exc:
            return self._fail(to, str(exc), retryable=False)
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            return self._fail(to, f"SMTP {exc.smtp_code}: {text}",
                              retryable=400 <= exc.smtp_code < 500)
        except ssl.SSLError as exc:
            return self._fail(to, f"TLS failed: {exc.reason or exc}", retryable=False)
        except (smtplib.SMTPException, OSError) as exc:
            return self._fail(to, f"{type(exc).__name__}: {exc}", retryable=True)
        if refused:
            return self._fail(to, f"recipient refused: {refused}", retryable=False)
        return Delivery(Channel.EMAIL, to, True, f"accepted by {s.host}:{s.port}")

    def _fail(self, to: str, detail: str, *, retryable: bool) -> Delivery:
        return Delivery(Channel.EMAIL, to, False, f"{self._s.host}:{self._s.port}: {detail}",
                        retryable=retryable)
