"""`gridguard export`, `status` and `stats` against the real influxd.

Data is written through the sink from Metrics built here; the exported files are
compared with those Metrics (not with another query), and stats with closed-form sums.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import typer
import yaml
from openpyxl import load_workbook
from typer.testing import CliRunner

from collector.cli.export_cmd import register as register_export
from collector.cli.influx_cmd import register as register_influx
from collector.influx_admin.api import InfluxApi
from collector.model import Metrics
from collector.sinks.influx.sink import InfluxSink
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.storage.conftest import delete_legacy_auths, sink_settings

NS = 1_000_000_000
T0_NS = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
START, END = "2023-11-14T22:00:00Z", "2023-11-14T23:00:00Z"
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "gridguard.example.yaml"


def _records() -> list[Metrics]:
    out = []
    for k in range(6):
        for circuit, amps in (("kitchen", 4.5), ("pv", -9.75)):
            out.append(Metrics(
                time_ns=T0_NS + k * 3 * NS, interval="150c", channel=circuit, phase="A",
                fields={"voltage_rms_v": 230.0 + k / 4, "current_rms_a": abs(amps) + k,
                        "power_active_w": amps * 230.0, "current_thd_pct": None,
                        "current_h3_a": 0.5 + k / 16},
                flagged=(k == 2),
            ))
    return out


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register_influx(app)
    register_export(app)
    return app


@pytest.fixture
def seeded(influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
           tmp_path: Path) -> list[Metrics]:
    sink = InfluxSink(sink_settings(influxd, influx_bucket.name, events_bucket.name,
                                    tmp_path / "spool.sqlite"))
    records = _records()
    sink.publish(records, [])
    assert sink.flush(30)
    sink.close()
    return records


def _config(tmp_path: Path, influxd: InfluxServer, buckets: dict[str, str]) -> Path:
    """The example config with an `influx` section for the test server (token by env)."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["influx"] = {"url": influxd.url, "org": influxd.org,
                      "token": {"env": "GG_TEST_INFLUX_TOKEN"}, "buckets": buckets,
                      "spool": {"path": str(tmp_path / "spooldir")}}
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _cli(app: typer.Typer, influxd: InfluxServer, cfg: Path, *args: str) -> str:
    # Connection only from the config file (plus its token variable): no --url/--token.
    result = CliRunner().invoke(
        app, [*args, "--config", str(cfg)],
        env={"GG_TEST_INFLUX_TOKEN": influxd.token, "COLUMNS": "250",
             "GRIDGUARD_INFLUX_URL": None, "GRIDGUARD_INFLUX_TOKEN": None,
             "GRIDGUARD_INFLUX_ORG": None},
    )
    assert result.exit_code == 0, result.output
    return result.output


def _export(app: typer.Typer, influxd: InfluxServer, bucket: str, fmt: str, out: Path,
            *extra: str) -> None:
    cfg = _config(out.parent, influxd, {"raw": bucket})
    _cli(app, influxd, cfg, "export", "--start", START, "--end", END, "--format", fmt,
         "--output", str(out), *extra)


def _expected_rows(records: list[Metrics]) -> dict[tuple[str, str, int], dict[str, object]]:
    out: dict[tuple[str, str, int], dict[str, object]] = {}
    for m in records:
        out[("electrical", m.channel, m.time_ns)] = {
            "voltage_rms_v": m.fields["voltage_rms_v"], "current_rms_a": m.fields["current_rms_a"],
            "power_active_w": m.fields["power_active_w"], "flagged": m.flagged}
        out[("harmonics", m.channel, m.time_ns)] = {"current_h3_a": m.fields["current_h3_a"]}
    return out


def _iso_to_ns(text: str) -> int:
    whole, frac = text[:-1].split(".")
    return int(datetime.fromisoformat(whole + "+00:00").timestamp()) * NS + int(frac)


