"""Retry-After against a real HTTP server: 429 with Retry-After, then 204.

The server is ``http.server`` on loopback; the writer's clock is a FakeClock, so the
7 s the server asks for are honoured without the test waiting for them.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector.clock import FakeClock
from collector.sinks.influx.spool import Spool
from collector.sinks.influx.transport import HttpTransport
from collector.sinks.influx.writer import InfluxWriter, WriterSettings


class _Server(ThreadingHTTPServer):
    answers: list[tuple[int, dict[str, str]]]
    seen: list[tuple[str, dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, dict(self.headers), body))
        status, headers = self.server.answers.pop(0) if self.server.answers else (204, {})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.answers = []
    srv.seen = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_429_retry_after_is_honoured(server: _Server, tmp_path: Path) -> None:
    server.answers = [(429, {"Retry-After": "7"}), (204, {})]
    clock = FakeClock()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    writer = InfluxWriter(
        HttpTransport(url, "org1", "tok"),
        Spool(tmp_path / "spool.sqlite", 10**6),
        WriterSettings(flush_interval_s=0.02, backoff_initial_s=0.1),
        clock=clock,
    )
    writer.start()
    writer.submit("raw", ["electrical,circuit=c1 current_rms_a=1.0 1700000000000"])
    assert writer.flush(10)
    stats = writer.stats()
    writer.close()

    assert clock.slept == [7.0]  # exactly what the server asked for, not our backoff
    assert len(server.seen) == 2
    (path1, headers1, body1), (_, _, body2) = server.seen
    assert body1 == body2
    assert gzip.decompress(body2) == b"electrical,circuit=c1 current_rms_a=1.0 1700000000000"
    assert "/api/v2/write?" in path1
    for param in ("precision=ms", "bucket=raw", "org=org1"):
        assert param in path1
    assert headers1["Content-Encoding"] == "gzip"
    assert headers1["Authorization"] == "Token tok"
    assert stats.points_written == 1
    assert stats.spool.points == 0


def test_503_retry_after_longer_than_budget_spools(server: _Server, tmp_path: Path) -> None:
    server.answers = [(503, {"Retry-After": "3600"})]
    clock = FakeClock()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    writer = InfluxWriter(
        HttpTransport(url, "org1", "tok"),
        Spool(tmp_path / "spool.sqlite", 10**6),
        WriterSettings(flush_interval_s=0.02, retry_wait_max_s=60.0),
        clock=clock,
    )
    writer.start()
    writer.submit("raw", ["electrical,circuit=c1 current_rms_a=1.0 1700000000000"])
    assert writer.flush(10)
    stats = writer.stats()
    writer.close()
    assert clock.slept == []  # it did not sit for an hour
    assert stats.spool.points == 1
    assert stats.outage
