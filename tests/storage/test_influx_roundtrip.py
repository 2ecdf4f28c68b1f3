"""Metrics and events through InfluxSink into the real influxd, read back exactly, with the
collector's v1 credential (``/write``) and with a v2 token (``/api/v2/write``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from collector.influx_admin.api import InfluxApi
from collector.model import Event, EventType, Metrics, Severity
from collector.nomenclature import harmonic_field
from collector.sinks.influx.sink import InfluxSink
from tests.influxd_fixture import InfluxBucket, InfluxServer
from tests.storage.conftest import sink_settings

T0_NS = 1_700_000_000_000_000_000 + 123_456_789  # sub-ms part: stored floored to ms
RANGE = "start: 2023-11-14T00:00:00Z, stop: 2023-11-16T00:00:00Z"


def _metrics() -> list[Metrics]:
    out = []
    for k in range(10):
        for circuit, phase, amps in (("kitchen", "A", 7.25), ("pv", "B", -12.5)):
            fields: dict[str, float | int | bool | str | None] = {
                "voltage_rms_v": 230.0 + 0.137 * k,
                "current_rms_a": abs(amps) + 0.01 * k,
                "power_active_w": amps * 230.0 + k,
                "power_factor": 0.9871 if amps > 0 else -0.99912,
                "frequency_hz": 49.987 + 0.001 * k,
                "energy_import_wh": 1234.5 + 0.5 * k if amps > 0 else 0.0,
                "energy_export_wh": 0.0 if amps > 0 else 98765.4321 + 0.25 * k,
                "voltage_thd_pct": None,  # not available from this source
                "current_thd_pct": 3.1415926535,
                "missing_samples": 0,
                "calibration_id": 'ct-"2024"',
                harmonic_field("current", 3): 0.123456789 * (k + 1),
                harmonic_field("voltage", 5): 4.2e-3,
                harmonic_field("current", 49): None,
            }
            out.append(Metrics(time_ns=T0_NS + k * 3_000_000_000, interval="150c",
                               channel=circuit, phase=phase, fields=fields, flagged=k == 4))
    out.append(Metrics(time_ns=T0_NS, interval="10min", channel="system", phase="ABC",
                       fields={"voltage_unbalance_neg_pct": 0.42, "residual_current_a": 0.012}))
    return out


def _events() -> list[Event]:
    return [
        Event(type=EventType.VOLTAGE_DIP, start_ns=T0_NS + 5_000_000, duration_s=0.085,
              phases=("A", "B", "C"), severity=Severity.CRITICAL, channel="mains",
              residual_voltage_pct=42.5),
        Event(type=EventType.VOLTAGE_SWELL, start_ns=T0_NS + 7_000_000_000, duration_s=None,
              phases=("B",), severity=Severity.WARNING, channel="mains", extreme_pct=112.25),
    ]


def _rows(api: InfluxApi, bucket: str) -> list[dict[str, object]]:
    return api.query(f'from(bucket: "{bucket}") |> range({RANGE})')


def test_round_trip_exact(
    influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
    admin_api: InfluxApi, tmp_path: Path, write_credential: str,
) -> None:
    sink = InfluxSink(sink_settings(influxd, influx_bucket.name, events_bucket.name,
                                    tmp_path / "spool.sqlite", write_credential))
    metrics, events = _metrics(), _events()
    sink.publish(metrics[:7], events[:1])
    sink.publish(metrics[7:], events[1:])
    assert sink.flush(30)
    health = sink.health()
    sink.close()
    assert health.writer.points_dropped == 0
    assert health.writer.spool.points == 0

    expected: dict[tuple[str, str, str, str, int, str], object] = {}
    for m in metrics:
        t_ns = m.time_ns // 1_000_000 * 1_000_000
        for name, value in m.fields.items():
            if value is None:
                continue
            meas = ("harmonics" if name in ("current_h3_a", "voltage_h5_v") else
                    "polyphase" if name in ("voltage_unbalance_neg_pct", "residual_current_a")
                    else "electrical")
            expected[(meas, m.channel, str(m.phase), m.interval, t_ns, name)] = (
                float(value) if isinstance(value, int) else value)
        # every interval record carries the IEC flag, polyphase ones included
        expected[("electrical", m.channel, str(m.phase), m.interval, t_ns, "flagged")] = m.flagged
    got: dict[tuple[str, str, str, str, int, str], object] = {}
    for r in _rows(admin_api, influx_bucket.name):
        if r["_measurement"] == "health":
            continue
        assert r["site"] == "lab"
        key = (str(r["_measurement"]), str(r["circuit"]), str(r["phase"]), str(r["interval"]),
               int(r["_time"]), str(r["_field"]))  # type: ignore[call-overload]
        got[key] = r["_value"]
    assert got == expected  # every value, tag and timestamp; nothing extra (no None field)

    ev = {(r["type"], r["_field"]): r for r in _rows(admin_api, events_bucket.name)}
    dip = ev[("voltage_dip", "residual_voltage_pct")]
    assert dip["_value"] == 42.5
    assert dip["_time"] == (T0_NS + 5_000_000) // 1_000_000 * 1_000_000
    assert (dip["phase"], dip["severity"], dip["circuit"]) == ("ABC", "critical", "mains")
    assert ev[("voltage_dip", "duration_s")]["_value"] == 0.085
    assert ev[("voltage_swell", "extreme_pct")]["_value"] == 112.25
    assert ("voltage_swell", "duration_s") not in ev  # still in progress: no number
    assert set(ev) == {("voltage_dip", "residual_voltage_pct"), ("voltage_dip", "duration_s"),
                       ("voltage_swell", "extreme_pct")}


def test_nan_field_dropped_and_counted(
    influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
    admin_api: InfluxApi, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    write_credential: str,
) -> None:
    sink = InfluxSink(sink_settings(influxd, influx_bucket.name, events_bucket.name,
                                    tmp_path / "spool.sqlite", write_credential))
    with caplog.at_level(logging.WARNING):
        sink.publish([Metrics(T0_NS, "150c", "c1", "A",
                              {"voltage_rms_v": math.nan, "current_rms_a": 2.5})], [])
    assert sink.flush(30)
    health = sink.health()
    sink.close()
    assert health.fields_dropped == 1
    assert "electrical.voltage_rms_v" in caplog.text
    assert "non-finite" in caplog.text
    fields = {r["_field"]: r["_value"] for r in _rows(admin_api, influx_bucket.name)
              if r["_measurement"] == "electrical"}
    assert fields == {"current_rms_a": 2.5, "flagged": False}


def test_partial_rejection_drops_only_the_conflicting_point(
    influxd: InfluxServer, influx_bucket: InfluxBucket, events_bucket: InfluxBucket,
    admin_api: InfluxApi, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    write_credential: str,
) -> None:
    # The field exists as float; a buggy producer then sends a string for it.
    influxd.write(influx_bucket.name,
                  "electrical,circuit=c0,interval=150c,phase=A,site=lab voltage_rms_v=230.0 "
                  f"{T0_NS // 1_000_000 - 1000}", precision="ms")
    sink = InfluxSink(sink_settings(influxd, influx_bucket.name, events_bucket.name,
                                    tmp_path / "spool.sqlite", write_credential,
                                    flush_interval_s=0.5))
    batch = [Metrics(T0_NS + k * 3_000_000_000, "150c", "c0", "A",
                     {"voltage_rms_v": "oops" if k == 13 else 230.0 + k}) for k in range(40)]
    with caplog.at_level(logging.ERROR):
        sink.publish(batch, [])
        assert sink.flush(30)
    health = sink.health()
    sink.close()
    assert health.writer.points_dropped == 1
    assert "field type conflict" in caplog.text
    assert "oops" in caplog.text
    values = {int(r["_time"]): r["_value"] for r in _rows(admin_api, influx_bucket.name)  # type: ignore[call-overload]
              if r["_field"] == "voltage_rms_v"}
    expected = {m.time_ns // 1_000_000 * 1_000_000: 230.0 + k for k, m in enumerate(batch)
                if k != 13}
    expected[(T0_NS // 1_000_000 - 1000) * 1_000_000] = 230.0
    assert values == expected
