"""The worker's HTTP endpoint: Grafana webhook notifications and the local alert API.

Routes (all answers are JSON)::

    POST /grafana             Grafana webhook contact point          bearer token
         (/grafana/webhook is accepted too)
    GET  /alerts[?all=1]      open (or all) alerts                   bearer token
    POST /alerts/<id>/ack     acknowledge; body {"by": "name"} opt.  bearer token
    GET  /health              liveness, no details                   none

Security and robustness:

* ``Authorization: Bearer <token>`` is compared with :func:`hmac.compare_digest`
  (constant time: the answer time does not reveal how much of a guess was right);
  missing or wrong -> 401 with ``WWW-Authenticate: Bearer``. The token is checked
  before any body is read or parsed.
* Binds to 127.0.0.1 unless configured otherwise (``alerts.webhook.bind_host``).
* Bodies need ``Content-Length`` (411 otherwise, chunked included), at most
  ``max_body_bytes`` (413), ``Content-Type: application/json`` (415), UTF-8 JSON
  (400, deep nesting included) in Grafana's shape (422).
* Reads time out (``read_timeout_s``) and at most ``max_connections`` requests are
  served at once (503 beyond), so a slow or flooding client cannot starve Grafana.
* No exception escapes a request: an unexpected one answers 500 and is logged; the
  server keeps serving.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from collector.worker.alerts import AckResult, AlertSignal, UnknownAlertError
from collector.worker.grafana import PayloadError, parse_notification

log = logging.getLogger(__name__)

GRAFANA_PATH = "/grafana"
GRAFANA_PATHS = (GRAFANA_PATH, "/grafana/webhook")
ALERTS_PATH = "/alerts"
HEALTH_PATH = "/health"
_ACK_RE = re.compile(r"^/alerts/([0-9]{1,12})/ack$")
_DRAIN_MAX_BYTES = 1024 * 1024  # read and drop up to this much of a refused body


class WorkerApi(Protocol):
    """What the endpoint calls; implemented by the engine."""

    def on_grafana(self, signals: list[AlertSignal]) -> None: ...

    def ack(self, alert_id: str, by: str) -> AckResult: ...

    def list_alerts(self, include_resolved: bool) -> list[dict[str, Any]]: ...

    def rejected(self, client: str, status: int, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ServerSettings:
    token: str
    bind_host: str = "127.0.0.1"
    port: int = 8765
    max_body_bytes: int = 256 * 1024
    read_timeout_s: float = 10.0
    max_connections: int = 32

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise ValueError("token: must be at least 16 characters (generate one with "
                             "`openssl rand -hex 32`)")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port: must be 0..65535 (0 = any free port), got {self.port}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes: must be >= 1024, got {self.max_body_bytes}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections: must be >= 1, got {self.max_connections}")

    def __repr__(self) -> str:  # never print the token
        return f"ServerSettings(bind_host={self.bind_host!r}, port={self.port})"


class _HttpError(Exception):
    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header value."""
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        presented = ""
    # compare_digest runs in time independent of where the inputs first differ
    return hmac.compare_digest(presented.strip().encode(), token.encode())


