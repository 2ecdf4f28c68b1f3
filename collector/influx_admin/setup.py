"""``gridguard influx setup``: buckets, least-privilege credentials and rollup tasks, idempotently.

Every step compares what exists with what should exist and reports one line:
``created bucket raw``, ``bucket rollup_1m unchanged``, ``updated task rollup_1h``...
A second run reports only "unchanged".

Credentials:

* collector: a v1-compatibility ("legacy") authorization ``<prefix>-collector`` with
  a random password, write on the raw and events buckets and nothing else, used as
  ``user:password`` on ``/write``. In InfluxDB 2.7 a v2 token with bucket write may
  also delete points (``/api/v2/delete``); this credential cannot: v2 endpoints
  refuse it (401) and InfluxQL ``DELETE``/``DROP`` need the read permission it
  lacks (docs/storage.md has the evidence). It is made through the API behind
  ``influx v1 auth create``, ``/private/legacy/authorizations``: an InfluxDB OSS 2.x
  API outside the documented ``/api/v2``. A v2 token ``<prefix>-collector`` of
  earlier setups is deactivated.
* v2 tokens, identified by their description ``<prefix>-<role>``:

  * grafana: read on every GridGuard bucket;
  * analytics: read on every GridGuard bucket, write on the analytics bucket;
  * worker: read on every GridGuard bucket, write on the events bucket (fault and
    audit records of the rule worker). Its bucket write also allows deleting
    events; no narrower v2 permission exists.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.tasks import ROLLUPS, install_task, load_templates, render
from collector.sinks.influx.errors import FatalError, InfluxError, NotFoundError

DAY_S = 86_400
COLLECTOR = "collector"
LEGACY_AUTHS = "/private/legacy/authorizations"  # the API of `influx v1 auth`


class NoV1AuthApiError(FatalError):
    """The server has no v1-compatibility authorization API (InfluxDB Cloud, or a
    version that moved it): the collector's write-only credential cannot be made."""


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
    token_dir: Path | None = None  # None: print new credentials once
    name_prefix: str = "gridguard"  # of token descriptions, the v1 user, task names
    tasks_dir: Path | None = None

    def __post_init__(self) -> None:
        if not self.name_prefix or any(c in self.name_prefix for c in ": \t\n"):
            raise ValueError(f"name_prefix: must be a non-empty name without ':' or spaces "
                             f"(it starts the collector's v1 user name), got "
                             f"{self.name_prefix!r}")
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
    tokens: dict[str, str]  # role -> token (collector: user:password), new in this run
    problems: tuple[str, ...] = ()  # what could not be done; the rest was

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
    """Role -> permissions of the v2 tokens, from bucket role -> id."""
    every = [ids[r] for r in ("raw", "rollup_1m", "rollup_1h", "events", "analytics")]
    return {
        "grafana": [_permission("read", b, org_id) for b in every],
        "analytics": [_permission("read", b, org_id) for b in every]
        + [_permission("write", ids["analytics"], org_id)],
        "worker": [_permission("read", b, org_id) for b in every]
        + [_permission("write", ids["events"], org_id)],
    }


def collector_permissions(ids: dict[str, str], org_id: str) -> list[dict[str, object]]:
    """Write on the raw and events buckets: all the collector's v1 credential may do."""
    return [_permission("write", ids["raw"], org_id), _permission("write", ids["events"], org_id)]


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


def _deactivate(api: InfluxApi, auth: dict[str, object], description: str) -> None:
    """Deactivate, not delete: whoever still uses the token keeps its audit trail
    and can be reconfigured; an inactive token is refused (403)."""
    api.json("PATCH", f"/api/v2/authorizations/{auth['id']}",
             what=f"deactivating old token {description!r}", json={"status": "inactive"})


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
    same = [a for a in body.get("authorizations") or [] if a.get("description") == description]
    for auth in same:
        if auth.get("status") == "active" and _same_permissions(auth, permissions):
            if token_file is not None and not token_file.exists() and auth.get("token"):
                write_secret(token_file, str(auth["token"]))
                return None, f"token {description} unchanged (saved to {token_file})"
            return None, f"token {description} unchanged"
    for auth in same:
        if auth.get("status") == "active":
            _deactivate(api, auth, description)
    created = api.json("POST", "/api/v2/authorizations", what=f"creating token {description!r}",
                       json={"orgID": api.org_id(), "description": description,
                             "permissions": permissions})
    token = str(created["token"])
    verb = "replaced" if same else "created"
    if token_file is not None:
        write_secret(token_file, token)
        return token, f"{verb} token {description} (saved to {token_file}, mode 0600)"
    return token, f"{verb} token {description} (printed below; it is shown only once)"


def new_password() -> str:
    """A random password of 43 URL-safe characters (256 bits).

    It has upper case, lower case and digits, so an influxd started with
    ``--strong-passwords`` accepts it too (3 of 4 character classes, 8..72 characters).
    """
    while True:
        password = secrets.token_urlsafe(32)
        if (any(c.isupper() for c in password) and any(c.islower() for c in password)
                and any(c.isdigit() for c in password)):
            return password


