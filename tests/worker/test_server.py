"""The webhook endpoint: authentication, malformed and oversized bodies, and it keeps serving."""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from collector.model import Severity
from collector.worker.alerts import (
    AckResult,
    Alert,
    AlertSignal,
    AlertSource,
    AlertState,
    UnknownAlertError,
)
from collector.worker.server import GRAFANA_PATH, ServerSettings, WebhookServer, token_matches

TOKEN = "7b1e9c0a5d4f4e0b8c2a6f1d3e5b7a90"


def grafana_payload(status: str = "firing", n: int = 1) -> dict[str, Any]:
    """A notification in the shape Grafana's webhook contact point sends."""
    alerts = [{
        "status": status,
        "labels": {"alertname": "Overcurrent", "type": "overcurrent", "circuit": f"c{k}",
                   "phase": "A", "severity": "critical", "grafana_folder": "GridGuard"},
        "annotations": {"summary": f"c{k} above its breaker rating", "value": "21.5",
                        "threshold": "16"},
        "startsAt": "2026-01-31T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana:3000/alerting/grafana/x/view",
        "fingerprint": f"f1a2b3c4d5e6f70{k}", "silenceURL": "", "dashboardURL": "",
        "panelURL": "", "values": {"B": 21.5, "C": 1}, "valueString": "[ var='B' value=21.5 ]",
    } for k in range(n)]
    return {
        "receiver": "gridguard-worker", "status": status, "orgId": 1, "alerts": alerts,
        "groupLabels": {"alertname": "Overcurrent"}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://grafana:3000/", "version": "1",
        "groupKey": "{}:{}", "truncatedAlerts": 0, "title": "[FIRING:1] Overcurrent",
        "state": "alerting", "message": "...",
    }


class StubApi:
    def __init__(self) -> None:
        self.signals: list[AlertSignal] = []
        self.rejections: list[tuple[str, int, str]] = []
        self.acks: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def on_grafana(self, signals: list[AlertSignal]) -> None:
        with self.lock:
            self.signals += signals

    def ack(self, alert_id: str, by: str) -> AckResult:
        if alert_id != "5":
            raise UnknownAlertError(alert_id)
        self.acks.append((alert_id, by))
        alert = Alert("5", "k", "overcurrent", Severity.CRITICAL, AlertSource.GRAFANA, "c",
                      None, "", None, None, AlertState.ACKNOWLEDGED, 0, 0, acked_by=by)
        return AckResult(alert, True, f"alert 5 acknowledged by {by}")

    def list_alerts(self, include_resolved: bool) -> list[dict[str, Any]]:
        return [{"id": "5", "resolved_too": include_resolved}]

    def rejected(self, client: str, status: int, reason: str) -> None:
        with self.lock:
            self.rejections.append((client, status, reason))


@pytest.fixture
def api() -> StubApi:
    return StubApi()


@pytest.fixture
def server(api: StubApi) -> Iterator[WebhookServer]:
    srv = WebhookServer(ServerSettings(TOKEN, port=0, read_timeout_s=1.0, max_connections=4),
                        api)
    srv.start()
    yield srv
    srv.stop()


def _post(server: WebhookServer, body: bytes | None = None, *, token: str | None = TOKEN,
          content_type: str = "application/json", path: str = GRAFANA_PATH,
          scheme: str = "Bearer") -> requests.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    data = json.dumps(grafana_payload()).encode() if body is None else body
    return requests.post(server.url + path, data=data, headers=headers, timeout=10)


def _raw(server: WebhookServer, request: bytes, *, close_after: bool = False) -> bytes:
    host, port = server.address
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        if close_after:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_binds_to_loopback_by_default(server: WebhookServer) -> None:
    assert ServerSettings(TOKEN).bind_host == "127.0.0.1"
    assert server.address[0] == "127.0.0.1"


@pytest.mark.parametrize("path", ["/grafana", "/grafana/webhook"])
def test_valid_grafana_notification_is_accepted(server: WebhookServer, api: StubApi,
                                                path: str) -> None:
    resp = _post(server, json.dumps(grafana_payload(n=2)).encode(), path=path)
    assert resp.status_code == 200
    assert resp.json() == {"accepted": 2}
    assert [s.key for s in api.signals] == ["fault:overcurrent:c0:A", "fault:overcurrent:c1:A"]
    sig = api.signals[0]
    assert (sig.firing, sig.severity, sig.value, sig.threshold) == (True, Severity.CRITICAL,
                                                                    21.5, 16.0)
    assert sig.summary == "c0 above its breaker rating"


@pytest.mark.parametrize(("token", "scheme"), [
    (None, "Bearer"),  # no Authorization header
    ("wrong-token-wrong-token-wrong-tok", "Bearer"),
    (TOKEN[:-1], "Bearer"),  # a prefix of the right token
    (TOKEN + "x", "Bearer"),  # the right token plus more
    ("", "Bearer"),
    (TOKEN, "Basic"),  # the right secret in the wrong scheme
])
def test_missing_or_wrong_token_is_401(server: WebhookServer, api: StubApi, token: str | None,
                                       scheme: str) -> None:
    resp = _post(server, token=token, scheme=scheme)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.signals == []
    assert api.rejections[-1][1] == 401


