"""Against the real influxd: the audit trail and fault records land, the metrics feed reads."""

from __future__ import annotations

from pathlib import Path

from collector.clock import FakeClock
from collector.config.circuits import Priority
from collector.influx_admin.api import InfluxApi
from collector.model import NS_PER_S, Metrics, Severity
from collector.rules.faults import FaultState
from collector.sinks.influx.line_protocol import encode_metrics
from collector.sinks.influx.spool import Spool
from collector.sinks.influx.transport import HttpTransport
from collector.sinks.influx.writer import InfluxWriter, WriterSettings
from collector.worker.alerts import AlertSignal, AlertSource
from collector.worker.audit import (
    AuditAction,
    AuditRecord,
    FaultRecord,
    InfluxAudit,
    Outcome,
)
from collector.worker.engine import WorkerEngine
from collector.worker.feed import InfluxMetricsFeed
from collector.worker.outputs import SimulatedOutputs
from collector.worker.settings import CircuitSpec, RelaySpec, WorkerSettings
from collector.worker.shedding import SheddingPolicy
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.worker.test_flux_queries import doc_flux_blocks

T0 = 1_700_000_000 * NS_PER_S
RANGE = "start: 2023-11-14T00:00:00Z, stop: 2023-11-16T00:00:00Z"


def _audit(influxd: InfluxServer, bucket: str, spool: Path, clock: FakeClock) -> InfluxAudit:
    writer = InfluxWriter(
        HttpTransport(influxd.url, influxd.org, influxd.token),
        Spool(spool, 1024 * 1024),
        WriterSettings(flush_interval_s=0.05, backoff_initial_s=0.05, retry_attempts=2),
    )
    writer.start()
    return InfluxAudit(writer, "lab", bucket)


def _rows(influxd: InfluxServer, bucket: str, measurement: str) -> list[dict[str, str]]:
    return influxd.query(
        f'from(bucket: "{bucket}") |> range({RANGE}) '
        f'|> filter(fn: (r) => r._measurement == "{measurement}") '
        '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
        '|> group() |> sort(columns: ["_time"])'
    )


def test_audit_and_fault_records_land_in_influxd(influxd: InfluxServer,
                                                 influx_bucket: InfluxBucket,
                                                 tmp_path: Path) -> None:
    audit = _audit(influxd, influx_bucket.name, tmp_path / "spool.sqlite", FakeClock())
    # two notifications in the same millisecond, same series: both must survive
    for target in ("a@example.org", "+49151*****001"):
        audit.record(AuditRecord(T0, AuditAction.NOTIFY, Outcome.OK, 'new: "quoted", ok',
                                 circuit="freezer", severity=Severity.CRITICAL,
                                 channel="email", target=target, alert_id="7"))
    audit.record(AuditRecord(T0 + NS_PER_S, AuditAction.RELAY_OPEN, Outcome.OK,
                             "demand (low priority): site power 12050 W\nabove",
                             circuit="ev", channel="relay", value=12050.0,
                             threshold=11000.0))
    audit.fault(FaultRecord(T0, "thermal_overload", Severity.WARNING, FaultState.ACTIVE,
                            "heater", "A", 93.0, 90.0, "%"))
    assert audit.flush(30)
    audit.close()

    rows = _rows(influxd, influx_bucket.name, "audit")
    assert len(rows) == 3
    first, second, relay = rows
    assert first["_time"] == "2023-11-14T22:13:20Z"
    assert second["_time"] == "2023-11-14T22:13:20.001Z"  # moved 1 ms, not overwritten
    assert {first["target"], second["target"]} == {"a@example.org", "+49151*****001"}
    assert (first["type"], first["circuit"], first["severity"], first["site"]) == (
        "notify", "freezer", "critical", "lab")
    assert first["detail"] == 'new: "quoted", ok'
    assert (first["outcome"], first["alert_id"], first["channel"]) == ("ok", "7", "email")
    assert (relay["type"], relay["circuit"]) == ("relay_open", "ev")
    assert float(relay["value"]) == 12050.0
    assert relay["detail"] == "demand (low priority): site power 12050 W above"

    (fault,) = _rows(influxd, influx_bucket.name, "faults")
    assert (fault["type"], fault["circuit"], fault["phase"], fault["severity"]) == (
        "thermal_overload", "heater", "A", "warning")
    assert (fault["state"], float(fault["value"]), float(fault["threshold"]), fault["unit"]) == (
        "active", 93.0, 90.0, "%")


