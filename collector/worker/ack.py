"""Acknowledging and listing alerts of the running worker through its local HTTP API.

The worker owns the alert state (one writer, no file locking races); ``gridguard
alerts ack`` asks it over HTTP with the same bearer token Grafana uses. A
wildcard bind address (``0.0.0.0``, ``::``) is reached on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from collector.config.models import GridGuardConfig
from collector.worker.server import ALERTS_PATH

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class WorkerApiError(RuntimeError):
    """The worker could not be reached or refused the request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class WorkerEndpoint:
    url: str
    token: str

    def __repr__(self) -> str:  # never print the token
        return f"WorkerEndpoint(url={self.url!r})"


def endpoint_from_config(cfg: GridGuardConfig) -> WorkerEndpoint:
    """The local API of the worker configured in ``cfg`` (secrets must be resolved)."""
    hook = cfg.alerts.webhook
    if not hook.enabled or hook.bearer_token is None:
        raise WorkerApiError("alerts.webhook is not enabled: the worker has no local API "
                             "to acknowledge alerts through")
    host = _WILDCARDS.get(hook.bind_host, hook.bind_host)
    host = f"[{host}]" if ":" in host else host
    return WorkerEndpoint(f"http://{host}:{hook.port}", hook.bearer_token.get_secret_value())


class WorkerClient:
    def __init__(self, endpoint: WorkerEndpoint, *, timeout_s: float = 5.0,
                 session: requests.Session | None = None) -> None:
        self._ep = endpoint
        self._timeout_s = timeout_s
        self._session = session or requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self._ep.url.rstrip("/") + path
        try:
            resp = self._session.request(
                method, url, headers={"Authorization": f"Bearer {self._ep.token}"},
                timeout=self._timeout_s, **kwargs,
            )
        except requests.RequestException as exc:
            raise WorkerApiError(f"the worker is not reachable at {self._ep.url} "
                                 f"({type(exc).__name__}); is `gridguard worker` running?"
                                 ) from exc
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200:
            reason = body.get("error") if isinstance(body, dict) else None
            raise WorkerApiError(f"HTTP {resp.status_code}: {reason or resp.text[:200]}",
                                 resp.status_code)
        return body

    def ack(self, alert_id: str, by: str) -> dict[str, Any]:
        body = self._call("POST", f"{ALERTS_PATH}/{quote(alert_id, safe='')}/ack",
                          json={"by": by})
        return dict(body)

    def list(self, include_resolved: bool = False) -> list[dict[str, Any]]:
        body = self._call("GET", ALERTS_PATH, params={"all": "1" if include_resolved else "0"})
        alerts = body.get("alerts", []) if isinstance(body, dict) else []
        return [dict(a) for a in alerts]
