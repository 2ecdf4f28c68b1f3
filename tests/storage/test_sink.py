"""InfluxSink.publish: what it accepted is committed to the spool before it returns."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

from collector.clock import FakeClock
from collector.model import Event, EventType, Metrics, Severity
from collector.sinks.influx.sink import InfluxSink, InfluxSinkSettings
from collector.sinks.influx.spool import read_depth
from collector.sinks.influx.writer import WriterSettings

T0_NS = 1_700_000_000_000_000_000


class _HangingTransport:
    """InfluxDB accepts the connection and never answers, until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.payloads: list[tuple[str, bytes]] = []

    def write(self, bucket: str, gzip_payload: bytes) -> None:
        self.gate.wait(10)
        self.payloads.append((bucket, gzip_payload))

    def close(self) -> None:
        self.gate.set()


def _metrics(n: int) -> list[Metrics]:
    return [Metrics(time_ns=T0_NS + k * 200_000_000, interval="basic", channel=f"c{k % 3}",
                    phase="A", fields={"current_rms_a": k / 8, "voltage_rms_v": 230.0})
            for k in range(n)]


def test_publish_commits_metrics_events_and_health_in_one_call(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    clock = FakeClock()
    transport = _HangingTransport()
    sink = InfluxSink(
        InfluxSinkSettings(url="http://127.0.0.1:9", org="o", token="t", site="lab",
                           spool_path=spool, bucket="raw", events_bucket="events",
                           intervals=None, health_interval_s=10.0,
                           writer=WriterSettings(flush_interval_s=30.0)),
        transport=transport, clock=clock,
    )
    event = Event(type=EventType.VOLTAGE_DIP, start_ns=T0_NS, duration_s=0.085,
                  phases=("A",), severity=Severity.CRITICAL, channel="mains",
                  residual_voltage_pct=42.5)
    clock.t_s += 11.0  # a health record is due with this call
    sink.publish(_metrics(7), [event])
    # Read by another connection: only committed data is visible there, so these
    # lines would survive a kill -9 at this very moment.
    depth = read_depth(spool)
    assert depth is not None
    assert (depth.batches, depth.points) == (3, 7 + 1 + 1)  # raw, events, health rows
    assert transport.payloads == []  # InfluxDB has nothing yet
    transport.gate.set()
    assert sink.flush(10)
    sink.close()
    lines = [(b, x) for b, p in transport.payloads
             for x in gzip.decompress(p).decode().split("\n")]
    assert sum(b == "events" for b, _ in lines) == 1
    assert sum(x.startswith("electrical,") for _, x in lines) == 7
    assert any(x.startswith("health,") for _, x in lines)
    after = read_depth(spool)
    assert after is not None
    assert after.points == 0
