"""Helpers for the storage tests against the real influxd (fixtures in tests/influxd_fixture.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.influx_admin.api import InfluxApi
from collector.influx_admin.setup import (
    LEGACY_AUTHS,
    collector_permissions,
    ensure_collector_credential,
)
from collector.sinks.influx.sink import InfluxSinkSettings
from collector.sinks.influx.writer import WriterSettings
from tests.influxd_fixture import InfluxBucket, InfluxServer


@pytest.fixture
def admin_api(influxd: InfluxServer) -> Iterator[InfluxApi]:
    """Our own API client with the operator token (also exercises the typed CSV parser)."""
    api = InfluxApi(influxd.url, influxd.token, influxd.org)
    yield api
    api.close()


@pytest.fixture
def events_bucket(influxd: InfluxServer) -> Iterator[InfluxBucket]:
    """A second fresh bucket, for events."""
    bucket = influxd.create_bucket(f"test-ev-{uuid.uuid4().hex[:12]}")
    yield bucket
    influxd.start()
    influxd.delete_bucket(bucket)


@pytest.fixture
def collector_credential(
    influxd: InfluxServer, admin_api: InfluxApi, influx_bucket: InfluxBucket,
    events_bucket: InfluxBucket,
) -> Iterator[str]:
    """``user:password`` of a v1 write-only credential on ``influx_bucket`` and
    ``events_bucket``, made by the code of ``gridguard influx setup``."""
    username = f"test-collector-{uuid.uuid4().hex[:12]}"
    credential, _ = ensure_collector_credential(
        admin_api, username,
        collector_permissions({"raw": influx_bucket.id, "events": events_bucket.id},
                              influxd.org_id),
        None,
    )
    assert credential is not None
    yield credential
    influxd.start()  # the test may have stopped it
    delete_legacy_auths(influxd, username)


@pytest.fixture(params=["v1", "v2"])
def write_credential(request: pytest.FixtureRequest, influxd: InfluxServer) -> str:
    """Each way the writer authenticates: the collector's v1 credential (``/write``,
    the default of ``gridguard influx setup``) and a v2 token (``/api/v2/write``)."""
    if request.param == "v1":
        return str(request.getfixturevalue("collector_credential"))
    return influxd.token


def delete_legacy_auths(influxd: InfluxServer, username_prefix: str) -> None:
    """Delete the v1 credentials whose user name starts with ``username_prefix``."""
    auths = influxd.api("GET", LEGACY_AUTHS, params={"orgID": influxd.org_id}).json()
    for auth in auths.get("authorizations") or []:
        if str(auth.get("token", "")).startswith(username_prefix):
            influxd.api("DELETE", f"{LEGACY_AUTHS}/{auth['id']}")


def sink_settings(
    influxd: InfluxServer, bucket: str, events_bucket: str, spool: Path,
    token: str | None = None, **writer: float | int,
) -> InfluxSinkSettings:
    defaults: dict[str, float | int] = {"flush_interval_s": 0.05, "backoff_initial_s": 0.05,
                                        "backoff_max_s": 0.5, "retry_attempts": 2}
    defaults.update(writer)
    return InfluxSinkSettings(
        url=influxd.url, org=influxd.org, token=token or influxd.token, site="lab",
        spool_path=spool, bucket=bucket, events_bucket=events_bucket, intervals=None,
        writer=WriterSettings(**defaults),  # type: ignore[arg-type]
    )
