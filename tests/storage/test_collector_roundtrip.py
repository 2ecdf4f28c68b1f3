"""The collector itself (`gridguard run`, a separate process) writes a simulated run to the
real influxd; every basic-interval record it reports in its JSON Lines output is read back
from InfluxDB with the same tags, timestamp (ms precision) and values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from collector.nomenclature import Measurement, field_spec
from collector.timefmt import parse_iso_utc
from tests.influxd_fixture import InfluxBucket, InfluxServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "gridguard.example.yaml"
MS = 1_000_000


def _config(tmp_path: Path, influxd: InfluxServer, raw: str, events: str) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["source"]["simulated"]["scenario"] = str(REPO / "config" / "scenarios" / "demo.yaml")
    data["influx"] = {
        "enabled": True, "url": influxd.url, "org": influxd.org,
        "token": {"env": "GG_TEST_INFLUX_TOKEN"},
        "buckets": {"raw": raw, "events": events},
        "write": {"interval": "basic", "flush_interval_s": 0.2},
        "spool": {"path": str(tmp_path / "spool")},
    }
    for section in ("mqtt", "alerts", "load_control", "analytics"):
        data.pop(section, None)
    data["events"] = {"waveform_capture": {"enabled": False}}
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run_collector(
    cfg: Path, tmp_path: Path, token: str, seconds: float
) -> list[dict[str, object]]:
    out = tmp_path / "metrics.jsonl"
    env = {**os.environ, "GG_TEST_INFLUX_TOKEN": token}
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli.app", "run", "--config", str(cfg),
         "--duration", str(seconds), "--speed", "0", "--no-live", "--metrics-out", str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_simulated_run_reads_back_exactly(
    influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path, influxd, influx_bucket.name, events_bucket.name)
    reported = _run_collector(cfg, tmp_path, influxd.token, seconds=3.0)
    assert len(reported) > 100  # 22 channels x ~15 basic intervals

    rows = influxd.query(
        # the run is simulated faster than real time: its last records lie in the future
        f'from(bucket: "{influx_bucket.name}") |> range(start: 0, stop: 2100-01-01T00:00:00Z) '
        '|> filter(fn: (r) => r.interval == "basic")'
    )
    stored: dict[tuple[str, str, str, int, str], str] = {}
    for r in rows:
        t_ms = parse_iso_utc(r["_time"]) // MS
        key = (r["_measurement"], r["circuit"], r.get("phase", ""), t_ms, r["_field"])
        assert r["site"] == "home-berlin"
        stored[key] = r["_value"]

    compared = 0
    for rec in reported:
        t_ms = parse_iso_utc(str(rec["time"])) // MS
        for name, value in rec.items():
            if name in ("kind", "time", "interval", "channel", "phase") or value is None:
                continue
            spec = field_spec(name)
            if spec.measurement not in (Measurement.ELECTRICAL, Measurement.POLYPHASE):
                continue
            key = (str(spec.measurement), str(rec["channel"]), str(rec["phase"] or ""), t_ms, name)
            assert key in stored, f"not stored: {key}"
            got = stored.pop(key)
            if isinstance(value, bool):
                assert got == str(value).lower(), key
            elif isinstance(value, int | float):
                assert float(got) == float(value), key  # exact: written as float64
            else:
                assert got == value, key
            compared += 1
    assert compared > 1000
    # nothing in InfluxDB that the collector did not report (harmonics live elsewhere)
    assert not [k for k in stored if k[0] != str(Measurement.HARMONICS)], list(stored)[:5]
