"""ReplaySource: segments, block timing, channel roles and ids, on real and synthetic records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collector.model import NS_PER_S, Phase, Quantity, Source
from collector.sources.comtrade import Scaling, read_comtrade
from collector.sources.replay import (
    ReplaySource,
    find_segments,
    infer_role,
    nominal_phase_voltage_from_rating,
)

REPO = Path(__file__).resolve().parents[2]
CN = REPO / "tests" / "data" / "cn_220kv_dfr_comtrade"
SHARED = REPO.parent / "shared" / "data" / "real"
GENERATOR = SHARED / "generator_dfr_comtrade"
needs_shared = pytest.mark.skipif(
    not GENERATOR.is_dir(),
    reason=f"{GENERATOR} is absent (GPL records are not copied into the repo)",
)
D51 = "D51_RCD_2346_20150917_105253_065_F"


def _raw_stamps_us(name: str, n_a: int, n_d: int) -> np.ndarray:
    """The dat timestamp column [µs], decoded with the README's plain recipe."""
    words = -(-n_d // 16)
    dtype = np.dtype([("n", "<i4"), ("t", "<i4"), ("a", "<i2", (n_a,)), ("d", "<u2", (words,))])
    return np.fromfile(CN / f"{name}.dat", dtype=dtype)["t"].astype(np.int64)


@pytest.fixture(scope="module")
def xtz() -> ReplaySource:
    return ReplaySource.open(CN / "xtz.cfg", channels=[5, 33])


def test_is_a_source(xtz: ReplaySource) -> None:
    source: Source = xtz
    assert source.capabilities.waveform


def test_xtz_envelopes_skipped_waveforms_kept(xtz: ReplaySource) -> None:
    assert [s.fs_hz for s in xtz.segments] == [3200.0, 3200.0]
    assert [s.duration_s for s in xtz.segments] == [1281 / 3200, 1473 / 3200]
    assert [s.fs_hz for s in xtz.skipped_segments] == [50.0, 50.0]
    assert all("envelope" in s.reason for s in xtz.skipped_segments)
    # the rate table puts 50 Hz at samples 1281..1316 and 2789..3077 (1-based); the
    # timestamps agree except for the boundary sample, which sits on the 3200 Hz grid
    stamps = _raw_stamps_us("xtz", 48, 96)
    first, second = xtz.segments
    assert (first.start, second.stop) == (0, 2789)
    assert abs(first.stop - 1280) <= 1
    assert abs(second.start - 1316) <= 1
    for seg in xtz.segments:
        steps = np.diff(stamps[seg.start:seg.stop])
        assert steps.min() >= 312
        assert steps.max() <= 314


def test_xtz_block_times_come_from_the_timestamps(xtz: ReplaySource) -> None:
    rec = read_comtrade(CN / "xtz.cfg")
    assert rec.start_ns is not None
    stamps = _raw_stamps_us("xtz", 48, 96)
    blocks = list(xtz.blocks())
    starts = [b for b in blocks if not b.contiguous]
    assert len(starts) == 2
    second = xtz.segments[1]
    assert starts[0].t0_ns == rec.start_ns
    assert starts[1].t0_ns == rec.start_ns + stamps[second.start] * 1000
    # the rate table would put that sample 0.42 ms later: the README's warning
    from_table_s = 1280 / 3200 + 36 / 50
    assert abs(stamps[second.start] * 1e-6 - from_table_s) > 3e-4
    # every block starts at its first sample's own timestamp
    index = 0
    for seg in xtz.segments:
        for k in range(seg.start, seg.stop - 320, 640):
            assert blocks[index].t0_ns == rec.start_ns + stamps[k] * 1000
            index += 1
    assert index == len(blocks)


def test_xtz_blocks_hold_the_recorded_samples(xtz: ReplaySource) -> None:
    rec = read_comtrade(CN / "xtz.cfg")
    blocks = list(xtz.blocks())
    assert {b.fs_hz for b in blocks} == {3200.0}
    # 0.2 s at 3200 Hz; a remainder under half a block joins the segment's last block
    assert [b.n_samples for b in blocks] == [640, 641, 640, 833]
    joined = np.concatenate([b.samples for b in blocks], axis=1)
    expected = np.concatenate([rec.analog_values[[4, 32], s.start:s.stop] for s in xtz.segments],
                              axis=1)
    np.testing.assert_array_equal(joined, expected)
    assert [b.contiguous for b in blocks] == [False, True, False, True]


def test_xtz_channel_roles_and_ids(xtz: ReplaySource) -> None:
    ua, ia = xtz.capabilities.channels
    assert (ua.id, ua.quantity, ua.phase, ua.circuit) == ("ch5_Ua", Quantity.VOLTAGE, Phase.A, None)
    assert (ia.id, ia.quantity, ia.phase, ia.circuit) == ("ch33_Ia", Quantity.CURRENT, Phase.A,
                                                         "xgx214")
    assert ua.rate_hz == 3200
    assert ua.resolution == pytest.approx(0.0078258)  # |a| of channel 5
    assert ua.full_scale == pytest.approx(0.0078258 * 32767 + 0.0)
    table = {row.number: row for row in xtz.channel_table()}
    assert len(table) == 48
    assert table[8].id == "ch8_3U0"
    assert table[8].phase is Phase.N
    assert table[8].quantity is Quantity.VOLTAGE
    assert table[36].quantity is Quantity.RESIDUAL_CURRENT
    assert table[36].circuit == "xgx214"
    assert table[41].id == "ch41"
    assert table[41].phase is None
    assert [n for n, row in table.items() if row.selected] == [5, 33]
    assert len({row.id for row in table.values()}) == 48


def test_xtz_nominal_voltage_from_vt_ratings(xtz: ReplaySource) -> None:
    # README: retained voltages are relative to 100/sqrt(3) = 57.735 V secondary
    assert xtz.capabilities.nominal_voltage_v == pytest.approx(57.735, rel=1e-4)
    assert xtz.capabilities.nominal_frequency_hz == 50
    assert xtz.capabilities.simultaneous


def test_ymz_nominal_voltage_from_line_to_line_rating() -> None:
    src = ReplaySource.open(CN / "ymz.cfg", channels=[49, 50, 51])
    assert src.capabilities.nominal_voltage_v == pytest.approx(100 / np.sqrt(3), rel=1e-6)


def test_primary_scaling_and_overrides() -> None:
    rec = read_comtrade(CN / "xtz.cfg")
    src = ReplaySource(rec, channels=["ch5_Ua", "33"], scaling=Scaling.PRIMARY,
                       nominal_frequency_hz=60.0, block_duration_s=0.1)
    assert src.capabilities.nominal_voltage_v == pytest.approx(127017, rel=1e-4)
    assert src.capabilities.nominal_frequency_hz == 60
    block = next(src.blocks())
    assert block.n_samples == 320
    np.testing.assert_allclose(block.samples[0], rec.analog_values[4, :320] * 127017 / 57.735)
    np.testing.assert_allclose(block.samples[1], rec.analog_values[32, :320] * 1600 / 5)
    assert src.capabilities.channels[0].resolution == pytest.approx(0.0078258 * 127017 / 57.735)
    fixed = ReplaySource(rec, channels=[5], nominal_voltage_v=63.5)
    assert fixed.capabilities.nominal_voltage_v == 63.5


def test_ymz_gap_starts_a_new_segment() -> None:
    src = ReplaySource.open(CN / "ymz.cfg", channels=[49])
    stamps = _raw_stamps_us("ymz", 80, 80)
    assert [s.fs_hz for s in src.segments] == [4000.0, 4000.0]
    second = src.segments[1]
    assert stamps[second.start] - stamps[second.start - 1] == 171250  # the recorded gap
    assert [s.fs_hz for s in src.skipped_segments] == [200.0, 200.0]


def test_d51_gaps_restart_blocks() -> None:
    src = ReplaySource.open(CN / f"{D51}.cfg", channels=["Ia1"])
    table = np.loadtxt(CN / f"{D51}.dat", delimiter=",")
    stamps_us = table[:, 1] - table[0, 1]
    gaps = [0, *(np.flatnonzero(np.diff(table[:, 1]) > 1.5e6 / 1200) + 1).tolist()]
    assert [s.start for s in src.segments] == gaps
    assert all(s.fs_hz == 1200 for s in src.segments)
    rec = src.recording
    assert rec.start_ns is not None
    restarts = [b for b in src.blocks() if not b.contiguous]
    assert len(restarts) == len(gaps)
    for block, row in zip(restarts, gaps, strict=True):
        assert block.t0_ns == rec.start_ns + round(stamps_us[row] * 1000)
    assert src.capabilities.nominal_voltage_v is None  # 1991: no VT ratings
    assert any("nominal voltage unknown" in n for n in src.notes)


def test_channel_selection_errors() -> None:
    rec = read_comtrade(CN / "ymz.cfg")
    with pytest.raises(ValueError, match="channels: no channel 'nope'"):
        ReplaySource(rec, channels=["nope"])
    with pytest.raises(ValueError, match="cannot be replayed: unit ''"):
        ReplaySource(rec, channels=[77])
    with pytest.raises(ValueError, match="selected twice"):
        ReplaySource(rec, channels=[49, "220kVxy1x_Ua"])
    with pytest.raises(ValueError, match="block_duration_s: must be > 0"):
        ReplaySource(rec, block_duration_s=0)
    default = ReplaySource(rec)
    assert len(default.capabilities.channels) == 76  # 80 minus 4 unit-less channels


def test_default_selection_by_name() -> None:
    rec = read_comtrade(CN / "xtz.cfg")
    src = ReplaySource(rec, channels=["220kVxgx_214开关_Ic"])
    assert src.capabilities.channels[0].id == "ch35_Ic"


CFG_UNITS = """\
UNITS,T,1999
4,4A,0D
1,UA,,bus,kV,0.001,0,0,-32767,32767,1,1,P
2,IA,,line,kA,0.001,0,0,-32767,32767,1,1,P
3,temp,,x,degC,1,0,0,-32767,32767,1,1,P
4,leak,G,line,mA,1,0,0,-32767,32767,1,1,P
60
1
3840,{n}
01/01/2024,00:00:00.000000
01/01/2024,00:00:00.000000
ASCII
1
"""


def test_unit_conversion_and_ignored_channels(tmp_path: Path) -> None:
    n = 128
    (tmp_path / "u.cfg").write_text(CFG_UNITS.format(n=n))
    rows = [f"{k + 1},{round(k * 1e6 / 3840)},{k},{-k},{k % 7},{k % 3}" for k in range(n)]
    (tmp_path / "u.dat").write_text("\n".join(rows) + "\n")
    src = ReplaySource.open(tmp_path / "u.cfg")
    ids = [c.id for c in src.capabilities.channels]
    assert ids == ["UA", "IA", "leak"]
    ua, ia, leak = src.capabilities.channels
    assert (ua.quantity, ua.phase) == (Quantity.VOLTAGE, Phase.A)  # phase from the name
    assert (ia.quantity, ia.phase, ia.circuit) == (Quantity.CURRENT, Phase.A, "line")
    assert (leak.quantity, leak.phase) == (Quantity.RESIDUAL_CURRENT, Phase.G)  # ph G
    block = next(src.blocks())
    k = np.arange(n)
    np.testing.assert_allclose(block.samples[0], k * 0.001 * 1000)  # kV -> V
    np.testing.assert_allclose(block.samples[1], -k * 0.001 * 1000)  # kA -> A
    np.testing.assert_allclose(block.samples[2], (k % 3) * 1e-3)  # mA -> A
    assert block.fs_hz == 3840
    assert ua.resolution == pytest.approx(1.0)
    temp = next(r for r in src.channel_table() if r.number == 3)
    assert temp.quantity is None
    assert "degC" in temp.note


@pytest.mark.parametrize(("name", "ph", "unit", "expected"), [
    ("220kV母线II_Ua", "A", "V", (Quantity.VOLTAGE, Phase.A, 1.0)),
    ("220kV母线II_3U0", "N", "V", (Quantity.VOLTAGE, Phase.N, 1.0)),
    ("xgx_3I0", "N", "A", (Quantity.RESIDUAL_CURRENT, Phase.G, 1.0)),
    ("IN_TF7", "N", "A", (Quantity.RESIDUAL_CURRENT, Phase.G, 1.0)),
    ("VB_G1", "", "kV", (Quantity.VOLTAGE, Phase.B, 1000.0)),
    ("IC_TF7", "", "A", (Quantity.CURRENT, Phase.C, 1.0)),
    ("Feeder IL2", "", "A", (Quantity.CURRENT, Phase.B, 1.0)),
    ("Bus UT", "", "V", (Quantity.VOLTAGE, Phase.C, 1.0)),
    ("anything", "L3", "A", (Quantity.CURRENT, Phase.C, 1.0)),
    ("anything", "s", "V", (Quantity.VOLTAGE, Phase.B, 1.0)),
    ("Uab", "", "V", (Quantity.VOLTAGE, None, 1.0)),  # line to line: no single phase
    ("freq", "", "Hz", (None, None, 1.0)),
])
def test_infer_role(name: str, ph: str, unit: str, expected: tuple[object, ...]) -> None:
    assert infer_role(name, ph, unit) == expected


@pytest.mark.parametrize(("rating", "expected"), [
    (127017.0, 127017.0), (220000.0, 220000 / np.sqrt(3)), (13800.0, 13800 / np.sqrt(3)),
    (230.0, 230.0), (400.0, 400 / np.sqrt(3)), (120.0, 120.0), (208.0, 208 / np.sqrt(3)),
    (240.0, None), (57.735, None), (1.0, None),
])
def test_nominal_from_rating(rating: float, expected: float | None) -> None:
    got = nominal_phase_voltage_from_rating(rating)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def _axis(*runs: tuple[int, float]) -> np.ndarray:
    """A time axis from (count, interval) runs, each starting one interval after the last."""
    t: list[float] = [0.0]
    for count, dt in runs:
        t += [t[-1] + dt * (k + 1) for k in range(count)]
    return np.array(t)


def test_find_segments_uniform_gap_and_rate_changes() -> None:
    assert find_segments(np.arange(10) / 1000) == [(0, 10)]
    # 0..9 at 1 ms, a 50 ms gap, then 10 more at 1 ms
    gap = _axis((9, 1e-3), (1, 50e-3), (9, 1e-3))
    assert find_segments(gap) == [(0, 10), (10, 20)]
    # fast -> slow -> fast: the boundary sample goes with the fast run
    mixed = _axis((9, 1e-3), (4, 20e-3), (6, 1e-3))
    assert find_segments(mixed) == [(0, 10), (10, 13), (13, 20)]
    assert find_segments(np.array([])) == []
    assert find_segments(np.array([0.0, 1.0])) == [(0, 2)]


def test_find_segments_tolerates_timestamp_quantisation() -> None:
    exact = np.arange(3000) / 3200
    quantised = np.round(exact * 1e6) * 1e-6  # 312/313 µs steps, like xtz
    assert find_segments(quantised, 1e-6) == [(0, 3000)]


@needs_shared
def test_generator_test3_replay() -> None:
    src = ReplaySource.open(GENERATOR / "test3.cfg", channels=["IA_G1", "VA_G1"])
    ia, va = src.capabilities.channels
    assert (ia.circuit, ia.phase) == ("GER_1", Phase.A)
    assert va.quantity is Quantity.VOLTAGE
    assert [s.fs_hz for s in src.segments] == [5760.0]
    rec = src.recording
    blocks = list(src.blocks())
    assert blocks[0].n_samples == 1152  # 0.2 s
    joined = np.concatenate([b.samples for b in blocks], axis=1)
    np.testing.assert_allclose(joined[1], rec.analog_values[3] * 1000)  # kV -> V
    # README helper figure: GER 1 phase A about 3.48 kV RMS
    assert np.sqrt(np.mean(joined[1] ** 2)) == pytest.approx(3480, rel=0.01)
    last = blocks[-1]
    assert last.t0_ns + round((last.n_samples - 1) * NS_PER_S / 5760) == pytest.approx(
        blocks[0].t0_ns + 24767 / 5760 * NS_PER_S, abs=2000)
