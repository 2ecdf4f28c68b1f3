"""I²t model against IEC 60898-1 (Table 7) and the closed-form solution of its ODE."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.model import NS_PER_S, Metrics
from collector.worker.thermal import (
    BreakerCurve,
    ThermalMonitor,
    ThermalParams,
    ThermalStatus,
    conventional_time_s,
    iec60898_test_points,
    thermal_heat_pu,
    trip_time_s,
)

RATING_A = 16.0
STEP_S = 3.0  # the ~3 s (150-cycle) records the worker reads


def _simulated_trip_s(current_a: float, params: ThermalParams, heat0: float,
                      horizon_s: float, step_s: float = STEP_S) -> float:
    """Trip time found by stepping the streaming model (not the closed form)."""
    n = int(horizon_s / step_s)
    heat, _ = thermal_heat_pu(np.full(n, current_a), step_s, params, heat0)
    tripped = np.nonzero(heat >= params.trip_heat_pu)[0]
    return math.inf if tripped.size == 0 else (tripped[0] + 1) * step_s


def _hot(params: ThermalParams) -> float:
    """Heat after carrying the rated current for ever (operating temperature)."""
    return 1.0


def test_iec60898_points_are_the_standards() -> None:
    pts = {p.test: p for p in iec60898_test_points(16.0, BreakerCurve.C)}
    assert (pts["a"].multiple, pts["a"].min_trip_s) == (1.13, 3600.0)
    assert (pts["b"].multiple, pts["b"].max_trip_s) == (1.45, 3600.0)
    assert (pts["c"].multiple, pts["c"].min_trip_s, pts["c"].max_trip_s) == (2.55, 1.0, 60.0)
    assert (pts["d"].multiple, pts["e"].multiple) == (5.0, 10.0)
    assert conventional_time_s(80.0) == 7200.0
    big = {p.test: p for p in iec60898_test_points(40.0, BreakerCurve.B)}
    assert big["c"].max_trip_s == 120.0
    assert (big["d"].multiple, big["e"].multiple) == (3.0, 5.0)


@pytest.mark.parametrize("start", ["cold", "hot"])
def test_sustained_125_pct_trips_before_the_breakers_conventional_time(start: str) -> None:
    p = ThermalParams(RATING_A)
    heat0 = 0.0 if start == "cold" else _hot(p)
    t_conv = conventional_time_s(RATING_A)  # 1 h: a breaker between 1.13 and 1.45 In
    t = _simulated_trip_s(1.25 * RATING_A, p, heat0, horizon_s=2 * t_conv)
    # the model acts well inside the hour in which the breaker may open
    assert t < t_conv / 4
    # ... and it is the exact solution of dθ/dt = (x² - θ)/τ, within one 3 s record
    assert t == pytest.approx(trip_time_s(1.25, p, heat0), abs=STEP_S)


def test_trips_before_every_iec60898_upper_limit_in_the_overload_region() -> None:
    """Tests b and c give the latest a compliant breaker may trip; the model is earlier."""
    p = ThermalParams(RATING_A)
    for point in iec60898_test_points(RATING_A, BreakerCurve.C):
        if point.max_trip_s is None or point.multiple > 3.0:
            continue  # d/e: the magnetic release (0.1 s) is no job for 3 s records
        heat0 = 0.0 if point.from_cold else 1.13**2  # test b starts after test a
        t = _simulated_trip_s(point.multiple * RATING_A, p, heat0, point.max_trip_s * 2,
                              step_s=0.2)
        assert t <= point.max_trip_s, point


@pytest.mark.parametrize("heat0", [0.0, 1.0])
def test_motor_inrush_6x_for_200ms_neither_trips_nor_warns(heat0: float) -> None:
    p = ThermalParams(RATING_A)
    # 0.2 s at 6 In, then back to the running current (basic ~0.2 s records)
    current = np.array([6.0 * RATING_A] + [RATING_A] * 50)
    heat, _ = thermal_heat_pu(current, 0.2, p, heat0)
    assert float(np.max(heat)) / p.trip_heat_pu < p.approach_level
    # the same start seen through a 3 s record: RMS of (0.2 s at 6 In, 2.8 s at In)
    rms = RATING_A * math.sqrt((36 * 0.2 + 1 * 2.8) / 3.0)
    heat3, _ = thermal_heat_pu(np.array([rms]), 3.0, p, heat0)
    assert float(heat3[0]) / p.trip_heat_pu < p.approach_level


def test_compressor_starting_every_10_min_on_a_fully_loaded_circuit_never_warns() -> None:
    p = ThermalParams(RATING_A)
    cycle = [6.0 * RATING_A] + [RATING_A] * 2999  # 0.2 s steps: one start per 600 s
    heat, _ = thermal_heat_pu(np.array(cycle * 12), 0.2, p, 1.0)  # two hours
    assert float(np.max(heat)) / p.trip_heat_pu < p.approach_level


def test_rated_current_forever_never_trips() -> None:
    p = ThermalParams(RATING_A)
    n = int(24 * 3600 / STEP_S)
    heat, end = thermal_heat_pu(np.full(n, RATING_A), STEP_S, p)
    assert float(np.max(heat)) < p.trip_heat_pu
    assert end == pytest.approx(1.0, rel=1e-9)  # steady state θ = (I/In)²
    assert trip_time_s(1.0, p) == math.inf


def test_chunked_equals_whole_for_uniform_and_variable_steps() -> None:
    rng = np.random.default_rng(7)
    p = ThermalParams(RATING_A)
    current = rng.uniform(0, 2.5 * RATING_A, 500)
    for dt in (np.full(500, 3.0), rng.uniform(0.1, 5.0, 500)):
        whole, end = thermal_heat_pu(current, dt, p)
        parts = []
        state = 0.0
        for a, b in ((0, 1), (1, 137), (137, 138), (138, 500)):
            h, state = thermal_heat_pu(current[a:b], dt[a:b], p, state)
            parts.append(h)
        np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12)
        assert state == pytest.approx(end, rel=1e-12)


def test_cooling_follows_the_exponential() -> None:
    p = ThermalParams(RATING_A)
    heat, _ = thermal_heat_pu(np.zeros(1), p.time_constant_s, p, 1.0)
    assert heat[0] == pytest.approx(math.exp(-1.0), rel=1e-12)


def test_invalid_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="pickup"):
        ThermalParams(RATING_A, pickup=1.0)
    with pytest.raises(ValueError, match="dt_s"):
        thermal_heat_pu(np.ones(3), -1.0, ThermalParams(RATING_A))
    with pytest.raises(ValueError, match="approach_level"):
        ThermalParams(RATING_A, approach_level=0.5)  # below a steady In: would always warn


def _records(current_a: float, n: int, t0_ns: int = 0, phase: str = "A") -> list[Metrics]:
    return [Metrics(t0_ns + k * 3 * NS_PER_S, "150c", "heater", phase,
                    {"current_rms_a": current_a}) for k in range(n)]


def test_monitor_on_records_matches_the_closed_form() -> None:
    p = ThermalParams(RATING_A)
    mon = ThermalMonitor({"heater": p})
    readings = mon.update(_records(1.25 * RATING_A, 200))
    first_trip = next(r for r in readings if r.status is ThermalStatus.TRIPPED)
    t_s = first_trip.time_ns / NS_PER_S
    assert t_s == pytest.approx(trip_time_s(1.25, p), abs=3.0)
    approach = next(r for r in readings if r.status is not ThermalStatus.NORMAL)
    assert approach.status is ThermalStatus.APPROACHING
    assert approach.time_ns < first_trip.time_ns
    assert mon.level("heater") >= 1.0
    assert mon.heating("heater")


def test_monitor_ignores_repeated_records_and_holds_across_short_gaps() -> None:
    p = ThermalParams(RATING_A)
    mon = ThermalMonitor({"heater": p}, max_hold_s=60.0)
    recs = _records(RATING_A, 10)
    mon.update(recs)
    level = mon.level("heater")
    assert mon.update(recs[-3:]) == []  # a re-read changes nothing
    assert mon.level("heater") == level
    # a 30 s gap is filled with the last current (1.0 In): same as continuous data
    cont = ThermalMonitor({"heater": p})
    cont.update(_records(RATING_A, 21))
    gappy = ThermalMonitor({"heater": p})
    gappy.update(_records(RATING_A, 10) + _records(RATING_A, 1, t0_ns=60 * NS_PER_S))
    assert gappy.level("heater") == pytest.approx(cont.level("heater"), rel=1e-9)
