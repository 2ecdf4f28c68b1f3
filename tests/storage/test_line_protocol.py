"""Line protocol encoding: escaping, precision, None/NaN policy, routing by the nomenclature.

Expected texts follow the InfluxDB 2.x line protocol reference (escaping rules: commas
and spaces in measurements; commas, equals signs and spaces in tag keys, tag values
and field keys; double quotes and backslashes in string field values).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from collector.influx_admin.schema_doc import BOOLEAN_FIELDS as BOOL_FIELDS
from collector.influx_admin.schema_doc import STRING_FIELDS
from collector.model import Event, EventType, Metrics, Severity
from collector.nomenclature import FIELDS, Measurement, field_spec, harmonic_field
from collector.sinks.influx.line_protocol import (
    PRECISION,
    encode_event,
    encode_line,
    encode_metrics,
    escape_key,
    escape_measurement,
    escape_string_field,
    format_field_value,
    timestamp_ms,
)

T_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def test_precision_is_milliseconds_floored() -> None:
    assert PRECISION == "ms"
    assert timestamp_ms(T_NS) == 1_700_000_000_123
    assert timestamp_ms(1_700_000_000_999_999_999) == 1_700_000_000_999  # never rounds up


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("my measurement", r"my\ measurement"), ("a,b", r"a\,b"), ("a=b", "a=b")],
)
def test_escape_measurement(raw: str, expected: str) -> None:
    assert escape_measurement(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Main Panel", r"Main\ Panel"),
        ("k=v", r"k\=v"),
        ("a,b", r"a\,b"),
        ("plain", "plain"),
    ],
)
def test_escape_key(raw: str, expected: str) -> None:
    assert escape_key(raw) == expected


def test_escape_string_field() -> None:
    assert escape_string_field('cal "v2" C:\\x') == 'cal \\"v2\\" C:\\\\x'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (np.bool_(False), "false"),
        (3, "3.0"),  # numbers are floats whatever their Python type
        (np.int64(7), "7.0"),
        (0.1, "0.1"),
        (np.float32(0.5), "0.5"),
        (1e-20, "1e-20"),
        ("cal-2024-01", '"cal-2024-01"'),
    ],
)
def test_format_field_value(value: float | int | bool | str, expected: str) -> None:
    assert format_field_value(value) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan"), "a\nb"])
def test_unstorable_values_raise(value: float | str) -> None:
    with pytest.raises(ValueError, match=r"non-finite|line break"):
        format_field_value(value)


def test_float_text_round_trips_exactly() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        x = rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-12, 12)
        assert float(format_field_value(x)) == x


def _metrics(**fields: float | int | bool | str | None) -> Metrics:
    return Metrics(time_ns=T_NS, interval="150c", channel="Main Panel", phase="A",
                   fields=fields)


def test_metrics_line_tags_fields_and_time() -> None:
    enc = encode_metrics(_metrics(voltage_rms_v=230.12, current_rms_a=None), site="home")
    assert enc.lines == (
        r"electrical,circuit=Main\ Panel,interval=150c,phase=A,site=home "
        "voltage_rms_v=230.12,flagged=false 1700000000123",
    )
    assert enc.dropped == ()  # None is "not available", not a drop


def test_nan_and_inf_fields_are_dropped_with_a_reason_others_kept() -> None:
    enc = encode_metrics(
        _metrics(voltage_rms_v=math.nan, current_rms_a=5.0, power_active_w=math.inf),
        site="s",
    )
    assert len(enc.lines) == 1
    assert "current_rms_a=5.0" in enc.lines[0]
    assert "voltage_rms_v" not in enc.lines[0]
    assert "power_active_w" not in enc.lines[0]
    assert sorted(d.what.split(" ")[0] for d in enc.dropped) == [
        "electrical.power_active_w", "electrical.voltage_rms_v"]
    assert all("non-finite" in d.reason for d in enc.dropped)


def test_unknown_field_names_are_never_written() -> None:
    enc = encode_metrics(_metrics(voltage_rms=230.0, current_rms_a=1.0), site="s")
    assert "voltage_rms=" not in enc.lines[0]
    assert [d.reason for d in enc.dropped] == ["field name not in collector.nomenclature"]


def test_fields_are_routed_to_their_measurements() -> None:
    fields: dict[str, float | int | bool | str | None] = {
        "voltage_rms_v": 230.0,
        harmonic_field("voltage", 3): 4.5,
        harmonic_field("current", 50): 0.01,
        "voltage_unbalance_neg_pct": 0.8,
        "calibration_id": 'cal "A"',
        "missing_samples": 0,
    }
    m = Metrics(time_ns=T_NS, interval="10min", channel="system", phase="ABC",
                fields=fields, flagged=True)
    enc = encode_metrics(m, site="s")
    by_measurement = {line.split(",", 1)[0]: line for line in enc.lines}
    assert set(by_measurement) == {"electrical", "harmonics", "polyphase"}
    assert "voltage_h3_v=4.5" in by_measurement["harmonics"]
    assert "current_h50_a=0.01" in by_measurement["harmonics"]
    assert "voltage_unbalance_neg_pct=0.8" in by_measurement["polyphase"]
    electrical = by_measurement["electrical"]
    assert 'calibration_id="cal \\"A\\""' in electrical
    assert "missing_samples=0.0" in electrical
    assert "flagged=true" in electrical


def test_every_nomenclature_field_encodes_to_its_measurement() -> None:
    records = (Measurement.EVENTS, Measurement.FAULTS, Measurement.AUDIT)
    for spec in FIELDS:
        if spec.measurement in records:
            continue  # written by the event, rule and audit encoders, not as Metrics
        value: float | str | bool = 1.5
        if spec.name in STRING_FIELDS:
            value = "x"
        elif spec.name in BOOL_FIELDS:
            value = True
        enc = encode_metrics(_metrics(**{spec.name: value}), site="s")
        assert any(line.startswith(spec.measurement.value + ",") and f" {spec.name}=" in
                   " " + line.split(" ", 1)[1].replace(",", " ") for line in enc.lines), spec.name


def test_event_fields_in_metrics_are_refused() -> None:
    enc = encode_metrics(_metrics(duration_s=1.0), site="s")
    assert enc.lines == ()
    assert "events" in enc.dropped[0].reason


def test_all_none_record_writes_nothing() -> None:
    assert encode_metrics(_metrics(voltage_rms_v=None), site="s").lines == ()


@pytest.mark.parametrize(("circuit", "reason"), [("a\nb", "line break"), ("ends\\", "backslash")])
def test_unstorable_tag_drops_the_point(circuit: str, reason: str) -> None:
    line, dropped = encode_line("electrical", {"circuit": circuit}, {"voltage_rms_v": 1.0}, 0)
    assert line is None
    assert reason in dropped[0].reason


def test_event_line() -> None:
    e = Event(
        type=EventType.VOLTAGE_DIP, start_ns=T_NS, duration_s=0.085, phases=("A", "B", "C"),
        severity=Severity.CRITICAL, channel="mains", residual_voltage_pct=42.5,
        category="instantaneous sag", details={"not_a_field": 1.0},
    )
    enc = encode_event(e, site="home")
    assert len(enc.lines) == 1
    head, rest = enc.lines[0].split(" ", 1)
    fields, ts = rest.rsplit(" ", 1)
    assert 'category="instantaneous sag"' in fields
    assert head == ("events,circuit=mains,phase=ABC,severity=critical,site=home,"
                    "type=voltage_dip")
    assert ts == "1700000000123"
    assert "duration_s=0.085" in fields
    assert "residual_voltage_pct=42.5" in fields
    assert "extreme_pct" not in fields
    assert any(d.what.endswith("not_a_field") for d in enc.dropped)


def test_event_in_progress_has_no_duration_field() -> None:
    e = Event(type=EventType.VOLTAGE_SWELL, start_ns=T_NS, duration_s=None, phases=("B",),
              extreme_pct=112.0)
    (line,) = encode_event(e, site="s").lines
    assert "duration_s" not in line
    assert "extreme_pct=112.0" in line


def test_record_line_text_in_full() -> None:
    # Counts become floats, a boolean stays boolean, a string is quoted and escaped,
    # a given `flagged` keeps its place and is merged with Metrics.flagged.
    fields: dict[str, float | int | bool | str | None] = {
        "voltage_rms_v": 230.06132,
        "flagged": False,
        "missing_samples": 3,
        "frequency_locked": True,
        "calibration_id": 'lab "B"\\2',
        "current_rms_a": None,
        harmonic_field("voltage", 5): 1.25e-05,
    }
    m = Metrics(time_ns=T_NS, interval="10min", channel="c1", phase=None, fields=fields,
                flagged=True)
    assert encode_metrics(m, site="home").lines == (
        "electrical,circuit=c1,interval=10min,site=home voltage_rms_v=230.06132,flagged=true,"
        'missing_samples=3.0,frequency_locked=true,calibration_id="lab \\"B\\"\\\\2" '
        "1700000000123",
        "harmonics,circuit=c1,interval=10min,site=home voltage_h5_v=1.25e-05 1700000000123",
    )


_METRICS_MEASUREMENTS = (Measurement.ELECTRICAL, Measurement.HARMONICS, Measurement.POLYPHASE,
                         Measurement.HEALTH)


def _by_definition(m: Metrics, site: str) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """encode_metrics as its documentation defines it: the fields grouped by the
    nomenclature's measurement, ``flagged`` added to interval records, then one
    ``encode_line`` per measurement."""
    where = f"circuit={m.channel} interval={m.interval}"
    dropped: list[tuple[str, str]] = []
    grouped: dict[Measurement, dict[str, float | int | bool | str | None]] = {}
    for name, value in m.fields.items():
        if value is None:
            continue
        try:
            measurement = field_spec(name).measurement
        except KeyError:
            dropped.append((f"{name} ({where})", "field name not in collector.nomenclature"))
            continue
        if measurement not in _METRICS_MEASUREMENTS:
            dropped.append((f"{name} ({where})", f"field belongs to measurement "
                            f"{measurement.value!r}, which Metrics records do not feed"))
            continue
        grouped.setdefault(measurement, {})[name] = value
    if {Measurement.ELECTRICAL, Measurement.HARMONICS, Measurement.POLYPHASE} & grouped.keys():
        electrical = grouped.setdefault(Measurement.ELECTRICAL, {})
        given = electrical.get("flagged")
        electrical["flagged"] = bool(m.flagged) or (
            isinstance(given, bool | np.bool_) and bool(given))
    tags = {"site": site, "circuit": m.channel, "phase": m.phase, "interval": m.interval}
    lines: list[str] = []
    for measurement in _METRICS_MEASUREMENTS:
        if measurement in grouped:
            line, lost = encode_line(measurement.value, tags, grouped[measurement], m.time_ns)
            dropped.extend((f"{d.what} ({where})", d.reason) for d in lost)
            if line is not None:
                lines.append(line)
    return tuple(lines), dropped


def test_record_encoding_matches_its_definition_for_any_input() -> None:
    # encode_metrics takes shortcuts for the usual values; whatever a record holds,
    # its lines and drops must be those of the definition above.
    rng = random.Random(3)
    names = [f.name for f in FIELDS] + [harmonic_field("current", 7), "bogus", "flagged"]
    odd: list[float | int | bool | str | None] = [
        None, math.nan, math.inf, -math.inf, 0, 7, True, False, np.bool_(True), np.float32(0.5),
        np.int64(7), 1e16, 1e-5, -0.0, 64.0, "cal-1", 'q"uote', "back\\slash", "line\nbreak",
        "cr\rx", ""]
    tag_values = ["home", "Main Panel", "a,b", "k=v", "ends\\", "x\ny", "", None, "c01", "ü"]
    for _ in range(3000):
        fields = {rng.choice(names): rng.uniform(-1e6, 1e6) * 10.0 ** rng.randint(-20, 20)
                  if rng.random() < 0.5 else rng.choice(odd)
                  for _ in range(rng.randint(0, 10))}
        m = Metrics(time_ns=rng.randint(0, 2**62), interval=rng.choice(["basic", "10min", "2 h"]),
                    channel=rng.choice(tag_values) or "c", phase=rng.choice(tag_values),
                    fields=fields, flagged=rng.random() < 0.3)
        site = rng.choice(tag_values) or "s"
        enc = encode_metrics(m, site)
        assert (enc.lines, [(d.what, d.reason) for d in enc.dropped]) == _by_definition(m, site)
