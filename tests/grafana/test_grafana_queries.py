"""Every Flux query of the Grafana provisioning, run against a real influxd and
checked by the Flux language server.

The queries are bound as Grafana binds them (macros ``v.*`` and dashboard
variables replaced) and pointed at test buckets holding known records: metrics
written with the collector's encoder, events with its event encoder, and fault
records as the rule tasks write them (line protocol typed out here). The results
must be what those records imply - an active fault gives 1, a resolved one 0,
two events in a series count 2 - not merely "no error".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from collector.influx_admin.api import InfluxApi
from collector.model import Event, EventType, Metrics, Severity
from collector.sinks.influx.line_protocol import PRECISION, encode_event, encode_metrics
from tests.flux_lsp import errors_of, require_flux_lsp
from tests.grafana.provisioning import Query, alert_queries, all_queries, bind, dashboard_queries
from tests.influxd_fixture import InfluxBucket, InfluxServer

NS = 1_000_000_000
SITE = "grafana-test"
DAY_NS = 86_400 * NS


@dataclass(frozen=True)
class World:
    api: InfluxApi
    buckets: dict[str, str]
    start_ns: int
    stop_ns: int
    voltage_records: int


FAULT_LINES = (
    # written by a rule task: active, then escalated (resolved warning + active critical)
    'faults,circuit=kitchen,phase=A,severity=warning,site={site},type=overcurrent '
    'value=13.0,threshold=12.8,state="active",unit="A" {t0}',
    'faults,circuit=kitchen,phase=A,severity=warning,site={site},type=overcurrent '
    'value=17.0,threshold=12.8,state="resolved",unit="A" {t1}',
    'faults,circuit=kitchen,phase=A,severity=critical,site={site},type=overcurrent '
    'value=17.0,threshold=16.0,state="active",unit="A" {t1}',
    # raised and cleared
    'faults,circuit=va,phase=A,severity=critical,site={site},type=undervoltage '
    'value=200.0,threshold=207.0,state="active",unit="V" {t0}',
    'faults,circuit=va,phase=A,severity=critical,site={site},type=undervoltage '
    'value=230.0,threshold=207.0,state="resolved",unit="V" {t1}',
)


@pytest.fixture(scope="module")
def world(influxd: InfluxServer) -> Iterator[World]:
    raw = influxd.create_bucket(f"graf-raw-{uuid.uuid4().hex[:8]}")
    events = influxd.create_bucket(f"graf-ev-{uuid.uuid4().hex[:8]}")
    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    # Recent data: some panels look back from "now" (active faults: 30 days).
    stop = (time.time_ns() // (60 * NS)) * 60 * NS
    start = stop - 600 * NS
    metrics: list[Metrics] = []
    voltage_records = 0
    for k, t in enumerate(range(start, stop, 3 * NS)):
        for ch, ph in (("va", "A"), ("vb", "B"), ("vc", "C")):
            metrics.append(Metrics(t, "150c", ch, ph, {
                "voltage_rms_v": 230.0 + k % 3, "frequency_hz": 50.0,
                "voltage_thd_pct": 2.0}))
            voltage_records += 1
        metrics.append(Metrics(t, "150c", "kitchen", "A", {
            "voltage_rms_v": 229.0, "current_rms_a": 5.0, "power_active_w": 1000.0,
            "power_apparent_va": 1150.0, "power_factor": 0.87}))
        voltage_records += 1
    lines = [line for m in metrics for line in encode_metrics(m, SITE).lines]
    api.write_lines(raw.name, lines, precision=PRECISION)
    evs = [
        Event(EventType.VOLTAGE_DIP, start + 60 * NS, 0.08, ("A",), Severity.WARNING, "va",
              residual_voltage_pct=71.0, category="instantaneous sag"),
        Event(EventType.VOLTAGE_DIP, start + 120 * NS, 0.12, ("A",), Severity.WARNING, "va",
              residual_voltage_pct=65.0, category="instantaneous sag"),
        Event(EventType.GROUND_FAULT, start + 180 * NS, 0.05, ("A",), Severity.CRITICAL,
              "kitchen"),
    ]
    ev_lines = [line for e in evs for line in encode_event(e, SITE).lines]
    assert len(ev_lines) == 3
    t0, t1 = (start + 200 * NS) // 1_000_000, (start + 400 * NS) // 1_000_000
    ev_lines += [f.format(site=SITE, t0=t0, t1=t1) for f in FAULT_LINES]
    api.write_lines(events.name, ev_lines, precision="ms")
    try:
        yield World(api, {"raw": raw.name, "events": events.name}, start, stop, voltage_records)
    finally:
        api.close()
        for b in (raw, events):
            influxd.delete_bucket(InfluxBucket(b.name, b.id))


def _range_for(query: Query, world: World) -> tuple[int, int]:
    # the fault rules look back 30 days (relativeTimeRange 2592000 s)
    if "rule gridguard-fault-active" in query.where:
        return world.stop_ns - 30 * DAY_NS, world.stop_ns
    return world.start_ns, world.stop_ns


def _run(world: World, query: Query) -> list[dict[str, object]]:
    start, stop = _range_for(query, world)
    text = bind(query.text, start_ns=start, stop_ns=stop, buckets=world.buckets,
                variables={"site": SITE})
    return world.api.query(text)


def _by(rows: list[dict[str, object]], *keys: str) -> dict[tuple[object, ...], object]:
    return {tuple(r.get(k) for k in keys): r["_value"] for r in rows}


def _query(where_part: str) -> Query:
    found = [q for q in all_queries() if where_part in q.where]
    assert len(found) == 1, (where_part, [q.where for q in all_queries()])
    return found[0]


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.where)
def test_every_query_runs_and_returns_rows(world: World, query: Query) -> None:
    rows = _run(world, query)
    assert rows, f"{query.where}: no rows for seeded data"


def test_fault_state_query_is_one_while_active_zero_once_resolved(world: World) -> None:
    rows = _run(world, _query("gridguard-fault-active query A"))
    got = _by(rows, "circuit", "type", "severity")
    assert got == {
        ("kitchen", "overcurrent", "critical"): 1.0,
        ("kitchen", "overcurrent", "warning"): 0.0,
        ("va", "undervoltage", "critical"): 0.0,
    }
    assert all(r["site"] == SITE and r["phase"] == "A" for r in rows)


def test_fault_value_and_threshold_queries(world: World) -> None:
    values = _by(_run(world, _query("gridguard-fault-active query V")), "circuit", "severity")
    thresholds = _by(_run(world, _query("gridguard-fault-active query T")), "circuit", "severity")
    assert values[("kitchen", "critical")] == 17.0
    assert thresholds[("kitchen", "critical")] == 16.0
    assert thresholds[("kitchen", "warning")] == 12.8
    assert values[("va", "critical")] == 230.0


def test_event_query_counts_events_per_series(world: World) -> None:
    rows = _run(world, _query("gridguard-events-recent query A"))
    assert _by(rows, "circuit", "type", "severity") == {
        ("va", "voltage_dip", "warning"): 2.0,
        ("kitchen", "ground_fault", "critical"): 1.0,
    }


def test_silent_collector_query_counts_voltage_records(world: World) -> None:
    rows = _run(world, _query("gridguard-collector-silent query A"))
    assert _by(rows, "site") == {(SITE,): float(world.voltage_records)}


def test_active_faults_panel_lists_only_active_series(world: World) -> None:
    rows = _run(world, _query("(Active faults)"))
    assert [(r["circuit"], r["type"], r["severity"], r["value"], r["threshold"], r["unit"])
            for r in rows] == [("kitchen", "overcurrent", "critical", 17.0, 16.0, "A")]


def test_recent_events_panel_lists_every_event(world: World) -> None:
    rows = _run(world, _query("(Recent events)"))
    assert sorted(str(r["type"]) for r in rows) == ["ground_fault", "voltage_dip", "voltage_dip"]


def test_site_variable_lists_the_site(world: World) -> None:
    rows = _run(world, _query("variable site"))
    assert SITE in {r["_value"] for r in rows}


def test_frequency_panel_is_one_series_of_the_seeded_value(world: World) -> None:
    rows = _run(world, _query("(Frequency)"))
    assert rows
    assert {r["_value"] for r in rows} == {50.0}


def test_queries_were_found() -> None:
    assert len(list(alert_queries())) == 5
    assert len(list(dashboard_queries())) >= 8


def test_every_query_passes_the_flux_language_server() -> None:
    lsp = require_flux_lsp()
    now = 1_735_689_600 * NS
    docs = {q.where: bind(q.text, start_ns=now - DAY_NS, stop_ns=now, variables={"site": SITE})
            for q in all_queries()}
    server, diags = lsp.check(docs)
    assert server.startswith("flux-lsp ")
    assert not errors_of(diags), errors_of(diags)
