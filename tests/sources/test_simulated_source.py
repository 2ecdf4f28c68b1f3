"""SimulatedSource as a Source: determinism, block-size independence, time stamps, capabilities."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from collector.config.system import SystemType
from collector.model import NS_PER_S, Block, Phase, Quantity, Source
from collector.sources.simulated import (
    DEFAULT_START_NS,
    AdcSpec,
    Arcing,
    CircuitSpec,
    DisturbanceType,
    GroundFault,
    LoadSpec,
    LoadType,
    MainsSpec,
    PanelSpec,
    Sampling,
    Schedule,
    SensorFault,
    SensorFaultKind,
    SimulatedSource,
    VoltageChange,
    preset,
)
from collector.sources.simulated.mains import FrequencyTrack


def busy_source(**kw: object) -> SimulatedSource:
    """The demo panel with something of everything going on in the first 3 s."""
    events = [
        VoltageChange(DisturbanceType.VOLTAGE_DIP, 0.43, 0.25, 55.0, onset_deg=45.0),
        GroundFault(0.8, 0.9, "kitchen", 0.05),
        Arcing(1.2, 0.7, "water_heater"),
        SensorFault(1.9, 0.6, "i_lighting", SensorFaultKind.STUCK),
    ]
    return SimulatedSource(preset("three_phase_panel"), disturbances=events, **kw)  # type: ignore[arg-type]


def collect(src: SimulatedSource) -> tuple[list[Block], np.ndarray]:
    blocks = list(src.blocks())
    return blocks, np.concatenate([b.samples for b in blocks], axis=1)


def test_is_a_source() -> None:
    src: Source = SimulatedSource(preset("home_single_phase_230v"), duration_s=0.3)
    assert len(list(src.blocks())) == 3
    src.close()


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    a = busy_source(seed=7).generate(0, 6400)
    b = busy_source(seed=7).generate(0, 6400)
    c = busy_source(seed=8).generate(0, 6400)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_block_by_block_equals_one_long_generation() -> None:
    # edges of the dip, the fault, the arc, the stuck sensor and several schedule edges
    # fall inside blocks of every size used here
    whole = busy_source(seed=1).generate(0, round(3.0 * 6400))
    for block_s, chunk_s in ((0.1, 0.5), (0.037, 0.2), (0.25, 0.25), (3.0, 1.0), (0.0011, 0.01)):
        blocks, joined = collect(busy_source(seed=1, duration_s=3.0, block_duration_s=block_s,
                                             synthesis_chunk_s=chunk_s))
        np.testing.assert_array_equal(joined, whole, err_msg=f"block {block_s} s")
        assert all(b.samples.flags.c_contiguous for b in blocks)


def test_generation_is_random_access_across_frequency_batches() -> None:
    # the frequency track is made in batches of 4096 steps (~82 s); a window across a
    # batch boundary far into the run equals the same window cut into pieces
    src = busy_source(seed=4)
    boundary = 4096 * src._track.step_n
    whole = src.generate(boundary - 700, boundary + 900)
    parts = [src.generate(boundary - 700, boundary + 3), src.generate(boundary + 3, boundary + 900)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    np.testing.assert_array_equal(busy_source(seed=4).generate(boundary - 700, boundary + 900),
                                  whole)


def test_phase_has_no_float_drift_after_a_day() -> None:
    # a fixed 50 Hz supply: after exactly 86 400 s (4 320 000 cycles) the waveform is
    # where it started; any accumulation of t·2πf in floats would show by now
    circuit = CircuitSpec("x", "x", (Phase.A,), LoadSpec(LoadType.RESISTIVE, 100.0), 10.0)
    mains = MainsSpec(SystemType.SINGLE_PHASE, 230.0, 50.0, harmonics=(),
                      frequency_drift_hz=0.0, noise_v=0.0)
    src = SimulatedSource(PanelSpec("p", mains, AdcSpec(bits=24, noise_lsb=0.0), 6400.0,
                                    (circuit,)))
    n_day = 86_400 * 6400
    start = src.generate(0, 128)[0]
    later = src.generate(n_day, n_day + 128)[0]
    lsb = src.capabilities.channels[0].resolution
    assert lsb is not None
    np.testing.assert_allclose(later, start, atol=2 * lsb)  # 24-bit LSB ~ 58 µV of 325 V


def test_frequency_track_cycles_integrate_the_frequency() -> None:
    # f(t) = 50 + ramp: the cycle count over 10 s is the integral of f, to float precision
    track = FrequencyTrack(50.0, 0.0, 0.0, 1000.0, seed=1)
    c0 = track.cycles(0, 1)
    c1 = track.cycles(10_000, 10_001)
    cycles = (c1.whole[0] + c1.frac[0]) - (c0.whole[0] + c0.frac[0])
    assert cycles == pytest.approx(500.0, abs=1e-9)


def test_timestamps_are_exact_and_contiguous() -> None:
    src = SimulatedSource(preset("home_split_phase_240v"), duration_s=1.0, block_duration_s=0.1,
                          start_ns=1_700_000_000 * NS_PER_S)
    blocks = list(src.blocks())
    assert len(blocks) == 10
    assert blocks[0].t0_ns == 1_700_000_000 * NS_PER_S
    assert [b.contiguous for b in blocks] == [False] + [True] * 9
    for k, b in enumerate(blocks):
        assert b.fs_hz == 7680.0
        assert b.n_samples == 768
        assert b.t0_ns == 1_700_000_000 * NS_PER_S + k * 100_000_000
    # a rate with no whole number of nanoseconds per sample stays exact far out
    odd = SimulatedSource(preset("home_single_phase_230v"), start_ns=0)
    odd_rate = 6400.0 * 3 / 7
    odd._fs = odd_rate
    odd._ns_per_sample = (Fraction(NS_PER_S) / Fraction(odd_rate)).as_integer_ratio()
    n = 10**10 + 3
    assert odd._t0_ns(n) == round(Fraction(n * NS_PER_S) / Fraction(odd_rate))


def test_duration_is_honoured_with_a_short_last_block() -> None:
    src = SimulatedSource(preset("home_single_phase_230v"), duration_s=0.25,
                          block_duration_s=0.1)
    sizes = [b.n_samples for b in src.blocks()]
    assert sizes == [640, 640, 320]
    assert SimulatedSource(preset("home_single_phase_230v")).capabilities.nominal_voltage_v == 230.0


def test_default_start_is_a_fixed_epoch() -> None:
    first = next(SimulatedSource(preset("three_phase_panel")).blocks())
    assert first.t0_ns == DEFAULT_START_NS == 1_704_067_200 * NS_PER_S


def test_close_stops_the_stream() -> None:
    src = SimulatedSource(preset("three_phase_panel"))
    it = src.blocks()
    next(it)
    src.close()
    assert list(it) == []


def test_capabilities_describe_every_channel() -> None:
    src = SimulatedSource(preset("three_phase_panel"))
    caps = src.capabilities
    ids = [c.id for c in caps.channels]
    assert ids[:3] == ["v_a", "v_b", "v_c"]
    assert "i_ev_charger_a" in ids
    assert "i_kitchen" in ids
    assert ids[-1] == "i_residual"
    assert caps.simultaneous
    assert caps.waveform
    assert caps.nominal_frequency_hz == 50.0
    for ch in caps.channels:
        assert ch.rate_hz == 6400.0
        assert ch.skew_s == 0.0
        assert ch.resolution is not None
        assert ch.full_scale is not None
        # 16 bits: the largest reading is 32767 steps
        assert ch.full_scale == pytest.approx(32767 * ch.resolution)
        if ch.quantity is Quantity.VOLTAGE:
            assert ch.phase in (Phase.A, Phase.B, Phase.C)
            assert ch.circuit is None
            assert ch.full_scale == pytest.approx(1.5 * math.sqrt(2) * 230.0, rel=1e-4)
        elif ch.quantity is Quantity.CURRENT:
            c = src.panel.circuit(ch.circuit or "")
            assert ch.phase in c.phases
            assert ch.full_scale == pytest.approx(3 * math.sqrt(2) * c.breaker_rating_a, rel=1e-4)
        else:
            assert ch.id == "i_residual"
            assert ch.phase is Phase.G
    block = next(src.blocks())
    assert block.samples.shape == (len(caps.channels), 640)
    assert block.samples.dtype == np.float64


def test_multiplexed_skew_is_declared_per_channel() -> None:
    src = SimulatedSource(preset("home_single_phase_230v"))
    caps = src.capabilities
    n = len(caps.channels)
    assert not caps.simultaneous
    for k, ch in enumerate(caps.channels):
        assert ch.skew_s == pytest.approx(k / (n * 6400.0))


def test_inconsistent_disturbances_are_rejected_naming_the_event() -> None:
    panel = preset("home_single_phase_230v")
    with pytest.raises(ValueError, match=r"events\[0\]\.circuit: must be a circuit"):
        SimulatedSource(panel, disturbances=[GroundFault(1.0, 1.0, "garage", 0.03)])
    with pytest.raises(ValueError, match=r"events\[1\]\.channel"):
        SimulatedSource(panel, disturbances=[
            GroundFault(1.0, 1.0, "kitchen", 0.03),
            SensorFault(1.0, 1.0, "i_garage", SensorFaultKind.STUCK),
        ])
    with pytest.raises(ValueError, match="block_duration_s"):
        SimulatedSource(panel, block_duration_s=0)


def test_panel_spec_rejects_bad_phases_for_the_supply() -> None:
    three = CircuitSpec("m", "m", (Phase.A, Phase.B, Phase.C), LoadSpec(LoadType.MOTOR, 1e3), 16)
    with pytest.raises(ValueError, match=r"circuits\[0\]\.phases"):
        PanelSpec("p", MainsSpec(SystemType.SPLIT_PHASE, 120.0, 60.0), AdcSpec(), 7680.0, (three,))
    with pytest.raises(ValueError, match="sample_rate_hz"):
        PanelSpec("p", MainsSpec(), AdcSpec(), 150.0, ())
    with pytest.raises(ValueError, match="on_s"):
        Schedule(10.0, 20.0)
    with pytest.raises(ValueError, match="bits"):
        AdcSpec(bits=4, sampling=Sampling.SIMULTANEOUS)


def test_slow_converter_rates_work() -> None:
    # an ADS1115-like 860 SPS shared by 4 channels: 215 SPS each, harmonics only to 3rd
    circuit = CircuitSpec("x", "x", (Phase.A,), LoadSpec(LoadType.SMPS, 300.0), 10.0)
    panel = PanelSpec("slow", MainsSpec(), AdcSpec(bits=16, sampling=Sampling.MULTIPLEXED),
                      215.0, (circuit,))
    src = SimulatedSource(panel, duration_s=2.0)
    blocks = list(src.blocks())
    assert sum(b.n_samples for b in blocks) == 430
    assert src.compiled.h_max == 1  # 0.45·215/50: only the fundamental is representable
