"""Pytest plugin: a real InfluxDB 2.7 server (``influxd``) for the test session.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["tests.influxd_fixture"]``.

Fixtures
--------
``influxd`` (session scope)
    Starts ``influxd`` on a free ``127.0.0.1`` port with a fresh temporary data
    directory, onboards it (org ``gridguard-test``, a generated password and
    operator token) and yields an :class:`InfluxServer` handle. The server is
    stopped at the end of the session.

``influx_bucket`` (function scope)
    Creates a fresh, uniquely named bucket for one test and deletes it afterwards;
    yields an :class:`InfluxBucket` (``name``, ``id``).

Finding the binary
------------------
``$INFLUXD``, else ``influxd`` on ``PATH``, else the cached build
``${GRIDGUARD_CACHE:-~/.cache/gridguard}/influxd/v2.7.12/influxd`` made by
``influx/dev/get-influxd.sh``. This plugin never builds influxd itself (a cold build
takes a long time); ``make test`` runs the script first and exports ``INFLUXD``.

If no binary is found, tests that need it are *skipped* with a loud reason, and a
warning is printed in the terminal summary; with ``CI`` set or
``GRIDGUARD_REQUIRE_INFLUXD=1`` they *fail* instead, so CI can never go green by
silently skipping the storage tests.

Outage tests
------------
``InfluxServer.stop()`` / ``start()`` (and ``kill()`` for a crash) stop influxd and
bring it back on the same port with the same data directory, so a test can take the
database away in the middle of a run. If a test leaves the server stopped, it is
restarted before the next test that needs it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import requests

INFLUX_VERSION = "v2.7.12"
"""The InfluxDB version that influx/dev/get-influxd.sh builds and caches."""

TEST_ORG = "gridguard-test"
TEST_USER = "gridguard-test"
TEST_BUCKET = "gridguard-test"

START_TIMEOUT_S = float(os.environ.get("GRIDGUARD_INFLUXD_START_TIMEOUT", "60"))
STOP_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 30.0

MISSING_BINARY_MARK = "influxd 2.7 binary not found"
"""Every skip/fail reason for a missing binary starts with this text."""

_VERSION_RE = re.compile(r"^InfluxDB v?(2\.7\.\d+)")

_SERVER_KEY = pytest.StashKey["InfluxServer"]()


# ---------------------------------------------------------------------------
# Finding the binary
# ---------------------------------------------------------------------------


def cached_influxd_path() -> Path:
    """Where influx/dev/get-influxd.sh puts the influxd it builds."""
    root = os.environ.get("GRIDGUARD_CACHE") or str(Path.home() / ".cache" / "gridguard")
    return Path(root) / "influxd" / INFLUX_VERSION / "influxd"


def influxd_version(binary: Path) -> str | None:
    """Return ``2.7.x`` if ``binary version`` reports InfluxDB 2.7, else ``None``."""
    try:
        out = subprocess.run(
            [str(binary), "version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.match(out.stdout.strip())
    return match.group(1) if match else None


def find_influxd() -> tuple[Path | None, str]:
    """Locate an influxd 2.7 binary without building one.

    Returns ``(path, "")`` on success, or ``(None, reason)`` explaining what was tried.
    """
    tried: list[str] = []
    env_bin = os.environ.get("INFLUXD")
    if env_bin:
        path = Path(env_bin)
        if influxd_version(path):
            return path.resolve(), ""
        # An explicit choice that does not work is reported, not silently replaced.
        return None, f"$INFLUXD={env_bin} is not a runnable influxd 2.7.x"
    on_path = shutil.which("influxd")
    if on_path:
        if influxd_version(Path(on_path)):
            return Path(on_path).resolve(), ""
        tried.append(f"{on_path} (on PATH, not 2.7.x)")
    else:
        tried.append("no influxd on PATH")
    cached = cached_influxd_path()
    if influxd_version(cached):
        return cached, ""
    tried.append(f"{cached} (missing or not runnable)")
    return None, "; ".join(tried)


def _influxd_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("GRIDGUARD_REQUIRE_INFLUXD") == "1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------
# Server handle
# ---------------------------------------------------------------------------


class InfluxdError(RuntimeError):
    """influxd could not be started, onboarded or stopped."""


@dataclass(frozen=True)
class InfluxBucket:
    """A bucket created for one test."""

    name: str
    id: str


@dataclass(frozen=True)
class InfluxConnection:
    """Everything a client needs to talk to the test server (immutable)."""

    url: str
    org: str
    org_id: str
    token: str
    bucket: str
    bucket_id: str


class InfluxServer:
    """A local influxd process with a temporary data directory.

    Connection details (``url``, ``org``, ``org_id``, ``token``, ``bucket``,
    ``bucket_id``, ``data_dir``) are read-only and do not change across
    :meth:`stop` / :meth:`start`: the server comes back on the same port with the
    same data. ``pid`` is the current process id (``None`` while stopped).

    Typical use in a test::

        def test_outage(influxd: InfluxServer, influx_bucket: InfluxBucket) -> None:
            influxd.stop()          # graceful; or influxd.kill() for a crash
            ...                     # the code under test must cope
            influxd.start()         # same port, same data
    """

    def __init__(self, binary: Path, data_dir: Path, port: int | None = None) -> None:
        self._binary = binary
        self._data_dir = data_dir
        self._port = port if port is not None else free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._conn: InfluxConnection | None = None
        self._http = requests.Session()

    # -- connection details -------------------------------------------------

    @property
    def binary(self) -> Path:
        return self._binary

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self._data_dir / "influxd.log"

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def connection(self) -> InfluxConnection:
        if self._conn is None:
            raise InfluxdError("influxd has not been onboarded yet")
        return self._conn

    @property
    def org(self) -> str:
        return self.connection.org

    @property
    def org_id(self) -> str:
        return self.connection.org_id

    @property
    def token(self) -> str:
        return self.connection.token

    @property
    def bucket(self) -> str:
        """Name of the bucket created during onboarding."""
        return self.connection.bucket

    @property
    def bucket_id(self) -> str:
        return self.connection.bucket_id

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start influxd (on the same port and data directory) and wait until healthy.

        The first call also onboards the server. No-op if already running.
        """
        if self.is_running:
            return
        self._data_dir.mkdir(parents=True, exist_ok=True)
        # influxd reads INFLUXD_* variables and a config file in its working
        # directory as configuration: start it from the (config-free) data dir
        # with those variables removed so a developer's setup cannot leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXD_")}
        args = [
            str(self._binary),
            "--http-bind-address",
            f"127.0.0.1:{self._port}",
            "--bolt-path",
            str(self._data_dir / "influxd.bolt"),
            "--engine-path",
            str(self._data_dir / "engine"),
            "--sqlite-path",
            str(self._data_dir / "influxd.sqlite"),
            "--reporting-disabled",
            "--ui-disabled",
            "--log-level",
            "info",
        ]
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"\n=== gridguard: starting {' '.join(args)}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            args,
            cwd=self._data_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_healthy(timeout)
        if self._conn is None:
            self._onboard()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop influxd gracefully (SIGTERM, then SIGKILL after ``timeout`` s)."""
        self._terminate(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill influxd with SIGKILL, as in a crash or power cut."""
        self._terminate(signal.SIGKILL, STOP_TIMEOUT_S)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and release the log file and HTTP session."""
        try:
            self.stop()
        finally:
            self._http.close()
            if self._log is not None:
                self._log.close()
                self._log = None

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no influxd log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise InfluxdError(
                    f"influxd exited with code {code} while starting on {self.url}; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                resp = self._http.get(f"{self.url}/health", timeout=2)
                if resp.status_code == 200 and resp.json().get("status") == "pass":
                    return
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except (requests.RequestException, ValueError) as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        self._terminate(signal.SIGKILL, STOP_TIMEOUT_S)
        raise InfluxdError(
            f"influxd did not become healthy on {self.url} within {timeout:.0f} s "
            f"(last /health: {last}); last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def _onboard(self) -> None:
        token = secrets.token_urlsafe(48)
        resp = self._http.post(
            f"{self.url}/api/v2/setup",
            json={
                "org": TEST_ORG,
                "bucket": TEST_BUCKET,
                "username": TEST_USER,
                "password": secrets.token_urlsafe(24),
                "token": token,
                "retentionPeriodSeconds": 0,
            },
            timeout=HTTP_TIMEOUT_S,
        )
        if resp.status_code != 201:
            raise InfluxdError(f"onboarding failed: HTTP {resp.status_code}: {resp.text[:500]}")
        body = resp.json()
        self._conn = InfluxConnection(
            url=self.url,
            org=body["org"]["name"],
            org_id=body["org"]["id"],
            token=token,
            bucket=body["bucket"]["name"],
            bucket_id=body["bucket"]["id"],
        )

    # -- HTTP helpers -------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated request to ``path`` (e.g. ``/api/v2/buckets``).

        The response is returned as is (no ``raise_for_status``).
        """
        headers: dict[str, str] = {"Authorization": f"Token {self.token}"}
        headers.update(kwargs.pop("headers", None) or {})
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return self._http.request(method, f"{self.url}{path}", headers=headers, **kwargs)

    def write(self, bucket: str, line_protocol: str, precision: str = "ns") -> None:
        """Write line protocol to ``bucket``; raises on any non-204 answer."""
        resp = self.api(
            "POST",
            "/api/v2/write",
            params={"org": self.org, "bucket": bucket, "precision": precision},
            data=line_protocol.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        if resp.status_code != 204:
            raise InfluxdError(f"write failed: HTTP {resp.status_code}: {resp.text[:500]}")

    def query_csv(self, flux: str) -> str:
        """Run a Flux query and return the annotated CSV text."""
        resp = self.api(
            "POST",
            "/api/v2/query",
            params={"org": self.org},
            json={
                "query": flux,
                "type": "flux",
                "dialect": {"header": True, "annotations": ["datatype", "group", "default"]},
            },
            headers={"Accept": "application/csv"},
        )
        if resp.status_code != 200:
            raise InfluxdError(f"query failed: HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.text

    def query(self, flux: str) -> list[dict[str, str]]:
        """Run a Flux query; one dict per result row (all tables), values as text."""
        return parse_annotated_csv(self.query_csv(flux))

    def create_bucket(self, name: str, retention_seconds: int = 0) -> InfluxBucket:
        rules = [{"type": "expire", "everySeconds": retention_seconds}] if retention_seconds else []
        resp = self.api(
            "POST",
            "/api/v2/buckets",
            json={"orgID": self.org_id, "name": name, "retentionRules": rules},
        )
        if resp.status_code != 201:
            raise InfluxdError(
                f"creating bucket {name} failed: HTTP {resp.status_code}: {resp.text}"
            )
        return InfluxBucket(name=name, id=str(resp.json()["id"]))

    def delete_bucket(self, bucket: InfluxBucket) -> None:
        resp = self.api("DELETE", f"/api/v2/buckets/{bucket.id}")
        if resp.status_code not in (204, 404):
            raise InfluxdError(f"deleting bucket {bucket.name} failed: HTTP {resp.status_code}")


def parse_annotated_csv(text: str) -> list[dict[str, str]]:
    """Rows of an annotated-CSV Flux response, tables concatenated.

    Annotation rows (``#datatype`` ...) are skipped; each table starts with its own
    header row after a blank line. The leading unnamed column is dropped.
    """
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for record in csv.reader(io.StringIO(text)):
        if not record or all(not cell for cell in record):
            header = None  # blank line: next non-annotation row is a new header
            continue
        if record[0].startswith("#"):
            header = None
            continue
        if header is None:
            header = record
            continue
        rows.append({k: v for k, v in zip(header, record, strict=False) if k})
    return rows


# ---------------------------------------------------------------------------
# Fixtures and hooks
# ---------------------------------------------------------------------------


def _missing_binary(reason: str) -> None:
    if _influxd_required():
        pytest.fail(
            f"{MISSING_BINARY_MARK} ({reason}). Required because CI or "
            "GRIDGUARD_REQUIRE_INFLUXD=1 is set: run influx/dev/get-influxd.sh "
            "(or `make test`) first, or set INFLUXD.",
            pytrace=False,
        )
    pytest.skip(
        f"{MISSING_BINARY_MARK} ({reason}). !!! InfluxDB tests NOT RUN !!! "
        "Run `make test`, or `export INFLUXD=$(influx/dev/get-influxd.sh | tail -n 1)`."
    )


@pytest.fixture(scope="session")
def influxd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InfluxServer]:
    """A running, onboarded influxd 2.7 for the whole test session."""
    binary, reason = find_influxd()
    if binary is None:
        _missing_binary(reason)
        raise AssertionError("unreachable")  # pytest.skip/fail raise
    server = InfluxServer(binary, tmp_path_factory.mktemp("influxd"))
    try:
        server.start()
    except InfluxdError as exc:
        server.close()
        pytest.fail(str(exc), pytrace=False)
    request.config.stash[_SERVER_KEY] = server
    try:
        yield server
    finally:
        del request.config.stash[_SERVER_KEY]
        server.close()


@pytest.fixture
def influx_bucket(influxd: InfluxServer) -> Iterator[InfluxBucket]:
    """A fresh bucket for one test, deleted afterwards."""
    influxd.start()  # no-op unless a previous test left it stopped
    bucket = influxd.create_bucket(f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield bucket
    finally:
        influxd.start()  # the test may have stopped it
        influxd.delete_bucket(bucket)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "influxd: the test uses a real influxd (added automatically)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "influxd" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.influxd)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Bring influxd back if an earlier (outage) test left it stopped."""
    server = item.config.stash.get(_SERVER_KEY, None)
    if server is not None and "influxd" in getattr(item, "fixturenames", ()):
        server.start()


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
        f"WARNING: {len(skipped)} InfluxDB test(s) SKIPPED: no influxd 2.7 binary",
        yellow=True,
        bold=True,
    )
    terminalreporter.write_line(
        "Run `make test` (it builds/fetches influxd first) or "
        "`export INFLUXD=$(influx/dev/get-influxd.sh | tail -n 1)`; see docs/influxd.md.",
        yellow=True,
    )


def _skip_reason(report: Any) -> str:
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


__all__ = [
    "INFLUX_VERSION",
    "InfluxBucket",
    "InfluxConnection",
    "InfluxServer",
    "InfluxdError",
    "cached_influxd_path",
    "find_influxd",
    "influx_bucket",
    "influxd",
    "parse_annotated_csv",
]
