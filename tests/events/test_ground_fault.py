"""Ground fault from a measured residual current and from the sum of L + N currents."""

from __future__ import annotations

import numpy as np
import pytest

from collector.events.engine import EventEngine
from collector.model import ChannelInfo, Event, EventType, Phase, Quantity, SourceCapabilities

from .signals import run, seconds, sine, time_axis, window

FS, F = 6321.0, 50.0


def _measured(leak_a: float, start_s: float, duration_s: float) -> list[Event]:
    caps = SourceCapabilities(
        channels=(
            ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS),
            ChannelInfo("rcd", Quantity.RESIDUAL_CURRENT, Phase.G, circuit="bathroom",
                        rate_hz=FS),
        ),
        nominal_frequency_hz=F,
    )
    t = time_axis(FS, 2.5)
    v = sine(t, F, 230.0)
    residual = sine(t, F, leak_a, 0.1, window(t, start_s, start_s + duration_s))
    got = run(EventEngine(caps, nominal_voltage_v=230.0), np.stack([v, residual]), FS)
    return got.of_type(EventType.GROUND_FAULT)


def test_measured_50_ma_leak_for_300_ms_is_a_ground_fault() -> None:
    (ev,) = _measured(0.050, 1.0, 0.3)
    assert ev.channel == "bathroom"
    assert ev.severity == "critical"
    assert ev.details["method"] == "measured"
    assert float(ev.details["residual_current_max_a"]) == pytest.approx(0.050, rel=2e-3)
    assert abs(seconds(ev.start_ns) - 1.0) <= 1 / F
    assert ev.duration_s == pytest.approx(0.3, abs=1 / F)


def test_measured_leak_below_30_ma_is_not_a_ground_fault() -> None:
    assert _measured(0.020, 1.0, 1.0) == []


def test_measured_leak_shorter_than_40_ms_is_not_a_ground_fault() -> None:
    assert _measured(0.200, 1.0, 0.01) == []  # half a cycle


def _summed(load_a: float, leak_a: float, neutral_gain: float = 1.0,
            simultaneous: bool = True) -> tuple[list[Event], EventEngine]:
    caps = SourceCapabilities(
        channels=(
            ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS),
            ChannelInfo("il", Quantity.CURRENT, Phase.A, circuit="c1", rate_hz=FS),
            ChannelInfo("in", Quantity.CURRENT, Phase.N, circuit="c1", rate_hz=FS,
                        skew_s=0.0 if simultaneous else 1e-4),
        ),
        simultaneous=simultaneous,
        nominal_frequency_hz=F,
    )
    t = time_axis(FS, 2.5)
    load = sine(t, F, load_a, -0.5)
    leak = sine(t, F, leak_a, 0.2, window(t, 1.0, 1.5))
    # both CTs oriented towards the load: the neutral returns the load current
    x = np.stack([sine(t, F, 230.0), load + leak, -neutral_gain * load])
    engine = EventEngine(caps, nominal_voltage_v=230.0)
    return run(engine, x, FS).of_type(EventType.GROUND_FAULT), engine


def test_summed_line_and_neutral_reveal_a_leak() -> None:
    events, _ = _summed(load_a=2.0, leak_a=0.050)
    (ev,) = events
    assert ev.details["method"] == "summed"
    assert ev.channel == "c1"
    assert float(ev.details["residual_current_max_a"]) == pytest.approx(0.050, rel=5e-3)
    assert ev.duration_s == pytest.approx(0.5, abs=1 / F)


def test_balanced_line_and_neutral_are_not_a_ground_fault() -> None:
    events, _ = _summed(load_a=10.0, leak_a=0.0)
    assert events == []


def test_ct_mismatch_under_load_is_absorbed_by_the_tolerance() -> None:
    # 0.5 % neutral CT gain error on 10 A reads as 50 mA; the 1 % tolerance (100 mA) holds
    events, _ = _summed(load_a=10.0, leak_a=0.0, neutral_gain=1.005)
    assert events == []
    # and a real 300 mA leak on top of it is still found
    events, _ = _summed(load_a=10.0, leak_a=0.300, neutral_gain=1.005)
    assert len(events) == 1


def test_summed_residual_needs_simultaneous_sampling() -> None:
    events, engine = _summed(load_a=2.0, leak_a=0.050, simultaneous=False)
    assert events == []
    assert "simultaneously" in engine.unavailable["ground_fault:c1"]
