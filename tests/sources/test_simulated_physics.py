"""The simulated panel measured with plain numpy against physics, not against itself.

Expected values come from the configured ratings, circuit theory (V = E·R/(R+Z),
phase sequence, split-phase legs), the brief's load figures (motor PF 0.8, SMPS PF
~0.65 with near-unity displacement, EV PF 0.99, 6x inrush) and the converter's
definition (LSB = FS/2^(bits-1)). No GridGuard DSP is used here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from collector.config.system import SystemType
from collector.model import Phase
from collector.sources.simulated import (
    AdcSpec,
    Arcing,
    CircuitSpec,
    DisturbanceType,
    FrequencyExcursion,
    GroundFault,
    HarmonicPollution,
    LoadSpec,
    LoadType,
    MainsSpec,
    OpenNeutral,
    PanelSpec,
    Sampling,
    Schedule,
    SensorFault,
    SensorFaultKind,
    SimulatedSource,
    SupplyImpedance,
    VoltageChange,
    VoltageHarmonic,
)
from collector.sources.simulated.presets import three_phase_panel

A, B, C = Phase.A, Phase.B, Phase.C
FS = 6400.0
IDEAL_ADC = AdcSpec(bits=24, noise_lsb=0.0)
DEFAULT_V_RMS_PU = math.sqrt(1 + 0.01**2 + 0.025**2 + 0.01**2)  # 3rd 1 %, 5th 2.5 %, 7th 1 %


def panel(
    *circuits: CircuitSpec,
    system: SystemType = SystemType.SINGLE_PHASE,
    volts: float = 230.0,
    hz: float = 50.0,
    drift_hz: float = 0.0,
    noise_v: float = 0.0,
    harmonics: tuple[VoltageHarmonic, ...] | None = None,
    impedance: SupplyImpedance | None = None,
    adc: AdcSpec = IDEAL_ADC,
    residual: bool = False,
) -> PanelSpec:
    mains = MainsSpec(system, volts, hz, frequency_drift_hz=drift_hz, noise_v=noise_v,
                      impedance=impedance)
    if harmonics is not None:
        mains = MainsSpec(system, volts, hz, harmonics=harmonics, frequency_drift_hz=drift_hz,
                          noise_v=noise_v, impedance=impedance)
    return PanelSpec("test", mains, adc, FS, tuple(circuits), residual_channel=residual)


def circuit(cid: str, load: LoadType, power_w: float, phases: tuple[Phase, ...] = (A,),
            breaker_a: float = 32.0, **kw: object) -> CircuitSpec:
    return CircuitSpec(cid, cid, phases, LoadSpec(load, power_w), breaker_a, **kw)  # type: ignore[arg-type]


def run(src: SimulatedSource, t0: float, t1: float) -> dict[str, NDArray[np.float64]]:
    x = src.generate(round(t0 * FS), round(t1 * FS))
    return {ch.id: x[k] for k, ch in enumerate(src.capabilities.channels)}


def rms(x: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(x * x)))


def phasor(x: NDArray[np.float64], hz: float, order: int = 1) -> complex:
    """RMS phasor (sine reference) of one order, window = whole cycles at a fixed frequency."""
    n = np.arange(x.shape[0])
    z = 2.0 / x.shape[0] * np.sum(x * np.exp(-2j * np.pi * order * hz * n / FS))
    return complex(z * 1j / math.sqrt(2.0))  # cosine DFT -> sine reference


def test_resistive_rms_current_and_power_match_rating() -> None:
    # a realistic supply: drifting frequency, harmonics, noise, 16-bit converter
    p = panel(circuit("heater", LoadType.RESISTIVE, 2000.0), drift_hz=0.05, noise_v=0.1,
              adc=AdcSpec(bits=16, noise_lsb=0.7))
    s = run(SimulatedSource(p, seed=3), 0.0, 5.0)
    v, i = s["v_a"], s["i_heater"]
    p_w = float(np.mean(v * i))
    # rated power is at nominal voltage; the default 3/5/7 harmonics add (V/Vnom)²
    assert p_w == pytest.approx(2000.0 * DEFAULT_V_RMS_PU**2, rel=0.005)
    assert p_w == pytest.approx(2000.0, rel=0.005)
    assert rms(i) == pytest.approx(2000.0 / 230.0 * DEFAULT_V_RMS_PU, rel=0.005)
    assert p_w / (rms(v) * rms(i)) == pytest.approx(1.0, abs=1e-3)


def test_motor_power_factor_is_the_configured_one() -> None:
    s = run(SimulatedSource(panel(circuit("pump", LoadType.MOTOR, 1500.0))), 0.0, 1.0)
    v, i = s["v_a"], s["i_pump"]
    p_w = float(np.mean(v * i))
    assert p_w == pytest.approx(1500.0, rel=0.005)
    v1, i1 = phasor(v, 50.0), phasor(i, 50.0)
    dpf = math.cos(np.angle(v1) - np.angle(i1))
    assert dpf == pytest.approx(0.8, abs=0.002)
    assert np.angle(i1) < np.angle(v1)  # lagging
    assert p_w / (rms(v) * rms(i)) == pytest.approx(0.8, abs=0.005)


def test_solar_inverter_exports() -> None:
    s = run(SimulatedSource(panel(circuit("pv", LoadType.SOLAR_INVERTER, 4000.0))), 0.0, 1.0)
    p_w = float(np.mean(s["v_a"] * s["i_pv"]))
    assert p_w == pytest.approx(-4000.0, rel=0.005)


def test_smps_draws_peaky_current_with_low_pf_but_unity_displacement() -> None:
    s = run(SimulatedSource(panel(circuit("pc", LoadType.SMPS, 500.0))), 0.0, 1.0)
    v, i = s["v_a"], s["i_pc"]
    p_w = float(np.mean(v * i))
    assert p_w == pytest.approx(500.0, rel=0.005)
    assert 0.6 < p_w / (rms(v) * rms(i)) < 0.7
    v1, i1 = phasor(v, 50.0), phasor(i, 50.0)
    assert math.cos(np.angle(v1) - np.angle(i1)) > 0.98
    assert abs(phasor(i, 50.0, 3)) > 0.5 * abs(i1)  # strong odd harmonics
    assert abs(phasor(i, 50.0, 2)) < 0.01 * abs(i1)  # and no even ones
    assert np.max(np.abs(i)) / rms(i) > 2.3  # crest factor of a rectifier


def test_ev_charger_three_phase_11kw() -> None:
    p = panel(circuit("ev", LoadType.EV_CHARGER, 11000.0, (A, B, C)),
              system=SystemType.THREE_PHASE)
    s = run(SimulatedSource(p), 0.0, 1.0)
    p_w = sum(float(np.mean(s[f"v_{ph}"] * s[f"i_ev_{ph}"])) for ph in "abc")
    assert p_w == pytest.approx(11000.0, rel=0.005)
    for ph in "abc":
        v, i = s[f"v_{ph}"], s[f"i_ev_{ph}"]
        pf = float(np.mean(v * i)) / (rms(v) * rms(i))
        assert pf > 0.98
        # 11 kW chargers are 3 x 16 A at 230 V
        assert rms(i) == pytest.approx(16.0, abs=0.3)


def test_ev_charger_single_phase_7kw4_is_32a() -> None:
    s = run(SimulatedSource(panel(circuit("ev", LoadType.EV_CHARGER, 7400.0, breaker_a=40))),
            0.0, 1.0)
    assert rms(s["i_ev"]) == pytest.approx(32.0, rel=0.02)


def test_three_phase_voltages_are_120_degrees_apart_in_abc_order() -> None:
    s = run(SimulatedSource(panel(system=SystemType.THREE_PHASE)), 0.0, 0.2)
    a, b, c = (phasor(s[f"v_{ph}"], 50.0) for ph in "abc")
    assert math.degrees(np.angle(a / b)) == pytest.approx(120.0, abs=0.05)
    assert math.degrees(np.angle(b / c)) == pytest.approx(120.0, abs=0.05)
    for x in (a, b, c):
        assert abs(x) == pytest.approx(230.0, rel=1e-4)


def test_split_phase_legs_are_opposite_and_a_240v_load_returns_on_the_other_leg() -> None:
    p = panel(circuit("dryer", LoadType.RESISTIVE, 5000.0, (A, B)),
              system=SystemType.SPLIT_PHASE, volts=120.0, hz=60.0)
    src = SimulatedSource(p)
    x = src.generate(0, round(FS * 0.5))
    s = {ch.id: x[k] for k, ch in enumerate(src.capabilities.channels)}
    np.testing.assert_allclose(s["v_a"], -s["v_b"], atol=1e-6)
    np.testing.assert_allclose(s["i_dryer_a"], -s["i_dryer_b"], atol=1e-6)
    p_w = float(np.mean(s["v_a"] * s["i_dryer_a"] + s["v_b"] * s["i_dryer_b"]))
    # nameplate R = 240²/5 kW; the supply's harmonics add their share of power
    assert p_w == pytest.approx(5000.0 * DEFAULT_V_RMS_PU**2, rel=2e-4)
    assert rms(s["v_a"] - s["v_b"]) == pytest.approx(240.0 * DEFAULT_V_RMS_PU, rel=1e-4)


def test_supply_impedance_sags_the_voltage_by_the_divider_ratio() -> None:
    # IEC TR 60725 reference impedance; the heater switches on at 1 s
    zref = SupplyImpedance.iec_60725()
    heater = circuit("heater", LoadType.RESISTIVE, 3000.0, schedule=Schedule(100.0, 50.0, 1.0))
    src = SimulatedSource(panel(heater, harmonics=(), impedance=zref))
    before = run(src, 0.0, 1.0)["v_a"]
    after = run(src, 2.0, 3.0)["v_a"]
    r_ohm = 230.0**2 / 3000.0
    z = complex(zref.line_r_ohm + zref.neutral_r_ohm, zref.line_x_ohm + zref.neutral_x_ohm)
    assert abs(phasor(before, 50.0)) == pytest.approx(230.0, rel=1e-5)
    assert abs(phasor(after, 50.0)) == pytest.approx(230.0 * r_ohm / abs(r_ohm + z), rel=1e-4)


def test_motor_start_draws_six_times_running_current_and_decays_within_0s2() -> None:
    motor = circuit("comp", LoadType.MOTOR, 2000.0, schedule=Schedule(100.0, 50.0, 1.0))
    src = SimulatedSource(panel(motor))
    s = run(src, 0.0, 2.0)
    i = s["i_comp"]
    start = round(1.0 * FS)
    running = rms(i[round(1.8 * FS):round(1.9 * FS)])
    assert running == pytest.approx(2000.0 / (230.0 * 0.8), rel=0.005)
    first_cycle_peak = float(np.max(np.abs(i[start:start + 128])))
    assert 5.0 < first_cycle_peak / (math.sqrt(2) * running) <= 6.05
    later = rms(i[start + round(0.2 * FS):start + round(0.3 * FS)])
    assert later < 1.35 * running
    assert np.max(np.abs(i[:start])) < 0.01  # off before
    # the model's own statement: 6x at the switching instant
    assert src.truth_at(1.0).circuits["comp"].current_rms_a[0] == pytest.approx(6 * running,
                                                                                  rel=0.01)


def test_dip_starts_at_the_configured_time_and_point_on_wave_with_the_configured_depth() -> None:
    dip = VoltageChange(DisturbanceType.VOLTAGE_DIP, 1.0, 0.1, 40.0, (A,), onset_deg=90.0)
    src = SimulatedSource(panel(system=SystemType.THREE_PHASE, harmonics=()), disturbances=[dip])
    s = run(src, 0.0, 2.0)
    va, vb = s["v_a"], s["v_b"]
    start = src.scheduled[0].start_n
    assert round(FS) <= start < round(FS) + 128  # within one cycle after at_s
    # onset at the positive peak: the sample before is near +325 V, the first one at 40 %
    assert va[start - 1] == pytest.approx(230 * math.sqrt(2), rel=0.01)
    assert va[start] == pytest.approx(0.4 * 230 * math.sqrt(2), rel=0.01)
    assert rms(va[start - 1280:start]) == pytest.approx(230.0, rel=1e-3)
    assert rms(va[start:start + 640]) == pytest.approx(0.4 * 230.0, rel=1e-3)
    assert rms(va[start + 640:start + 1280]) == pytest.approx(230.0, rel=1e-3)
    assert rms(vb[start:start + 640]) == pytest.approx(230.0, rel=1e-3)  # other phases untouched


def test_swell_and_interruption_magnitudes() -> None:
    swell = VoltageChange(DisturbanceType.VOLTAGE_SWELL, 0.5, 0.2, 120.0)
    cut = VoltageChange(DisturbanceType.VOLTAGE_INTERRUPTION, 1.0, 0.5, 0.0)
    p = panel(circuit("heater", LoadType.RESISTIVE, 2000.0), harmonics=(),
              adc=AdcSpec(bits=16, noise_lsb=0.5))
    s = run(SimulatedSource(p, disturbances=[swell, cut]), 0.0, 2.0)
    v, i = s["v_a"], s["i_heater"]
    assert rms(v[round(0.55 * FS):round(0.65 * FS)]) == pytest.approx(276.0, rel=0.002)
    assert rms(v[round(1.05 * FS):round(1.45 * FS)]) < 0.01 * 230.0
    assert rms(i[round(1.05 * FS):round(1.45 * FS)]) < 0.01 * 2000.0 / 230.0
    assert rms(v[round(1.6 * FS):round(1.9 * FS)]) == pytest.approx(230.0, rel=0.002)


def test_frequency_excursion_reaches_its_target_measured_by_zero_crossings() -> None:
    exc = FrequencyExcursion(1.0, 3.0, 49.5, rocof_hz_per_s=1.0)
    s = run(SimulatedSource(panel(harmonics=()), disturbances=[exc]), 0.0, 5.0)
    v = s["v_a"]
    up = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
    # linear interpolation of each positive-going zero crossing [samples]
    t = up + v[up] / (v[up] - v[up + 1])
    plateau = t[(t > 1.6 * FS) & (t < 3.9 * FS)]
    periods = np.diff(plateau) / FS
    assert 1.0 / float(np.mean(periods)) == pytest.approx(49.5, abs=0.002)
    before = t[t < 0.9 * FS]
    assert 1.0 / float(np.mean(np.diff(before) / FS)) == pytest.approx(50.0, abs=0.002)


def test_frequency_drift_stays_within_its_bound() -> None:
    src = SimulatedSource(panel(drift_hz=0.05), seed=11)
    f = [src.truth_at(t).frequency_hz for t in np.arange(0.0, 600.0, 1.0)]
    assert max(abs(x - 50.0) for x in f) <= 0.05 + 1e-12
    assert np.std(f) > 0.002  # it does move


def test_ground_fault_shows_on_the_residual_channel() -> None:
    heater = circuit("heater", LoadType.RESISTIVE, 2000.0)
    gf = GroundFault(1.0, 1.0, "heater", 0.030)
    p = panel(heater, residual=True, harmonics=())
    src = SimulatedSource(p, disturbances=[gf])
    s = run(src, 0.0, 2.0)
    res = s["i_residual"]
    standing = p.standing_leakage_a
    assert rms(res[: round(0.9 * FS)]) == pytest.approx(standing, rel=0.01)
    # resistive leakage and capacitive standing leakage are in quadrature
    assert rms(res[round(1.1 * FS):round(1.9 * FS)]) == pytest.approx(
        math.hypot(0.030, standing), rel=0.01
    )
    # the phase CT sees the load plus the leakage (in phase with the voltage)
    i = s["i_heater"]
    assert rms(i[round(1.1 * FS):round(1.9 * FS)]) == pytest.approx(2000 / 230 + 0.030,
                                                                        rel=0.001)


def test_open_neutral_moves_the_star_point_towards_the_heavier_leg() -> None:
    heavy = circuit("heavy", LoadType.RESISTIVE, 3000.0, (A,))
    light = circuit("light", LoadType.RESISTIVE, 500.0, (B,))
    p = panel(heavy, light, system=SystemType.SPLIT_PHASE, volts=120.0, hz=60.0, harmonics=())
    src = SimulatedSource(p, disturbances=[OpenNeutral(1.0, 1.0, 20.0)])
    x = src.generate(round(1.5 * FS), round(1.5 * FS) + 640)  # 6 cycles of 60 Hz
    s = {ch.id: x[k] for k, ch in enumerate(src.capabilities.channels)}
    assert abs(phasor(s["v_a"], 60.0)) == pytest.approx(0.8 * 120.0, rel=1e-3)
    assert abs(phasor(s["v_b"], 60.0)) == pytest.approx(1.2 * 120.0, rel=1e-3)
    assert abs(phasor(s["v_a"] - s["v_b"], 60.0)) == pytest.approx(240.0, rel=1e-3)


def test_open_neutral_three_phase_geometry() -> None:
    heavy = circuit("heavy", LoadType.RESISTIVE, 4000.0, (B,))
    p = panel(heavy, system=SystemType.THREE_PHASE, harmonics=())
    src = SimulatedSource(p, disturbances=[OpenNeutral(0.5, 1.0, 30.0)])
    s = run(src, 1.0, 1.2)
    mags = {ph: abs(phasor(s[f"v_{ph}"], 50.0)) / 230.0 for ph in "abc"}
    assert mags["b"] == pytest.approx(0.7, rel=1e-3)
    # |1∠∓120° − 0.3∠(angle of B)| for the other two phases
    assert mags["a"] == pytest.approx(math.sqrt(1 + 0.3 + 0.09), rel=1e-3)
    assert mags["c"] == pytest.approx(math.sqrt(1 + 0.3 + 0.09), rel=1e-3)


def test_harmonic_pollution_adds_the_configured_order() -> None:
    hp = HarmonicPollution(0.5, 1.0, 11, 3.0)
    s = run(SimulatedSource(panel(harmonics=()), disturbances=[hp]), 0.0, 2.0)
    v = s["v_a"]
    before = phasor(v[: round(0.4 * FS)], 50.0, 11)
    during = phasor(v[round(0.6 * FS):round(1.4 * FS)], 50.0, 11)
    assert abs(before) < 1e-4  # interpolation residue: < 1e-6 of the fundamental
    assert abs(during) / 230.0 == pytest.approx(0.03, rel=1e-3)


def test_arcing_flattens_the_current_after_zero_crossings_and_adds_broadband_noise() -> None:
    heater = circuit("heater", LoadType.RESISTIVE, 2000.0)
    arc = Arcing(1.0, 1.0, "heater", shoulder_deg=30.0)
    s = run(SimulatedSource(panel(heater, harmonics=()), disturbances=[arc], seed=5), 0.0, 2.0)
    v, i = s["v_a"], s["i_heater"]
    peak = 2000 / 230 * math.sqrt(2)
    ok, arcing = slice(round(0.2 * FS), round(0.9 * FS)), slice(round(1.1 * FS), round(1.9 * FS))
    # the resistive current follows the voltage: it crosses zero with it; take the
    # samples 5..25 degrees after each voltage zero (inside the 30° shoulder)
    angle = np.degrees(np.angle(phasor(v[: round(0.2 * FS)], 50.0)))
    n = np.arange(v.shape[0])
    theta = (360.0 * 50.0 * n / FS + angle) % 180.0
    inside = (theta > 5.0) & (theta < 25.0)
    in_arc = np.zeros_like(inside)
    in_arc[arcing] = True
    in_ok = np.zeros_like(inside)
    in_ok[ok] = True
    # bursts come after the shoulder, so the shoulder itself is quiet
    assert np.max(np.abs(i[inside & in_arc])) < 0.1 * peak
    assert np.max(np.abs(i[inside & in_ok])) > 0.3 * peak
    # broadband: energy above the 50th harmonic (2.5 kHz), where the load has none
    def hf_rms(x: NDArray[np.float64]) -> float:
        spec = np.abs(np.fft.rfft(x)) / x.shape[0]
        freqs = np.fft.rfftfreq(x.shape[0], 1.0 / FS)
        return float(np.sqrt(2.0 * np.sum(spec[freqs > 2600.0] ** 2)))

    assert hf_rms(i[ok]) < 1e-3 * peak
    assert hf_rms(i[arcing]) > 0.01 * peak


def test_quantisation_step_and_clipping_at_full_scale() -> None:
    # 12-bit converter; the heater circuit's CT range is too small on purpose
    heater = CircuitSpec("heater", "heater", (A,), LoadSpec(LoadType.RESISTIVE, 3000.0), 16.0,
                         current_full_scale_a=15.0)
    adc = AdcSpec(bits=12, noise_lsb=0.5)
    src = SimulatedSource(panel(heater, adc=adc, noise_v=0.2))
    caps = src.capabilities
    s = run(src, 0.0, 1.0)
    vch = caps.channels[caps.index("v_a")]
    ich = caps.channels[caps.index("i_heater")]
    assert vch.resolution is not None
    assert vch.full_scale is not None
    assert ich.full_scale is not None
    assert vch.resolution == pytest.approx(1.5 * math.sqrt(2) * 230.0 / 2048)
    assert ich.resolution == pytest.approx(15.0 / 2048)
    codes = s["v_a"] / vch.resolution
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)
    assert np.min(np.diff(np.unique(s["v_a"]))) == pytest.approx(vch.resolution)
    # the heater draws 13 A RMS = 18.4 A peak > 15 A: its samples saturate at full scale
    i = s["i_heater"]
    assert ich.full_scale == pytest.approx(2047 * 15.0 / 2048)
    assert float(np.max(i)) == ich.full_scale
    assert float(np.min(i)) == -ich.full_scale
    assert np.mean(np.abs(i) >= ich.full_scale) > 0.1
    assert float(np.max(np.abs(s["v_a"]))) < vch.full_scale  # the voltage channel has room


def test_multiplexer_skew_appears_as_the_declared_phase_shift() -> None:
    heater = circuit("heater", LoadType.RESISTIVE, 2000.0)
    other = circuit("other", LoadType.RESISTIVE, 500.0)
    adc = AdcSpec(bits=24, noise_lsb=0.0, sampling=Sampling.MULTIPLEXED)
    src = SimulatedSource(panel(heater, other, adc=adc, harmonics=()))
    caps = src.capabilities
    assert not caps.simultaneous
    skews = [ch.skew_s for ch in caps.channels]
    assert skews == pytest.approx([k / (3 * FS) for k in range(3)])
    s = run(src, 0.0, 1.0)
    # a resistive current is in phase with its voltage: the measured shift is the skew
    shift = np.angle(phasor(s["i_other"], 50.0) / phasor(s["v_a"], 50.0))
    assert shift == pytest.approx(2 * math.pi * 50.0 * (skews[2] - skews[0]), abs=1e-6)
    # off nominal frequency the same skew is a proportionally different angle
    exc = FrequencyExcursion(0.5, 3.0, 48.0, rocof_hz_per_s=10.0)
    s = run(SimulatedSource(panel(heater, other, adc=adc, harmonics=()), disturbances=[exc]),
            1.0, 2.0)
    shift = np.angle(phasor(s["i_other"], 48.0) / phasor(s["v_a"], 48.0))
    assert shift == pytest.approx(2 * math.pi * 48.0 * (skews[2] - skews[0]), abs=1e-6)


def test_sensor_faults() -> None:
    heater = circuit("heater", LoadType.RESISTIVE, 2000.0)
    pump = circuit("pump", LoadType.MOTOR, 1000.0)
    lamp = circuit("lamp", LoadType.LED_DRIVER, 300.0)
    faults = [
        SensorFault(0.5, 0.5, "i_heater", SensorFaultKind.DISCONNECTED),
        SensorFault(0.5, 0.5, "i_pump", SensorFaultKind.STUCK),
        SensorFault(0.5, 0.5, "i_lamp", SensorFaultKind.CLIPPING),
    ]
    src = SimulatedSource(panel(heater, pump, lamp, adc=AdcSpec(bits=12)), disturbances=faults)
    s = run(src, 0.0, 1.5)
    during = slice(round(0.5 * FS), round(1.0 * FS))
    after = slice(round(1.1 * FS), round(1.4 * FS))
    caps = src.capabilities
    lsb = caps.channels[caps.index("i_heater")].resolution
    assert lsb is not None
    assert rms(s["i_heater"][during]) < 3 * lsb
    assert rms(s["i_heater"][after]) == pytest.approx(2000 / 230, rel=0.01)
    stuck = s["i_pump"][during]
    assert np.ptp(stuck) == 0.0
    assert stuck[0] == s["i_pump"][round(0.5 * FS) - 1]
    fs_lamp = caps.channels[caps.index("i_lamp")].full_scale
    assert fs_lamp is not None
    assert np.mean(np.abs(s["i_lamp"][during]) >= fs_lamp) > 0.05
    assert np.max(np.abs(s["i_lamp"][after])) < fs_lamp


def test_truth_matches_what_the_samples_measure_on_the_demo_panel() -> None:
    src = SimulatedSource(three_phase_panel(), seed=2)
    caps = src.capabilities
    t0, t1 = 3.0, 4.0  # no schedule edge in this window
    before, after = src.truth_at(t0), src.truth_at(t1 - 1e-3)
    assert [c.on for c in before.circuits.values()] == [c.on for c in after.circuits.values()]
    x = src.generate(round(t0 * FS), round(t1 * FS))
    s = {ch.id: x[k] for k, ch in enumerate(caps.channels)}
    truth = src.truth_at(0.5 * (t0 + t1))
    for ph, v in truth.voltage_rms_v.items():
        assert rms(s[f"v_{ph.value.lower()}"]) == pytest.approx(v, rel=1e-3)
    checked = 0
    for c in src.panel.circuits:
        ct = truth.circuits[c.id]
        p_w = 0.0
        for k, ph in enumerate(sorted(c.phases)):
            i = s[c.channel_id(ph)]
            p_w += float(np.mean(s[f"v_{ph.value.lower()}"] * i))
            if ct.current_rms_a[k] > 1.0:
                assert rms(i) == pytest.approx(ct.current_rms_a[k], rel=0.005)
                checked += 1
        if abs(ct.power_active_w) > 200.0:
            assert p_w == pytest.approx(ct.power_active_w, rel=0.005)
    assert checked >= 6
    assert truth.residual_current_a == pytest.approx(rms(s["i_residual"]), rel=0.02)