class _BoundedServer(ThreadingHTTPServer):
    """A thread per request, but never more than ``max_connections`` at once."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class WebhookServer:
    """Owns the listening socket and its thread."""

    def __init__(self, settings: ServerSettings, api: WorkerApi) -> None:
        self._settings = settings
        self._api = api
        self._httpd: _BoundedServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def start(self) -> None:
        if self._httpd is not None:
            return
        s = self._settings
        self._httpd = _BoundedServer((s.bind_host, s.port), _handler_class(s, self._api),
                                     s.max_connections)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="worker-http", daemon=True)
        self._thread.start()
        log.info("worker endpoint listening on %s", self.url)

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        self._httpd = None
        self._thread = None


def _handler_class(settings: ServerSettings, api: WorkerApi) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one server's settings and API (no global state)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "gridguard-worker"
        sys_version = ""
        timeout = settings.read_timeout_s

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.client_address[0], format % args)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        # -- plumbing -----------------------------------------------------------

        def _dispatch(self, method: str) -> None:
            try:
                handler = self._route(method)
                handler()
            except _HttpError as err:
                if err.status in (401, 411, 413, 415) or err.status >= 500:
                    self._note_rejected(err.status, err.message)
                self._send(err.status, {"error": err.message}, close=err.close)
            except (TimeoutError, ConnectionError):
                log.debug("client %s went away or was too slow", self.client_address[0])
                self.close_connection = True
            except Exception:
                log.exception("worker endpoint: unexpected error on %s %s", method, self.path)
                try:
                    self._send(500, {"error": "internal error"}, close=True)
                except OSError:
                    self.close_connection = True

        def _route(self, method: str) -> Callable[[], None]:
            path = urlsplit(self.path).path
            routes: dict[str, dict[str, Callable[[], None]]] = {
                HEALTH_PATH: {"GET": self._health},
                ALERTS_PATH: {"GET": self._list},
            }
            for grafana in GRAFANA_PATHS:
                routes[grafana] = {"POST": self._grafana}
            if _ACK_RE.match(path):
                routes[path] = {"POST": self._ack}
            methods = routes.get(path)
            if methods is None:
                raise _HttpError(404, f"no such endpoint {path[:100]!r}", close=True)
            handler = methods.get(method)
            if handler is None:
                raise _HttpError(405, f"{method} not allowed on {path}; use "
                                 f"{', '.join(methods)}", close=True)
            return handler

        def _authorize(self) -> None:
            if not token_matches(self.headers.get("Authorization"), settings.token):
                raise _HttpError(401, "missing or wrong bearer token", close=True)

        def _read_json(self, *, optional: bool = False) -> Any:
            if self.headers.get("Transfer-Encoding"):
                raise _HttpError(411, "send the body with Content-Length, not chunked",
                                 close=True)
            raw_length = self.headers.get("Content-Length")
            if raw_length is None:
                if optional:
                    return None
                raise _HttpError(411, "Content-Length required", close=True)
            try:
                length = int(raw_length)
            except ValueError:
                raise _HttpError(400, "Content-Length is not a number", close=True) from None
            if length < 0:
                raise _HttpError(400, "Content-Length is negative", close=True)
            if length > settings.max_body_bytes:
                self._drain(length)
                raise _HttpError(413, f"body of {length} bytes exceeds the limit of "
                                 f"{settings.max_body_bytes} bytes", close=True)
            if length == 0 and optional:
                return None
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                self._drain(length)
                raise _HttpError(415, f"Content-Type must be application/json, got "
                                 f"{ctype[:60]!r}", close=True)
            body = self.rfile.read(length)
            if len(body) != length:
                raise _HttpError(400, "body shorter than Content-Length", close=True)
            try:
                return json.loads(body.decode("utf-8"))
            except UnicodeDecodeError:
                raise _HttpError(400, "body is not UTF-8", close=True) from None
            except RecursionError:
                raise _HttpError(400, "JSON nested too deeply", close=True) from None
            except ValueError as exc:
                raise _HttpError(400, f"malformed JSON: {exc}", close=True) from None

        def _drain(self, length: int) -> None:
            # Read (and drop) a refused body so the client gets to read our answer
            # instead of a connection reset; only up to a bound.
            left = min(length, _DRAIN_MAX_BYTES)
            try:
                while left > 0:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
            except OSError:
                pass

        def _send(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
            data = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="gridguard-worker"')
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def _note_rejected(self, status: int, reason: str) -> None:
            try:
                api.rejected(self.client_address[0], status, reason)
            except Exception:
                log.exception("worker endpoint: could not record a rejected request")

        # -- endpoints ------------------------------------------------------------

        def _health(self) -> None:
            self._send(200, {"status": "ok"})

        def _grafana(self) -> None:
            self._authorize()
            payload = self._read_json()
            try:
                signals = parse_notification(payload)
            except PayloadError as exc:
                raise _HttpError(422, str(exc)) from None
            api.on_grafana(signals)
            self._send(200, {"accepted": len(signals)})

        def _list(self) -> None:
            self._authorize()
            query = parse_qs(urlsplit(self.path).query)
            include = query.get("all", ["0"])[0] in ("1", "true", "yes")
            self._send(200, {"alerts": api.list_alerts(include)})

        def _ack(self) -> None:
            self._authorize()
            match = _ACK_RE.match(urlsplit(self.path).path)
            assert match is not None  # routed here only on a match
            body = self._read_json(optional=True)
            by = "local api"
            if body is not None:
                if not isinstance(body, dict):
                    raise _HttpError(422, "body: expected a JSON object like {\"by\": \"name\"}")
                given = body.get("by")
                if given is not None:
                    if not isinstance(given, str) or not 0 < len(given.strip()) <= 100:
                        raise _HttpError(422, "by: expected a name of 1..100 characters")
                    by = given.strip()
            try:
                result = api.ack(match.group(1), by)
            except UnknownAlertError:
                raise _HttpError(404, f"no alert with id {match.group(1)!r}") from None
            self._send(200, {"alert": result.alert.to_dict(), "changed": result.changed,
                             "message": result.message})

    return Handler
