"""Advisory arc signature: real arcing current must trigger, periodic loads must not.

Real data: tests/data/inclined_plane_arc_current (MIT): leakage current of an IEC 60587
inclined-plane tracking test with dry-band arcing. The upstream arc list (3 arcs of
0.344 s, 0.945 s and 0.713 s separated by extinctions of 0.296 s, 0.848 s and 0.144 s)
is algorithm output, not ground truth; it is used only for the coarse structure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collector.events.engine import EventEngine, EventSettings
from collector.model import ChannelInfo, Event, EventType, Phase, Quantity, SourceCapabilities

from .signals import run, seconds, time_axis

DATA = Path(__file__).resolve().parents[1] / "data" / "inclined_plane_arc_current"
FS, F = 5000.0, 50.0
# the record's current is in mA: a ~14 mA leakage path, so the minimum current of the
# signature is lowered from its 0.5 A default to 5 mA for this record and its twins
SETTINGS = EventSettings(arc_min_current_a=0.005)
CAPS = SourceCapabilities(
    channels=(
        ChannelInfo("v", Quantity.VOLTAGE, Phase.A, rate_hz=FS),
        ChannelInfo("i", Quantity.CURRENT, Phase.A, circuit="sample", rate_hz=FS),
    ),
    nominal_frequency_hz=F,
)


def _record() -> tuple[np.ndarray, np.ndarray]:
    d = np.loadtxt(DATA / "ac_inclined_plane_4p5kV.csv", delimiter=",")
    return d[:, 1] * 1000.0, d[:, 2] * 1e-3  # kV -> V, mA -> A


def _arcs(
    v: np.ndarray, i: np.ndarray, chunk: int = 1000, f_hz: float | None = None
) -> list[Event]:
    engine = EventEngine(CAPS, SETTINGS, reference="sliding")
    got = run(engine, np.stack([v, i]), FS, chunk=chunk, f_hz=f_hz)
    assert not [e for e in got.events if e.type is EventType.SENSOR_FAULT]
    return got.of_type(EventType.ARC_FAULT_SUSPECTED)


def test_arcing_in_the_inclined_plane_record_is_found() -> None:
    v, i = _record()
    arcs = _arcs(v, i)
    # the 0.5-s window bridges the 0.296-s and 0.144-s extinctions but not the 0.848-s one
    assert len(arcs) == 2
    durations = [a.duration_s for a in arcs]
    assert None not in durations
    gap_s = seconds(arcs[1].start_ns) - (seconds(arcs[0].start_ns) + (durations[0] or 0.0))
    assert gap_s == pytest.approx(0.848, abs=0.15)
    assert seconds(arcs[0].start_ns) < 0.35  # the record opens with arc 1 (0.344 s)
    total_s = sum(d or 0.0 for d in durations)
    assert total_s >= 0.344 + 0.945 + 0.713  # at least the upstream arcing time
    for arc in arcs:
        assert arc.severity == "warning"
        assert arc.details["advisory"] is True
        assert arc.channel == "i"


def test_arc_detection_does_not_depend_on_block_size() -> None:
    # with the frequency given (the engine's own estimate is refreshed per block)
    v, i = _record()
    a = [(e.start_ns, e.duration_s) for e in _arcs(v, i, chunk=1000, f_hz=F)]
    b = [(e.start_ns, e.duration_s) for e in _arcs(v, i, chunk=317, f_hz=F)]
    assert len(a) == 2
    assert a == b


def _load_currents(rms_a: float) -> dict[str, np.ndarray]:
    """Periodic load currents with the arc record's RMS, plus 0.3 % measurement noise."""
    t = time_axis(FS, 3.6)
    w = 2 * np.pi * F * t
    rng = np.random.default_rng(11)
    half = 0.5 / F
    k = np.floor(t / half).astype(int)
    # leading-edge dimmer firing at ~94 deg with +-40 us jitter: the jitter moves the
    # sampled edge by one sample from one half cycle to the next (worst case)
    fire_s = 0.0052 + rng.uniform(-40e-6, 40e-6, k.max() + 1)[k]
    shapes = {
        "sine": np.sin(w),
        "motor": (np.sin(w - 0.6) + 0.04 * np.sin(5 * (w - 0.6)) + 0.02 * np.sin(7 * w)
                  + 0.01 * np.sin(2 * np.pi * 1150 * t)) * (1 + 0.02 * np.sin(2 * np.pi * 1.3 * t)),
        "smps": np.clip(np.abs(np.sin(w)) - 0.85, 0, None) ** 1.5 * np.sign(np.sin(w)),
        "dimmer": np.where(t - k * half >= fire_s, np.sin(w), 0.0),
    }
    out = {}
    for name, s in shapes.items():
        s = s * rms_a / np.sqrt(np.mean(s**2))
        out[name] = s + rng.normal(0.0, 0.003 * np.abs(s).max(), s.size)
    return out


@pytest.mark.parametrize("load", ["sine", "motor", "smps", "dimmer"])
def test_periodic_loads_with_the_same_rms_do_not_look_like_arcing(load: str) -> None:
    # the RMS current during arcing, Ie, of the upstream arc list (13.98, 12.9, 13.5 mA)
    reference = np.loadtxt(DATA / "ac_inclined_plane_arcs_reference.csv", delimiter=",", ndmin=2)
    rms_a = float(np.mean(reference[:, 3])) * 1e-3
    assert rms_a == pytest.approx(0.0135, abs=5e-4)
    current = _load_currents(rms_a)[load]
    t = time_axis(FS, 3.6)
    voltage = np.sqrt(2) * 4690.0 * np.sin(2 * np.pi * F * t)
    assert _arcs(voltage, current) == []


def test_current_below_the_minimum_is_not_scored() -> None:
    v, i = _record()  # ~14 mA RMS, below a 50 mA minimum
    engine = EventEngine(CAPS, EventSettings(arc_min_current_a=0.05), reference="sliding")
    got = run(engine, np.stack([v, i]), FS)
    assert got.of_type(EventType.ARC_FAULT_SUSPECTED) == []


def test_arc_detection_can_be_disabled_and_needs_a_fast_enough_sample_rate() -> None:
    engine = EventEngine(CAPS, EventSettings(arc_detection=False), reference="sliding")
    assert engine.unavailable["arc"] == "disabled in settings"
    slow = EventEngine(CAPS, SETTINGS, reference="sliding")
    t = time_axis(1000.0, 1.0)
    x = np.stack([np.sin(2 * np.pi * F * t) * 300, np.sin(2 * np.pi * F * t)])
    run(slow, x, 1000.0)
    assert "too slow" in slow.unavailable["arc"]
