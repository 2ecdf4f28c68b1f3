"""Dips, swells, interruptions: timing, residual, IEEE 1159 category, polyphase rules.

Signals are analytic sines with rectangular envelopes whose start, duration and depth
are the ground truth. Sample rates give a non-integer number of samples per cycle.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from collector.events.engine import EventEngine
from collector.model import ChannelInfo, EventType, Phase, Quantity, SourceCapabilities

from .signals import PHASE_SHIFT_RAD, T0_NS, run, seconds, sine, stepped_envelope, time_axis

NOMINAL_V = 230.0
SYSTEMS = {50.0: 6321.0, 60.0: 7000.0}  # f -> fs: 126.42 and 116.67 samples per cycle


def voltage_caps(phases: str, f_hz: float) -> SourceCapabilities:
    return SourceCapabilities(
        channels=tuple(
            ChannelInfo(f"v{p.lower()}", Quantity.VOLTAGE, Phase(p), rate_hz=SYSTEMS[f_hz])
            for p in phases
        ),
        nominal_frequency_hz=f_hz,
    )


def voltages(
    phases: str, f_hz: float, duration_s: float,
    steps: dict[str, list[tuple[float, float, float]]], rms: float = NOMINAL_V,
) -> np.ndarray:
    t = time_axis(SYSTEMS[f_hz], duration_s)
    return np.stack([
        sine(t, f_hz, rms, 0.37 + PHASE_SHIFT_RAD[p], stepped_envelope(t, steps.get(p, [])))
        for p in phases
    ])


CASES = [
    # (type, factor, start_s, duration_s, category)
    (EventType.VOLTAGE_DIP, 0.50, 1.0377, 0.1234, "instantaneous sag"),
    (EventType.VOLTAGE_DIP, 0.70, 0.8111, 1.5017, "momentary sag"),
    (EventType.VOLTAGE_DIP, 0.40, 0.5123, 4.2049, "temporary sag"),
    (EventType.VOLTAGE_SWELL, 1.25, 1.0051, 0.3003, "instantaneous swell"),
    (EventType.VOLTAGE_SWELL, 1.15, 0.7007, 2.0111, "momentary swell"),
    (EventType.VOLTAGE_INTERRUPTION, 0.01, 0.9333, 0.8001, "momentary interruption"),
    (EventType.VOLTAGE_INTERRUPTION, 0.0, 0.6001, 3.5123, "temporary interruption"),
]


@pytest.mark.parametrize("phases", ["A", "ABC"])
@pytest.mark.parametrize("f_hz", [50.0, 60.0])
@pytest.mark.parametrize(("kind", "factor", "start_s", "duration_s", "category"), CASES)
def test_rectangular_event_is_found_with_start_duration_residual_and_category(
    phases: str, f_hz: float, kind: EventType, factor: float, start_s: float,
    duration_s: float, category: str,
) -> None:
    # on three phases the depth differs per phase; the extreme is phase A's
    spread = {EventType.VOLTAGE_INTERRUPTION: 0.0, EventType.VOLTAGE_DIP: 0.04,
              EventType.VOLTAGE_SWELL: -0.02}[kind]
    steps = {
        p: [(start_s, start_s + duration_s, factor + spread * i)]
        for i, p in enumerate(phases)
    }
    x = voltages(phases, f_hz, start_s + duration_s + 0.7, steps)
    engine = EventEngine(voltage_caps(phases, f_hz), nominal_voltage_v=NOMINAL_V)
    got = run(engine, x, SYSTEMS[f_hz], chunk=[1500, 777, 4096])

    voltage_events = [e for e in got.events if e.type.startswith("voltage")]
    assert len(voltage_events) == 1, voltage_events  # an interruption is not also a dip
    ev = voltage_events[0]
    cycle_s = 1.0 / f_hz
    assert ev.type is kind
    assert abs(seconds(ev.start_ns) - start_s) <= cycle_s
    assert ev.duration_s is not None
    assert abs(ev.duration_s - duration_s) <= cycle_s
    assert ev.category == category
    assert ev.phases == tuple(phases)
    value = ev.extreme_pct if kind is EventType.VOLTAGE_SWELL else ev.residual_voltage_pct
    assert value == pytest.approx(100.0 * factor, abs=0.2)  # 0.2 % of nominal
    assert ev.details["reference_voltage_v"] == NOMINAL_V
    assert "open_ended" not in ev.details


def test_overlapping_dips_on_a_then_b_are_one_event_from_a_start_to_b_end() -> None:
    f = 50.0
    steps = {"A": [(1.0, 1.3, 0.60)], "B": [(1.2, 1.6, 0.70)]}
    x = voltages("ABC", f, 2.5, steps)
    got = run(EventEngine(voltage_caps("ABC", f), nominal_voltage_v=NOMINAL_V), x, SYSTEMS[f])
    dips = got.of_type(EventType.VOLTAGE_DIP)
    assert len(dips) == 1
    ev = dips[0]
    assert ev.phases == ("A", "B")
    assert ev.channel == "va"  # the channel that initiated the dip
    assert abs(seconds(ev.start_ns) - 1.0) <= 1 / f
    assert ev.duration_s is not None
    assert abs(seconds(ev.start_ns) + ev.duration_s - 1.6) <= 1 / f
    assert ev.residual_voltage_pct == pytest.approx(60.0, abs=0.2)


def test_separate_dips_on_different_phases_are_separate_events() -> None:
    f = 50.0
    steps = {"A": [(1.0, 1.2, 0.60)], "B": [(1.5, 1.7, 0.70)]}
    x = voltages("ABC", f, 2.5, steps)
    got = run(EventEngine(voltage_caps("ABC", f), nominal_voltage_v=NOMINAL_V), x, SYSTEMS[f])
    assert [e.phases for e in got.of_type(EventType.VOLTAGE_DIP)] == [("A",), ("B",)]


def _hovering(high: float, f: float = 50.0) -> list[tuple[float, float, float]]:
    """Envelope alternating 89.5 % / ``high`` every three cycles for 2 s."""
    steps = []
    t, low = 1.0, True
    while t < 3.0:
        steps.append((t, t + 3 / f, 0.895 if low else high))
        t, low = t + 3 / f, not low
    return steps


def test_hysteresis_keeps_a_voltage_hovering_around_the_threshold_in_one_dip() -> None:
    steps = _hovering(0.91)
    x = voltages("A", 50.0, 3.6, {"A": steps})
    got = run(EventEngine(voltage_caps("A", 50.0), nominal_voltage_v=NOMINAL_V), x, 6321.0)
    dips = got.of_type(EventType.VOLTAGE_DIP)
    assert len(dips) == 1
    assert dips[0].duration_s == pytest.approx(steps[-1][1] - 1.0, abs=0.02)
    assert dips[0].residual_voltage_pct == pytest.approx(89.5, abs=0.2)


def test_recovering_beyond_the_hysteresis_band_does_end_the_dip() -> None:
    # the counter-case of the hysteresis test: 93 % >= 90 % + 2 % ends each dip
    x = voltages("A", 50.0, 3.6, {"A": _hovering(0.93)})
    got = run(EventEngine(voltage_caps("A", 50.0), nominal_voltage_v=NOMINAL_V), x, 6321.0)
    assert len(got.of_type(EventType.VOLTAGE_DIP)) == 17


def test_interruption_needs_all_phases_below_5_percent() -> None:
    f = 50.0
    steps = {"A": [(1.0, 1.5, 0.0)], "B": [(1.0, 1.5, 0.0)], "C": [(1.0, 1.5, 0.5)]}
    x = voltages("ABC", f, 2.2, steps)
    got = run(EventEngine(voltage_caps("ABC", f), nominal_voltage_v=NOMINAL_V), x, SYSTEMS[f])
    assert [e.type for e in got.events] == [EventType.VOLTAGE_DIP]
    assert got.events[0].residual_voltage_pct == pytest.approx(0.0, abs=0.2)


def test_interruption_ends_when_any_phase_recovers_and_keeps_the_enclosing_dip() -> None:
    f = 50.0
    # A comes back at 1.4 s, B and C at 1.6 s: the interruption ends at 1.4 s, the dip at 1.6 s
    steps = {"A": [(1.0, 1.4, 0.0)], "B": [(1.0, 1.6, 0.0)], "C": [(1.0, 1.6, 0.0)]}
    x = voltages("ABC", f, 2.2, steps)
    got = run(EventEngine(voltage_caps("ABC", f), nominal_voltage_v=NOMINAL_V), x, SYSTEMS[f])
    assert len(got.events) == 1
    ev = got.events[0]
    assert ev.type is EventType.VOLTAGE_INTERRUPTION
    assert ev.duration_s == pytest.approx(0.4, abs=1 / f)
    assert float(ev.details["dip_duration_s"]) == pytest.approx(0.6, abs=1 / f)
    assert ev.category == "momentary interruption"


def test_started_event_is_announced_once_and_disturbed_ranges_tile_the_dip() -> None:
    f, fs = 50.0, SYSTEMS[50.0]
    x = voltages("ABC", f, 2.5, {"A": [(1.0, 1.8, 0.5)]})
    got = run(EventEngine(voltage_caps("ABC", f), nominal_voltage_v=NOMINAL_V), x, fs,
              chunk=1000)
    (dip,) = got.of_type(EventType.VOLTAGE_DIP)
    (announced,) = got.started
    assert announced.type is EventType.VOLTAGE_DIP
    assert announced.duration_s is None
    assert announced.details["event_id"] == dip.details["event_id"]
    # announced at once with the threshold-crossing time, refined when it ends
    assert abs(announced.start_ns - dip.start_ns) < 1e9 / f
    # the ranges do not overlap, cover the dip, and overshoot it by < 1 cycle at each
    # end (they are reported before the start and end times are refined)
    ranges = sorted(got.disturbed)
    assert len(ranges) > 3  # reported block by block
    for (_, hi), (lo, _) in itertools.pairwise(ranges):
        assert lo >= hi
    assert dip.duration_s is not None
    end_ns = dip.start_ns + round(dip.duration_s * 1e9)
    assert dip.start_ns - 1e9 / f < ranges[0][0] <= dip.start_ns
    assert end_ns <= ranges[-1][1] < end_ns + 1e9 / f
    covered = sum(hi - lo for lo, hi in ranges)
    assert covered == ranges[-1][1] - ranges[0][0]  # no holes


def test_sliding_reference_reports_residual_of_the_pre_event_level() -> None:
    f = 50.0
    x = voltages("A", f, 2.0, {"A": [(1.0, 1.2, 0.80)]}, rms=236.0)
    engine = EventEngine(voltage_caps("A", f), reference="sliding")
    got = run(engine, x, SYSTEMS[f])
    (dip,) = got.of_type(EventType.VOLTAGE_DIP)
    assert dip.details["reference"] == "sliding"
    assert float(dip.details["reference_voltage_v"]) == pytest.approx(236.0, rel=1e-3)
    assert dip.residual_voltage_pct == pytest.approx(80.0, abs=0.2)


def test_sliding_reference_follows_slow_change_with_one_minute_time_constant() -> None:
    # 230 V for 1 s, then 240 V: after 2 s of 240 V the reference has moved by
    # 10 V * (1 - exp(-2/60)) = 0.33 V, so 8 % below 240 V is still a dip of ~92 %
    # of the reference, not 80 %.
    from collector.events.voltage import VoltageEventDetector, VoltageThresholds

    det = VoltageEventDetector(["A"], ["va"], VoltageThresholds(), None, lambda: 1)
    f = 50.0
    t_ns = T0_NS + np.arange(600) * 10_000_000  # 6 s of half-cycle values
    u = np.where(np.arange(600) < 100, 230.0, 240.0)[None, :]
    det.process(u, t_ns, f)
    assert det.reference_v is not None
    expected = 230.0 + 10.0 * (1 - np.exp(-5.0 / 60.0))
    assert float(det.reference_v[0]) == pytest.approx(expected, abs=0.02)


def test_events_do_not_depend_on_block_size() -> None:
    f = 60.0
    steps = {"A": [(1.0, 1.3, 0.60)], "B": [(1.2, 1.6, 0.70)], "C": [(2.0, 2.3, 1.2)]}
    x = voltages("ABC", f, 3.0, steps)
    results: list[list[tuple[str, tuple[str, ...], int, float]]] = []
    for chunk in (997, 8192, [1, 333, 2500]):
        got = run(EventEngine(voltage_caps("ABC", f), nominal_voltage_v=NOMINAL_V), x,
                  SYSTEMS[f], chunk=chunk)
        results.append([(e.type, e.phases, e.start_ns, e.duration_s or 0.0) for e in got.events])
    assert len(results[0]) == 2
    for other in results[1:]:
        assert [r[:2] for r in other] == [r[:2] for r in results[0]]
        # cumulative sums restart per block: the times agree to far below a sample
        np.testing.assert_allclose([r[2] for r in other], [r[2] for r in results[0]],
                                   rtol=0, atol=1_000)
        np.testing.assert_allclose([r[3] for r in other], [r[3] for r in results[0]],
                                   rtol=0, atol=1e-6)


def test_event_open_at_end_of_stream_is_flushed_as_open_ended() -> None:
    f = 50.0
    x = voltages("A", f, 2.0, {"A": [(1.5, 5.0, 0.5)]})
    engine = EventEngine(voltage_caps("A", f), nominal_voltage_v=NOMINAL_V)
    got = run(engine, x, SYSTEMS[f], flush=False)
    assert got.events == []
    assert len(got.started) == 1
    flushed = engine.flush()
    (ev,) = flushed.events
    assert ev.details["open_ended"] is True
    assert ev.duration_s == pytest.approx(0.5, abs=1 / f)
