"""Helpers for the storage tests against the real influxd (fixtures in tests/influxd_fixture.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.influx_admin.api import InfluxApi
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


def sink_settings(
    influxd: InfluxServer, bucket: str, events_bucket: str, spool: Path, **writer: float | int
) -> InfluxSinkSettings:
    defaults: dict[str, float | int] = {"flush_interval_s": 0.05, "backoff_initial_s": 0.05,
                                        "backoff_max_s": 0.5, "retry_attempts": 2}
    defaults.update(writer)
    return InfluxSinkSettings(
        url=influxd.url, org=influxd.org, token=influxd.token, site="lab",
        spool_path=spool, bucket=bucket, events_bucket=events_bucket, intervals=None,
        writer=WriterSettings(**defaults),  # type: ignore[arg-type]
    )
