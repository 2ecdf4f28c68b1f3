"""`alerts`: the Grafana webhook receiver and where alerts go (email, SMS, local)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from collector.config.base import (
    EmailAddress,
    GpioPin,
    HttpUrl,
    PhoneNumber,
    StrictModel,
    is_email,
    is_phone,
)
from collector.config.errors import LocatedProblem, format_value, problems_error
from collector.config.secrets import PasswordSecret, TokenSecret


class WebhookConfig(StrictModel):
    enabled: bool = Field(default=False, description="Run the Grafana webhook receiver.")
    bind_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Listen address; 0.0.0.0 only when Grafana runs elsewhere (e.g. another "
        "container).",
    )
    port: int = Field(default=8765, ge=1, le=65535, description="Listen port.")
    bearer_token: TokenSecret | None = Field(
        default=None,
        description="Token Grafana sends (Authorization: Bearer); required when enabled.",
    )

    @model_validator(mode="after")
    def _token(self) -> Self:
        if self.enabled and self.bearer_token is None:
            raise problems_error([LocatedProblem(
                ("bearer_token",), "is required when the webhook is enabled: it must be "
                "authenticated"
            )])
        return self


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # port 587, RFC 3207
    TLS = "tls"  # implicit TLS, port 465 (RFC 8314)
    NONE = "none"  # only for a local relay


class EmailConfig(StrictModel):
    enabled: bool = Field(default=False, description="Send alerts by email.")
    smtp_host: str | None = Field(default=None, min_length=1, description="SMTP server.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    security: SmtpSecurity = Field(
        default=SmtpSecurity.STARTTLS, description="starttls (587), tls (465) or none."
    )
    username: str | None = Field(default=None, min_length=1, description="SMTP user.")
    password: PasswordSecret | None = Field(default=None, description="SMTP password.")
    from_address: EmailAddress | None = Field(
        default=None, alias="from", description="Sender address."
    )
    to: tuple[EmailAddress, ...] = Field(default=(), description="Recipients.")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        problems = []
        if self.enabled:
            if self.smtp_host is None:
                problems.append(LocatedProblem(("smtp_host",), "is required when enabled"))
            if self.from_address is None:
                problems.append(LocatedProblem(("from",), "is required when enabled"))
            if not self.to:
                problems.append(LocatedProblem(("to",), "needs at least one recipient"))
        if self.password is not None and self.username is None:
            problems.append(LocatedProblem(("username",), "is required with a password"))
        if problems:
            raise problems_error(problems)
        return self


def _check_sid(value: str) -> str:
    # Twilio Account SIDs are "AC" followed by 32 hexadecimal digits.
    if not re.match(r"^AC[0-9a-fA-F]{32}$", value):
        raise ValueError("must be a Twilio Account SID: 'AC' and 32 hex digits")
    return value


class SmsProvider(StrEnum):
    TWILIO = "twilio"


class SmsConfig(StrictModel):
    enabled: bool = Field(default=False, description="Send alerts by SMS.")
    provider: SmsProvider = Field(default=SmsProvider.TWILIO, description="SMS provider.")
    account_sid: Annotated[str, AfterValidator(_check_sid)] | None = Field(
        default=None, description="Twilio Account SID."
    )
    auth_token: TokenSecret | None = Field(default=None, description="Twilio auth token.")
    from_number: PhoneNumber | None = Field(
        default=None, alias="from", description="Sending number (E.164)."
    )
    to: tuple[PhoneNumber, ...] = Field(default=(), description="Recipients (E.164).")
    api_url: HttpUrl = Field(
        default="https://api.twilio.com", description="REST API base URL (https)."
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        problems = []
        if self.enabled:
            for key, value in (("account_sid", self.account_sid),
                               ("auth_token", self.auth_token),
                               ("from", self.from_number)):
                if value is None:
                    problems.append(LocatedProblem((key,), "is required when enabled"))
            if not self.to:
                problems.append(LocatedProblem(("to",), "needs at least one recipient"))
        if not self.api_url.startswith("https://"):
            problems.append(LocatedProblem(
                ("api_url",), "must use https: the request carries the auth token",
                format_value(self.api_url),
            ))
        if problems:
            raise problems_error(problems)
        return self


def _check_contact(value: str) -> str:
    if not (is_phone(value) or is_email(value)):
        raise ValueError("must be an E.164 phone number ('+4915112345678') or an email address")
    return value


class EscalationConfig(StrictModel):
    enabled: bool = Field(default=False, description="Escalate unacknowledged alerts.")
    after_min: float = Field(
        default=15.0, gt=0, le=24 * 60, description="Escalate when unacknowledged this long [min]."
    )
    contacts: tuple[Annotated[str, AfterValidator(_check_contact)], ...] = Field(
        default=(), description="Who is told next: phone numbers (SMS) or email addresses."
    )

    @model_validator(mode="after")
    def _contacts(self) -> Self:
        if self.enabled and not self.contacts:
            raise problems_error([LocatedProblem(
                ("contacts",), "needs at least one contact when escalation is enabled"
            )])
        return self


class LedPins(StrictModel):
    warning: GpioPin | None = Field(default=None, description="GPIO of the warning LED.")
    critical: GpioPin | None = Field(default=None, description="GPIO of the critical LED.")


class LocalAlarmConfig(StrictModel):
    buzzer_pin: GpioPin | None = Field(default=None, description="GPIO of the buzzer.")
    led_pins: LedPins = Field(default_factory=LedPins, description="Status LEDs.")


class AlertsConfig(StrictModel):
    webhook: WebhookConfig = Field(default_factory=WebhookConfig, description="Receiver.")
    email: EmailConfig = Field(default_factory=EmailConfig, description="Email.")
    sms: SmsConfig = Field(default_factory=SmsConfig, description="SMS.")
    escalation: EscalationConfig = Field(
        default_factory=EscalationConfig, description="Escalation."
    )
    local: LocalAlarmConfig = Field(default_factory=LocalAlarmConfig, description="Buzzer, LEDs.")

    @model_validator(mode="after")
    def _escalation_channels(self) -> Self:
        problems = []
        if self.escalation.enabled:
            for k, contact in enumerate(self.escalation.contacts):
                if is_phone(contact) and not self.sms.enabled:
                    problems.append(LocatedProblem(
                        ("escalation", "contacts", k), "is a phone number but alerts.sms is "
                        "not enabled", repr(contact)
                    ))
                if is_email(contact) and not self.email.enabled:
                    problems.append(LocatedProblem(
                        ("escalation", "contacts", k), "is an email address but alerts.email "
                        "is not enabled", repr(contact)
                    ))
        if problems:
            raise problems_error(problems)
        return self
