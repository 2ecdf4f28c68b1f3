"""Running the real collector (`gridguard run`) against the test influxd, and checking
what it reported (JSON Lines) against what InfluxDB stored."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from collector.nomenclature import Measurement, field_spec
from collector.timefmt import parse_iso_utc
from tests.influxd_fixture import InfluxServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "gridguard.example.yaml"
MS = 1_000_000
TOKEN_ENV = "GG_TEST_INFLUX_TOKEN"

StoredKey = tuple[str, str, str, int, str]  # measurement, circuit, phase, time [ms], field
_NOT_FIELDS = ("kind", "time", "interval", "channel", "phase")


def collector_config(
    tmp_path: Path, influxd: InfluxServer, raw: str, events: str,
    token_file: Path | None = None, **write: object,
) -> Path:
    """The example config on the simulated demo panel, writing basic intervals to influxd.

    The credential (a v1 ``user:password`` or a v2 token) is read from ``token_file``,
    else from the environment variable ``GG_TEST_INFLUX_TOKEN``; ``write`` entries
    override the ``influx.write`` section.
    """
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["source"]["simulated"]["scenario"] = str(REPO / "config" / "scenarios" / "demo.yaml")
    data["influx"] = {
        "enabled": True, "url": influxd.url, "org": influxd.org,
        "token": {"file": str(token_file)} if token_file else {"env": TOKEN_ENV},
        "buckets": {"raw": raw, "events": events},
        "write": {"interval": "basic", "flush_interval_s": 0.2, **write},
        "spool": {"path": str(tmp_path / "spool")},
    }
    for section in ("mqtt", "alerts", "load_control", "analytics"):
        data.pop(section, None)
    data["events"] = {"waveform_capture": {"enabled": False}}
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """Complete records of a JSON Lines file; a torn last line (process killed) is left out."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]


def stored_basic(influxd: InfluxServer, bucket: str) -> dict[StoredKey, str]:
    """Every basic-interval value in ``bucket``, keyed like :func:`reported_keys`."""
    rows = influxd.query(
        # simulated runs may be faster than real time: their last records lie in the future
        f'from(bucket: "{bucket}") |> range(start: 0, stop: 2100-01-01T00:00:00Z) '
        '|> filter(fn: (r) => r.interval == "basic")'
    )
    stored: dict[StoredKey, str] = {}
    for r in rows:
        t_ms = parse_iso_utc(r["_time"]) // MS
        key = (r["_measurement"], r["circuit"], r.get("phase", ""), t_ms, r["_field"])
        assert r["site"] == "home-berlin"
        assert key not in stored, f"stored twice: {key}"
        stored[key] = r["_value"]
    return stored


def pop_reported(reported: list[dict[str, object]], stored: dict[StoredKey, str]) -> int:
    """Assert every reported electrical/polyphase value is stored with the identical value,
    and remove it from ``stored``; returns the number of values compared."""
    compared = 0
    for rec in reported:
        t_ms = parse_iso_utc(str(rec["time"])) // MS
        for name, value in rec.items():
            if name in _NOT_FIELDS or value is None:
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
    return compared