def test_token_is_compared_in_constant_time(server: WebhookServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module server.py calls
    assert _post(server, token="guess-guess-guess-guess").status_code == 401
    assert _post(server).status_code == 200
    assert calls == [(b"guess-guess-guess-guess", TOKEN.encode()),
                     (TOKEN.encode(), TOKEN.encode())]
    assert token_matches(f"bearer {TOKEN}", TOKEN)  # the scheme is case-insensitive


@pytest.mark.parametrize(("body", "ctype", "status"), [
    (b"{not json", "application/json", 400),
    (b"\xff\xfe\x00garbage", "application/json", 400),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),  # nesting bomb
    (b'{"alerts": "nope"}', "application/json", 422),
    (b'{"alerts": [{"status": "exploded", "labels": {}}]}', "application/json", 422),
    (b'{"alerts": [{"status": "firing", "labels": {"a": 1}}]}', "application/json", 422),
    (b"[]", "application/json", 422),
    (json.dumps(grafana_payload()).encode(), "text/plain", 415),
    (json.dumps(grafana_payload()).encode(), "application/x-www-form-urlencoded", 415),
    (b"x" * (256 * 1024 + 1), "application/json", 413),
    (b"x" * (3 * 1024 * 1024), "application/json", 413),  # larger than we drain
])
def test_bad_bodies_are_4xx_and_the_server_keeps_serving(
        server: WebhookServer, api: StubApi, body: bytes, ctype: str, status: int) -> None:
    try:
        resp = _post(server, body, content_type=ctype)
        assert resp.status_code == status
        assert "error" in resp.json()
    except requests.ConnectionError:
        # only acceptable for a body far beyond the limit: the server closes on it
        assert len(body) > 1024 * 1024
    assert api.signals == []
    assert _post(server).status_code == 200


def test_protocol_abuse_is_4xx_and_the_server_keeps_serving(server: WebhookServer,
                                                            api: StubApi) -> None:
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    no_length = (b"POST " + GRAFANA_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth
                 + b"Content-Type: application/json\r\n\r\n{}")
    assert _raw(server, no_length, close_after=True).startswith(b"HTTP/1.0 411")
    chunked = (b"POST " + GRAFANA_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth
               + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"2\r\n{}\r\n0\r\n\r\n")
    assert _raw(server, chunked).startswith(b"HTTP/1.0 411")
    bad_length = (b"POST " + GRAFANA_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth
                  + b"Content-Type: application/json\r\nContent-Length: -5\r\n\r\n")
    assert _raw(server, bad_length).startswith(b"HTTP/1.0 400")
    # a body shorter than announced: the read times out (1 s), the client gets 400
    short = (b"POST " + GRAFANA_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth
             + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"al")
    started = time.monotonic()
    answer = _raw(server, short, close_after=True)
    assert answer.startswith(b"HTTP/1.0 400") or answer == b""
    assert time.monotonic() - started < 5
    # not HTTP at all: http.server answers its own 400 page (HTTP/0.9 style, no status line)
    assert b"400" in _raw(server, b"this is not http\r\n\r\n")
    assert requests.get(server.url + "/nope", timeout=5).status_code == 404
    assert requests.get(server.url + GRAFANA_PATH, timeout=5).status_code == 405
    assert requests.delete(server.url + GRAFANA_PATH, timeout=5).status_code == 405
    assert api.signals == []
    assert _post(server).status_code == 200


def test_slow_clients_cannot_starve_the_endpoint(server: WebhookServer) -> None:
    host, port = server.address
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        # all four slots taken by clients that send nothing: a fifth is refused at once
        refused = _raw(server, b"GET /health HTTP/1.0\r\n\r\n")
        assert refused.startswith(b"HTTP/1.0 503")
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # slots free again after the read timeout
        if requests.get(server.url + "/health", timeout=5).status_code == 200:
            break
        time.sleep(0.1)
    assert _post(server).status_code == 200


def test_local_api_list_and_ack(server: WebhookServer, api: StubApi) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(server.url + "/alerts", timeout=5).status_code == 401
    resp = requests.get(server.url + "/alerts?all=1", headers=headers, timeout=5)
    assert resp.json() == {"alerts": [{"id": "5", "resolved_too": True}]}
    resp = requests.post(server.url + "/alerts/5/ack", json={"by": "Sam"}, headers=headers,
                         timeout=5)
    assert resp.status_code == 200
    assert resp.json()["alert"]["acked_by"] == "Sam"
    assert api.acks == [("5", "Sam")]
    assert requests.post(server.url + "/alerts/6/ack", json={}, headers=headers,
                         timeout=5).status_code == 404
    assert requests.post(server.url + "/alerts/5/ack", json={"by": 7}, headers=headers,
                         timeout=5).status_code == 422
    assert requests.post(server.url + "/alerts/5/ack", json={"by": "x"},
                         timeout=5).status_code == 401


def test_health_needs_no_token_and_says_nothing_else(server: WebhookServer) -> None:
    resp = requests.get(server.url + "/health", timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_settings_refuse_a_short_token() -> None:
    with pytest.raises(ValueError, match="token"):
        ServerSettings("short")


def test_resolved_notification_and_unlabelled_alerts(server: WebhookServer,
                                                     api: StubApi) -> None:
    payload = grafana_payload("resolved")
    payload["alerts"][0]["labels"] = {"alertname": "Disk full"}
    assert _post(server, json.dumps(payload).encode()).status_code == 200
    (sig,) = api.signals
    assert not sig.firing
    assert sig.key == "grafana:f1a2b3c4d5e6f700"
    assert sig.type == "Disk full"
    assert sig.severity is Severity.WARNING  # unlabelled: still worth a look
