"""Local stand-ins for the worker's peers: an SMTP server (aiosmtpd), HTTP receivers
(Twilio, webhooks), a self-signed TLS certificate, and an engine on a fake clock."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.influxd_fixture import free_port


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        reason = ("the openssl command is needed to make a test certificate "
                  "(make test installs it: tests/services/ensure-system-deps.sh)")
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI provides it; a skip there would hide the gap
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return TlsFiles(cert, key)


# -- HTTP receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every request; answers ``status`` with ``reply`` (JSON)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    reply: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


def _start_receiver(tls: TlsFiles | None = None) -> tuple[HttpReceiver, ThreadingHTTPServer]:
    port = free_port()
    scheme = "https" if tls else "http"
    receiver = HttpReceiver(f"{scheme}://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(Received("POST", self.path, dict(self.headers), body))
                status, reply = receiver.status, receiver.reply
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.server_context().wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return receiver, httpd


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver, httpd = _start_receiver()
    yield receiver
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def https_receiver(tls_files: TlsFiles) -> Iterator[HttpReceiver]:
    receiver, httpd = _start_receiver(tls_files)
    yield receiver
    httpd.shutdown()
    httpd.server_close()


# -- SMTP server -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool


@dataclass
class SmtpServer:
    host: str
    port: int
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[Mail]:
        import time

        deadline = time.monotonic() + timeout_s
        while len(self.mails) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.mails)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self._server.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos),
                                       envelope.content, session.ssl is not None))
        return "250 Message accepted for delivery"


def _smtp(tls: TlsFiles | None, user: str | None = None,
          password: str | None = None) -> tuple[SmtpServer, Controller]:
    port = free_port()
    state = SmtpServer("127.0.0.1", port)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, pw = auth_data.login.decode(), auth_data.password.decode()
        state.logins.append((login, pw, session.ssl is not None))
        ok = (login, pw) == (user, password)
        # handled=False: let aiosmtpd answer 535 itself on a refusal
        return AuthResult(success=ok, handled=ok)

    kwargs: dict[str, Any] = {}
    if tls is not None:
        kwargs.update(tls_context=tls.server_context(), require_starttls=True)
    if user is not None:
        kwargs.update(authenticator=authenticator, auth_require_tls=True)
    controller = Controller(_Handler(state), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return state, controller


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback (security: none)."""
    state, controller = _smtp(None)
    yield state
    controller.stop()


@pytest.fixture
def smtp_starttls(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """SMTP that requires STARTTLS before anything else and AUTH over TLS only."""
    state, controller = _smtp(tls_files, "alarm@example.org", "s3cret-pass")
    yield state
    controller.stop()
