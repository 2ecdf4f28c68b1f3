"""HttpTransport against the real influxd, with the collector's v1 credential (``/write``)
and a v2 token (``/api/v2/write``): which answers become which error class, and the
writer's split on a batch with an unparsable line.

What influxd 2.7.12 answers on ``/write`` (seen in these tests): 204; 400 ``unable to
parse`` for a bad line; 422 ``partial write`` for a field type conflict
(test_influx_roundtrip); 401 for a wrong password; 404 ``no dbrp mapping found`` for a
bucket that does not exist *and* for one the credential may not write. It never
answers 413: its batch size limit is not configured in 2.7.12 (test_retry_after covers
413 with a scripted server).
"""

from __future__ import annotations

import gzip
import logging
import uuid
from pathlib import Path

import pytest

from collector.influx_admin.connection import resolve
from collector.sinks.influx.errors import FatalError, RetryableError
from collector.sinks.influx.spool import Spool
from collector.sinks.influx.transport import HttpTransport
from collector.sinks.influx.writer import InfluxWriter, WriterSettings
from collector.timefmt import parse_iso_utc
from tests.influxd_fixture import InfluxBucket, InfluxServer

T0_MS = 1_700_000_000_000


def _payload(*lines: str) -> bytes:
    return gzip.compress("\n".join(lines).encode())


def _values(influxd: InfluxServer, bucket: str) -> dict[int, float]:
    rows = influxd.query(f'from(bucket: "{bucket}") |> range(start: 2023-11-14T00:00:00Z, '
                         'stop: 2023-11-16T00:00:00Z) |> filter(fn: (r) => r._field == "v")')
    return {parse_iso_utc(r["_time"]) // 1_000_000: float(r["_value"]) for r in rows}


def test_unparsable_line_is_dropped_alone(
    influxd: InfluxServer, influx_bucket: InfluxBucket, write_credential: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = [f"probe,circuit=c1 v={k}.5 {T0_MS + 1000 * k}" for k in range(6)]
    lines[3] = "probe,circuit=c1 v=oops=1 1700000003000"  # invalid field format
    writer = InfluxWriter(HttpTransport(influxd.url, influxd.org, write_credential),
                          Spool(tmp_path / "spool.sqlite", 10**7),
                          WriterSettings(flush_interval_s=0.05))
    writer.start()
    with caplog.at_level(logging.ERROR):
        writer.submit(influx_bucket.name, lines)
        assert writer.flush(30)
    stats = writer.stats()
    writer.close()
    assert (stats.points_written, stats.points_dropped, stats.spool.points) == (5, 1, 0)
    assert "unable to parse" in caplog.text
    assert "v=oops=1" in caplog.text
    assert _values(influxd, influx_bucket.name) == {
        T0_MS + 1000 * k: k + 0.5 for k in range(6) if k != 3}


def test_wrong_password_is_fatal(
    influxd: InfluxServer, influx_bucket: InfluxBucket, collector_credential: str
) -> None:
    user = collector_credential.partition(":")[0]
    transport = HttpTransport(influxd.url, influxd.org, f"{user}:not-the-password-1234")
    with pytest.raises(FatalError, match=r"HTTP 401.*credential is wrong"):
        transport.write(influx_bucket.name, _payload(f"probe v=1 {T0_MS}"))
    transport.close()


@pytest.mark.parametrize("bucket", ["missing", "not permitted"])
def test_bucket_it_may_not_write_is_fatal(
    influxd: InfluxServer, influx_bucket: InfluxBucket, collector_credential: str, bucket: str,
) -> None:
    other = influxd.create_bucket(f"test-other-{uuid.uuid4().hex[:12]}")
    try:
        name = f"missing-{uuid.uuid4().hex[:8]}" if bucket == "missing" else other.name
        transport = HttpTransport(influxd.url, influxd.org, collector_credential)
        with pytest.raises(FatalError, match=r"HTTP 404.*no such bucket, or the credential may"):
            transport.write(name, _payload(f"probe v=1 {T0_MS}"))
        transport.close()
        assert _values(influxd, other.name) == {}
    finally:
        influxd.delete_bucket(other)


def test_v2_token_unknown_bucket_is_fatal(influxd: InfluxServer) -> None:
    transport = HttpTransport(influxd.url, influxd.org, influxd.token)
    with pytest.raises(FatalError, match="HTTP 404"):
        transport.write(f"missing-{uuid.uuid4().hex[:8]}", _payload(f"probe v=1 {T0_MS}"))
    transport.close()


@pytest.mark.parametrize("token", ["k3J9x2LqP0w8ZrT4vN6bY1cD", "gg-collector:k3J9x2LqP0w8ZrT4"])
def test_connection_refused_is_retryable(token: str) -> None:
    transport = HttpTransport("http://127.0.0.1:9", "org", token, timeout_s=2.0)
    with pytest.raises(RetryableError, match="ConnectionError"):
        transport.write("raw", _payload(f"probe v=1 {T0_MS}"))
    transport.close()


@pytest.mark.parametrize("token", [":password-only-1234", "user-only:"])
def test_incomplete_v1_credential_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(ValueError, match="user:password with both parts") as info:
        HttpTransport("http://127.0.0.1:9", "org", token)
    assert token.strip(":") not in str(info.value)


def test_admin_commands_refuse_the_collector_credential() -> None:
    # it cannot use the v2 API; a bare 401 later would not say why
    with pytest.raises(ValueError, match="write-only v1 credential"):
        resolve("http://127.0.0.1:8086", "gridguard-collector:" + "Ab1" * 15, "gridguard",
                environ={})
