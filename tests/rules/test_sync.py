"""``gridguard influx sync`` on a real influxd: idempotent, shows diffs, removes the
tasks of deleted rules (resolving their open faults) and touches nothing else."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from collector.cli import influx_cmd, rules_cmd
from collector.config.models import GridGuardConfig
from collector.influx_admin.api import InfluxApi
from collector.rules.faults import FaultType
from collector.rules.flux_rules import task_prefix, tasks_from_config
from collector.rules.sync import Action, list_tasks, plan, sync_tasks
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.rules.helpers import BASE_CONFIG

SITE = "sync-site"


@dataclass(frozen=True)
class Env:
    api: InfluxApi
    raw: str
    events: str


@pytest.fixture(scope="module")
def env(influxd: InfluxServer) -> Iterator[Env]:
    raw = influxd.create_bucket(f"sync-raw-{uuid.uuid4().hex[:8]}")
    events = influxd.create_bucket(f"sync-ev-{uuid.uuid4().hex[:8]}")
    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    try:
        yield Env(api, raw.name, events.name)
    finally:
        for task in list_tasks(api):
            if "sync-site" in str(task.get("name")) or str(task.get("name")).startswith("keep-"):
                api.call("DELETE", f"/api/v2/tasks/{task['id']}", what="cleanup")
        api.close()
        for b in (raw, events):
            influxd.delete_bucket(InfluxBucket(b.name, b.id))


def _data(env: Env, site: str = SITE, **thresholds: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_CONFIG)
    data["site"]["id"] = site
    data["thresholds"] = {**data["thresholds"], **thresholds}
    data["influx"] = {"buckets": {"raw": env.raw, "events": env.events,
                                  "rollup_1m": f"{env.raw}-1m", "rollup_1h": f"{env.raw}-1h",
                                  "analytics": f"{env.raw}-an"}}
    return data


def _cfg(env: Env, site: str = SITE, **thresholds: Any) -> GridGuardConfig:
    return GridGuardConfig.model_validate(_data(env, site, **thresholds))


def _sync(env: Env, cfg: GridGuardConfig, dry_run: bool = False) -> tuple[Any, list[str]]:
    lines: list[str] = []
    result = sync_tasks(env.api, tasks_from_config(cfg), task_prefix(cfg.site.id),
                        events_bucket=env.events, site=cfg.site.id, dry_run=dry_run,
                        report=lines.append)
    return result, lines


def _ours(env: Env, site: str = SITE) -> dict[str, dict[str, Any]]:
    return {str(t["name"]): t for t in list_tasks(env.api)
            if str(t["name"]).startswith(task_prefix(site))}


def test_sync_lifecycle(env: Env) -> None:
    api = env.api
    # Tasks that are not ours: a hand-written one and another site's rule.
    foreign = "option task = {name: \"keep-me\", every: 1h}\n" \
              'from(bucket: "x") |> range(start: -1h) |> yield()\n'
    keep = api.json("POST", "/api/v2/tasks", what="t",
                    json={"orgID": api.org_id(), "flux": foreign, "status": "active"})
    other_site = tasks_from_config(_cfg(env, site="sync-site-2"))[0]
    _sync(env, _cfg(env, site="sync-site-2"))

    cfg = _cfg(env)
    n = len(tasks_from_config(cfg))
    assert n == len(FaultType)

    # 1. first run creates every task
    result, lines = _sync(env, cfg)
    assert [c.action for c in result.changes] == [Action.CREATE] * n
    assert all(line.startswith("+ created task gridguard-rule/sync-site/") for line in lines)
    installed = _ours(env)
    assert set(installed) == {t.name for t in tasks_from_config(cfg)}
    assert all(t["status"] == "active" for t in installed.values())
    assert result.task_ids == {name: t["id"] for name, t in installed.items()}

    # 2. second run: unchanged, nothing written
    def snapshot() -> dict[str, tuple[Any, ...]]:
        return {name: (t["id"], t["flux"], t["status"], t.get("description"),
                       t.get("updatedAt")) for name, t in _ours(env).items()}

    before = snapshot()
    result, lines = _sync(env, cfg)
    assert not result.changed
    assert lines == [f"= unchanged task {name}" for name in sorted(before)]
    assert result.summary() == f"nothing changed ({n} tasks unchanged)"
    assert snapshot() == before

    # 3. a changed threshold updates one task and shows the Flux diff
    changed = _cfg(env, demand_limit_w=12000)
    result, _ = _sync(env, changed)
    updates = [c for c in result.changes if c.action is Action.UPDATE]
    assert [c.name for c in updates] == ["gridguard-rule/sync-site/demand"]
    assert "-warning = dict.fromList(pairs: [{key: \"system\", value: 10000.0}])" \
        in updates[0].diff
    assert "+warning = dict.fromList(pairs: [{key: \"system\", value: 12000.0}])" \
        in updates[0].diff
    demand = _ours(env)["gridguard-rule/sync-site/demand"]
    assert "value: 12000.0" in demand["flux"]

    # 4. dry run of a change: reported, not applied
    result, lines = _sync(env, _cfg(env, demand_limit_w=14000), dry_run=True)
    assert lines[0].startswith("~ would update task gridguard-rule/sync-site/demand")
    assert "value: 12000.0" in _ours(env)["gridguard-rule/sync-site/demand"]["flux"]

    # 5. a task switched off by hand is switched on again
    api.json("PATCH", f"/api/v2/tasks/{demand['id']}", what="t", json={"status": "inactive"})
    result, _ = _sync(env, changed)
    assert [(c.action, c.name) for c in result.changes if c.action is not Action.UNCHANGED] \
        == [(Action.UPDATE, "gridguard-rule/sync-site/demand")]
    assert _ours(env)["gridguard-rule/sync-site/demand"]["status"] == "active"

    # 6. removing the rule removes its task and resolves the faults it left active
    now_ns = time.time_ns() // 1_000_000 * 1_000_000
    api.write_lines(env.events, [
        f"faults,circuit=system,phase=ABC,severity=warning,site={SITE},type=demand "
        f'value=13000.0,threshold=12000.0,state="active",unit="W" {now_ns // 1_000_000 - 5000}',
        # another site's open demand fault stays open
        "faults,circuit=system,phase=ABC,severity=warning,site=sync-site-2,type=demand "
        f'value=13000.0,threshold=12000.0,state="active",unit="W" {now_ns // 1_000_000 - 5000}',
    ], precision="ms")
    without = _data(env)
    without["thresholds"].pop("demand_limit_w")
    result, lines = _sync(env, GridGuardConfig.model_validate(without))
    assert lines[0] == ("- removed task gridguard-rule/sync-site/demand "
                        "(its rule is no longer in the config)")
    assert result.resolved_faults == 1
    assert "gridguard-rule/sync-site/demand" not in _ours(env)
    states = [f.site_state for f in _fault_states(env, SITE)]
    assert states[-1] == "resolved"
    assert [f.site_state for f in _fault_states(env, "sync-site-2")] == ["active"]

    # untouched: the hand-written task and the other site's tasks
    names = {str(t["name"]) for t in list_tasks(api)}
    assert "keep-me" in names
    assert other_site.name in names
    assert keep["id"] in {t["id"] for t in list_tasks(api)}


@dataclass(frozen=True)
class _State:
    site_state: str


def _fault_states(env: Env, site: str) -> list[_State]:
    return _states(env, site, time.time_ns())


def _states(env: Env, site: str, now: int) -> list[_State]:
    flux = (f'from(bucket: "{env.events}") |> range(start: time(v: {now - 3600 * 10**9}), '
            f"stop: time(v: {now + 10**9}))\n"
            f'|> filter(fn: (r) => r._measurement == "faults" and r.site == "{site}" '
            'and r._field == "state") |> group() |> sort(columns: ["_time"])')
    return [_State(str(r["_value"])) for r in env.api.query(flux)]


def test_plan_merges_duplicates_and_ignores_other_prefixes() -> None:
    cfg = GridGuardConfig.model_validate({**copy.deepcopy(BASE_CONFIG)})
    desired = tasks_from_config(cfg)[:2]
    prefix = task_prefix("lab")
    installed = [
        {"id": "1", "name": desired[0].name, "flux": desired[0].flux, "status": "active",
         "description": desired[0].description},
        {"id": "2", "name": desired[0].name, "flux": desired[0].flux, "status": "active",
         "description": desired[0].description},
        {"id": "3", "name": "gridguard-rule/lab-2/demand", "flux": "", "status": "active"},
        {"id": "4", "name": "gridguard-rollup_1m", "flux": "", "status": "active"},
    ]
    changes = plan(installed, desired, prefix)
    assert [(c.action, c.task_id) for c in changes] == [
        (Action.DELETE, "2"), (Action.CREATE, None), (Action.UNCHANGED, "1")]


def test_plan_refuses_foreign_or_duplicate_desired_tasks() -> None:
    task = tasks_from_config(GridGuardConfig.model_validate(copy.deepcopy(BASE_CONFIG)))[0]
    with pytest.raises(ValueError, match="duplicate"):
        plan([], [task, task], task_prefix("lab"))
    with pytest.raises(ValueError, match="managed prefix"):
        plan([], [replace(task, name="other/x")], task_prefix("lab"))


def test_cli_sync_then_unchanged_then_dry_run(env: Env, influxd: InfluxServer,
                                              tmp_path: Path) -> None:
    data = _data(env, site="sync-cli")
    data["influx"]["url"] = influxd.url
    data["influx"]["org"] = influxd.org
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    app = typer.Typer()
    influx_cmd.register(app)
    rules_cmd.register(app)
    runner = CliRunner()
    args = ["influx", "sync", "--config", str(path), "--token", influxd.token]
    try:
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        assert "+ created task gridguard-rule/sync-cli/overcurrent" in first.output
        assert f"{len(FaultType)} created, 0 updated, 0 removed, 0 unchanged" in first.output
        assert "+++ gridguard-rule/sync-cli/overcurrent (generated)" in first.output  # diff

        second = runner.invoke(app, args)
        assert second.exit_code == 0, second.output
        assert f"nothing changed ({len(FaultType)} tasks unchanged)" in second.output

        data["thresholds"]["power_factor_min"] = 0.9
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        dry = runner.invoke(app, [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "~ would update task gridguard-rule/sync-cli/low_power_factor" in dry.output
        assert "dry run: 0 created, 1 updated, 0 removed" in dry.output
        assert "value: 0.85" in _ours(env, "sync-cli")[
            "gridguard-rule/sync-cli/low_power_factor"]["flux"]

        bad = runner.invoke(app, ["influx", "sync", "--config", str(path)],
                            env={"GRIDGUARD_INFLUX_TOKEN": ""})
        assert bad.exit_code != 0
    finally:
        for task in _ours(env, "sync-cli").values():
            env.api.call("DELETE", f"/api/v2/tasks/{task['id']}", what="cleanup")
