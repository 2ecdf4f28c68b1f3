"""The metrics engine against IEC 61000-4-30 Class A / IEC 61000-4-7 Class I limits.

Every expected value is analytic (the synthetic signal's definition) or a
limit from the standards:

* IEC 61000-4-30 Ed.3 Class A: voltage magnitude +-0.1 % of Udin (5.2),
  frequency +-10 mHz (5.1), unbalance +-0.15 percentage points (5.7);
* IEC 61000-4-7 Ed.2 Table 1, Class I: voltage harmonics +-5 % of reading for
  U_h >= 1 % of nominal, else +-0.05 % of nominal; currents +-5 % of reading
  for I_h >= 3 % of nominal, else +-0.15 % of nominal;
* active power +-0.2 % (the accuracy class of a class 0.2 S meter, IEC 62053-22).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from collector.dsp.frequency import initial_ten_second_state, ten_second_frequency
from collector.metrics_engine import CircuitSpec, MetricsEngine, circuits_from_capabilities
from collector.model import (
    NS_PER_S,
    Block,
    ChannelInfo,
    Metrics,
    Phase,
    Quantity,
    SourceCapabilities,
)
from collector.nomenclature import harmonic_field
from tests.dsp.signals import SQRT2, T0_NS, linear_drift_phase, run, select, times_s, tone, values

U_NOM = 230.0
I_NOM = 10.0
V_TOL = 0.001 * U_NOM  # Class A magnitude
F_TOL = 0.010  # Class A frequency [Hz]


def v_harmonic_tol(expected_v: float, nominal_v: float = U_NOM) -> float:
    return 0.05 * expected_v if expected_v >= 0.01 * nominal_v else 0.0005 * nominal_v


def i_harmonic_tol(expected_a: float, nominal_a: float = I_NOM) -> float:
    return 0.05 * expected_a if expected_a >= 0.03 * nominal_a else 0.0015 * nominal_a


def single_phase(
    fs_hz: float, f_nom: float = 50.0, u_nom: float = U_NOM, **kw: object
) -> SourceCapabilities:
    return SourceCapabilities(
        (
            ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=fs_hz, **kw),  # type: ignore[arg-type]
            ChannelInfo("ia", Quantity.CURRENT, Phase.A, circuit="c1", rate_hz=fs_hz, **kw),  # type: ignore[arg-type]
        ),
        nominal_frequency_hz=f_nom,
        nominal_voltage_v=u_nom,
    )


CIRCUIT = [CircuitSpec("c1", ("ia",), ("va",))]


def check_voltage_harmonics(
    rec_fields: dict[str, object], expected: dict[int, float], max_order: int
) -> None:
    for n in range(1, 51):
        got = rec_fields[harmonic_field("voltage", n)]
        if n > max_order:
            assert got is None, f"h{n} above the supported order {max_order} must be None"
            continue
        want = expected.get(n, 0.0)
        assert got is not None
        assert abs(float(got) - want) <= v_harmonic_tol(want), f"h{n}: {got} vs {want}"  # type: ignore[arg-type]


# ---------------------------------------------------------------- Class A: V, f, harmonics


@pytest.mark.parametrize(
    ("fs_hz", "f_hz", "f_nom", "u_nom"),
    [
        (6400.0, 50.0, 50.0, 230.0),
        (5760.0, 49.986, 50.0, 230.0),  # 115.2 samples per cycle
        (6400.0, 50.3, 50.0, 230.0),  # 127.24 samples per cycle
        (6400.0, 60.0, 60.0, 120.0),  # 106.7 samples per cycle, 12-cycle windows
        (7680.0, 59.7, 60.0, 120.0),
    ],
)
def test_sine_with_harmonics_meets_class_a(
    fs_hz: float, f_hz: float, f_nom: float, u_nom: float
) -> None:
    t = times_s(fs_hz, 3.6)
    ph = 2 * np.pi * f_hz * t
    harmonics = {3: 0.05, 5: 0.06, 7: 0.05, 11: 0.035, 25: 0.015, 49: 0.01}  # fraction of nominal
    max_order = min(50, math.floor(0.41 * fs_hz / (f_nom * 1.015)))
    v = tone(ph, u_nom)
    expected = {1: u_nom}
    for n, frac in harmonics.items():
        if n <= max_order:
            v += tone(ph, frac * u_nom, n, 0.3 * n)
            expected[n] = frac * u_nom
    i = tone(ph, I_NOM, 1, -0.4)
    caps = single_phase(fs_hz, f_nom, u_nom)
    out = run(caps, CIRCUIT, np.vstack([v, i]), fs_hz)
    recs = select(out, "basic", "va")
    assert len(recs) >= int(2.5 * f_hz / (10 if f_nom == 50 else 12)) - 1
    urms_true = math.sqrt(sum(x * x for x in expected.values()))
    thd_true = 100 * math.sqrt(sum(x * x for n, x in expected.items() if n > 1)) / u_nom
    for r in recs:
        f = r.fields
        assert abs(f["voltage_rms_v"] - urms_true) <= 0.001 * u_nom  # type: ignore[operator]
        assert abs(f["frequency_hz"] - f_hz) <= F_TOL  # type: ignore[operator]
        assert f["harmonics_max_order"] == max_order
        assert f["frequency_locked"] is True
        check_voltage_harmonics(dict(f), expected, max_order)
        if max_order >= 40:
            assert abs(f["voltage_thd_pct"] - thd_true) <= 0.05 * thd_true  # type: ignore[operator]
        assert f["samples_per_cycle"] == pytest.approx(fs_hz / f_hz, rel=2e-4)
        assert f["missing_samples"] == 0
    # the aggregate of a stationary signal equals the basic values
    agg = select(out, "150c" if f_nom == 50 else "180c", "va")
    assert agg
    assert agg[0].fields["voltage_rms_v"] == pytest.approx(urms_true, abs=0.001 * u_nom)
    assert agg[0].fields["basic_intervals"] == 15
    assert agg[0].fields["interval_complete"] is True


def test_pure_sine_is_accurate_far_beyond_class_a() -> None:
    fs = 6400.0
    t = times_s(fs, 2.0)
    v = tone(2 * np.pi * 50.0 * t, U_NOM, 1, 1.0)
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, 0 * v]), fs)
    recs = select(out, "basic", "va")
    assert np.max(np.abs(values(recs, "voltage_rms_v") - U_NOM)) < 1e-5 * U_NOM
    assert np.max(np.abs(values(recs, "frequency_hz") - 50.0)) < 5e-4
    assert np.max(np.abs(values(recs, "voltage_h1_v") - U_NOM)) < 1e-4 * U_NOM
    assert np.nanmax(values(recs, "voltage_thd_pct")) < 0.01
    assert np.max(np.abs(values(recs, "voltage_crest_factor") - SQRT2)) < 1e-3


def test_white_noise_does_not_disturb_rms_or_frequency() -> None:
    fs = 6400.0
    rng = np.random.default_rng(7)
    t = times_s(fs, 3.0)
    sigma = 0.01 * U_NOM
    v = tone(2 * np.pi * 50.02 * t, U_NOM) + rng.normal(0.0, sigma, t.size)
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, 0 * v]), fs)
    recs = select(out, "basic", "va")
    rms_true = math.hypot(U_NOM, sigma)
    assert np.max(np.abs(values(recs, "voltage_rms_v") - rms_true)) <= V_TOL
    assert np.max(np.abs(values(recs, "frequency_hz") - 50.02)) <= F_TOL
    # white noise spreads sigma^2 over 320 lines of 5 Hz below fs/2 ... so a group
    # (10 lines) holds about sigma * sqrt(10 / 640) = 0.29 V: under 0.05 % of 230 V * 5?
    h2 = values(recs, "voltage_h2_v")
    assert np.max(h2) < sigma * math.sqrt(2 * 10 / 1280) * 3


def test_slow_frequency_drift_keeps_windows_at_exactly_ten_cycles() -> None:
    fs = 6400.0
    span = 10.0
    t = times_s(fs, span)
    phase = linear_drift_phase(t, 49.8, 50.2, span)
    v = tone(phase, U_NOM)
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, 0 * v]), fs)
    recs = select(out, "basic", "va")
    starts = np.asarray([m.time_ns for m in recs], dtype=np.float64)
    ts = (starts[:-1] - T0_NS) / NS_PER_S
    te = (starts[1:] - T0_NS) / NS_PER_S
    rate = 0.4 / span

    def phi(x: np.ndarray) -> np.ndarray:
        return 2 * np.pi * (49.8 * x + 0.5 * rate * x**2)

    cycles = (phi(te) - phi(ts)) / (2 * np.pi)
    f_true = cycles / (te - ts)
    f_meas = values(recs[:-1], "frequency_hz")
    assert np.max(np.abs(cycles - 10.0)) < 2e-3  # windows hold exactly 10 cycles
    assert np.max(np.abs(f_meas - f_true)) <= F_TOL
    assert f_meas[0] < 49.85
    assert f_meas[-1] > 50.15
    assert np.max(np.abs(values(recs, "voltage_rms_v") - U_NOM)) <= V_TOL
    assert np.max(np.abs(values(recs, "voltage_h1_v") - U_NOM)) <= v_harmonic_tol(U_NOM)


def test_the_engine_reports_the_frequency_of_its_latest_interval() -> None:
    # what the pipeline hands the event engine: read from the values, it must be
    # the latest basic record's frequency, and follow a drift of 49.8 -> 50.2 Hz
    fs, span = 6400.0, 10.0
    t = times_s(fs, span)
    x = np.vstack([tone(linear_drift_phase(t, 49.8, 50.2, span), U_NOM), 0 * t])
    engine = MetricsEngine(single_phase(fs), CIRCUIT, batch_s=1.0)
    assert engine.frequency_hz is None
    n = round(0.5 * fs)
    checked = 0
    for pos in range(0, x.shape[1], n):
        block = Block(T0_NS + round(pos * NS_PER_S / fs), fs, x[:, pos : pos + n],
                      contiguous=pos > 0)
        basic = select(engine.process(block), "basic", "va")
        if not basic:
            continue
        latest = basic[-1]
        assert engine.frequency_hz == latest.fields["frequency_hz"]
        mid_s = (latest.time_ns - T0_NS) / NS_PER_S + 0.1  # the interval's middle
        assert engine.frequency_hz == pytest.approx(49.8 + 0.04 * mid_s, abs=F_TOL)
        checked += 1
    assert checked >= 8


def test_low_sample_rate_still_gives_rms_and_frequency() -> None:
    fs = 400.0  # 8 samples per cycle
    t = times_s(fs, 6.0)
    ph = 2 * np.pi * 49.95 * t
    v = tone(ph, U_NOM) + tone(ph, 0.05 * U_NOM, 3, 0.7)
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, 0 * v]), fs)
    recs = select(out, "basic", "va")
    assert len(recs) > 20
    rms_true = U_NOM * math.hypot(1, 0.05)
    assert np.max(np.abs(values(recs, "voltage_rms_v") - rms_true)) <= V_TOL
    assert np.max(np.abs(values(recs, "frequency_hz") - 49.95)) <= F_TOL
    for r in recs:
        assert r.fields["harmonics_max_order"] == 3
        assert r.fields["voltage_thd_pct"] is None  # THD needs orders up to 40
        check_voltage_harmonics(dict(r.fields), {1: U_NOM, 3: 0.05 * U_NOM}, 3)
        assert r.fields["samples_per_cycle"] == pytest.approx(400 / 49.95, rel=1e-3)


# ---------------------------------------------------------------- power (IEEE 1459)


@pytest.mark.parametrize("angle_deg", [30.0, -30.0, 75.0, -60.0])
def test_power_with_lagging_and_leading_current(angle_deg: float) -> None:
    fs = 6400.0
    t = times_s(fs, 2.0)
    ph = 2 * np.pi * 50.0 * t
    theta = math.radians(angle_deg)  # current lags the voltage by theta
    i3 = 3.0
    v = tone(ph, U_NOM)
    i = tone(ph, I_NOM, 1, -theta) + tone(ph, i3, 3, 0.4)
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, i]), fs)
    recs = select(out, "basic", "c1")
    p = U_NOM * I_NOM * math.cos(theta)
    q1 = U_NOM * I_NOM * math.sin(theta)  # positive = inductive (lagging)
    s = U_NOM * math.hypot(I_NOM, i3)
    n = math.sqrt(s * s - p * p)
    for r in recs:
        f = r.fields
        assert f["power_active_w"] == pytest.approx(p, rel=0.002)
        assert f["power_reactive_var"] == pytest.approx(q1, abs=0.002 * s)
        assert f["power_apparent_va"] == pytest.approx(s, rel=0.002)
        assert f["power_nonactive_var"] == pytest.approx(n, rel=0.002)
        assert f["power_nonactive_var"] > abs(q1)  # type: ignore[operator]
        assert f["power_factor"] == pytest.approx(p / s, abs=0.002)
        assert f["power_factor_displacement"] == pytest.approx(math.cos(theta), abs=0.002)
        assert f["current_rms_a"] == pytest.approx(math.hypot(I_NOM, i3), rel=0.001)
        assert f["current_h3_a"] == pytest.approx(i3, abs=i_harmonic_tol(i3))
        assert f["current_thd_pct"] == pytest.approx(100 * i3 / I_NOM, rel=0.05)
        assert f["voltage_rms_v"] == pytest.approx(U_NOM, abs=V_TOL)
        assert f["skew_correction_us"] == 0.0


def test_export_counts_export_energy_only_over_the_exact_duration() -> None:
    fs = 6400.0
    seconds = 30.0
    t = times_s(fs, seconds)
    ph = 2 * np.pi * 50.0 * t
    v = tone(ph, U_NOM)
    i = tone(ph, I_NOM, 1, math.pi)  # current in anti-phase: the site exports
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, i]), fs, energy_start={"c1": (100.0, 5.0)})
    recs = select(out, "basic", "c1")
    p = -U_NOM * I_NOM
    assert np.max(np.abs(values(recs, "power_active_w") - p)) <= 0.002 * abs(p)
    assert np.all(values(recs, "power_factor") < -0.999)
    assert np.all(values(recs, "energy_import_wh") == 100.0)
    # each basic interval of a 50.000 Hz signal lasts exactly 0.2 s
    expected_export = 5.0 + abs(p) * 0.2 * np.arange(1, len(recs) + 1) / 3600.0
    assert np.allclose(values(recs, "energy_export_wh"), expected_export, rtol=0.002, atol=0)
    agg = select(out, "150c", "c1")
    assert agg[-1].fields["energy_export_wh"] == pytest.approx(
        expected_export[len(agg) * 15 - 1], rel=1e-12
    )


def test_import_energy_of_a_known_load() -> None:
    fs = 3200.0
    t = times_s(fs, 20.0)
    ph = 2 * np.pi * 50.0 * t
    v = tone(ph, U_NOM)
    i = tone(ph, 4.0, 1, -math.acos(0.8))  # 920 VA at PF 0.8 lagging: 736 W
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, i]), fs)
    recs = select(out, "basic", "c1")
    wh = values(recs, "energy_import_wh")
    assert wh[-1] == pytest.approx(736.0 * 0.2 * len(recs) / 3600.0, rel=0.002)
    assert np.all(values(recs, "energy_export_wh") == 0.0)


# ---------------------------------------------------------------- polyphase


def three_phase_caps(
    fs: float, with_neutral: bool = False, residual_channel: bool = False
) -> SourceCapabilities:
    chans = [
        ChannelInfo(f"v{p}", Quantity.VOLTAGE, p, rate_hz=fs) for p in (Phase.A, Phase.B, Phase.C)
    ]
    chans += [
        ChannelInfo(f"i{p}", Quantity.CURRENT, p, circuit="m", rate_hz=fs)
        for p in (Phase.A, Phase.B, Phase.C)
    ]
    if with_neutral:
        chans.append(ChannelInfo("in", Quantity.CURRENT, Phase.N, circuit="m", rate_hz=fs))
    if residual_channel:
        chans.append(
            ChannelInfo("rcd", Quantity.RESIDUAL_CURRENT, Phase.G, circuit="m", rate_hz=fs)
        )
    return SourceCapabilities(tuple(chans), nominal_voltage_v=U_NOM)


THREE = [CircuitSpec("m", ("iA", "iB", "iC"), ("vA", "vB", "vC"))]
A = complex(math.cos(2 * math.pi / 3), math.sin(2 * math.pi / 3))


def phasor_wave(ph: np.ndarray, x: complex) -> np.ndarray:
    return tone(ph, abs(x), 1, math.atan2(x.imag, x.real))


def test_voltage_unbalance_from_known_sequence_components() -> None:
    fs = 6400.0
    t = times_s(fs, 3.0)
    ph = 2 * np.pi * 50.0 * t
    u1 = U_NOM
    u2 = 0.02 * U_NOM * complex(math.cos(0.7), math.sin(0.7))
    u0 = 0.01 * U_NOM * complex(math.cos(-1.2), math.sin(-1.2))
    va, vb, vc = u0 + u1 + u2, u0 + A * A * u1 + A * u2, u0 + A * u1 + A * A * u2
    # currents: positive sequence 10 A plus 5 % negative sequence
    i1, i2 = I_NOM * complex(math.cos(-0.3), math.sin(-0.3)), 0.5
    ia, ib, ic = i1 + i2, A * A * i1 + A * i2, A * i1 + A * A * i2
    x = np.vstack([phasor_wave(ph, z) for z in (va, vb, vc, ia, ib, ic)])
    out = run(three_phase_caps(fs), THREE, x, fs)
    sysrec = select(out, "basic", "system")
    assert sysrec
    assert np.max(np.abs(values(sysrec, "voltage_unbalance_neg_pct") - 2.0)) <= 0.15
    assert np.max(np.abs(values(sysrec, "voltage_unbalance_zero_pct") - 1.0)) <= 0.15
    spread = (
        100
        * (max(map(abs, (va, vb, vc))) - min(map(abs, (va, vb, vc))))
        / np.mean([abs(z) for z in (va, vb, vc)])
    )
    assert values(sysrec, "neutral_voltage_divergence_pct") == pytest.approx(spread, abs=0.01)
    total = select(out, "basic", "m", "ABC")
    assert total
    assert np.max(np.abs(values(total, "current_unbalance_neg_pct") - 5.0)) <= 0.15
    # totals: sums of the phases, S as the arithmetic sum
    phases = [select(out, "basic", "m", p) for p in "ABC"]
    for name in ("power_active_w", "power_reactive_var", "power_apparent_va"):
        summed = sum(values(r, name) for r in phases)
        assert np.allclose(values(total, name), summed, rtol=1e-12)
    p_true = sum((v * z.conjugate()).real for v, z in zip((va, vb, vc), (ia, ib, ic), strict=True))
    assert np.max(np.abs(values(total, "power_active_w") - p_true)) <= 0.002 * abs(p_true)


def test_residual_current_from_the_sum_of_phase_and_neutral_currents() -> None:
    fs = 6400.0
    t = times_s(fs, 2.0)
    ph = 2 * np.pi * 50.0 * t
    leak = 0.030  # 30 mA of earth leakage on phase A
    volts = [phasor_wave(ph, U_NOM * A**-k) for k in range(3)]
    ia = phasor_wave(ph, I_NOM) + tone(ph, leak, 1, 0.5)
    ib = phasor_wave(ph, I_NOM * A**-1)
    ic = phasor_wave(ph, 0.5 * I_NOM * A**-2)  # unbalanced load ...
    i_n = -(phasor_wave(ph, I_NOM) + ib + ic)  # ... whose return flows in the neutral
    x = np.vstack([*volts, ia, ib, ic, i_n])
    out = run(three_phase_caps(fs, with_neutral=True), THREE, x, fs)
    total = select(out, "basic", "m", "ABC")
    assert np.max(np.abs(values(total, "residual_current_a") - leak)) < 1e-4
    neutral = select(out, "basic", "in")  # the neutral CT still reports its own current
    assert neutral
    assert neutral[0].fields["power_active_w"] is None


def test_residual_current_channel_gets_its_own_record() -> None:
    fs = 6400.0
    t = times_s(fs, 2.0)
    ph = 2 * np.pi * 50.0 * t
    volts = [phasor_wave(ph, U_NOM * A**-k) for k in range(3)]
    currents = [phasor_wave(ph, I_NOM * A**-k) for k in range(3)]
    rcd = tone(ph, 0.012, 1, 0.2)
    out = run(
        three_phase_caps(fs, residual_channel=True), THREE, np.vstack([*volts, *currents, rcd]), fs
    )
    rec = select(out, "basic", "rcd")
    assert rec
    assert rec[0].phase == "G"
    assert np.max(np.abs(values(rec, "residual_current_a") - 0.012)) < 1e-5
    # with a measured residual channel, the sum of phases is not reported
    assert "residual_current_a" not in select(out, "basic", "m", "ABC")[0].fields


def test_split_phase_circuit_total() -> None:
    fs = 6400.0
    t = times_s(fs, 3.5)
    ph = 2 * np.pi * 60.0 * t
    chans = (
        ChannelInfo("l1", Quantity.VOLTAGE, Phase.A, rate_hz=fs),
        ChannelInfo("l2", Quantity.VOLTAGE, Phase.B, rate_hz=fs),
        ChannelInfo("i1", Quantity.CURRENT, Phase.A, circuit="house", rate_hz=fs),
        ChannelInfo("i2", Quantity.CURRENT, Phase.B, circuit="house", rate_hz=fs),
    )
    caps = SourceCapabilities(chans, nominal_frequency_hz=60.0, nominal_voltage_v=120.0)
    x = np.vstack(
        [
            tone(ph, 120.0),
            tone(ph, 120.0, 1, math.pi),
            tone(ph, 20.0, 1, -0.2),
            tone(ph, 5.0, 1, math.pi),
        ]
    )
    out = run(caps, circuits_from_capabilities(caps), x, fs)
    total = select(out, "basic", "house", "AB")
    p = 120 * 20 * math.cos(0.2) + 120 * 5
    assert np.max(np.abs(values(total, "power_active_w") - p)) <= 0.002 * p
    assert np.allclose(values(total, "power_apparent_va"), 120 * 25, rtol=0.002)
    assert "current_unbalance_neg_pct" not in total[0].fields
    assert select(out, "180c", "house", "AB")


# ---------------------------------------------------------------- streaming behaviour


def test_chunked_blocks_give_the_same_metrics_as_one_block() -> None:
    fs = 5760.0
    t = times_s(fs, 7.0)
    ph = 2 * np.pi * 49.986 * t
    v = tone(ph, U_NOM) + tone(ph, 8.0, 5, 0.1)
    i = tone(ph, 7.0, 1, -0.6) + tone(ph, 1.0, 3)
    x = np.vstack([v, i])
    whole = run(single_phase(fs), CIRCUIT, x, fs, block_sizes=[x.shape[1]], flush=True)
    chunked = run(
        single_phase(fs), CIRCUIT, x, fs, block_sizes=[1, 577, 64, 3001, 9, 1400], flush=True
    )
    assert len(whole) > 70
    assert_same_metrics(whole, chunked)


def assert_same_metrics(first: list[Metrics], second: list[Metrics]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert (a.time_ns, a.interval, a.channel, a.phase, a.flagged) == (
            b.time_ns,
            b.interval,
            b.channel,
            b.phase,
            b.flagged,
        )
        assert a.fields.keys() == b.fields.keys()
        for k, va in a.fields.items():
            vb = b.fields[k]
            if isinstance(va, float):
                assert vb == pytest.approx(va, rel=1e-9, abs=1e-9), k
            else:
                assert va == vb, k


def test_batches_cut_at_aggregates_delay_basic_intervals_not_aggregates() -> None:
    # 40 s of 0.1-s blocks, the frequency ramping 49.9 -> 50.1 Hz, a 10-min tick
    # at 20.05 s (it closes a 150-cycle aggregate early)
    fs = 6400.0
    tick_ns = (T0_NS // (600 * NS_PER_S) + 1) * 600 * NS_PER_S
    t0_ns = tick_ns - 20_050_000_000
    t = times_s(fs, 40.0)
    ph = linear_drift_phase(t, 49.9, 50.1, 40.0)
    x = np.vstack([tone(ph, U_NOM) + tone(ph, 7.0, 5), tone(ph, 8.0, 1, -0.5)])
    caps = single_phase(fs)
    plain = MetricsEngine(caps, CIRCUIT)
    batched = MetricsEngine(caps, CIRCUIT, batch_s=5.0, batch_to_aggregates=True)
    out: dict[str, list[Metrics]] = {"plain": [], "batched": []}
    when: dict[str, dict[tuple[str, int], int]] = {"plain": {}, "batched": {}}
    for k in range(400):
        block = Block(t0_ns + k * 100_000_000, fs, x[:, k * 640 : (k + 1) * 640], k > 0)
        for name, engine in (("plain", plain), ("batched", batched)):
            got = engine.process(block)
            out[name].extend(got)
            for m in got:
                when[name].setdefault((m.interval, m.time_ns), k)
    for name, engine in (("plain", plain), ("batched", batched)):
        got = engine.flush()
        out[name].extend(got)
        for m in got:
            when[name].setdefault((m.interval, m.time_ns), 400)
    # the same records, in the same order
    assert_same_metrics(out["plain"], out["batched"])
    aggregates = [key for key in when["plain"] if key[0] != "basic"]
    assert sum(key[0] == "150c" for key in aggregates) >= 12
    assert ("10min", tick_ns - 600 * NS_PER_S) in aggregates
    delays = [when["batched"][key] - when["plain"][key] for key in aggregates]
    # an aggregate comes out with the block that completes it (now and then one
    # block later, when the frequency moved while it filled)
    assert min(delays) == 0
    assert max(delays) <= 1
    assert sum(delays) <= 2
    # basic intervals wait for the end of their aggregate: at most ~3 s, and the
    # engine measured them in about one batch per aggregate
    basic = [key for key in when["plain"] if key[0] == "basic"]
    waits = [when["batched"][key] - when["plain"][key] for key in basic]
    assert max(waits) <= 31
    batches = {when["batched"][key] for key in basic}
    assert len(batches) <= len(aggregates) + 2


def test_non_contiguous_block_restarts_cleanly() -> None:
    fs = 6400.0
    caps = single_phase(fs)
    engine = MetricsEngine(caps, CIRCUIT)
    t = times_s(fs, 4.0)
    out = []
    for k, (f_hz, amp) in enumerate(((50.0, 230.0), (49.9, 200.0))):
        ph = 2 * np.pi * f_hz * t + 1.0 * k
        x = np.vstack([tone(ph, amp), tone(ph, 5.0, 1, -0.5)])
        t0 = T0_NS + k * 10 * NS_PER_S  # a 6-s gap after the first 4 s
        for pos in range(0, t.size, 3200):
            out.extend(
                engine.process(
                    Block(t0 + round(pos * NS_PER_S / fs), fs, x[:, pos : pos + 3200], pos > 0)
                )
            )
    basic = select(out, "basic", "va")
    first = [m for m in basic if m.time_ns < T0_NS + 5 * NS_PER_S]
    second = [m for m in basic if m.time_ns >= T0_NS + 10 * NS_PER_S]
    assert len(first) + len(second) == len(basic)
    assert np.max(np.abs(values(first, "voltage_rms_v") - 230.0)) <= V_TOL
    assert np.max(np.abs(values(second, "voltage_rms_v") - 200.0)) <= V_TOL
    assert np.max(np.abs(values(second, "frequency_hz") - 49.9)) <= F_TOL
    # the new stream settles for 6 cycles before its first window
    assert second[0].time_ns - (T0_NS + 10 * NS_PER_S) < 0.2 * NS_PER_S
    # the 150-cycle aggregate running at the gap is closed, marked incomplete
    cyc = select(out, "150c", "va")
    partial = [m for m in cyc if not m.fields["interval_complete"]]
    assert partial
    assert values(partial[:1], "basic_intervals")[0] < 15
    assert partial[0].time_ns < T0_NS + 4 * NS_PER_S


def test_ten_minute_alignment_resync_and_flagging() -> None:
    fs = 800.0
    start = int(datetime(2024, 3, 1, 12, 8, 37, tzinfo=UTC).timestamp()) * NS_PER_S
    tick = int(datetime(2024, 3, 1, 12, 10, 0, tzinfo=UTC).timestamp()) * NS_PER_S
    seconds = (tick + 600 * NS_PER_S - start) / NS_PER_S + 1.0
    t = times_s(fs, seconds)
    v = tone(2 * np.pi * 50.0 * t, U_NOM)
    caps = SourceCapabilities(
        (ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=fs),), nominal_voltage_v=U_NOM
    )
    dip = (tick + 125 * NS_PER_S, tick + 125 * NS_PER_S + 50_000_000)  # 12:12:05.000-.050

    def disturbed(t0: int, t1: int) -> list[tuple[int, int]]:
        return [dip] if t0 <= dip[1] < t1 else []

    out = run(
        caps,
        [],
        v[None, :],
        fs,
        t0_ns=start,
        block_sizes=[8000],
        disturbed_at=disturbed,
        flush=True,
    )
    basic = select(out, "basic", "va")
    ten = select(out, "10min", "va")
    assert [m.time_ns for m in ten] == [tick - 600 * NS_PER_S, tick, tick + 600 * NS_PER_S]
    first, full, tail = ten
    assert first.fields["interval_complete"] is False  # started at 12:08:37
    assert full.fields["interval_complete"] is True
    assert tail.fields["interval_complete"] is False  # flushed
    # 12:10:00-12:20:00 holds 3000 windows of exactly 0.2 s; the one holding
    # each tick belongs to the period it ends
    in_full = [m for m in basic if tick <= m.time_ns < tick + 600 * NS_PER_S]
    assert full.fields["basic_intervals"] == len(in_full) == 3000
    assert in_full[0].time_ns - tick < 0.2 * NS_PER_S
    assert first.fields["basic_intervals"] == len([m for m in basic if m.time_ns < tick])
    assert full.fields["voltage_rms_v"] == pytest.approx(U_NOM, abs=V_TOL)
    assert full.fields["frequency_hz"] == pytest.approx(50.0, abs=F_TOL)
    # 150-cycle aggregates re-synchronise at the tick
    cyc = select(out, "150c", "va")
    before = [m for m in cyc if m.time_ns < tick]
    after = [m for m in cyc if m.time_ns >= tick]
    assert values(before[-1:], "basic_intervals")[0] < 15
    assert before[-1].fields["interval_complete"] is False
    assert after[0].time_ns == in_full[0].time_ns
    assert all(m.fields["basic_intervals"] == 15 for m in after[:-2])
    # flagging: exactly the interval holding the dip, and every aggregate over it
    flagged = [m for m in basic if m.flagged]
    assert len(flagged) == 1
    assert flagged[0].time_ns <= dip[0] < flagged[0].time_ns + 0.2 * NS_PER_S
    assert [m.flagged for m in ten] == [False, True, False]
    flagged_cyc = [m for m in cyc if m.flagged]
    assert len(flagged_cyc) == 1
    assert flagged_cyc[0].time_ns <= dip[0]


def test_flush_emits_partial_aggregates() -> None:
    fs = 6400.0
    t = times_s(fs, 2.0)
    v = tone(2 * np.pi * 50.0 * t, U_NOM)
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, 0 * v]), fs, flush=True)
    for interval in ("150c", "10min", "2h"):
        recs = select(out, interval, "va")
        assert len(recs) == 1, interval
        assert recs[0].fields["interval_complete"] is False
        assert recs[0].fields["voltage_rms_v"] == pytest.approx(U_NOM, abs=V_TOL)
        assert 0 < recs[0].fields["basic_intervals"] < 15  # type: ignore[operator]


# ---------------------------------------------------------------- fallbacks and quality


def test_interruption_falls_back_to_nominal_windows_and_relocks() -> None:
    fs = 6400.0
    t = times_s(fs, 5.0)
    ph = 2 * np.pi * 50.1 * t
    v = tone(ph, U_NOM)
    off = (t >= 2.0) & (t < 3.0)
    v[off] = 0.001 * v[off]  # interruption: 0.1 % remains
    out = run(single_phase(fs), CIRCUIT, np.vstack([v, tone(ph, 5.0)]), fs)
    recs = select(out, "basic", "va")
    tm = (np.asarray([m.time_ns for m in recs]) - T0_NS) / NS_PER_S
    locked = np.asarray([m.fields["frequency_locked"] for m in recs])
    freq = values(recs, "frequency_hz")
    inside = (tm > 2.0) & (tm < 2.8)
    assert inside.any()
    assert not locked[inside].any()
    assert np.isnan(freq[inside]).all()
    # a window without lock is nominal length: 10 cycles of 50 Hz = 0.2 s
    gaps = np.diff(tm)[inside[:-1] & inside[1:]]
    assert np.allclose(gaps, 0.2, atol=1e-6)
    late = tm > 3.3
    assert locked[late].all()
    assert np.max(np.abs(freq[late] - 50.1)) <= F_TOL
    assert np.max(np.abs(values(recs, "voltage_rms_v")[late] - U_NOM)) <= V_TOL
    assert np.max(values(recs, "voltage_rms_v")[inside]) < 0.01 * U_NOM


def test_current_only_source() -> None:
    fs = 3200.0
    t = times_s(fs, 3.0)
    chans = (
        ChannelInfo("i1", Quantity.CURRENT, Phase.A, circuit="pump", rate_hz=fs),
        ChannelInfo("i2", Quantity.CURRENT, None, rate_hz=fs),
    )
    caps = SourceCapabilities(chans)
    x = np.vstack([tone(2 * np.pi * 50.0 * t, 12.0), tone(2 * np.pi * 50.0 * t, 3.0, 1, 1.0)])
    out = run(caps, circuits_from_capabilities(caps), x, fs)
    pump = select(out, "basic", "pump")
    other = select(out, "basic", "i2")
    assert pump
    assert other
    assert np.max(np.abs(values(pump, "current_rms_a") - 12.0)) < 1e-4 * 12
    assert np.max(np.abs(values(other, "current_rms_a") - 3.0)) < 1e-4 * 3
    for r in pump:
        assert r.fields["frequency_hz"] is None
        assert r.fields["frequency_locked"] is False
        assert r.fields["power_active_w"] is None
        assert r.fields["energy_import_wh"] is None
        assert r.fields["voltage_rms_v"] is None


def test_multiplexed_adc_skew_is_corrected() -> None:
    fs = 1600.0
    skew = 200e-6  # the current is sampled 200 us after the voltage (3.6 degrees at 50 Hz)
    t = times_s(fs, 3.0)
    theta = math.radians(60.0)  # PF 0.5: a timing error hurts most
    ph_v = 2 * np.pi * 50.0 * t
    ph_i = 2 * np.pi * 50.0 * (t + skew)
    v = tone(ph_v, U_NOM)
    i = tone(ph_i, I_NOM, 1, -theta) + tone(ph_i, 1.0, 3)
    chans = (
        ChannelInfo("va", Quantity.VOLTAGE, Phase.A, rate_hz=fs),
        ChannelInfo("ia", Quantity.CURRENT, Phase.A, circuit="c1", rate_hz=fs, skew_s=skew),
    )
    caps = SourceCapabilities(chans, simultaneous=False, nominal_voltage_v=U_NOM)
    recs = select(run(caps, CIRCUIT, np.vstack([v, i]), fs), "basic", "c1")
    p = U_NOM * I_NOM * math.cos(theta)
    uncorrected = U_NOM * I_NOM * math.cos(theta - 2 * math.pi * 50 * skew)
    assert abs(uncorrected - p) > 0.05 * p  # the test would notice a missing correction
    assert np.max(np.abs(values(recs, "power_active_w") - p)) <= 0.002 * p
    assert (
        np.max(np.abs(values(recs, "power_reactive_var") - U_NOM * I_NOM * math.sin(theta)))
        <= 0.002 * U_NOM * I_NOM
    )
    assert values(recs, "skew_correction_us") == pytest.approx(200.0)


def test_missing_samples_are_counted_and_bridged_or_refused() -> None:
    fs = 6400.0
    t = times_s(fs, 3.0)
    ph = 2 * np.pi * 50.0 * t
    v = tone(ph, U_NOM) + tone(ph, 5.0, 7)
    i = tone(ph, I_NOM, 1, -0.3)
    x = np.vstack([v, i])
    x[0, 4000:4003] = np.nan  # 3 samples: bridged
    x[1, 9000:9100] = np.nan  # 100 samples (0.8 cycle): refused
    out = run(single_phase(fs), CIRCUIT, x, fs)
    vrec = select(out, "basic", "va")
    crec = select(out, "basic", "c1")
    missing_v = values(vrec, "missing_samples")
    assert missing_v.sum() == 3
    hit = int(np.flatnonzero(missing_v)[0])
    assert vrec[hit].fields["voltage_rms_v"] == pytest.approx(math.hypot(U_NOM, 5.0), abs=V_TOL)
    assert vrec[hit].fields["voltage_h7_v"] == pytest.approx(5.0, abs=v_harmonic_tol(5.0))
    missing_c = values(crec, "missing_samples")
    assert missing_c.sum() == 103  # the circuit counts its voltage and its current
    bad = [r for r in crec if r.fields["missing_samples"] and r.fields["missing_samples"] >= 100]  # type: ignore[operator]
    assert bad
    assert all(r.fields["current_rms_a"] is None for r in bad)
    assert all(r.fields["power_active_w"] is None for r in bad)
    good = [r for r in crec if r.fields["missing_samples"] == 0]
    assert np.max(np.abs(values(good, "current_rms_a") - I_NOM)) < 1e-3 * I_NOM


def test_clipped_samples_are_counted() -> None:
    fs = 6400.0
    t = times_s(fs, 2.0)
    ph = 2 * np.pi * 50.0 * t
    full_scale = 300.0
    v = np.clip(tone(ph, U_NOM), -full_scale, full_scale)
    caps = single_phase(fs, full_scale=full_scale)
    recs = select(run(caps, CIRCUIT, np.vstack([v, 0 * v]), fs), "basic", "va")
    # count the samples whose unclipped value reaches full scale in each window
    # (samples k with start <= k < end, rounded to the nearest sample)
    clipped = values(recs, "clipped_samples")
    unclipped = np.abs(tone(ph, U_NOM)) >= full_scale
    starts = np.floor((np.asarray([m.time_ns for m in recs]) - T0_NS) * fs / NS_PER_S + 0.5).astype(
        int
    )
    expected = [unclipped[a:b].sum() for a, b in itertools.pairwise(starts)]
    assert min(expected) > 300
    assert np.array_equal(clipped[:-1], expected)


def test_invalid_configuration_is_refused() -> None:
    caps = single_phase(6400.0)
    with pytest.raises(ValueError, match="nominal_frequency_hz"):
        MetricsEngine(caps, CIRCUIT, nominal_frequency_hz=55.0)
    with pytest.raises(ValueError, match="voltage_channels"):
        MetricsEngine(caps, [CircuitSpec("c1", ("ia",), ("va", "va"))])
    with pytest.raises(ValueError, match="not a current channel"):
        MetricsEngine(caps, [CircuitSpec("c1", ("va",), ())])
    with pytest.raises(ValueError, match="energy_start"):
        MetricsEngine(caps, CIRCUIT, energy_start={"nope": (1.0, 2.0)})
    with pytest.raises(ValueError, match="aggregations"):
        MetricsEngine(caps, CIRCUIT, aggregations=("5min",))
    with pytest.raises(ValueError, match="reference_channel"):
        MetricsEngine(caps, CIRCUIT, reference_channel="ia")
    engine = MetricsEngine(caps, CIRCUIT)
    with pytest.raises(ValueError, match=r"block.samples"):
        engine.process(Block(T0_NS, 6400.0, np.zeros((3, 10))))


# ---------------------------------------------------------------- real recording


ENF = Path(__file__).parent / "data" / "enf_whu_mains_400hz" / "001_ref.wav"


@pytest.mark.skipif(not ENF.exists(), reason="tests/data/enf_whu_mains_400hz is not present")
def test_real_mains_at_8_samples_per_cycle_tracks_frequency() -> None:
    """001_ref.wav (MIT, ENF-WHU): China mains, 400 Hz.

    Its README's helper check found zero-crossing frequencies of 49.93-50.06 Hz.
    The basic-interval frequencies must stay in that band, stay locked, and
    their cycle-weighted mean over each 10-s clock interval must equal the
    Class A 10-s frequency of the same crossings within 10 mHz.
    """
    from scipy.io import wavfile

    fs, data = wavfile.read(ENF)
    seconds = 120
    x = data[: fs * seconds].astype(np.float64)[None, :]
    caps = SourceCapabilities(
        (ChannelInfo("v", Quantity.VOLTAGE, rate_hz=float(fs), full_scale=32767.0),)
    )
    engine = MetricsEngine(caps, [], aggregations=("basic",))
    out = []
    state = initial_ten_second_state(T0_NS)
    tens: list[tuple[int, float | None]] = []
    for pos in range(0, x.shape[1], 4000):
        block = Block(
            T0_NS + round(pos * NS_PER_S / fs), float(fs), x[:, pos : pos + 4000], pos > 0
        )
        out.extend(engine.process(block))
        horizon = engine.crossings_horizon_ns
        assert horizon is not None
        done, state = ten_second_frequency(engine.crossings_ns, horizon, state)
        tens.extend(done)
    f = values(out, "frequency_hz")
    assert len(f) > 500
    assert not np.isnan(f).any()
    assert f.min() > 49.90
    assert f.max() < 50.09
    starts = np.asarray([m.time_ns for m in out])
    for t10, f10 in tens:
        assert f10 is not None
        inside = (starts >= t10) & (starts < t10 + 10 * NS_PER_S)
        mean_f = 10 * inside.sum() / np.sum(10 / f[inside])
        assert abs(mean_f - f10) < F_TOL


def test_one_long_block_is_measured_in_batches_with_the_same_result() -> None:
    fs = 3200.0
    t = times_s(fs, 12.0)  # 58 windows in one block
    ph = 2 * np.pi * 50.05 * t
    x = np.vstack([tone(ph, U_NOM), tone(ph, 4.0, 1, -0.2)])
    whole = run(single_phase(fs), CIRCUIT, x, fs, block_sizes=[x.shape[1]])
    small = run(single_phase(fs), CIRCUIT, x, fs, block_sizes=[3200])
    assert len(select(whole, "basic", "va")) > 50
    assert_same_metrics(whole, small)


def test_noise_on_an_unknown_reference_never_passes_for_a_locked_window() -> None:
    """No nominal voltage and no full scale: the trigger has no threshold.

    Band-passed noise looks like a wandering 50 Hz tone; without the
    cycle-to-cycle check 2 of these 1500 windows locked at 49.4 and 50.7 Hz.
    """
    fs = 6400.0
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (1, round(fs * 300)))
    caps = SourceCapabilities((ChannelInfo("v", Quantity.VOLTAGE, rate_hz=fs),))
    recs = select(run(caps, [], x, fs, block_sizes=[64000], aggregations=("basic",)), "basic", "v")
    assert len(recs) > 1400
    assert not any(m.fields["frequency_locked"] for m in recs)
    assert all(m.fields["frequency_hz"] is None for m in recs)


def test_neutral_ct_listed_in_the_circuit_is_not_a_phase() -> None:
    """The pipeline pairs a neutral CT with "" (no voltage) inside the circuit."""
    fs = 6400.0
    t = times_s(fs, 2.0)
    ph = 2 * np.pi * 50.0 * t
    leak = 0.02
    volts = [phasor_wave(ph, U_NOM * A**-k) for k in range(3)]
    ia = phasor_wave(ph, I_NOM) + tone(ph, leak, 1, 0.5)
    ib = phasor_wave(ph, 0.8 * I_NOM * A**-1)
    ic = phasor_wave(ph, 0.6 * I_NOM * A**-2)
    i_n = -(phasor_wave(ph, I_NOM) + ib + ic)
    spec = [CircuitSpec("m", ("iA", "iB", "iC", "in"), ("vA", "vB", "vC", ""))]
    out = run(
        three_phase_caps(fs, with_neutral=True), spec, np.vstack([*volts, ia, ib, ic, i_n]), fs
    )
    total = select(out, "basic", "m", "ABCN")
    assert total
    p = U_NOM * I_NOM * (1 + 0.8 + 0.6)
    assert np.max(np.abs(values(total, "power_active_w") - p)) <= 0.002 * p
    assert np.max(np.abs(values(total, "residual_current_a") - leak)) < 1e-4
    assert "current_unbalance_neg_pct" in total[0].fields
    neutral = select(out, "basic", "m", "N")
    assert neutral[0].fields["power_active_w"] is None
    i_n_rms = abs(1 + 0.8 * A**-1 + 0.6 * A**-2) * I_NOM
    assert neutral[0].fields["current_rms_a"] == pytest.approx(i_n_rms, rel=1e-3)


def test_slowest_accepted_rate_still_meets_class_a_and_slower_is_refused() -> None:
    """Below about 2.5 samples per cycle a 10-cycle RMS is +-10 %: refuse it."""
    fs = 143.0  # 2.86 samples per cycle, e.g. an ADS1115 shared by 6 channels
    t = times_s(fs, 20.0)
    ph = 2 * np.pi * 50.03 * t
    x = np.vstack([tone(ph, U_NOM), tone(ph, I_NOM, 1, -0.5)])
    out = run(single_phase(fs), CIRCUIT, x, fs)
    v = select(out, "basic", "va")
    c = select(out, "basic", "c1")
    assert len(v) > 90
    assert np.max(np.abs(values(v, "voltage_rms_v") - U_NOM)) <= V_TOL
    p = U_NOM * I_NOM * math.cos(0.5)
    assert np.max(np.abs(values(c, "power_active_w") - p)) <= 0.002 * p
    assert v[0].fields["harmonics_max_order"] == 1
    assert v[0].fields["frequency_hz"] is None  # too slow for the crossing detector
    # a slow meter source may build an engine; a block that slow is refused
    engine = MetricsEngine(single_phase(100.0), CIRCUIT)
    with pytest.raises(ValueError, match=r"block\.fs_hz: 100 Hz"):
        engine.process(Block(T0_NS, 100.0, np.zeros((2, 100))))


def test_batching_small_blocks_changes_latency_not_results() -> None:
    fs = 6400.0
    t = times_s(fs, 5.0)
    ph = 2 * np.pi * 49.97 * t
    x = np.vstack([tone(ph, U_NOM) + tone(ph, 9.0, 5), tone(ph, 6.0, 1, -0.7)])
    tenth = [640]
    plain = run(single_phase(fs), CIRCUIT, x, fs, block_sizes=tenth, flush=True)
    batched = run(single_phase(fs), CIRCUIT, x, fs, block_sizes=tenth, flush=True, batch_s=1.0)
    assert_same_metrics(plain, batched)
    # nothing is measured before a second of signal has arrived
    engine = MetricsEngine(single_phase(fs), CIRCUIT, batch_s=1.0)
    first = [
        engine.process(Block(T0_NS + k * 100_000_000, fs, x[:, k * 640 : (k + 1) * 640], k > 0))
        for k in range(9)
    ]
    assert not any(first)
    assert select(engine.process(Block(T0_NS + 900_000_000, fs, x[:, 5760:6400])), "basic", "va")
    with pytest.raises(ValueError, match="batch_s"):
        MetricsEngine(single_phase(fs), CIRCUIT, batch_s=-1.0)
