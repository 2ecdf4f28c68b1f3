"""`influx setup` against the real influxd: idempotence, least privilege, the rollup tasks.

The collector's credential is a v1 write-only authorization; what it cannot do is
tried through every door InfluxDB 2.7 has for deleting: ``/api/v2/delete`` and
deleting the bucket (v2 API, every way of presenting the credential), and InfluxQL
``DELETE``/``DROP`` on ``/query``. A read+write v1 credential, given the same
InfluxQL statements, does delete: so the statements are effective and only the
missing permission stops them.
"""

from __future__ import annotations

import stat
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.setup import (
    LEGACY_AUTHS,
    SetupResult,
    SetupSettings,
    ensure_collector_credential,
    run_setup,
)
from collector.influx_admin.tasks import backfill_query, load_templates, render, run_task
from tests.influxd_fixture import InfluxServer
from tests.storage.conftest import delete_legacy_auths

NS = 1_000_000_000


@dataclass(frozen=True)
class Installed:
    settings: SetupSettings
    first: SetupResult
    second: SetupResult
    api: InfluxApi


@pytest.fixture(scope="module")
def installed(influxd: InfluxServer, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[Installed]:
    tag = uuid.uuid4().hex[:8]
    settings = SetupSettings(
        raw_bucket=f"raw-{tag}", rollup_1m_bucket=f"r1m-{tag}", rollup_1h_bucket=f"r1h-{tag}",
        events_bucket=f"ev-{tag}", analytics_bucket=f"an-{tag}",
        token_dir=tmp_path_factory.mktemp("tokens"), name_prefix=f"gg{tag}",
    )
    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    lines1: list[str] = []
    first = run_setup(api, settings, report=lines1.append)
    second = run_setup(api, settings)
    yield Installed(settings, first, second, api)
    influxd.start()
    for task_id in first.task_ids.values():
        influxd.api("DELETE", f"/api/v2/tasks/{task_id}")
    for auth in influxd.api("GET", "/api/v2/authorizations").json()["authorizations"]:
        if str(auth.get("description", "")).startswith(settings.name_prefix):
            influxd.api("DELETE", f"/api/v2/authorizations/{auth['id']}")
    delete_legacy_auths(influxd, settings.name_prefix)
    for bucket_id in first.bucket_ids.values():
        influxd.api("DELETE", f"/api/v2/buckets/{bucket_id}")
    api.close()


def test_first_run_creates_second_changes_nothing(installed: Installed) -> None:
    s = installed.settings
    assert f"created bucket {s.raw_bucket} (retention 7 d)" in installed.first.changes
    assert f"created bucket {s.rollup_1m_bucket} (retention 90 d)" in installed.first.changes
    assert f"created bucket {s.rollup_1h_bucket} (retention 1825 d)" in installed.first.changes
    assert f"created task {s.name_prefix}-rollup_1m" in installed.first.changes
    assert (f"created v1 credential {s.name_prefix}-collector (saved to "
            f"{s.token_dir}/collector.token, mode 0600)") in installed.first.changes
    assert set(installed.first.tokens) == {"collector", "grafana", "analytics", "worker"}
    assert not installed.second.changed
    assert f"v1 credential {s.name_prefix}-collector unchanged" in installed.second.changes
    assert f"task {s.name_prefix}-rollup_1m unchanged" in installed.second.changes
    assert f"bucket {s.raw_bucket} unchanged" in installed.second.changes
    assert installed.second.tokens == {}


def test_retention_change_is_applied(installed: Installed, influxd: InfluxServer) -> None:
    s = installed.settings
    changed = SetupSettings(**{**{f: getattr(s, f) for f in s.__dataclass_fields__},
                               "events_retention_s": 400 * 86_400})
    result = run_setup(installed.api, changed)
    assert f"updated bucket {s.events_bucket} retention 1825 d -> 400 d" in result.changes
    bucket = influxd.api("GET", "/api/v2/buckets", params={"name": s.events_bucket}).json()
    assert bucket["buckets"][0]["retentionRules"][0]["everySeconds"] == 400 * 86_400
    assert not run_setup(installed.api, changed).changed
    run_setup(installed.api, s)  # back, for the other tests


def _token(installed: Installed, role: str) -> str:
    assert installed.settings.token_dir is not None
    path = installed.settings.token_dir / f"{role}.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text().strip()


def _write(influxd: InfluxServer, token: str, bucket: str) -> int:
    return requests.post(
        f"{influxd.url}/api/v2/write",
        params={"org": influxd.org, "bucket": bucket, "precision": "ms"},
        data=f"electrical,circuit=perm current_rms_a=1.0 {int(time.time() * 1000)}",
        headers={"Authorization": f"Token {token}"}, timeout=30,
    ).status_code


def _read(influxd: InfluxServer, token: str, bucket: str) -> int:
    return requests.post(
        f"{influxd.url}/api/v2/query", params={"org": influxd.org},
        json={"query": f'from(bucket: "{bucket}") |> range(start: -1h) |> limit(n: 1)'},
        headers={"Authorization": f"Token {token}", "Accept": "application/csv"}, timeout=30,
    ).status_code


def _v1_write(influxd: InfluxServer, credential: str, bucket: str, line: str) -> int:
    user, _, password = credential.partition(":")
    return requests.post(
        f"{influxd.url}/write", params={"db": bucket, "precision": "ms"}, data=line,
        auth=(user, password), timeout=30,
    ).status_code


def _influxql(influxd: InfluxServer, credential: str, bucket: str, statement: str,
              **params: str) -> tuple[int, str]:
    user, _, password = credential.partition(":")
    resp = requests.post(f"{influxd.url}/query", params={"db": bucket, "q": statement, **params},
                         auth=(user, password), timeout=30)
    return resp.status_code, resp.text


def _line(measurement: str) -> str:
    return f"{measurement},circuit=perm current_rms_a=1.0 {int(time.time() * 1000)}"


def _count(influxd: InfluxServer, bucket: str, measurement: str) -> int:
    """Points of ``measurement`` in the last hour, read with the operator token."""
    return len(influxd.query(f'from(bucket: "{bucket}") |> range(start: -1h) '
                             f'|> filter(fn: (r) => r._measurement == "{measurement}")'))


def _v2_doors(credential: str) -> list[dict[str, Any]]:
    """Every way a v2 endpoint could take the credential: as requests keyword arguments."""
    user, _, password = credential.partition(":")
    return [{"headers": {"Authorization": f"Token {credential}"}},
            {"headers": {"Authorization": f"Token {password}"}},
            {"auth": (user, password)}]


def test_token_files_match_created_tokens(installed: Installed, influxd: InfluxServer) -> None:
    for role in ("grafana", "analytics", "worker"):
        assert _token(installed, role) == installed.first.tokens[role]
        assert ":" not in _token(installed, role)  # what the transport tells them apart by
    # (later tests may give the collector a new password: its file holds the current one)
    user, sep, password = _token(installed, "collector").partition(":")
    assert (user, sep) == (f"{installed.settings.name_prefix}-collector", ":")
    assert installed.first.tokens["collector"].startswith(f"{user}:")
    assert len(password) == 43
    assert _v1_write(influxd, _token(installed, "collector"), installed.settings.raw_bucket,
                     _line("perm_file")) == 204


def test_collector_credential_writes_raw_and_events_only(
    installed: Installed, influxd: InfluxServer
) -> None:
    s, cred = installed.settings, _token(installed, "collector")
    assert _v1_write(influxd, cred, s.raw_bucket, _line("perm_w")) == 204
    assert _v1_write(influxd, cred, s.events_bucket, _line("perm_w")) == 204
    assert _count(influxd, s.raw_bucket, "perm_w") == 1
    assert _count(influxd, s.events_bucket, "perm_w") == 1
    for other in (s.rollup_1m_bucket, s.rollup_1h_bucket, s.analytics_bucket):
        assert _v1_write(influxd, cred, other, _line("perm_w")) == 404  # "no dbrp mapping"
        assert _count(influxd, other, "perm_w") == 0
    for door in _v2_doors(cred):  # v2 API: nothing at all
        resp = requests.post(f"{influxd.url}/api/v2/write", timeout=30, data=_line("perm_w"),
                             params={"org": influxd.org, "bucket": s.raw_bucket}, **door)
        assert resp.status_code == 401
        resp = requests.post(f"{influxd.url}/api/v2/buckets", timeout=30,
                             json={"orgID": influxd.org_id, "name": "evil"}, **door)
        assert resp.status_code == 401
    assert _count(influxd, s.raw_bucket, "perm_w") == 1


def test_collector_credential_cannot_read(installed: Installed, influxd: InfluxServer) -> None:
    s, cred = installed.settings, _token(installed, "collector")
    assert _v1_write(influxd, cred, s.raw_bucket, _line("perm_r")) == 204
    for door in _v2_doors(cred):
        resp = requests.post(
            f"{influxd.url}/api/v2/query", params={"org": influxd.org}, timeout=30,
            json={"query": f'from(bucket: "{s.raw_bucket}") |> range(start: -1h)'}, **door)
        assert resp.status_code == 401
    status, text = _influxql(influxd, cred, s.raw_bucket, "SELECT * FROM perm_r")
    assert status == 200
    assert f"database not found: {s.raw_bucket}" in text
    assert "perm" not in text.replace(s.raw_bucket, "")  # no series, no values
    assert _count(influxd, s.raw_bucket, "perm_r") == 1  # there was something to read


@pytest.mark.parametrize("statement", ["DELETE FROM perm_d", "DROP MEASUREMENT perm_d",
                                       "DELETE FROM perm_d WHERE time > 0"])
@pytest.mark.parametrize("rp", [None, "autogen"])
def test_collector_credential_cannot_delete_with_influxql(
    installed: Installed, influxd: InfluxServer, statement: str, rp: str | None,
) -> None:
    s, cred = installed.settings, _token(installed, "collector")
    assert _v1_write(influxd, cred, s.raw_bucket, _line("perm_d")) == 204
    before = _count(influxd, s.raw_bucket, "perm_d")
    assert before >= 1
    status, text = _influxql(influxd, cred, s.raw_bucket, statement,
                             **({"rp": rp} if rp else {}))
    assert status == 200  # InfluxQL reports per statement, in the body
    assert f"default retention policy not set for: {s.raw_bucket}" in text
    assert _count(influxd, s.raw_bucket, "perm_d") == before


def test_collector_credential_cannot_delete_through_the_v2_api(
    installed: Installed, influxd: InfluxServer
) -> None:
    s, cred = installed.settings, _token(installed, "collector")
    assert _v1_write(influxd, cred, s.events_bucket, _line("perm_d2")) == 204
    bucket_id = installed.first.bucket_ids["events"]
    for door in _v2_doors(cred):
        resp = requests.post(
            f"{influxd.url}/api/v2/delete", params={"org": influxd.org, "bucket": s.events_bucket},
            json={"start": "2000-01-01T00:00:00Z", "stop": "2100-01-01T00:00:00Z"},
            timeout=30, **door)
        assert resp.status_code == 401
        resp = requests.delete(f"{influxd.url}/api/v2/buckets/{bucket_id}", timeout=30, **door)
        assert resp.status_code == 401
    assert _count(influxd, s.events_bucket, "perm_d2") == 1


def test_read_write_v1_credential_does_delete_with_influxql(
    installed: Installed, influxd: InfluxServer
) -> None:
    # The control of the test above: with read added, the same statement deletes.
    s, ids = installed.settings, installed.first.bucket_ids
    perms: list[dict[str, object]] = [
        {"action": action, "resource": {"type": "buckets", "id": ids["raw"],
                                        "orgID": influxd.org_id}}
        for action in ("read", "write")]
    rw, _ = ensure_collector_credential(installed.api, f"{s.name_prefix}-rw-control", perms, None)
    assert rw is not None
    assert _v1_write(influxd, rw, s.raw_bucket, _line("perm_ctl")) == 204
    assert _count(influxd, s.raw_bucket, "perm_ctl") == 1
    status, text = _influxql(influxd, rw, s.raw_bucket, "DELETE FROM perm_ctl")
    assert status == 200
    assert "error" not in text
    assert _count(influxd, s.raw_bucket, "perm_ctl") == 0


def test_v2_collector_token_of_an_earlier_setup_is_deactivated(
    installed: Installed, influxd: InfluxServer
) -> None:
    s, ids = installed.settings, installed.first.bucket_ids
    old = influxd.api("POST", "/api/v2/authorizations", json={
        "orgID": influxd.org_id, "description": f"{s.name_prefix}-collector",
        "permissions": [{"action": "write", "resource": {"type": "buckets", "id": ids["raw"],
                                                         "orgID": influxd.org_id}}],
    }).json()
    assert _write(influxd, old["token"], s.raw_bucket) == 204
    result = run_setup(installed.api, s)
    assert result.changes.count(f"deactivated old token {s.name_prefix}-collector (replaced by "
                                f"the v1 credential {s.name_prefix}-collector)") == 1
    now = influxd.api("GET", f"/api/v2/authorizations/{old['id']}").json()
    assert now["status"] == "inactive"
    assert _write(influxd, old["token"], s.raw_bucket) == 403  # influxd: token is inactive
    assert f"v1 credential {s.name_prefix}-collector unchanged" in result.changes
    assert not run_setup(installed.api, s).changed


def test_missing_credential_file_resets_the_password(
    installed: Installed, influxd: InfluxServer
) -> None:
    s = installed.settings
    assert s.token_dir is not None
    old = _token(installed, "collector")
    (s.token_dir / "collector.token").unlink()
    result = run_setup(installed.api, s)
    assert (f"reset password of v1 credential {s.name_prefix}-collector (saved to "
            f"{s.token_dir}/collector.token, mode 0600)") in result.changes
    new = _token(installed, "collector")
    assert result.tokens == {"collector": new}
    assert new.partition(":")[0] == old.partition(":")[0]
    assert _v1_write(influxd, old, s.raw_bucket, _line("perm_pw")) == 401
    assert _v1_write(influxd, new, s.raw_bucket, _line("perm_pw")) == 204
    assert not run_setup(installed.api, s).changed


def test_unwritable_credential_file_leaves_the_password_alone(
    installed: Installed, influxd: InfluxServer, tmp_path: Path
) -> None:
    # a reset whose new password cannot be saved must not lock out the running
    # collector, which still holds the old one
    s = installed.settings
    working = _token(installed, "collector")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    unwritable = SetupSettings(**{**{f: getattr(s, f) for f in s.__dataclass_fields__},
                                  "token_dir": blocker / "tokens"})
    with pytest.raises(OSError, match="not-a-folder"):
        run_setup(installed.api, unwritable)
    assert not (blocker / "tokens" / "collector.token").exists()
    assert _v1_write(influxd, working, s.raw_bucket, _line("perm_keep")) == 204


def test_credential_with_other_permissions_is_replaced(
    installed: Installed, influxd: InfluxServer
) -> None:
    s, ids = installed.settings, installed.first.bucket_ids
    username = f"{s.name_prefix}-collector"
    legacy = influxd.api("GET", LEGACY_AUTHS, params={"orgID": influxd.org_id}).json()
    (current,) = [a for a in legacy["authorizations"] if a["token"] == username]
    influxd.api("DELETE", f"{LEGACY_AUTHS}/{current['id']}")
    # as if an operator had widened it by hand: read on raw as well
    perms: list[dict[str, object]] = [
        {"action": action, "resource": {"type": "buckets", "id": ids["raw"],
                                        "orgID": influxd.org_id}}
        for action in ("read", "write")]
    wide, _ = ensure_collector_credential(installed.api, username, perms, None)
    assert wide is not None
    result = run_setup(installed.api, s)
    assert (f"replaced v1 credential {username} (saved to {s.token_dir}/collector.token, "
            "mode 0600)") in result.changes
    legacy = influxd.api("GET", LEGACY_AUTHS, params={"orgID": influxd.org_id}).json()
    (now,) = [a for a in legacy["authorizations"] if a["token"] == username]
    assert sorted((p["action"], p["resource"]["id"]) for p in now["permissions"]) == sorted(
        [("write", ids["raw"]), ("write", ids["events"])])
    assert _v1_write(influxd, wide, s.raw_bucket, _line("perm_wide")) == 401
    assert _v1_write(influxd, _token(installed, "collector"), s.events_bucket,
                     _line("perm_wide")) == 204
    assert not run_setup(installed.api, s).changed


def test_name_prefix_must_not_contain_a_colon() -> None:
    with pytest.raises(ValueError, match="name_prefix: must be a non-empty name without ':'"):
        SetupSettings(name_prefix="grid:guard")


def test_grafana_token_reads_everything_writes_nothing(
    installed: Installed, influxd: InfluxServer
) -> None:
    s, tok = installed.settings, _token(installed, "grafana")
    for role, (bucket, _) in s.buckets().items():
        assert _read(influxd, tok, bucket) == 200, role
        assert _write(influxd, tok, bucket) in (401, 403, 404), role
    delete = requests.post(
        f"{influxd.url}/api/v2/delete", params={"org": influxd.org, "bucket": s.raw_bucket},
        json={"start": "2000-01-01T00:00:00Z", "stop": "2000-01-02T00:00:00Z"},
        headers={"Authorization": f"Token {tok}"}, timeout=30,
    )
    assert delete.status_code in (401, 403, 404)


def test_worker_token_reads_everything_writes_only_events(
    installed: Installed, influxd: InfluxServer
) -> None:
    s, tok = installed.settings, _token(installed, "worker")
    for role, (bucket, _) in s.buckets().items():
        assert _read(influxd, tok, bucket) == 200, role
        expected = (204,) if role == "events" else (401, 403, 404)
        assert _write(influxd, tok, bucket) in expected, role


def test_analytics_token_writes_only_its_bucket(
    installed: Installed, influxd: InfluxServer
) -> None:
    s, tok = installed.settings, _token(installed, "analytics")
    assert _write(influxd, tok, s.analytics_bucket) == 204
    assert _write(influxd, tok, s.raw_bucket) in (401, 403, 404)
    assert _read(influxd, tok, s.rollup_1h_bucket) == 200


# -- the rollup tasks ---------------------------------------------------------


def _seed_minute(api: InfluxApi, bucket: str, t0_ns: int, base: float, *, fence: bool) -> None:
    """20 records 3 s apart in the minute starting at t0, values known in closed form."""
    lines = []
    for k in range(20):
        t_ms = (t0_ns + k * 3 * NS) // 1_000_000
        tags = "electrical,circuit=c1,interval=150c,phase=A,site=lab"
        lines.append(
            f"{tags} voltage_rms_v={base + 0.1 * k},voltage_peak_v={325.0 + k},"
            f"energy_import_wh={1000.0 + 2 * k},missing_samples={float(k % 3)},"
            f"samples_per_cycle={60.0 if k == 7 else 64.0},flagged={'true' if k == 5 else 'false'},"
            f"frequency_locked={'false' if (k == 9 and base < 235) else 'true'},"
            f'calibration_id="cal-1" {t_ms}'
        )
        lines.append(f"harmonics,circuit=c1,interval=150c,phase=A,site=lab "
                     f"voltage_h3_v={2.0 + 0.05 * k} {t_ms}")
    if fence:  # 1 ms before the minute: must not leak into it
        lines.append(f"electrical,circuit=c1,interval=150c,phase=A,site=lab "
                     f"voltage_rms_v=999.0,voltage_peak_v=999.0 {t0_ns // 1_000_000 - 1}")
    api.write_lines(bucket, lines)


def _fields(api: InfluxApi, bucket: str, t_ns: int) -> dict[str, object]:
    rows = api.query(
        f'from(bucket: "{bucket}") |> range(start: time(v: {t_ns}), stop: time(v: {t_ns + 1}))'
    )
    return {str(r["_field"]): r["_value"] for r in rows if r.get("circuit") == "c1"}


def test_rollup_tasks_compute_the_documented_aggregates(installed: Installed) -> None:
    s, api = installed.settings, installed.api
    hour = (time.time_ns() // (3600 * NS)) * 3600 * NS - 3600 * NS  # last full hour
    t0, t1 = hour + 10 * 60 * NS, hour + 11 * 60 * NS
    _seed_minute(api, s.raw_bucket, t0, 230.0, fence=True)
    _seed_minute(api, s.raw_bucket, t1, 240.0, fence=False)
    run_task(api, installed.first.task_ids["rollup_1m"], t0 + 60 * NS)
    run_task(api, installed.first.task_ids["rollup_1m"], t1 + 60 * NS)

    m1 = _fields(api, s.rollup_1m_bucket, t0)
    mean_v = sum(230.0 + 0.1 * k for k in range(20)) / 20  # 230.95
    assert m1["voltage_rms_v"] == pytest.approx(230.95, abs=1e-9)
    assert m1["voltage_rms_v"] == pytest.approx(mean_v, rel=1e-15)
    assert m1["voltage_peak_v"] == 344.0  # max
    assert m1["energy_import_wh"] == 1038.0  # last counter value
    assert m1["missing_samples"] == 19.0  # sum of k % 3 over k = 0..19
    assert m1["samples_per_cycle"] == 60.0  # min
    assert m1["flagged"] is True  # any
    assert m1["frequency_locked"] is False  # all: one unlocked record in the minute
    assert m1["calibration_id"] == "cal-1"
    assert m1["voltage_h3_v"] == pytest.approx(2.475, abs=1e-12)  # mean
    m2 = _fields(api, s.rollup_1m_bucket, t1)
    assert m2["voltage_rms_v"] == pytest.approx(240.95)
    assert m2["frequency_locked"] is True  # every record locked

    run_task(api, installed.first.task_ids["rollup_1h"], hour + 3600 * NS)
    h1 = _fields(api, s.rollup_1h_bucket, hour)
    # mean of the two minute means; the fence minute was never rolled up
    assert h1["voltage_rms_v"] == pytest.approx((230.95 + 240.95) / 2)
    assert h1["voltage_peak_v"] == 344.0
    assert h1["energy_import_wh"] == 1038.0  # last of the hour (t1's counter restarts)
    assert h1["missing_samples"] == 38.0
    assert h1["flagged"] is True
    assert h1["frequency_locked"] is False


def test_backfill_recomputes_a_replayed_range(installed: Installed) -> None:
    s, api = installed.settings, installed.api
    hour = (time.time_ns() // (3600 * NS)) * 3600 * NS - 3600 * NS
    t2 = hour + 30 * 60 * NS  # as if replayed from the spool after its task run
    _seed_minute(api, s.raw_bucket, t2, 250.0, fence=False)
    template = load_templates()["rollup_1m"]
    flux = render(template, {"task_name": "x", "raw_bucket": s.raw_bucket,
                             "rollup_1m_bucket": s.rollup_1m_bucket,
                             "rollup_1h_bucket": s.rollup_1h_bucket})
    api.query_csv(backfill_query(flux, t2, t2 + 60 * NS))
    m1 = _fields(api, s.rollup_1m_bucket, t2)
    assert m1["voltage_rms_v"] == pytest.approx(250.95)
    assert m1["voltage_peak_v"] == 344.0


class _HidePrivateApi(BaseHTTPRequestHandler):
    """Forwards to the real influxd, except /private/... which is 404, as on a server
    without v1 authorizations (InfluxDB Cloud)."""

    upstream = ""

    def _forward(self) -> None:
        if self.path.startswith("/private/"):
            body = b'{"code":"not found","message":"path not found"}'
            self.send_response(404)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            resp = requests.request(
                self.command, self.upstream + self.path,
                data=self.rfile.read(length) if length else None,
                headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                timeout=30)
            body = resp.content
            self.send_response(resp.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_without_the_v1_api_everything_else_is_still_set_up(
    influxd: InfluxServer, tmp_path: Path
) -> None:
    handler = type("Handler", (_HidePrivateApi,), {"upstream": influxd.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tag = uuid.uuid4().hex[:8]
    settings = SetupSettings(
        raw_bucket=f"raw-{tag}", rollup_1m_bucket=f"r1m-{tag}", rollup_1h_bucket=f"r1h-{tag}",
        events_bucket=f"ev-{tag}", analytics_bucket=f"an-{tag}", token_dir=tmp_path,
        name_prefix=f"gg{tag}")
    api = InfluxApi(f"http://127.0.0.1:{server.server_address[1]}", influxd.token, influxd.org)
    try:
        result = run_setup(api, settings)
    finally:
        server.shutdown()
        api.close()
        for auth in influxd.api("GET", "/api/v2/authorizations").json()["authorizations"]:
            if str(auth.get("description", "")).startswith(settings.name_prefix):
                influxd.api("DELETE", f"/api/v2/authorizations/{auth['id']}")
        for task in influxd.api("GET", "/api/v2/tasks").json()["tasks"]:
            if task["name"].startswith(settings.name_prefix):
                influxd.api("DELETE", f"/api/v2/tasks/{task['id']}")
        for name, _ in settings.buckets().values():
            for b in influxd.api("GET", "/api/v2/buckets", params={"name": name}).json()[
                    "buckets"]:
                influxd.api("DELETE", f"/api/v2/buckets/{b['id']}")
    (problem,) = result.problems
    assert problem.startswith("collector credential not made")
    assert LEGACY_AUTHS in problem
    assert f"v1 credential gg{tag}-collector NOT made (no v1 authorization API)" in result.changes
    assert set(result.tokens) == {"grafana", "analytics", "worker"}
    assert set(result.task_ids) == {"rollup_1m", "rollup_1h"}
    assert not (tmp_path / "collector.token").exists()