def test_export_csv(app: typer.Typer, influxd: InfluxServer, influx_bucket: InfluxBucket,
                    seeded: list[Metrics], tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    _export(app, influxd, influx_bucket.name, "csv", out)
    with out.open() as f:
        rows = list(csv.DictReader(f))
    expected = _expected_rows(seeded)
    assert len(rows) == len(expected)
    for row in rows:
        key = (row["measurement"], row["circuit"], _iso_to_ns(row["time"]))
        assert row["site"] == "lab"
        assert row["interval"] == "150c"
        for name, value in expected[key].items():
            text = row[name]
            got: object = text == "true" if isinstance(value, bool) else float(text)
            assert got == value, (key, name)
        assert "current_thd_pct" not in row  # never stored, so no column
    assert list(rows[0])[:6] == ["time", "measurement", "site", "circuit", "phase", "interval"]


def test_export_json_filtered(app: typer.Typer, influxd: InfluxServer,
                              influx_bucket: InfluxBucket, seeded: list[Metrics],
                              tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    _export(app, influxd, influx_bucket.name, "json", out, "--circuits", "pv",
            "--fields", "current_rms_a,power_active_w")
    rows = json.loads(out.read_text())
    expected = {k: v for k, v in _expected_rows(seeded).items()
                if k[1] == "pv" and k[0] == "electrical"}
    assert len(rows) == len(expected) == 6
    for row in rows:
        want = expected[(row["measurement"], row["circuit"], _iso_to_ns(row["time"]))]
        assert row["current_rms_a"] == want["current_rms_a"]
        assert row["power_active_w"] == want["power_active_w"]
        assert "voltage_rms_v" not in row


def test_export_xlsx(app: typer.Typer, influxd: InfluxServer, influx_bucket: InfluxBucket,
                     seeded: list[Metrics], tmp_path: Path) -> None:
    out = tmp_path / "x.xlsx"
    _export(app, influxd, influx_bucket.name, "xlsx", out)
    ws = load_workbook(out, read_only=True)["gridguard"]
    table = list(ws.iter_rows(values_only=True))
    header, body = list(table[0]), table[1:]
    expected = _expected_rows(seeded)
    assert len(body) == len(expected)
    for values in body:
        cells = list(values) + [None] * (len(header) - len(values))  # trailing blanks trimmed
        row = dict(zip(header, cells, strict=True))
        when = row["time (UTC)"]
        assert isinstance(when, datetime)
        t_ns = round((when - datetime(1970, 1, 1)).total_seconds() * 1000) * 1_000_000
        for name, value in expected[(str(row["measurement"]), str(row["circuit"]), t_ns)].items():
            assert row[name] == value, name


def test_status_and_stats(app: typer.Typer, influxd: InfluxServer,
                          influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
                          tmp_path: Path) -> None:
    # recent data: energy counters rising by known amounts
    sink = InfluxSink(sink_settings(influxd, influx_bucket.name, events_bucket.name,
                                    tmp_path / "spool.sqlite"))
    now = time.time_ns() - 120 * NS
    records = [
        Metrics(now + k * 3 * NS, "150c", "heat", "A",
                {"voltage_rms_v": 231.0, "current_rms_a": 10.0, "power_active_w": 2000.0 + k,
                 "energy_import_wh": 5000.0 + 1.5 * k, "energy_export_wh": 0.0})
        for k in range(10)
    ]
    sink.publish(records, [])
    assert sink.flush(30)
    sink.close()
    spool = tmp_path / "spool.sqlite"
    cfg = _config(tmp_path, influxd, {"raw": influx_bucket.name})
    output = _cli(app, influxd, cfg, "status", "--spool", str(spool))
    assert "heat" in output
    assert "2009.00" in output  # the last power value
    assert "0 points" in output  # spool empty
    assert "spooldir/influx-spool.sqlite: none" in _cli(app, influxd, cfg, "status")

    output = _cli(app, influxd, cfg, "stats", "--days", "1")
    line = next(x for x in output.splitlines() if "heat" in x)
    cells = [c.strip() for c in line.split("│") if c.strip()]
    # import: 9 steps of 1.5 Wh = 13.5 Wh; peak 2009 W; mean 2004.5 W
    assert cells == ["heat", "A", "13.5", "0.0", "2009.0", "2004.5"]


def test_setup_cli_is_idempotent(app: typer.Typer, influxd: InfluxServer, tmp_path: Path,
                                 admin_api: InfluxApi) -> None:
    tag = uuid.uuid4().hex[:6]
    prefix = f"cli{tag}"
    buckets = {"raw": f"cr-{tag}", "rollup_1m": f"c1m-{tag}", "rollup_1h": f"c1h-{tag}",
               "events": f"cev-{tag}", "analytics": f"can-{tag}"}
    cfg = _config(tmp_path, influxd, buckets)
    args = ["influx", "setup", "--token-dir", str(tmp_path / "tok"), "--name-prefix", prefix]
    try:
        first = _cli(app, influxd, cfg, *args)
        second = _cli(app, influxd, cfg, *args)
    finally:
        for auth in admin_api.json("GET", "/api/v2/authorizations",
                                   what="cleanup")["authorizations"]:
            if auth.get("description") in {f"{prefix}-{r}" for r in ("grafana", "analytics",
                                                                     "worker")}:
                admin_api.call("DELETE", f"/api/v2/authorizations/{auth['id']}", what="cleanup")
        delete_legacy_auths(influxd, f"{prefix}-collector")
        for task in admin_api.json("GET", "/api/v2/tasks", what="cleanup")["tasks"]:
            if task["name"] in (f"{prefix}-rollup_1m", f"{prefix}-rollup_1h"):
                admin_api.call("DELETE", f"/api/v2/tasks/{task['id']}", what="cleanup")
        for name in buckets.values():
            body = admin_api.json("GET", "/api/v2/buckets", what="cleanup", params={"name": name})
            for b in body["buckets"]:
                admin_api.call("DELETE", f"/api/v2/buckets/{b['id']}", what="cleanup")
    # retention periods come from the config's defaults (raw 7 d, analytics 365 d)
    assert f"created bucket cr-{tag} (retention 7 d)" in first
    assert f"created bucket can-{tag} (retention 365 d)" in first
    assert f"created task {prefix}-rollup_1m" in first
    assert f"created v1 credential {prefix}-collector (saved to" in first
    assert f"v1 credential {prefix}-collector unchanged" in second
    assert f"task {prefix}-rollup_1m unchanged" in second
    assert "nothing changed" in second
    assert "created" not in second


def test_setup_cli_refuses_a_bad_name_prefix(app: typer.Typer, influxd: InfluxServer,
                                             tmp_path: Path) -> None:
    cfg = _config(tmp_path, influxd, {"raw": "unused"})
    result = CliRunner().invoke(app, ["influx", "setup", "--config", str(cfg),
                                      "--name-prefix", "my site"],
                                env={"GG_TEST_INFLUX_TOKEN": influxd.token, "COLUMNS": "250",
                                     "GRIDGUARD_INFLUX_URL": None,
                                     "GRIDGUARD_INFLUX_TOKEN": None,
                                     "GRIDGUARD_INFLUX_ORG": None})
    assert result.exit_code == 2, result.output
    assert "name_prefix" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
