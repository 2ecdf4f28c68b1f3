"""Overcurrent: sustained overload vs rating, instantaneous high-set, motor inrush."""

from __future__ import annotations

import numpy as np
import pytest

from collector.events.engine import EventEngine
from collector.model import ChannelInfo, EventType, Phase, Quantity, SourceCapabilities

from .signals import Collected, run, seconds, sine, stepped_envelope, time_axis

FS, F = 6321.0, 50.0
RATING_A = 16.0
CAPS = SourceCapabilities(
    channels=(
        ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS),
        ChannelInfo("i1", Quantity.CURRENT, Phase.A, circuit="kitchen", rate_hz=FS),
    ),
    nominal_frequency_hz=F,
)


def _run(
    current_steps: list[tuple[float, float, float]], base_a: float, duration_s: float,
    ratings: dict[str, float] | None = None,
) -> tuple[Collected, EventEngine]:
    t = time_axis(FS, duration_s)
    v = sine(t, F, 230.0, 0.2)
    i = sine(t, F, base_a, -0.4, stepped_envelope(t, current_steps))
    engine = EventEngine(CAPS, nominal_voltage_v=230.0,
                         circuit_ratings_a={"kitchen": RATING_A} if ratings is None else ratings)
    return run(engine, np.stack([v, i]), FS, chunk=[2000, 531]), engine


def test_one_second_overload_at_130_percent_triggers_the_sustained_rule() -> None:
    base = 0.5 * RATING_A
    got, _ = _run([(1.0123, 2.0123, 2.6)], base, 3.0)  # 2.6 x 50 % = 130 %
    (ev,) = got.of_type(EventType.OVERCURRENT)
    assert ev.details["rule"] == "sustained"
    assert ev.channel == "kitchen"
    assert ev.phases == ("A",)
    assert ev.extreme_pct == pytest.approx(130.0, abs=0.3)
    assert float(ev.details["current_max_a"]) == pytest.approx(1.3 * RATING_A, rel=3e-3)
    # window convention: from the start of the first window above to the end of the last
    assert abs(seconds(ev.start_ns) - 1.0123) <= 1 / F
    assert ev.duration_s == pytest.approx(1.0, abs=1 / F)


def test_overload_shorter_than_the_minimum_duration_does_not_trigger() -> None:
    got, _ = _run([(1.0, 1.9, 2.6)], 0.5 * RATING_A, 3.0)
    assert got.of_type(EventType.OVERCURRENT) == []


def test_motor_inrush_of_6x_for_200_ms_does_not_trigger() -> None:
    # a 10 A motor on a 16 A circuit starting at 6 x 10 A = 375 % of the rating
    got, _ = _run([(1.0, 1.2, 6.0)], 10.0, 2.5)
    assert got.of_type(EventType.OVERCURRENT) == []


def test_inrush_of_6x_a_load_near_the_rating_trips_only_the_instantaneous_high_set() -> None:
    got, _ = _run([(1.0077, 1.2077, 6.0)], 0.8 * RATING_A, 2.5)  # 6 x 80 % = 480 % > 400 %
    events = got.of_type(EventType.OVERCURRENT)
    assert [e.details["rule"] for e in events] == ["instantaneous"]
    assert events[0].severity == "critical"
    assert events[0].extreme_pct == pytest.approx(480.0, abs=1.0)
    assert events[0].duration_s == pytest.approx(0.2, abs=1 / F)


def test_a_long_overload_is_announced_when_it_has_lasted_the_minimum_duration() -> None:
    got, _ = _run([(0.5123, 3.5123, 3.0)], 0.5 * RATING_A, 4.0)  # 150 % for 3 s
    (started,) = [e for e in got.started if e.type is EventType.OVERCURRENT]
    (ended,) = got.of_type(EventType.OVERCURRENT)
    assert started.duration_s is None
    assert abs(started.start_ns - ended.start_ns) <= 1e9 / F  # refined when it ends
    assert started.details["event_id"] == ended.details["event_id"]
    assert ended.duration_s == pytest.approx(3.0, abs=1 / F)


def test_a_circuit_without_rating_is_reported_unavailable() -> None:
    got, engine = _run([(1.0, 2.5, 3.0)], RATING_A, 3.0, ratings={})
    assert got.of_type(EventType.OVERCURRENT) == []
    assert engine.unavailable["overcurrent:kitchen"] == "no breaker rating configured"


def test_ratings_for_unknown_circuits_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"circuit_ratings_a: unknown circuit\(s\) \['garage'\]"):
        EventEngine(CAPS, nominal_voltage_v=230.0, circuit_ratings_a={"garage": 10.0})
