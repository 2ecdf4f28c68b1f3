"""SMS through Twilio's REST API (the Messages resource), with ``requests``.

``POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP basic auth
with the Account SID and auth token, form-encoded ``To``, ``From`` and ``Body``
(Twilio answers 201 Created with the message resource as JSON). ``api_url`` is
configurable so tests point it at a local server.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import requests

from collector.worker.notify.base import SMS_MAX_CHARS, Channel, Delivery, Message, mask_phone

API_VERSION = "2010-04-01"


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_number: str
    to: tuple[str, ...]
    api_url: str = "https://api.twilio.com"
    timeout_s: float = 10.0
    verify_tls: bool | str = True

    def __post_init__(self) -> None:
        if not self.account_sid or not self.auth_token:
            raise ValueError("account_sid/auth_token: both are required for Twilio")
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError(f"api_url: expected an http(s) URL, got {self.api_url!r}")

    def __repr__(self) -> str:  # never print the token
        return f"TwilioSettings(account_sid={self.account_sid!r}, api_url={self.api_url!r})"


class TwilioSms:
    """Sends one SMS per recipient."""

    def __init__(self, settings: TwilioSettings, session: requests.Session | None = None) -> None:
        self._s = settings
        self._session = session or requests.Session()

    @property
    def channel(self) -> Channel:
        return Channel.SMS

    @property
    def recipients(self) -> tuple[str, ...]:
        return self._s.to

    @property
    def endpoint(self) -> str:
        sid = quote(self._s.account_sid, safe="")
        return f"{self._s.api_url.rstrip('/')}/{API_VERSION}/Accounts/{sid}/Messages.json"

    def send(self, message: Message, to: str) -> Delivery:
        target = mask_phone(to)
        body = message.short[:SMS_MAX_CHARS]
        try:
            resp = self._session.post(
                self.endpoint,
                data={"To": to, "From": self._s.from_number, "Body": body},
                auth=(self._s.account_sid, self._s.auth_token),
                timeout=self._s.timeout_s,
                verify=self._s.verify_tls,
            )
        except requests.RequestException as exc:
            return Delivery(Channel.SMS, target, False,
                            f"Twilio unreachable: {type(exc).__name__}: {exc}", retryable=True)
        if resp.status_code in (200, 201):
            sid = _json_field(resp, "sid")
            return Delivery(Channel.SMS, target, True, f"accepted by Twilio (sid {sid})")
        detail = _json_field(resp, "message") or resp.text[:200]
        code = _json_field(resp, "code")
        retryable = resp.status_code == 429 or resp.status_code >= 500
        return Delivery(Channel.SMS, target, False,
                        f"Twilio HTTP {resp.status_code}"
                        + (f" (error {code})" if code else "") + f": {detail}",
                        retryable=retryable)


def _json_field(resp: requests.Response, name: str) -> str:
    try:
        data = resp.json()
    except ValueError:
        return ""
    value = data.get(name) if isinstance(data, dict) else None
    return "" if value is None else str(value)
