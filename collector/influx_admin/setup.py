"""``gridguard influx setup``: buckets, least-privilege tokens and rollup tasks, idempotently.

Every step compares what exists with what should exist and reports one line:
``created bucket raw``, ``bucket rollup_1m unchanged``, ``updated task rollup_1h``...
A second run reports only "unchanged".

Tokens (InfluxDB authorizations, identified by their description):

* collector: write on the raw and events buckets, nothing else;
* grafana: read on every GridGuard bucket;
* analytics: read on every GridGuard bucket, write on the analytics bucket;
* worker: read on every GridGuard bucket, write on the events bucket (fault and audit
  records of the rule worker).

InfluxDB 2.7 cannot separate "write points" from "delete points" or even "delete
the bucket": a bucket write permission grants all three (docs/storage.md). The
collector token is therefore as narrow as the server allows, not narrower.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.tasks import ROLLUPS, install_task, load_templates, render
from collector.sinks.influx.errors import NotFoundError

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class SetupSettings:
    """Names, retention periods [s] and where new tokens go."""

    raw_bucket: str = "raw"
    raw_retention_s: int = 7 * DAY_S
    rollup_1m_bucket: str = "rollup_1m"
    rollup_1m_retention_s: int = 90 * DAY_S
    rollup_1h_bucket: str = "rollup_1h"
    rollup_1h_retention_s: int = 5 * 365 * DAY_S
    events_bucket: str = "events"
    events_retention_s: int = 5 * 365 * DAY_S
    analytics_bucket: str = "analytics"
    analytics_retention_s: int = 365 * DAY_S
    token_dir: Path | None = None  # None: print new tokens once
    name_prefix: str = "gridguard"  # of token descriptions and task names
    tasks_dir: Path | None = None

    def __post_init__(self) -> None:
        for role, (name, retention) in self.buckets().items():
            if not name:
                raise ValueError(f"{role}_bucket: must not be empty")
            if retention < 0:
                raise ValueError(f"{role}_retention_s: must be >= 0 (0 = forever), "
                                 f"got {retention}")

    def buckets(self) -> dict[str, tuple[str, int]]:
        return {
            "raw": (self.raw_bucket, self.raw_retention_s),
            "rollup_1m": (self.rollup_1m_bucket, self.rollup_1m_retention_s),
            "rollup_1h": (self.rollup_1h_bucket, self.rollup_1h_retention_s),
            "events": (self.events_bucket, self.events_retention_s),
            "analytics": (self.analytics_bucket, self.analytics_retention_s),
        }


@dataclass(frozen=True, slots=True)
class SetupResult:
    changes: tuple[str, ...]  # one line per step
    bucket_ids: dict[str, str]  # role -> id
    task_ids: dict[str, str]  # task key -> id
    tokens: dict[str, str]  # role -> token, only for tokens created in this run

    @property
    def changed(self) -> bool:
        return any(not line.endswith("unchanged") for line in self.changes)


def _retention(bucket: dict[str, object]) -> int:
    for rule in bucket.get("retentionRules") or []:  # type: ignore[attr-defined]
        if rule.get("type") == "expire":
            return int(rule.get("everySeconds") or 0)
    return 0


def ensure_bucket(api: InfluxApi, name: str, retention_s: int) -> tuple[str, str]:
    """Create or fix one bucket; returns (id, change line)."""
    try:
        body = api.json("GET", "/api/v2/buckets", what=f"looking up bucket {name!r}",
                        params={"orgID": api.org_id(), "name": name})
    except NotFoundError:
        body = {}
    found = [b for b in body.get("buckets") or [] if b.get("name") == name]
    rules = [{"type": "expire", "everySeconds": retention_s}] if retention_s else []
    if not found:
        created = api.json("POST", "/api/v2/buckets", what=f"creating bucket {name!r}",
                           json={"orgID": api.org_id(), "name": name, "retentionRules": rules})
        return str(created["id"]), f"created bucket {name} (retention {_human(retention_s)})"
    bucket = found[0]
    old = _retention(bucket)
    if old == retention_s:
        return str(bucket["id"]), f"bucket {name} unchanged"
    # InfluxDB keeps the shard-group duration it chose at creation and refuses a
    # retention shorter than it; 0 asks it to choose again for the new retention.
    patch_rules = ([{"type": "expire", "everySeconds": retention_s,
                     "shardGroupDurationSeconds": 0}] if retention_s else [])
    api.json("PATCH", f"/api/v2/buckets/{bucket['id']}", what=f"updating bucket {name!r}",
             json={"retentionRules": patch_rules})
    return str(bucket["id"]), (f"updated bucket {name} retention "
                               f"{_human(old)} -> {_human(retention_s)}")


def _human(seconds: int) -> str:
    if seconds == 0:
        return "forever"
    if seconds % DAY_S == 0:
        return f"{seconds // DAY_S} d"
    return f"{seconds} s"


def _permission(action: str, bucket_id: str, org_id: str) -> dict[str, object]:
    return {"action": action, "resource": {"type": "buckets", "id": bucket_id, "orgID": org_id}}


def _perm_key(perm: dict[str, object]) -> tuple[str, str, str]:
    res = perm.get("resource") or {}
    assert isinstance(res, dict)
    return (str(perm.get("action")), str(res.get("type")), str(res.get("id")))


def desired_tokens(ids: dict[str, str], org_id: str) -> dict[str, list[dict[str, object]]]:
    """Role -> permissions, from bucket role -> id."""
    every = [ids[r] for r in ("raw", "rollup_1m", "rollup_1h", "events", "analytics")]
    return {
        "collector": [_permission("write", ids["raw"], org_id),
                      _permission("write", ids["events"], org_id)],
        "grafana": [_permission("read", b, org_id) for b in every],
        "analytics": [_permission("read", b, org_id) for b in every]
        + [_permission("write", ids["analytics"], org_id)],
        "worker": [_permission("read", b, org_id) for b in every]
        + [_permission("write", ids["events"], org_id)],
    }


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to a new 0600 file (replacing any older one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # umask or an older file must not widen it
        os.write(fd, (text + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_token(
    api: InfluxApi, description: str, permissions: list[dict[str, object]],
    token_file: Path | None,
) -> tuple[str | None, str]:
    """Create the authorization if no active one with exactly these permissions exists.

    Returns (new token or None, change line). An authorization with the same
    description but other permissions is deactivated (not deleted: Grafana or a
    collector may still be using it until reconfigured) and replaced.
    """
    body = api.json("GET", "/api/v2/authorizations", what="listing tokens",
                    params={"orgID": api.org_id()})
    want = sorted(_perm_key(p) for p in permissions)
    same = [a for a in body.get("authorizations") or [] if a.get("description") == description]
    for auth in same:
        if auth.get("status") == "active" and sorted(
            _perm_key(p) for p in auth.get("permissions") or []
        ) == want:
            if token_file is not None and not token_file.exists() and auth.get("token"):
                write_secret(token_file, str(auth["token"]))
                return None, f"token {description} unchanged (saved to {token_file})"
            return None, f"token {description} unchanged"
    for auth in same:
        if auth.get("status") == "active":
            api.json("PATCH", f"/api/v2/authorizations/{auth['id']}",
                     what=f"deactivating old token {description!r}",
                     json={"status": "inactive"})
    created = api.json("POST", "/api/v2/authorizations", what=f"creating token {description!r}",
                       json={"orgID": api.org_id(), "description": description,
                             "permissions": permissions})
    token = str(created["token"])
    verb = "replaced" if same else "created"
    if token_file is not None:
        write_secret(token_file, token)
        return token, f"{verb} token {description} (saved to {token_file}, mode 0600)"
    return token, f"{verb} token {description} (printed below; it is shown only once)"


def run_setup(
    api: InfluxApi, settings: SetupSettings, report: Callable[[str], None] | None = None,
) -> SetupResult:
    """Make buckets, tokens and tasks match ``settings``; report each step."""
    changes: list[str] = []

    def note(line: str) -> None:
        changes.append(line)
        if report is not None:
            report(line)

    org_id = api.org_id()
    ids: dict[str, str] = {}
    for role, (name, retention) in settings.buckets().items():
        ids[role], line = ensure_bucket(api, name, retention)
        note(line)

    tokens: dict[str, str] = {}
    for role, perms in desired_tokens(ids, org_id).items():
        description = f"{settings.name_prefix}-{role}"
        token_file = settings.token_dir / f"{role}.token" if settings.token_dir else None
        token, line = ensure_token(api, description, perms, token_file)
        note(line)
        if token is not None:
            tokens[role] = token

    templates = load_templates(settings.tasks_dir)
    task_ids: dict[str, str] = {}
    for task in ROLLUPS:
        name = f"{settings.name_prefix}-{task.key}"
        flux = render(templates[task.key], {
            "task_name": name,
            "raw_bucket": settings.raw_bucket,
            "rollup_1m_bucket": settings.rollup_1m_bucket,
            "rollup_1h_bucket": settings.rollup_1h_bucket,
        })
        task_ids[task.key], verb = install_task(api, name, flux, task.description)
        note(f"task {name} {verb}" if verb == "unchanged" else f"{verb} task {name}")
    return SetupResult(tuple(changes), ids, task_ids, tokens)
