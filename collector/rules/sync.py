"""``gridguard influx sync``: make the installed rule tasks match the config.

Managed tasks are recognised by their name prefix ``<prefix>-rule/<site>/``
(:func:`collector.rules.flux_rules.task_prefix`); tasks of other sites and every
other task (rollups, hand-written ones) are never touched. The plan is computed
first (:func:`plan`, pure) and then applied:

* a generated task with no installed counterpart is **created**;
* an installed task whose Flux, description or status differs is **updated**
  (the change is shown as a unified diff of the Flux);
* an installed managed task whose rule is no longer generated is **removed**, and
  faults it left active are resolved so Grafana stops alerting on them;
* everything else is **unchanged**, so a second run reports only "unchanged".
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.queries import flux_string
from collector.rules import faults
from collector.rules.flux_rules import RuleTask

PAGE = 500  # the largest page /api/v2/tasks serves


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Change:
    """One step of a sync: what happens to which task, and the Flux diff."""

    action: Action
    name: str
    task_id: str | None = None  # installed task (update, delete, unchanged)
    task: RuleTask | None = None  # generated task (create, update, unchanged)
    diff: str = ""

    def line(self, dry_run: bool = False) -> str:
        verb = {
            Action.CREATE: ("+ would create", "+ created"),
            Action.UPDATE: ("~ would update", "~ updated"),
            Action.DELETE: ("- would remove", "- removed"),
            Action.UNCHANGED: ("= unchanged", "= unchanged"),
        }[self.action][0 if dry_run else 1]
        tail = " (its rule is no longer in the config)" if self.action is Action.DELETE else ""
        return f"{verb} task {self.name}{tail}"


@dataclass(frozen=True, slots=True)
class SyncResult:
    changes: tuple[Change, ...]
    task_ids: dict[str, str]  # task name -> id after the sync
    resolved_faults: int = 0  # faults resolved because their rule was removed

    @property
    def changed(self) -> bool:
        return any(c.action is not Action.UNCHANGED for c in self.changes)

    def summary(self) -> str:
        counts = {a: sum(1 for c in self.changes if c.action is a) for a in Action}
        if not self.changed:
            return f"nothing changed ({counts[Action.UNCHANGED]} tasks unchanged)"
        return (f"{counts[Action.CREATE]} created, {counts[Action.UPDATE]} updated, "
                f"{counts[Action.DELETE]} removed, {counts[Action.UNCHANGED]} unchanged")


def flux_diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"{name} (installed)", tofile=f"{name} (generated)", n=2,
    ))


def plan(installed: Sequence[Mapping[str, Any]], desired: Sequence[RuleTask],
         prefix: str) -> tuple[Change, ...]:
    """The changes that make ``installed`` (API task objects) match ``desired``.

    Only installed tasks whose name starts with ``prefix`` are considered. Two
    installed tasks with the same name (a crash between create and a retry) are
    merged: the first is kept, the others are removed.
    """
    names = [t.name for t in desired]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"desired tasks: duplicate names {dupes}")
    for t in desired:
        if not t.name.startswith(prefix):
            raise ValueError(f"task {t.name!r}: name must start with the managed prefix {prefix!r}")
    ours: dict[str, Mapping[str, Any]] = {}
    changes: list[Change] = []
    for task in sorted(installed, key=lambda t: (str(t.get("name")), str(t.get("id")))):
        name = str(task.get("name") or "")
        if not name.startswith(prefix):
            continue
        if name in ours:
            changes.append(Change(Action.DELETE, name, str(task["id"])))
        else:
            ours[name] = task
    for want in desired:
        have = ours.pop(want.name, None)
        if have is None:
            changes.append(Change(Action.CREATE, want.name, None, want,
                                  flux_diff("", want.flux, want.name)))
            continue
        same = (have.get("flux") == want.flux and have.get("status") == "active"
                and (have.get("description") or "") == want.description)
        if same:
            changes.append(Change(Action.UNCHANGED, want.name, str(have["id"]), want))
        else:
            diff = flux_diff(str(have.get("flux") or ""), want.flux, want.name)
            if not diff and have.get("status") != "active":
                diff = f"status {have.get('status')} -> active\n"
            changes.append(Change(Action.UPDATE, want.name, str(have["id"]), want, diff))
    for name, have in ours.items():
        changes.append(Change(Action.DELETE, name, str(have["id"]), None,
                              flux_diff(str(have.get("flux") or ""), "", name)))
    order = {Action.DELETE: 0, Action.CREATE: 1, Action.UPDATE: 2, Action.UNCHANGED: 3}
    return tuple(sorted(changes, key=lambda c: (order[c.action], c.name)))


def list_tasks(api: InfluxApi) -> list[dict[str, Any]]:
    """Every task of the organisation (all pages)."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"orgID": api.org_id(), "limit": PAGE}
        if after is not None:
            params["after"] = after
        body = api.json("GET", "/api/v2/tasks", what="listing tasks", params=params)
        page = list((body or {}).get("tasks") or [])
        out.extend(page)
        if len(page) < PAGE:
            return out
        after = str(page[-1]["id"])