def test_engine_actions_are_audited_in_influxd(influxd: InfluxServer,
                                               influx_bucket: InfluxBucket,
                                               tmp_path: Path) -> None:
    clock = FakeClock(epoch_ns=T0)
    audit = _audit(influxd, influx_bucket.name, tmp_path / "spool.sqlite", clock)
    settings = WorkerSettings(
        site="lab", circuits=(CircuitSpec("ev", 20.0, priority=Priority.LOW),),
        relays=(RelaySpec("ev", 5),),
        shedding=SheddingPolicy(demand_limit_w=5000.0, settle_s=0.0, min_on_s=0.0))
    engine = WorkerEngine(settings, clock=clock, outputs=SimulatedOutputs(clock),
                          notifiers=[], audit=audit)
    engine.on_grafana([AlertSignal("fault:overvoltage:mains:A", True, Severity.CRITICAL,
                                   "overvoltage", AlertSource.GRAFANA, "mains", "A", "260 V")])
    (alert,) = engine.book.alerts()
    clock.sleep(1.0)
    engine.ack(alert.id, "sam")
    engine.on_metrics([Metrics(clock.now_ns(), "150c", "ev", "A", {"power_active_w": 7400.0})])
    clock.sleep(1.0)
    engine.tick()
    assert engine.shed_circuits() == ("ev",)
    assert audit.flush(30)
    audit.close()
    types = [r["type"] for r in _rows(influxd, influx_bucket.name, "audit")]
    for expected in ("alert_opened", "notify", "acknowledge", "relay_open", "alarm"):
        assert expected in types, types
    ack = next(r for r in _rows(influxd, influx_bucket.name, "audit")
               if r["type"] == "acknowledge")
    assert (ack["target"], ack["alert_id"], ack["outcome"]) == ("sam", alert.id, "ok")

    # the example query of docs/alerting.md ("everything done about alert 17") works
    (doc_query,) = doc_flux_blocks()
    query = (doc_query.replace('"events"', f'"{influx_bucket.name}"')
             .replace("range(start: -7d)", f"range({RANGE})")
             .replace('"17"', f'"{alert.id}"'))
    rows = influxd.query(query)
    assert {r["alert_id"] for r in rows} == {alert.id}
    assert {"alert_opened", "acknowledge"} <= {r["type"] for r in rows}


def test_metrics_feed_reads_new_records_once(influxd: InfluxServer,
                                             influx_bucket: InfluxBucket) -> None:
    recs = [Metrics(T0 + k * 3 * NS_PER_S, "150c", "heater", "A",
                    {"current_rms_a": 10.0 + k, "power_active_w": 2300.0 + k,
                     "voltage_rms_v": 230.5, "current_thd_pct": 3.0})
            for k in range(5)]
    recs.append(Metrics(T0, "10min", "heater", "A", {"current_rms_a": 99.0}))  # other interval
    lines = [line for m in recs for line in encode_metrics(m, "lab").lines]
    influxd.write(influx_bucket.name, "\n".join(lines), precision="ms")
    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    feed = InfluxMetricsFeed(api, influx_bucket.name, frozenset({"150c"}), lookback_s=60.0)
    got = feed.poll(T0 + 20 * NS_PER_S)
    assert [(m.time_ns, m.channel, m.phase, m.interval) for m in got] == [
        (T0 + k * 3 * NS_PER_S, "heater", "A", "150c") for k in range(5)]
    assert got[2].fields["current_rms_a"] == 12.0
    assert got[2].fields["power_active_w"] == 2302.0
    assert "current_thd_pct" not in got[2].fields  # only what the rules read
    assert feed.poll(T0 + 21 * NS_PER_S) == []  # nothing new
    late = Metrics(T0 + 15 * NS_PER_S, "150c", "heater", "A", {"current_rms_a": 15.0})
    influxd.write(influx_bucket.name, "\n".join(encode_metrics(late, "lab").lines),
                  precision="ms")
    (again,) = feed.poll(T0 + 22 * NS_PER_S)  # written late, still inside the window
    assert again.fields["current_rms_a"] == 15.0
    api.close()
