"""Pytest plugin: real ``mosquitto`` MQTT brokers on loopback for the test session.

Registered from ``tests/conftest.py`` with
``pytest_plugins = [..., "tests.mosquitto_fixture"]``.

Fixtures
--------
``mosquitto`` (session scope)
    One broker on a free ``127.0.0.1`` port with a temporary config allowing
    anonymous clients; yields a :class:`MosquittoServer` (``host``, ``port``). Shared
    by tests that do not take the broker away.

``mosquitto_factory`` (session scope)
    Starts more brokers: ``mosquitto_factory(users={"u": "pw"}, acl="...")`` gives one
    with a password file (made with ``mosquitto_passwd``) and an ACL file, and
    anonymous access off. Use a broker of your own for outage tests
    (``server.stop()`` / ``server.start()`` keep the port). All are stopped at the end
    of the session.

Finding the binary
------------------
``$MOSQUITTO``, else ``mosquitto`` on ``PATH``, else ``/usr/sbin/mosquitto`` (where
Debian installs it). ``tests/services/ensure-mosquitto.sh`` installs the Debian
package when it is missing; this plugin never installs anything.

If no binary is found, tests that need one are *skipped* with a loud reason and a
warning in the terminal summary; with ``CI`` set or ``GRIDGUARD_REQUIRE_MOSQUITTO=1``
they *fail* instead, so CI can never go green by silently skipping the MQTT tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from tests.influxd_fixture import free_port

START_TIMEOUT_S = float(os.environ.get("GRIDGUARD_MOSQUITTO_START_TIMEOUT", "20"))
STOP_TIMEOUT_S = 10.0

MISSING_BINARY_MARK = "mosquitto broker binary not found"
"""Every skip/fail reason for a missing binary starts with this text."""

DEBIAN_PATH = Path("/usr/sbin/mosquitto")


def find_mosquitto() -> tuple[Path | None, str]:
    """Locate a mosquitto binary: ``(path, "")`` or ``(None, what was tried)``."""
    env_bin = os.environ.get("MOSQUITTO")
    if env_bin:
        path = Path(env_bin)
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve(), ""
        # An explicit choice that does not work is reported, not silently replaced.
        return None, f"$MOSQUITTO={env_bin} is not an executable file"
    on_path = shutil.which("mosquitto")
    if on_path:
        return Path(on_path).resolve(), ""
    if DEBIAN_PATH.is_file() and os.access(DEBIAN_PATH, os.X_OK):
        return DEBIAN_PATH, ""
    return None, f"no mosquitto on PATH, none at {DEBIAN_PATH}"


def _required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("GRIDGUARD_REQUIRE_MOSQUITTO") == "1"


class MosquittoError(RuntimeError):
    """mosquitto could not be configured, started or stopped."""


class MosquittoServer:
    """A local mosquitto with its own config directory.

    ``host`` and ``port`` do not change across :meth:`stop` / :meth:`start`.
    """

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        *,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        port: int | None = None,
    ) -> None:
        self._binary = binary
        self._dir = workdir
        self._port = port if port is not None else free_port()
        self._users = dict(users or {})
        self._acl = acl
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._dir.mkdir(parents=True, exist_ok=True)
        self._write_config()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port

    @property
    def binary(self) -> Path:
        return self._binary

    @property
    def config_path(self) -> Path:
        return self._dir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self._dir / "mosquitto.log"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running and self._proc is not None else None

    def _write_config(self) -> None:
        lines = [
            f"listener {self._port} 127.0.0.1",
            f"allow_anonymous {'false' if self._users else 'true'}",
            "persistence false",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # Started as root, mosquitto would drop to user 'mosquitto' and then be
            # unable to read its files in our private temp dir: stay who we are.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if self._users:
            pwfile = self._dir / "passwd"
            pwfile.write_text("")
            tool = self._binary.parent / "mosquitto_passwd"
            exe = str(tool) if tool.exists() else (shutil.which("mosquitto_passwd") or "")
            if not exe:
                raise MosquittoError("mosquitto_passwd not found next to mosquitto or on PATH")
            for user, password in self._users.items():
                subprocess.run([exe, "-b", str(pwfile), user, password], check=True,
                               capture_output=True, timeout=30)
            lines.append(f"password_file {pwfile}")
        if self._acl is not None:
            aclfile = self._dir / "acl"
            aclfile.write_text(self._acl)
            lines.append(f"acl_file {aclfile}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the broker (same port, same config) and wait until it accepts TCP."""
        if self.is_running:
            return
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [str(self._binary), "-c", str(self.config_path)],
            cwd=self._dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise MosquittoError(
                    f"mosquitto exited with code {self._proc.returncode} while starting on "
                    f"port {self._port}; last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self._port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self._terminate(signal.SIGKILL)
        raise MosquittoError(
            f"mosquitto did not accept connections on port {self._port} within {timeout:.0f} s;"
            f" last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the broker (SIGTERM; SIGKILL if it does not go)."""
        self._terminate(signal.SIGTERM)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _terminate(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no mosquitto log)"
        return "\n".join(text.splitlines()[-lines:])


MosquittoFactory = Callable[..., MosquittoServer]


def _binary_or_skip() -> Path:
    binary, reason = find_mosquitto()
    if binary is not None:
        return binary
    if _required():
        pytest.fail(
            f"{MISSING_BINARY_MARK} ({reason}). Required because CI or "
            "GRIDGUARD_REQUIRE_MOSQUITTO=1 is set: run tests/services/ensure-mosquitto.sh "
            "(or `make test`) first, or set MOSQUITTO.",
            pytrace=False,
        )
    pytest.skip(
        f"{MISSING_BINARY_MARK} ({reason}). !!! MQTT tests NOT RUN !!! "
        "Install it with tests/services/ensure-mosquitto.sh (or apt-get install mosquitto)."
    )
    raise AssertionError("unreachable")  # pytest.skip raises


@pytest.fixture(scope="session")
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoFactory]:
    """Start extra brokers (optionally with users and an ACL); all stopped at the end."""
    binary = _binary_or_skip()
    servers: list[MosquittoServer] = []

    def make(users: Mapping[str, str] | None = None, acl: str | None = None,
             start: bool = True) -> MosquittoServer:
        server = MosquittoServer(binary, tmp_path_factory.mktemp("mosquitto"), users=users,
                                 acl=acl)
        servers.append(server)
        if start:
            try:
                server.start()
            except MosquittoError as exc:
                pytest.fail(str(exc), pytrace=False)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture(scope="session")
def mosquitto(mosquitto_factory: MosquittoFactory) -> MosquittoServer:
    """A running anonymous broker shared by the session (do not stop it in a test)."""
    server = mosquitto_factory()
    return server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mosquitto: the test uses a real mosquitto broker (added automatically)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "mosquitto" in names or "mosquitto_factory" in names:
            item.add_marker(pytest.mark.mosquitto)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    skipped = [
        rep
        for rep in terminalreporter.stats.get("skipped", [])
        if MISSING_BINARY_MARK in _skip_reason(rep)
    ]
    if not skipped:
        return
    terminalreporter.write_sep(
        "!",
        f"WARNING: {len(skipped)} MQTT test(s) SKIPPED: no mosquitto broker",
        yellow=True,
        bold=True,
    )
    terminalreporter.write_line(
        "Run `make test` or tests/services/ensure-mosquitto.sh (installs Debian's mosquitto).",
        yellow=True,
    )


def _skip_reason(report: Any) -> str:
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


__all__ = [
    "MosquittoError",
    "MosquittoFactory",
    "MosquittoServer",
    "find_mosquitto",
    "free_port",
    "mosquitto",
    "mosquitto_factory",
]
