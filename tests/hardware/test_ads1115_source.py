"""The ADS1115 source against the register emulation, driven by the simulated panel.

The promise under test is the capability model's (collector.sources.hardware.ads1115):
RMS within RMS_ACCURACY_PCT of reading, P within POWER_ACCURACY_PCT_OF_S of S, over
one 150-cycle window, for sensors between 10 % and 100 % of full scale. The reference
is the panel's truth (model phasors), not a sampled signal.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.model import Phase
from collector.sources.hardware.ads1115 import (
    POWER_ACCURACY_PCT_OF_S,
    RMS_ACCURACY_PCT,
    Ads1115Source,
)
from collector.sources.hardware.environment import HardwareUnavailableError
from collector.sources.simulated import SimulatedSource
from tests.hardware.ads1115_emulator import Ads1115Emulator, EmulatedClock, constant, sine
from tests.hardware.emulated import EmulatedHardware
from tests.hardware.fields import nums
from tests.hardware.panel_drive import Wiring, ads1115_config, chips_for, kitchen_panel

A = Phase.A
START_S = 0.2


def _check_window(src: Ads1115Source, sim: SimulatedSource, clock: EmulatedClock,
                  same_chip: bool = True) -> None:
    batch = src.read()
    by = {(m.channel, m.phase): m for m in batch.metrics}
    start_s = (batch.metrics[0].time_ns - clock.epoch_ns) / 1e9
    truth = sim.truth_at(start_s + 1.5)
    v = nums(by[("v_a", "A")].fields)
    vf = by[("v_a", "A")].fields
    assert v["voltage_rms_v"] == pytest.approx(truth.voltage_rms_v[A],
                                               rel=RMS_ACCURACY_PCT / 100)
    assert v["frequency_hz"] == pytest.approx(truth.frequency_hz, abs=0.01)
    # what incoherent sampling cannot give is not invented
    for name in ("voltage_thd_pct", "voltage_peak_v", "voltage_crest_factor"):
        assert vf[name] is None
    assert vf["harmonics_max_order"] == 0
    for cid in ("kettle", "fan"):
        f = nums(by[(cid, "A")].fields)
        c = truth.circuits[cid]
        assert f["current_rms_a"] == pytest.approx(c.current_rms_a[0],
                                                   rel=RMS_ACCURACY_PCT / 100)
        promise = f["accuracy_power_pct_of_s"]
        assert abs(f["power_active_w"] - c.power_active_w) <= promise / 100 * c.power_apparent_va
        if same_chip:
            assert promise == POWER_ACCURACY_PCT_OF_S
        else:  # V and I on different chips: the timing between them is less certain
            assert POWER_ACCURACY_PCT_OF_S + 1 < promise < POWER_ACCURACY_PCT_OF_S + 6
        assert f["accuracy_rms_pct"] == RMS_ACCURACY_PCT
        # the multiplexer skew is real (different instants) and corrected by the fits
        assert abs(f["skew_correction_us"]) > 500
    # the fan lags: Q1 positive, within the power promise too
    fan, fan_truth = nums(by[("fan", "A")].fields), truth.circuits["fan"]
    assert abs(fan["power_reactive_var"] - fan_truth.power_reactive_var) <= (
        fan["accuracy_power_pct_of_s"] / 100 * fan_truth.power_apparent_va)
    assert fan_truth.power_factor < 0.85  # the test means something: a real phase angle


@pytest.mark.parametrize(("data_rate", "rate_error"), [(860, 0.0), (860, -0.08), (475, 0.05)])
def test_one_chip_three_inputs_meets_the_promise(data_rate: int, rate_error: float) -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x48, 1), Wiring("i_fan", 0x48, 2)]
    cfg = ads1115_config(wiring, data_rate_sps=data_rate)
    sim = SimulatedSource(kitchen_panel(), seed=3)
    env = EmulatedHardware(chips_for(cfg, sim, wiring, 7.0, rate_errors={0x48: rate_error}))
    env.clock.t_s = START_S
    src = Ads1115Source(cfg, hardware=env)
    _check_window(src, sim, env.clock)
    _check_window(src, sim, env.clock)  # back-to-back windows, energy keeps counting


def test_inputs_spread_over_chips_with_different_oscillators() -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x49, 0), Wiring("i_fan", 0x4A, 3)]
    cfg = ads1115_config(wiring)
    sim = SimulatedSource(kitchen_panel(), seed=5)
    chips = chips_for(cfg, sim, wiring, 4.0, rate_errors={0x48: -0.09, 0x49: 0.04, 0x4A: 0.09})
    env = EmulatedHardware(chips)
    env.clock.t_s = START_S
    src = Ads1115Source(cfg, hardware=env)
    # paired channels are read single-shot even with continuous: true (V/I timing)
    assert not any(i.continuous for i in src.inputs)
    _check_window(src, sim, env.clock, same_chip=False)


def test_capabilities_state_the_shared_rate_and_skew() -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x48, 1), Wiring("i_fan", 0x48, 2)]
    cfg = ads1115_config(wiring)
    sim = SimulatedSource(kitchen_panel(), seed=3)
    env = EmulatedHardware(chips_for(cfg, sim, wiring, 4.0))
    env.clock.t_s = START_S
    src = Ads1115Source(cfg, hardware=env)
    caps = src.capabilities
    assert caps.waveform is False
    assert caps.simultaneous is False
    rates = [c.rate_hz for c in caps.channels]
    # three inputs share one converter: each gets well under a third of 860 SPS
    assert all(r < 860 / 3 for r in rates)
    skews = [c.skew_s for c in caps.channels]
    assert skews[0] < skews[1] < skews[2]
    samples = src.acquire(1.0)
    for ch, expected in zip(samples.channels, rates, strict=True):
        assert ch.rate_hz() == pytest.approx(expected, rel=0.2)
    # resolution from the PGA: 4.096 V / 32768 through a 325 V/V transformer
    assert caps.channels[0].resolution == pytest.approx(4.096 / 32768 * 325.0)
    assert caps.channels[0].full_scale == pytest.approx(1.65 * 325.0)


def test_energy_integrates_power_over_windows() -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x48, 1)]
    cfg = ads1115_config(wiring)
    sim = SimulatedSource(kitchen_panel(), seed=3)
    env = EmulatedHardware(chips_for(cfg, sim, wiring, 10.0))
    env.clock.t_s = START_S
    src = Ads1115Source(cfg, hardware=env)
    energies = []
    for _ in range(3):
        m = next(m for m in src.read().metrics if m.channel == "kettle")
        energies.append(nums(m.fields)["energy_import_wh"])
        assert m.fields["energy_export_wh"] == 0.0
    # 2 kW for 3 s is 1.667 Wh per window
    assert np.diff(energies) == pytest.approx([2000.0 * 3 / 3600] * 2, rel=0.01)


def test_reversed_clamp_reads_export_and_polarity_flips_it_back() -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x48, 1)]
    cfg = ads1115_config(wiring)
    sim = SimulatedSource(kitchen_panel(), seed=3)
    chips = chips_for(cfg, sim, wiring, 4.0)
    kettle_pin = chips[0x48].inputs[1]
    # the clamp the wrong way round: the current's signal inverted around the bias
    chips[0x48].inputs[1] = lambda t: 3.3 - kettle_pin(t)
    for polarity, sign in (("normal", -1.0), ("reversed", 1.0)):
        env = EmulatedHardware({0x48: chips[0x48]})
        env.clock.t_s = START_S
        cfg = ads1115_config(wiring, polarity={"i_kettle": polarity})
        m = next(m for m in Ads1115Source(cfg, hardware=env).read().metrics
                 if m.channel == "kettle")
        assert m.fields["power_active_w"] == pytest.approx(sign * 2000.0, rel=0.01)


def test_missing_chip_names_its_address() -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x49, 0)]
    cfg = ads1115_config(wiring)
    env = EmulatedHardware({0x48: Ads1115Emulator(0x48)})
    with pytest.raises(HardwareUnavailableError, match="0x49 does not answer"):
        Ads1115Source(cfg, hardware=env)


def test_bus_errors_become_missing_samples_and_measuring_goes_on() -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x48, 1)]
    cfg = ads1115_config(wiring)
    sim = SimulatedSource(kitchen_panel(), seed=3)
    env = EmulatedHardware(chips_for(cfg, sim, wiring, 4.0))
    env.clock.t_s = START_S
    src = Ads1115Source(cfg, hardware=env)  # constructed on a healthy bus
    env.bus.fail_every = 97
    batch = src.read()
    v = nums(next(m for m in batch.metrics if m.channel == "v_a").fields)
    assert v["missing_samples"] > 0
    assert v["voltage_rms_v"] == pytest.approx(230.0, rel=0.01)


def test_stuck_and_clipping_inputs_raise_sensor_faults() -> None:
    wiring = [Wiring("v_a", 0x48, 0), Wiring("i_kettle", 0x48, 1)]
    cfg = ads1115_config(wiring)
    # a voltage module whose output hangs at 2.2 V (not its 1.65 V bias), and a
    # current three times too large for the input range
    chip = Ads1115Emulator(0x48, {
        0: constant(2.2),
        1: sine(1.65, 3.0, 50.0),
    })
    env = EmulatedHardware({0x48: chip})
    src = Ads1115Source(cfg, hardware=env)
    events = []
    for _ in range(2):
        b = src.read()
        events += list(b.events) + list(b.started)
    events += list(src.close().events)
    faults = {(e.channel, e.details["fault"]) for e in events}
    assert ("v_a", "stuck") in faults
    assert ("i_kettle", "clipping") in faults
    kettle = nums(next(m for m in b.metrics if m.channel == "kettle").fields)
    assert kettle["clipped_samples"] > 0


def test_residual_ct_alone_on_a_chip_runs_continuous_and_reads_right() -> None:
    from collector.config import parse_config

    cfg = parse_config({
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "ads1115", "ads1115": {"continuous": True, "devices": [
            {"address": 0x48, "full_scale_v": 4.096}, {"address": 0x49, "full_scale_v": 0.512},
        ]}},
        "channels": {
            "voltage": [{"id": "v_a", "phase": "A", "adc": {"device": 0x48, "channel": 0},
                         "sensor": {"type": "zmpt101b", "ratio": 325.0, "zero_v": 1.65}}],
            "current": [{"id": "i_k", "phase": "A", "adc": {"device": 0x48, "channel": 1},
                         "sensor": {"type": "sct013", "variant": "030", "zero_v": 1.65}}],
            "residual": [{"id": "ir", "adc": {"device": 0x49, "differential": [0, 1]},
                          "sensor": {"type": "direct", "scale": 0.1}}],
        },
        "circuits": [{"id": "k", "phases": ["A"], "current_channels": ["i_k"],
                      "breaker_rating_a": 16}],
    })
    leak_a = 0.025  # 25 mA RMS: 0.25 V RMS at 10 V/A
    chips = {
        0x48: Ads1115Emulator(0x48, {0: sine(1.65, 230 / 325, 50.0),
                                     1: sine(1.65, 1 / 3, 50.0)}),
        0x49: Ads1115Emulator(0x49, {0: sine(1.65, leak_a / 0.1, 50.0, 0.3,
                                              {3: (0.05, 0.0)}),
                                     1: constant(1.65)}, rate_error=0.07),
    }
    env = EmulatedHardware(chips)
    src = Ads1115Source(cfg, hardware=env)
    assert [i.continuous for i in src.inputs] == [False, False, True]
    m = next(m for m in src.read().metrics if m.channel == "ir")
    expected = math.hypot(leak_a, 0.05 * 0.1)
    assert m.fields["residual_current_a"] == pytest.approx(expected, rel=RMS_ACCURACY_PCT / 100)
    # a fresh conversion every read: consecutive codes differ (a 50 Hz signal)
    codes = src.acquire(0.2, calibrated=False).channel("ir").codes
    assert codes is not None
    assert np.all(np.diff(codes) != 0)
