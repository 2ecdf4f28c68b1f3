"""EventEngine plumbing: settings validation, capabilities, gaps, flush, quiet baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from collector.events.engine import EventBatch, EventEngine, EventSettings
from collector.model import (
    NS_PER_S,
    Block,
    ChannelInfo,
    EventType,
    Phase,
    Quantity,
    SourceCapabilities,
)

from .signals import PHASE_SHIFT_RAD, T0_NS, run, sine, stepped_envelope, time_axis

FS, F = 7000.0, 60.0
ONE_PHASE = SourceCapabilities(
    channels=(ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=FS),),
    nominal_frequency_hz=F,
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dip_threshold_pct", 101.0),
        ("swell_threshold_pct", 95.0),
        ("interruption_threshold_pct", 0.0),
        ("hysteresis_pct", -1.0),
        ("overcurrent_instant_pct", 50.0),
        ("ground_fault_threshold_a", 0.0),
        ("frequency_band_hz", (50.5, 49.5)),
        ("arc_min_half_cycles", 0),
        ("sensor_clipping_min_samples", 0),
    ],
)
def test_invalid_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        EventSettings(**{field: value})  # type: ignore[arg-type]


def test_defaults_follow_the_standards() -> None:
    s = EventSettings()
    assert (s.dip_threshold_pct, s.swell_threshold_pct, s.interruption_threshold_pct,
            s.hysteresis_pct) == (90.0, 110.0, 5.0, 2.0)  # IEC 61000-4-30 / EN 50160 practice
    assert (s.ground_fault_threshold_a, s.ground_fault_min_duration_s) == (0.030, 0.04)
    assert dataclasses.is_dataclass(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.dip_threshold_pct = 80.0  # type: ignore[misc]


def test_nominal_reference_needs_a_nominal_voltage() -> None:
    with pytest.raises(ValueError, match="reference: 'nominal' needs nominal_voltage_v"):
        EventEngine(ONE_PHASE, reference="nominal")


def test_block_with_wrong_channel_count_is_rejected() -> None:
    engine = EventEngine(ONE_PHASE, nominal_voltage_v=120.0)
    with pytest.raises(ValueError, match=r"block.samples: expected shape \(1, n\)"):
        engine.process(Block(T0_NS, FS, np.zeros((2, 100))))


def test_meter_sources_give_no_waveform_events() -> None:
    caps = dataclasses.replace(ONE_PHASE, waveform=False)
    engine = EventEngine(caps, nominal_voltage_v=120.0)
    assert "all" in engine.unavailable
    assert engine.process(Block(T0_NS, FS, np.zeros((1, 1000)))) == EventBatch()


def test_too_few_samples_per_cycle_disable_rms_events() -> None:
    fs = 400.0  # 6.7 samples per 60-Hz cycle
    t = time_axis(fs, 2.0)
    x = sine(t, F, 120.0, 0.3, stepped_envelope(t, [(1.0, 1.5, 0.5)]))[None, :]
    engine = EventEngine(ONE_PHASE, nominal_voltage_v=120.0)
    got = run(engine, x, fs)
    assert [e for e in got.events if e.type.startswith("voltage")] == []
    assert "samples per cycle" in engine.unavailable["rms_events"]


def test_a_gap_ends_events_in_progress_and_restarts_detection() -> None:
    t = time_axis(FS, 4.0)
    x = sine(t, F, 120.0, 0.3, stepped_envelope(t, [(1.0, 3.0, 0.5)]))[None, :]
    engine = EventEngine(ONE_PHASE, nominal_voltage_v=120.0)
    first = engine.process(Block(T0_NS, FS, x[:, :14000]))  # up to 2 s, inside the dip
    assert [e.type for e in first.started] == [EventType.VOLTAGE_DIP]
    # the next block comes 0.5 s later and is marked non-contiguous
    later = T0_NS + round(2.5 * NS_PER_S)
    second = engine.process(Block(later, FS, x[:, 17500:], contiguous=False))
    rest = engine.flush()
    ended = [e for e in second.events + rest.events if e.type is EventType.VOLTAGE_DIP]
    assert len(ended) == 2
    assert ended[0].details["open_ended"] is True
    assert ended[0].details["end_reason"] == "gap"
    assert ended[0].duration_s == pytest.approx(1.0, abs=1 / F)
    assert ended[1].duration_s == pytest.approx(0.5, abs=2 / F)  # from the restart at 2.5 s


def test_flush_without_data_is_empty() -> None:
    assert EventEngine(ONE_PHASE, nominal_voltage_v=120.0).flush() == EventBatch()


def test_a_healthy_installation_produces_no_events() -> None:
    """Three phases with harmonics and noise, loaded circuits, L+N pairs: all quiet."""
    channels = [ChannelInfo(f"v{p}", Quantity.VOLTAGE, Phase(p), rate_hz=FS, full_scale=450.0,
                            resolution=0.02) for p in "ABC"]
    channels += [
        ChannelInfo("oven", Quantity.CURRENT, Phase.A, circuit="oven", full_scale=60.0),
        ChannelInfo("lights_l", Quantity.CURRENT, Phase.B, circuit="lights", full_scale=30.0),
        ChannelInfo("lights_n", Quantity.CURRENT, Phase.N, circuit="lights", full_scale=30.0),
        ChannelInfo("rcd", Quantity.RESIDUAL_CURRENT, Phase.G, circuit="bath", full_scale=1.0),
    ]
    caps = SourceCapabilities(channels=tuple(channels), nominal_frequency_hz=F)
    t = time_axis(FS, 4.0)
    rng = np.random.default_rng(5)
    volts = [sine(t, F, 229.0 + k, 0.3 + PHASE_SHIFT_RAD[p]) + sine(t, 5 * F, 6.0, 0.7)
             + rng.normal(0, 0.3, t.size) for k, p in enumerate("ABC")]
    oven = sine(t, F, 19.0, 0.1) + sine(t, 3 * F, 2.0, 0.4)
    lights = sine(t, F, 6.0, -0.3) + sine(t, 3 * F, 3.0, 0.2) + sine(t, 5 * F, 1.5, 1.0)
    x = np.stack([*volts, oven, lights, -lights + rng.normal(0, 0.002, t.size),
                  rng.normal(0, 0.001, t.size)])
    engine = EventEngine(caps, nominal_voltage_v=230.0,
                         circuit_ratings_a={"oven": 25.0, "lights": 10.0})
    got = run(engine, x, FS, chunk=[3000, 1234])
    assert got.events == []
    assert got.started == []
    assert got.disturbed == []
    assert "overcurrent:bath" not in engine.unavailable  # residual channels are no circuit
