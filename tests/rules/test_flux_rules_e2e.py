"""Every Flux rule end to end on a real influxd: seeded metrics in, fault records out.

Each rule runs for its own site (its own task, its own data) in one pair of
buckets; the four runs of every rule are forced together (scenarios.py says what
each run sees and must produce). A run must write exactly the expected records:
nothing for data inside the limits, one record per transition, none while a
fault persists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from collector.influx_admin.api import InfluxApi
from collector.rules.faults import FaultType
from collector.rules.flux_rules import RULES_DIR, task_prefix, tasks_from_config
from collector.rules.sync import sync_tasks
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.rules.helpers import (
    Fault,
    describe,
    make_config,
    read_faults,
    run_tasks,
    write_metrics,
)
from tests.rules.scenarios import CASES, RUNS, Case, run_time


def site_of(case: Case) -> str:
    return "t-" + case.type.value.replace("_", "-")


@dataclass(frozen=True)
class Outcome:
    faults: dict[tuple[FaultType, int], list[Fault]]
    durations_s: dict[FaultType, list[float]]


@pytest.fixture(scope="module")
def outcome(influxd: InfluxServer) -> Iterator[Outcome]:
    raw = influxd.create_bucket(f"rules-raw-{uuid.uuid4().hex[:8]}")
    events = influxd.create_bucket(f"rules-ev-{uuid.uuid4().hex[:8]}")
    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    task_ids: dict[FaultType, str] = {}
    try:
        for case in CASES:
            site = site_of(case)
            cfg = make_config(site, raw.name, events.name)
            task = next(t for t in tasks_from_config(cfg) if t.rule.type is case.type)
            result = sync_tasks(api, [task], task_prefix(site))
            task_ids[case.type] = result.task_ids[task.name]
        found: dict[tuple[FaultType, int], list[Fault]] = {}
        durations: dict[FaultType, list[float]] = {c.type: [] for c in CASES}
        for k in RUNS:
            t = run_time(k)
            for case in CASES:
                write_metrics(api, raw.name, site_of(case), case.seed(k, t))
            took = run_tasks(api, task_ids.values(), t)
            for case in CASES:
                durations[case.type].append(took[task_ids[case.type]])
                found[(case.type, k)] = read_faults(api, events.name, site_of(case), t, t + 1)
        yield Outcome(found, durations)
    finally:
        for tid in task_ids.values():
            api.call("DELETE", f"/api/v2/tasks/{tid}", what="cleanup")
        api.close()
        for bucket in (raw, events):
            influxd.delete_bucket(InfluxBucket(bucket.name, bucket.id))


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("case", CASES, ids=[c.type.value for c in CASES])
def test_rule_run_writes_exactly_the_expected_faults(
    outcome: Outcome, case: Case, run: int
) -> None:
    got = outcome.faults[(case.type, run)]
    want = case.expect[run]
    key = sorted(want, key=lambda e: (e.circuit, e.phase, e.severity, e.state))
    have = sorted(got, key=lambda f: (f.circuit, f.phase, f.severity, f.state))
    msg = f"{case.type.value} run {run} wrote:\n{describe(have)}"
    assert [(f.circuit, f.phase, f.severity, f.state) for f in have] == [
        (e.circuit, e.phase, e.severity, e.state) for e in key
    ], msg
    for f, e in zip(have, key, strict=True):
        assert f.type == case.type.value, msg
        assert f.unit == case.unit, msg
        assert f.time_ns == run_time(run), msg
        assert f.value == pytest.approx(e.value, rel=1e-9, abs=1e-9), msg
        assert f.threshold == pytest.approx(e.threshold, rel=1e-12), msg


def test_every_rule_of_the_config_has_an_end_to_end_case() -> None:
    cfg = make_config("lab", "raw", "events")
    generated = {t.rule.type for t in tasks_from_config(cfg)}
    assert generated == set(FaultType)
    assert {c.type for c in CASES} == generated


def test_rule_runs_are_quick(outcome: Outcome) -> None:
    # A Pi runs these every 10 s to 10 min; on this (busy) machine each run of the
    # seeded data must finish well within its own period.
    slow = {t.value: max(d) for t, d in outcome.durations_s.items() if max(d) > 5.0}
    assert not slow, slow


def test_example_config_tasks_run(influxd: InfluxServer) -> None:
    # influx/rules/*.flux are the tasks of config/gridguard.example.yaml: each must
    # compile and run (here on empty buckets, with the bucket names mapped).
    raw = influxd.create_bucket(f"ex-raw-{uuid.uuid4().hex[:8]}")
    events = influxd.create_bucket(f"ex-ev-{uuid.uuid4().hex[:8]}")
    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    ids: list[str] = []
    try:
        files = sorted(RULES_DIR.glob("*.flux"))
        assert len(files) >= 10
        for path in files:
            flux = (path.read_text(encoding="utf-8")
                    .replace('bucket: "raw"', f'bucket: "{raw.name}"')
                    .replace('bucket: "events"', f'bucket: "{events.name}"')
                    .replace('name: "gridguard-rule/', 'name: "example-rule/'))
            body = api.json("POST", "/api/v2/tasks", what="creating",
                            json={"orgID": api.org_id(), "flux": flux, "status": "active"})
            ids.append(str(body["id"]))
        took = run_tasks(api, ids, run_time(0))
        assert set(took) == set(ids)
    finally:
        for tid in ids:
            api.call("DELETE", f"/api/v2/tasks/{tid}", what="cleanup")
        api.close()
        for bucket in (raw, events):
            influxd.delete_bucket(InfluxBucket(bucket.name, bucket.id))
