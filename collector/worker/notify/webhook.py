"""Outgoing webhooks: the notification as JSON, POSTed to each configured URL.

Body: :meth:`collector.worker.notify.base.Message.as_json` (site, reason, severity,
subject, text, alert id/key/type, circuit, phase, state, value, threshold, time).
An optional bearer token is sent as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from collector.worker.notify.base import Channel, Delivery, Message


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    bearer_token: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: expected http(s)://host/path, got {self.url!r}")

    def __repr__(self) -> str:  # never print the token
        return f"WebhookTarget(url={self.url!r})"


class OutgoingWebhooks:
    """POSTs to every target; ``to`` is the target's URL."""

    def __init__(self, targets: tuple[WebhookTarget, ...], *, timeout_s: float = 10.0,
                 session: requests.Session | None = None) -> None:
        self._targets = {t.url: t for t in targets}
        self._timeout_s = timeout_s
        self._session = session or requests.Session()

    @property
    def channel(self) -> Channel:
        return Channel.WEBHOOK

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(self._targets)

    def send(self, message: Message, to: str) -> Delivery:
        target = self._targets.get(to) or WebhookTarget(to)
        headers = {"User-Agent": "gridguard-worker"}
        if target.bearer_token:
            headers["Authorization"] = f"Bearer {target.bearer_token}"
        try:
            resp = self._session.post(to, json=message.as_json(), headers=headers,
                                      timeout=self._timeout_s)
        except requests.RequestException as exc:
            return Delivery(Channel.WEBHOOK, to, False, f"{type(exc).__name__}: {exc}",
                            retryable=True)
        if 200 <= resp.status_code < 300:
            return Delivery(Channel.WEBHOOK, to, True, f"HTTP {resp.status_code}")
        retryable = resp.status_code in (408, 429) or resp.status_code >= 500
        return Delivery(Channel.WEBHOOK, to, False,
                        f"HTTP {resp.status_code}: {resp.text[:200]}", retryable=retryable)
