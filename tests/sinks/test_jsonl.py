from __future__ import annotations

import io
import json

from collector.model import Event, EventType, Metrics, Severity
from collector.sinks.jsonl import JsonLinesSink


def _metrics(interval: str = "basic") -> Metrics:
    return Metrics(
        time_ns=1_683_920_725_600_000_000,
        interval=interval,
        channel="kitchen",
        phase="A",
        fields={
            "voltage_rms_v": 230.1,
            "power_active_w": float("nan"),
            "current_h1_a": 4.0,
            "current_h3_a": 1.0,
            "harmonics_max_order": 3,
        },
        flagged=True,
    )


def test_metrics_lines_follow_the_contract() -> None:
    out = io.StringIO()
    sink = JsonLinesSink(out, None, harmonics=True)
    sink.publish([_metrics(), _metrics("150c")], [])
    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # only basic intervals by default
    obj = json.loads(lines[0])
    assert obj["kind"] == "metrics"
    assert obj["time"] == "2023-05-12T19:45:25.600000Z"
    assert obj["channel"] == "kitchen"
    assert obj["phase"] == "A"
    assert obj["voltage_rms_v"] == 230.1
    assert obj["power_active_w"] is None  # NaN is never written as a number
    assert obj["current_harmonics_a"] == [4.0, None, 1.0]
    assert "current_h1_a" not in obj
    assert obj["flagged"] is True


def test_event_lines_follow_the_contract() -> None:
    out = io.StringIO()
    event = Event(
        type=EventType.VOLTAGE_DIP,
        start_ns=1_683_920_725_814_000_000,
        duration_s=0.06,
        phases=("A", "B"),
        severity=Severity.WARNING,
        channel="va",
        residual_voltage_pct=72.9,
        category="instantaneous sag",
        details={"reference_voltage_v": 57.735},
    )
    JsonLinesSink(None, out).publish([], [event])
    obj = json.loads(out.getvalue())
    assert obj == {
        "kind": "event",
        "type": "voltage_dip",
        "start": "2023-05-12T19:45:25.814000Z",
        "duration_s": 0.06,
        "phase": "AB",
        "phases": ["A", "B"],
        "channel": "va",
        "severity": "warning",
        "category": "instantaneous sag",
        "residual_voltage_pct": 72.9,
        "reference_voltage_v": 57.735,
    }