def _same_permissions(auth: dict[str, object], permissions: list[dict[str, object]]) -> bool:
    have = auth.get("permissions") or []
    assert isinstance(have, list)
    return sorted(_perm_key(p) for p in have) == sorted(_perm_key(p) for p in permissions)


def _legacy_auths(api: InfluxApi, username: str) -> list[dict[str, object]]:
    try:
        body = api.json("GET", LEGACY_AUTHS, what="listing v1 credentials",
                        params={"orgID": api.org_id()})
    except NotFoundError as exc:
        raise NoV1AuthApiError(
            f"{api.url} has no v1-compatibility authorization API ({LEGACY_AUTHS}, the API "
            f"of `influx v1 auth` in InfluxDB OSS 2.x), which the collector's write-only "
            f"credential needs: {exc}"
        ) from exc
    return [a for a in (body or {}).get("authorizations") or [] if a.get("token") == username]


def _set_password(api: InfluxApi, auth_id: str, username: str, cred_file: Path | None) -> str:
    """A new password on the server, saved to ``cred_file`` first: a credential file
    that cannot be written leaves the server's password as it was, and one the server
    refuses is removed again (the next run must not call it "unchanged")."""
    credential = f"{username}:{new_password()}"
    if cred_file is not None:
        write_secret(cred_file, credential)
    try:
        api.json("POST", f"{LEGACY_AUTHS}/{auth_id}/password",
                 what=f"setting the password of v1 credential {username!r}",
                 json={"password": credential.split(":", 1)[1]})
    except InfluxError:
        if cred_file is not None:
            cred_file.unlink(missing_ok=True)
        raise
    return credential


def _saved(verb: str, username: str, cred_file: Path | None) -> str:
    if cred_file is not None:
        return f"{verb} v1 credential {username} (saved to {cred_file}, mode 0600)"
    return f"{verb} v1 credential {username} (printed below; it is shown only once)"


def ensure_collector_credential(
    api: InfluxApi, username: str, permissions: list[dict[str, object]],
    cred_file: Path | None,
) -> tuple[str | None, str]:
    """Make the collector's v1 write-only credential; returns (new ``user:password`` or
    None, change line).

    An active one with exactly these permissions is kept; if ``cred_file`` is given
    but missing, its password is reset and saved (the old one cannot be read back).
    Any other authorization of this user name is deleted and replaced (the name is
    unique server-wide, so the two cannot coexist).
    """
    same = _legacy_auths(api, username)
    for auth in same:
        if auth.get("status") == "active" and _same_permissions(auth, permissions):
            if cred_file is None or cred_file.exists():
                return None, f"v1 credential {username} unchanged"
            credential = _set_password(api, str(auth["id"]), username, cred_file)
            return credential, _saved("reset password of", username, cred_file)
    for auth in same:
        api.json("DELETE", f"{LEGACY_AUTHS}/{auth['id']}",
                 what=f"deleting old v1 credential {username!r}")
    created = api.json("POST", LEGACY_AUTHS, what=f"creating v1 credential {username!r}",
                       json={"orgID": api.org_id(), "token": username,
                             "description": f"{username}: write-only (gridguard influx setup)",
                             "permissions": permissions})
    try:
        credential = _set_password(api, str(created["id"]), username, cred_file)
    except InfluxError:
        # Without a password nobody can use it; do not leave it for the next run
        # to report as "unchanged".
        api.json("DELETE", f"{LEGACY_AUTHS}/{created['id']}",
                 what=f"deleting v1 credential {username!r} without a password")
        raise
    return credential, _saved("replaced" if same else "created", username, cred_file)


def retire_v2_token(api: InfluxApi, description: str) -> list[str]:
    """Deactivate the active v2 tokens with this description (the collector's of
    earlier setups, which could delete); one change line each."""
    body = api.json("GET", "/api/v2/authorizations", what="listing tokens",
                    params={"orgID": api.org_id()})
    lines = []
    for auth in body.get("authorizations") or []:
        if auth.get("description") == description and auth.get("status") == "active":
            _deactivate(api, auth, description)
            lines.append(f"deactivated old token {description} (replaced by the v1 "
                         f"credential {description})")
    return lines


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
    username = f"{settings.name_prefix}-{COLLECTOR}"
    cred_file = settings.token_dir / f"{COLLECTOR}.token" if settings.token_dir else None
    problems: list[str] = []
    try:
        credential, line = ensure_collector_credential(
            api, username, collector_permissions(ids, org_id), cred_file)
    except NoV1AuthApiError as exc:
        # Everything else can still be set up; an existing v2 collector token is
        # left active, it may be the only one the collector has.
        problems.append(
            f"collector credential not made: {exc}. Give the collector a v2 token with "
            f"write on {settings.raw_bucket} and {settings.events_bucket} instead (it can "
            "also delete there: docs/storage.md)"
        )
        note(f"v1 credential {username} NOT made (no v1 authorization API)")
    else:
        note(line)
        if credential is not None:
            tokens[COLLECTOR] = credential
        for line in retire_v2_token(api, username):
            note(line)
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
    return SetupResult(tuple(changes), ids, task_ids, tokens, tuple(problems))
