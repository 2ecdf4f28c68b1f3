"""Open neutral: legs diverging in opposite directions, line-to-line intact."""

from __future__ import annotations

import numpy as np
import pytest

from collector.events.engine import EventEngine
from collector.model import ChannelInfo, Event, EventType, Phase, Quantity, SourceCapabilities

from .signals import PHASE_SHIFT_RAD, run, seconds, sine, stepped_envelope, time_axis

FS, F = 7000.0, 60.0


def _split_phase(leg_a: float, leg_b: float, start_s: float, duration_s: float,
                 line_to_line_factor: float | None = None) -> list[Event]:
    """120/240 V split phase; from ``start_s`` the legs are scaled by leg_a / leg_b."""
    caps = SourceCapabilities(
        channels=(ChannelInfo("l1", Quantity.VOLTAGE, Phase.A, rate_hz=FS),
                  ChannelInfo("l2", Quantity.VOLTAGE, Phase.B, rate_hz=FS)),
        nominal_frequency_hz=F,
    )
    t = time_axis(FS, start_s + duration_s + 1.0)
    span = (start_s, start_s + duration_s)
    # legs in antiphase (the two halves of a centre-tapped secondary)
    x = np.stack([
        sine(t, F, 120.0, 0.3, stepped_envelope(t, [(*span, leg_a)])),
        sine(t, F, 120.0, 0.3 + np.pi, stepped_envelope(t, [(*span, leg_b)])),
    ])
    got = run(EventEngine(caps, nominal_voltage_v=120.0), x, FS)
    return got.of_type(EventType.OPEN_NEUTRAL)


def test_split_phase_legs_diverging_with_constant_sum_is_an_open_neutral() -> None:
    # 150 V + 90 V = 240 V: the neutral floats, the line-to-line voltage is intact
    (ev,) = _split_phase(1.25, 0.75, 1.0123, 2.0)
    assert ev.severity == "critical"
    assert ev.details["system"] == "split_phase"
    assert ev.phases == ("A", "B")
    assert ev.extreme_pct == pytest.approx(125.0, abs=0.2)
    assert float(ev.details["lowest_leg_pct"]) == pytest.approx(75.0, abs=0.2)
    assert float(ev.details["line_to_line_pct_of_2x_reference"]) == pytest.approx(100.0, abs=0.5)
    assert abs(seconds(ev.start_ns) - 1.0123) <= 1 / F
    assert ev.duration_s == pytest.approx(2.0, abs=1 / F)


def test_legs_sagging_together_are_not_an_open_neutral() -> None:
    assert _split_phase(0.85, 0.85, 1.0, 2.0) == []


def test_divergence_shorter_than_half_a_second_is_not_an_open_neutral() -> None:
    assert _split_phase(1.25, 0.75, 1.0, 0.3) == []


def test_divergence_smaller_than_the_threshold_is_not_an_open_neutral() -> None:
    assert _split_phase(1.08, 0.92, 1.0, 2.0) == []


def _three_phase(factors: dict[str, float]) -> list[Event]:
    caps = SourceCapabilities(
        channels=tuple(ChannelInfo(f"v{p}", Quantity.VOLTAGE, Phase(p), rate_hz=FS)
                       for p in "ABC"),
        nominal_frequency_hz=F,
    )
    t = time_axis(FS, 3.0)
    x = np.stack([
        sine(t, F, 230.0, 0.3 + PHASE_SHIFT_RAD[p],
             stepped_envelope(t, [(1.0, 2.0, factors.get(p, 1.0))]))
        for p in "ABC"
    ])
    return run(EventEngine(caps, nominal_voltage_v=230.0), x, FS).of_type(EventType.OPEN_NEUTRAL)


def test_three_phase_star_point_shift_is_an_open_neutral() -> None:
    (ev,) = _three_phase({"A": 1.30, "B": 0.80, "C": 0.95})
    assert ev.details["system"] == "three_phase"
    assert ev.phases == ("A", "B", "C")
    assert ev.duration_s == pytest.approx(1.0, abs=1 / F)


def test_one_phase_swelling_alone_is_not_an_open_neutral() -> None:
    assert _three_phase({"A": 1.15}) == []
