"""Tests of the real-influxd test harness (tests/influxd_fixture.py).

They need an influxd 2.7 binary (see docs/influxd.md); without one they are skipped
locally and fail in CI.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.influxd_fixture import (
    InfluxBucket,
    InfluxServer,
    parse_annotated_csv,
)

# 1700000000 s = 2023-11-14T22:13:20Z; nanosecond part chosen to catch rounding.
POINT_NS = 1_700_000_000_123_456_789
POINT_TIME = "2023-11-14T22:13:20.123456789Z"
RANGE = "start: 2023-11-14T00:00:00Z, stop: 2023-11-15T00:00:00Z"


def _fields(server: InfluxServer, bucket: str, measurement: str) -> dict[str, dict[str, str]]:
    rows = server.query(
        f'from(bucket: "{bucket}") |> range({RANGE}) '
        f'|> filter(fn: (r) => r._measurement == "{measurement}")'
    )
    return {row["_field"]: row for row in rows}


def test_server_is_healthy_and_2_7(influxd: InfluxServer) -> None:
    health = requests.get(f"{influxd.url}/health", timeout=10).json()
    assert health["status"] == "pass"
    assert str(health["version"]).lstrip("v").startswith("2.7.")
    assert influxd.url.startswith("http://127.0.0.1:")
    assert influxd.org == "gridguard-test"
    assert influxd.pid is not None
    # The generated operator token works; an unauthenticated request does not.
    me = influxd.api("GET", "/api/v2/orgs", params={"org": influxd.org})
    assert me.status_code == 200
    assert me.json()["orgs"][0]["id"] == influxd.org_id
    anon = requests.get(f"{influxd.url}/api/v2/orgs", timeout=10)
    assert anon.status_code == 401


def test_point_round_trip(influxd: InfluxServer, influx_bucket: InfluxBucket) -> None:
    influxd.write(
        influx_bucket.name,
        f"mains,site=lab,phase=L1 v_rms=230.125,thd=0.031,samples=4096i,"
        f'ok=true,note="dip \\"A\\"" {POINT_NS}\n',
    )
    fields = _fields(influxd, influx_bucket.name, "mains")
    assert sorted(fields) == ["note", "ok", "samples", "thd", "v_rms"]
    assert {name: row["_value"] for name, row in fields.items()} == {
        "v_rms": "230.125",
        "thd": "0.031",
        "samples": "4096",
        "ok": "true",
        "note": 'dip "A"',
    }
    for row in fields.values():
        assert row["_time"] == POINT_TIME
        assert row["site"] == "lab"
        assert row["phase"] == "L1"


def test_stop_start_keeps_data(influxd: InfluxServer, influx_bucket: InfluxBucket) -> None:
    influxd.write(influx_bucket.name, f"mains,site=lab v_rms=229.5 {POINT_NS}")
    url = influxd.url
    influxd.stop()
    assert not influxd.is_running
    assert influxd.pid is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health", timeout=5)
    influxd.start()
    assert influxd.url == url
    assert _fields(influxd, influx_bucket.name, "mains")["v_rms"]["_value"] == "229.5"


def test_kill_keeps_acknowledged_writes(influxd: InfluxServer, influx_bucket: InfluxBucket) -> None:
    influxd.write(influx_bucket.name, f"mains,site=lab v_rms=231.0 {POINT_NS}")
    influxd.kill()  # no graceful shutdown: the WAL must have the point
    influxd.start()
    assert _fields(influxd, influx_bucket.name, "mains")["v_rms"]["_value"] == "231"


def test_flux_task_forced_run(influxd: InfluxServer, influx_bucket: InfluxBucket) -> None:
    influxd.write(
        influx_bucket.name,
        "\n".join(
            f"mains,site=lab v_rms={v} {POINT_NS + i * 1_000_000_000}"
            for i, v in enumerate((229.0, 231.0))
        ),
    )
    target = influxd.create_bucket(f"{influx_bucket.name}-mean")
    try:
        flux = (
            'option task = {name: "gridguard-test-mean", every: 1h}\n'
            f'from(bucket: "{influx_bucket.name}") |> range({RANGE})\n'
            '  |> filter(fn: (r) => r._field == "v_rms") |> mean()\n'
            f'  |> set(key: "_measurement", value: "mains_mean")\n'
            "  |> map(fn: (r) => ({r with _time: 2023-11-14T22:00:00Z}))\n"
            f'  |> to(bucket: "{target.name}")\n'
        )
        created = influxd.api("POST", "/api/v2/tasks", json={"orgID": influxd.org_id, "flux": flux})
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        run = influxd.api("POST", f"/api/v2/tasks/{task_id}/runs", json={})
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = influxd.api("GET", f"/api/v2/tasks/{task_id}/runs/{run_id}").json()["status"]
            if status not in ("scheduled", "started"):
                break
            time.sleep(0.2)
        logs = influxd.api("GET", f"/api/v2/tasks/{task_id}/runs/{run_id}/logs").text
        assert status == "success", logs
        rows = influxd.query(f'from(bucket: "{target.name}") |> range({RANGE})')
        assert [(r["_measurement"], r["_field"], r["_value"]) for r in rows] == [
            ("mains_mean", "v_rms", "230")
        ]
        assert influxd.api("DELETE", f"/api/v2/tasks/{task_id}").status_code == 204
    finally:
        influxd.delete_bucket(target)


def test_parse_annotated_csv_multiple_tables() -> None:
    text = (
        "#datatype,string,long,string,double\r\n"
        "#group,false,false,true,false\r\n"
        "#default,_result,,,\r\n"
        ",result,table,_field,_value\r\n"
        ",,0,a,1.5\r\n"
        ",,0,a,2\r\n"
        "\r\n"
        "#datatype,string,long,string,string\r\n"
        "#group,false,false,true,false\r\n"
        "#default,_result,,,\r\n"
        ",result,table,_field,_value\r\n"
        ',,1,b,"x,y"\r\n'
        "\r\n"
    )
    assert parse_annotated_csv(text) == [
        {"result": "", "table": "0", "_field": "a", "_value": "1.5"},
        {"result": "", "table": "0", "_field": "a", "_value": "2"},
        {"result": "", "table": "1", "_field": "b", "_value": "x,y"},
    ]
