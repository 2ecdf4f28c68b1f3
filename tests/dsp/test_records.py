"""Record layout: derived ratios, None for unavailable values, typed fields."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from collector.dsp.records import (
    CIRCUIT_PHASE_FIELDS,
    CYCLES,
    LOCKED_S,
    P1,
    VOLTAGE_FIELDS,
    RecordKind,
    build_layout,
    derive,
    to_metrics,
)
from collector.model import Metrics, new_metrics
from collector.nomenclature import field_spec

LAYOUT = build_layout(
    [
        (RecordKind.VOLTAGE, "va", "A", "cal-7", VOLTAGE_FIELDS),
        (RecordKind.CIRCUIT_PHASE, "c1", "A", None, CIRCUIT_PHASE_FIELDS),
    ]
)


def test_every_emitted_field_is_in_the_nomenclature_or_a_declared_quality_field() -> None:
    declared = {"frequency_locked", "skew_correction_us"}
    for spec in LAYOUT.records:
        for name in spec.names:
            if name not in declared:
                field_spec(name)  # raises for an unknown name


def test_derived_ratios() -> None:
    v = LAYOUT.empty(1)
    c = LAYOUT.index
    v[0, 0, c["voltage_rms_v"]] = 230.0
    v[0, 0, c["voltage_peak_v"]] = 340.0
    first = c["voltage_h1_v"]
    v[0, 0, first : first + 50] = 0.0
    v[0, 0, c["voltage_h1_v"]] = 229.0
    v[0, 0, c["voltage_h5_v"]] = 11.45
    v[0, 1, c["power_active_w"]] = -1800.0
    v[0, 1, c["power_apparent_va"]] = 2000.0
    v[0, 1, c[P1]] = -1700.0
    v[0, 1, c["power_reactive_var"]] = 500.0
    v[0, :, c[CYCLES]] = 10.0
    v[0, :, c[LOCKED_S]] = 0.2002
    derive(v, LAYOUT, 50)
    assert v[0, 0, c["voltage_crest_factor"]] == pytest.approx(340 / 230)
    assert v[0, 0, c["voltage_thd_pct"]] == pytest.approx(5.0)
    v[0, 0, c["voltage_h7_v"]] = np.nan  # an unknown group makes THD unknown, never smaller
    derive(v, LAYOUT, 50)
    assert np.isnan(v[0, 0, c["voltage_thd_pct"]])
    assert v[0, 1, c["power_factor"]] == pytest.approx(-0.9)
    assert v[0, 1, c["power_factor_displacement"]] == pytest.approx(-1700 / math.hypot(1700, 500))
    assert v[0, 0, c["frequency_hz"]] == pytest.approx(10 / 0.2002)
    derive(v, LAYOUT, 39)
    assert np.isnan(v[0, 0, c["voltage_thd_pct"]])


def test_to_metrics_types_and_none() -> None:
    v = LAYOUT.empty(1)[0]
    c = LAYOUT.index
    v[0, c["voltage_rms_v"]] = 231.5
    v[0, c["missing_samples"]] = 3.0
    v[0, c["frequency_locked"]] = 1.0
    out = to_metrics(v, LAYOUT, 123, "basic", True, {"interval_complete": False})
    va, c1 = out
    assert (va.time_ns, va.interval, va.channel, va.phase, va.flagged) == (
        123,
        "basic",
        "va",
        "A",
        True,
    )
    assert va.fields["voltage_rms_v"] == 231.5
    assert va.fields["voltage_peak_v"] is None
    assert va.fields["missing_samples"] == 3
    assert isinstance(va.fields["missing_samples"], int)
    assert va.fields["frequency_locked"] is True
    assert va.fields["calibration_id"] == "cal-7"
    assert va.fields["interval_complete"] is False
    assert "current_rms_a" not in va.fields
    assert "voltage_h7_v" in va.fields
    assert c1.fields["frequency_locked"] is None
    assert not any(k.startswith("_") for m in out for k in m.fields)


def test_layout_rejects_fields_without_a_rule() -> None:
    with pytest.raises(ValueError, match="aggregation rule"):
        build_layout([(RecordKind.VOLTAGE, "va", "A", None, ("voltage_rms_v", "mystery_field"))])


def test_record_fields_are_a_snapshot_converted_when_read() -> None:
    v = LAYOUT.empty(1)[0]
    c = LAYOUT.index
    v[0, c["voltage_rms_v"]] = 231.5
    extra: dict[str, float | int | bool | str | None] = {"interval_complete": True}
    va, _ = to_metrics(v, LAYOUT, 123, "basic", False, extra)
    # the engine may reuse its arrays and the caller its dict: the record keeps
    # the values it was made with
    v[0, c["voltage_rms_v"]] = 999.0
    extra["interval_complete"] = False
    assert va.fields["voltage_rms_v"] == 231.5
    assert va.fields["interval_complete"] is True
    eager = dict(va.fields)
    assert va.fields == eager
    assert len(va.fields) == len(eager)
    assert list(va.fields) == list(eager)
    assert repr(va.fields) == repr(eager)
    assert list(va.fields.items()) == list(eager.items())
    assert list(va.fields.values()) == list(eager.values())
    assert va.fields.keys() == eager.keys()
    assert va.fields.get("voltage_rms_v") == 231.5
    assert va.fields.get("no_such_field", 5) == 5


def test_new_metrics_sets_every_field_of_a_metrics_record() -> None:
    args = (1_700_000_000_000_000_000, "basic", "c1", "A", {"voltage_rms_v": 230.0}, True)
    fast = new_metrics(*args)
    assert fast == Metrics(*args)
    assert [getattr(fast, f.name) for f in dataclasses.fields(Metrics)] == list(args)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.flagged = False  # type: ignore[misc]