def resolve_open_faults(api: InfluxApi, events_bucket: str, site: str, fault_type: str,
                        now_ns: int | None = None, lookback_days: int = 30) -> int:
    """Write ``resolved`` for every series of ``fault_type`` whose last record is active.

    Used when a rule is removed: nothing would ever resolve its faults otherwise.
    Returns the number of faults resolved.
    """
    stamp = time.time_ns() if now_ns is None else now_ns
    tags = "[" + ", ".join(flux_string(t) for t in faults.TAGS) + "]"
    active = (
        f"from(bucket: {flux_string(events_bucket)})\n"
        f"    |> range(start: time(v: {stamp - lookback_days * 86_400 * 1_000_000_000}), "
        f"stop: time(v: {stamp + 1}))\n"
        f"    |> filter(fn: (r) => r._measurement == {flux_string(faults.MEASUREMENT)} and "
        f"r.site == {flux_string(site)} and r.type == {flux_string(fault_type)})\n"
        f"    |> filter(fn: (r) => r._field == {flux_string(faults.STATE_FIELD)})\n"
        '    |> group(columns: ["circuit", "phase", "severity"])\n'
        "    |> last()\n"
        f"    |> filter(fn: (r) => r._value == {flux_string(faults.FaultState.ACTIVE.value)})\n"
        "    |> group()\n"
    )
    rows = api.query(active + '    |> keep(columns: ["circuit", "phase", "severity"])')
    if not rows:
        return 0
    api.query_csv(
        active
        + f"    |> map(fn: (r) => ({{_time: time(v: {stamp}), "
        f"_measurement: {flux_string(faults.MEASUREMENT)}, site: r.site, circuit: r.circuit, "
        f"phase: r.phase, type: r.type, severity: r.severity, "
        f"state: {flux_string(faults.FaultState.RESOLVED.value)}}}))\n"
        f"    |> to(bucket: {flux_string(events_bucket)}, tagColumns: {tags}, "
        "fieldFn: (r) => ({state: r.state}))"
    )
    return len(rows)


def apply(api: InfluxApi, changes: Sequence[Change], *, events_bucket: str | None = None,
          site: str | None = None, report: Callable[[str], None] | None = None) -> SyncResult:
    """Carry out ``changes``; returns the task ids after the sync."""
    ids: dict[str, str] = {}
    resolved = 0
    for change in changes:
        if change.action is Action.CREATE:
            assert change.task is not None
            body = api.json("POST", "/api/v2/tasks", what=f"creating task {change.name!r}",
                            json={"orgID": api.org_id(), "flux": change.task.flux,
                                  "status": "active", "description": change.task.description})
            ids[change.name] = str(body["id"])
        elif change.action is Action.UPDATE:
            assert change.task is not None
            assert change.task_id is not None
            api.json("PATCH", f"/api/v2/tasks/{change.task_id}",
                     what=f"updating task {change.name!r}",
                     json={"flux": change.task.flux, "status": "active",
                           "description": change.task.description})
            ids[change.name] = change.task_id
        elif change.action is Action.DELETE:
            api.call("DELETE", f"/api/v2/tasks/{change.task_id}",
                     what=f"removing task {change.name!r}")
            if events_bucket is not None and site is not None:
                fault_type = change.name.rsplit("/", 1)[-1]
                # Only resolve when no task of that name remains (duplicates removal).
                if not any(c.name == change.name and c.action is not Action.DELETE
                           for c in changes):
                    resolved += resolve_open_faults(api, events_bucket, site, fault_type)
        else:
            assert change.task_id is not None
            ids[change.name] = change.task_id
        if report is not None:
            report(change.line())
    return SyncResult(tuple(changes), ids, resolved)


def sync_tasks(api: InfluxApi, desired: Sequence[RuleTask], prefix: str, *,
               events_bucket: str | None = None, site: str | None = None,
               dry_run: bool = False,
               report: Callable[[str], None] | None = None) -> SyncResult:
    """Plan against the server's tasks and (unless ``dry_run``) apply the plan."""
    changes = plan(list_tasks(api), desired, prefix)
    if dry_run:
        if report is not None:
            for c in changes:
                report(c.line(dry_run=True))
        ids = {c.name: c.task_id for c in changes if c.task_id is not None
               and c.action is not Action.DELETE}
        return SyncResult(changes, ids)
    return apply(api, changes, events_bucket=events_bucket, site=site, report=report)
