"""Shared pieces of the rule tests: a test config, seeding with the line-protocol
encoder, forced task runs in parallel, and reading fault records back."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.config.models import GridGuardConfig
from collector.influx_admin.api import InfluxApi
from collector.model import Metrics
from collector.sinks.influx.errors import NotFoundError
from collector.sinks.influx.line_protocol import PRECISION, encode_metrics

NS = 1_000_000_000
RECORD_S = 3  # 150-cycle records at 50 Hz

# A small three-phase 230/400 V, 50 Hz panel: single-phase circuits, a three-phase
# heat pump, a critical fridge that must run, an oven that must run at night (site
# local time, over midnight), and a PV inverter (negative power).
BASE_CONFIG: dict[str, Any] = {
    "site": {"id": "lab", "timezone": "Europe/Berlin"},
    "system": {"type": "three_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
    "source": {"type": "simulated", "simulated": {"scenario": "scenarios/demo.yaml"}},
    "channels": {
        "voltage": [
            {"id": "va", "phase": "A"}, {"id": "vb", "phase": "B"}, {"id": "vc", "phase": "C"},
        ],
        "current": [
            {"id": "i_k", "phase": "A"}, {"id": "i_o", "phase": "B"}, {"id": "i_f", "phase": "B"},
            {"id": "i_hp_a", "phase": "A"}, {"id": "i_hp_b", "phase": "B"},
            {"id": "i_hp_c", "phase": "C"}, {"id": "i_pv", "phase": "C"},
        ],
    },
    "circuits": [
        {"id": "kitchen", "phases": ["A"], "current_channels": ["i_k"],
         "breaker_rating_a": 16, "max_power_w": 3000},
        {"id": "oven", "phases": ["B"], "current_channels": ["i_o"], "breaker_rating_a": 16,
         "expected_running": {"min_current_a": 0.5, "min_duration_s": 300,
                              "windows": [{"start": "23:00", "end": "03:30"}]}},
        {"id": "fridge", "phases": ["B"], "current_channels": ["i_f"], "breaker_rating_a": 10,
         "critical": True,
         "expected_running": {"min_current_a": 0.3, "min_duration_s": 600}},
        {"id": "heat_pump", "phases": ["A", "B", "C"],
         "current_channels": ["i_hp_a", "i_hp_b", "i_hp_c"], "breaker_rating_a": 16},
        {"id": "solar", "kind": "generation", "phases": ["C"], "current_channels": ["i_pv"],
         "breaker_rating_a": 20, "max_power_w": 4000},
    ],
    "thresholds": {"demand_limit_w": 10000, "thd_current_max_pct": 30},
}


def make_config(site: str, raw: str, events: str, **overrides: Any) -> GridGuardConfig:
    data = copy.deepcopy(BASE_CONFIG)
    data["site"]["id"] = site
    data["influx"] = {"buckets": {"raw": raw, "events": events, "rollup_1m": f"{raw}-1m",
                                  "rollup_1h": f"{raw}-1h", "analytics": f"{raw}-an"}}
    data.update(overrides)
    return GridGuardConfig.model_validate(data)


def metrics(t_ns: int, circuit: str, phase: str, **fields: float) -> Metrics:
    return Metrics(t_ns, "150c", circuit, phase, dict(fields))


def span(start_ns: int, stop_ns: int, step_s: float = RECORD_S) -> list[int]:
    """Record times in [start, stop) every ``step_s`` (aligned to ``start``)."""
    step = round(step_s * NS)
    return list(range(start_ns, stop_ns, step))


def write_metrics(api: InfluxApi, bucket: str, site: str, records: Iterable[Metrics]) -> int:
    """Encode with the collector's line-protocol encoder and write in batches."""
    lines: list[str] = []
    for m in records:
        enc = encode_metrics(m, site)
        assert not enc.dropped, enc.dropped
        lines.extend(enc.lines)
    for k in range(0, len(lines), 5000):
        api.write_lines(bucket, lines[k : k + 5000], precision=PRECISION)
    return len(lines)


def run_tasks(api: InfluxApi, task_ids: Iterable[str], scheduled_for_ns: int,
              timeout_s: float = 90.0) -> dict[str, float]:
    """Force one run of every task at ``scheduled_for_ns`` and wait for all of them.

    Runs are started together (InfluxDB executes them concurrently), so a batch
    costs about as much as one run. Returns each task's run duration [s] as the
    server reports it; raises with the run log when any run fails.
    """
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(scheduled_for_ns // NS))
    pending: dict[str, str] = {}
    for tid in task_ids:
        run = api.json("POST", f"/api/v2/tasks/{tid}/runs", what="forcing a run",
                       json={"scheduledFor": when})
        pending[tid] = str(run["id"])
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for tid, rid in list(pending.items()):
            try:
                state = api.json("GET", f"/api/v2/tasks/{tid}/runs/{rid}", what="polling")
            except NotFoundError:
                continue  # 2.7 answers 404 for a moment while a run is being logged
            status = state.get("status")
            if status == "success":
                done[tid] = _duration_s(state)
                del pending[tid]
            elif status in ("failed", "canceled"):
                log = api.call("GET", f"/api/v2/tasks/{tid}/runs/{rid}/logs",
                               what="run log").text
                raise AssertionError(f"task {tid} run {status}: {log[:3000]}")
        if pending:
            time.sleep(0.05)
    if pending:
        raise AssertionError(f"runs did not finish within {timeout_s} s: {pending}")
    return done


def _duration_s(state: Mapping[str, Any]) -> float:
    from collector.influx_admin.queries import parse_rfc3339_ns

    try:
        return (parse_rfc3339_ns(str(state["finishedAt"]))
                - parse_rfc3339_ns(str(state["startedAt"]))) / NS
    except (KeyError, ValueError):
        return float("nan")


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault record as read back."""

    time_ns: int
    circuit: str
    phase: str
    type: str
    severity: str
    state: str
    value: float
    threshold: float
    unit: str


def read_faults(api: InfluxApi, bucket: str, site: str, start_ns: int, stop_ns: int) -> list[Fault]:
    flux = (
        f'from(bucket: "{bucket}")\n'
        f"    |> range(start: time(v: {start_ns}), stop: time(v: {stop_ns}))\n"
        f'    |> filter(fn: (r) => r._measurement == "faults" and r.site == "{site}")\n'
        '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        "    |> group()\n"
        '    |> sort(columns: ["_time", "circuit", "phase", "severity"])'
    )
    out = []
    for row in api.query(flux):
        out.append(Fault(
            int(row["_time"]), str(row["circuit"]), str(row["phase"]), str(row["type"]),  # type: ignore[call-overload]
            str(row["severity"]), str(row["state"]), float(row["value"]),  # type: ignore[arg-type]
            float(row["threshold"]), str(row.get("unit") or ""),  # type: ignore[arg-type]
        ))
    return out


def describe(faults: Sequence[Fault]) -> str:
    return "\n".join(
        f"  {f.circuit}/{f.phase} {f.type} {f.severity} {f.state} value={f.value!r} "
        f"threshold={f.threshold!r} {f.unit}" for f in faults
    ) or "  (none)"
