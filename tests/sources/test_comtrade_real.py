"""The COMTRADE reader on real records, checked against facts from outside the reader.

Ground truth: the vendor fault reports (labels_from_xml.json), the data README
(/work/shared/data/real/README.md: channel counts, record sizes, rate tables, the
A-trip edge) and the raw dat bytes decoded with the README's plain-numpy recipe.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from collector.sources.comtrade import FileType, Recording, Scaling, TimeSource, read_comtrade

REPO = Path(__file__).resolve().parents[2]
CN = REPO / "tests" / "data" / "cn_220kv_dfr_comtrade"
SHARED = REPO.parent / "shared" / "data" / "real"
GENERATOR = SHARED / "generator_dfr_comtrade"
needs_shared = pytest.mark.skipif(
    not GENERATOR.is_dir(),
    reason=f"{GENERATOR} is absent (GPL records are not copied into the repo)",
)
D51 = "D51_RCD_2346_20150917_105253_065_F"

# README section 1: channel counts, binary record sizes and rate tables
CN_FACTS = {
    "xtz": (48, 96, 116, ((3200, 1280), (50, 1316), (3200, 2788), (50, 3077))),
    "ygz": (96, 128, 216, ((3200, 1280), (50, 1325), (3200, 2541), (50, 2830))),
    "ymz": (80, 80, 178, ((4000, 1120), (200, 1256), (4000, 2376), (200, 2977))),
}


@pytest.fixture(scope="module")
def labels() -> dict[str, dict[str, object]]:
    with (CN / "labels_from_xml.json").open(encoding="utf-8") as fh:
        data: dict[str, dict[str, object]] = json.load(fh)
    return data


@pytest.fixture(scope="module")
def records() -> dict[str, Recording]:
    return {name: read_comtrade(CN / f"{name}.cfg") for name in CN_FACTS}


def _raw_dat(name: str, n_a: int, n_d: int) -> np.ndarray:
    """The README's recipe: one structured dtype over the whole dat."""
    words = -(-n_d // 16)
    dtype = np.dtype([("n", "<i4"), ("t", "<i4"), ("a", "<i2", (n_a,)), ("d", "<u2", (words,))])
    return np.fromfile(CN / f"{name}.dat", dtype=dtype)


@pytest.mark.parametrize("name", sorted(CN_FACTS))
def test_cn_record_structure(name: str, records: dict[str, Recording]) -> None:
    n_a, n_d, record_bytes, rates = CN_FACTS[name]
    rec = records[name]
    assert (len(rec.analog), len(rec.digital)) == (n_a, n_d)
    assert rec.revision == 1999
    assert rec.encoding == "gbk"
    assert rec.file_type is FileType.BINARY
    assert rec.lf_hz == 50
    assert tuple((r.rate_hz, r.end_sample) for r in rec.rates) == rates
    size = (CN / f"{name}.dat").stat().st_size
    assert size == record_bytes * rec.n_samples
    assert rec.n_samples == rates[-1][1]
    assert rec.time_source is TimeSource.TIMESTAMPS
    assert rec.analog_values.shape == (n_a, rec.n_samples)


@pytest.mark.parametrize("name", sorted(CN_FACTS))
def test_values_and_time_follow_the_readme_recipe(name: str, records: dict[str, Recording]) -> None:
    n_a, n_d, _, _ = CN_FACTS[name]
    rec = records[name]
    raw = _raw_dat(name, n_a, n_d)
    a = np.array([ch.a for ch in rec.analog])
    b = np.array([ch.b for ch in rec.analog])
    np.testing.assert_array_equal(rec.analog_values, (raw["a"] * a + b).T)
    np.testing.assert_allclose(rec.time_s * 1e6, raw["t"] - raw["t"][0], rtol=0, atol=1e-6)
    bit = 5
    np.testing.assert_array_equal(rec.digital[bit].data, (raw["d"][:, 0] >> bit) & 1)


def test_chinese_channel_names_are_decoded(records: dict[str, Recording]) -> None:
    xtz = records["xtz"]
    assert xtz.station == "xtz"
    assert xtz.device == "220kV线路"
    assert xtz.analog[4].name == "220kV母线II_Ua"
    assert xtz.analog[32].name == "220kVxgx_214开关_Ia"
    assert xtz.analog[32].ccbm == "xgx214"
    assert (xtz.analog[4].primary, xtz.analog[4].secondary, xtz.analog[4].ps) == (
        127017.0, 57.735, "S")


def test_start_and_trigger_times(records: dict[str, Recording]) -> None:
    xtz = records["xtz"]
    assert xtz.start_time == datetime(2023, 5, 12, 19, 45, 25, 603838)
    assert xtz.trigger_time == datetime(2023, 5, 12, 19, 45, 25, 803774)
    assert xtz.start_ns == 1683920725603838000


def _one_cycle_windows(labels: dict[str, dict[str, object]], name: str) -> dict[str, slice]:
    """Vendor pre-fault cycles: Cyc1Befort is the earliest, Cyc3Befort ends at inception.

    (The naming was established by comparing all three windows; each matches its
    label to 0.01 % for the voltages, and the neighbouring windows do not.)
    """
    k0 = int(labels[name]["fault_inception_sample_index_0based"])  # type: ignore[call-overload]
    n = 80 if name == "ymz" else 64  # one 50 Hz cycle at 4000 / 3200 Hz
    return {f"Cyc{m}Befort": slice(k0 - (4 - m) * n, k0 - (3 - m) * n) for m in (1, 2, 3)}


def _phasors(labels: dict[str, dict[str, object]], name: str, cycle: str) -> dict[str, float]:
    table = labels[name]["secondary_phasors_rms_deg"]
    assert isinstance(table, dict)
    return {k: float(v[0]) for k, v in table[cycle].items()}


def _channels(labels: dict[str, dict[str, object]], name: str) -> dict[str, int]:
    volts = labels[name]["fault_voltage_channels_1based"]
    amps = labels[name]["fault_current_channels_1based"]
    assert isinstance(volts, list)
    assert isinstance(amps, list)
    return dict(zip(("Ua", "Ub", "Uc", "U0", "Ia", "Ib", "Ic", "I0"), volts + amps, strict=True))


@pytest.mark.parametrize("name", sorted(CN_FACTS))
@pytest.mark.parametrize("cycle", ["Cyc1Befort", "Cyc2Befort", "Cyc3Befort"])
def test_prefault_one_cycle_rms_matches_vendor_phasors(
    name: str, cycle: str, records: dict[str, Recording], labels: dict[str, dict[str, object]]
) -> None:
    rec = records[name]
    window = _one_cycle_windows(labels, name)[cycle]
    reference = _phasors(labels, name, cycle)
    channels = _channels(labels, name)
    for phase in ("Ua", "Ub", "Uc"):
        x = rec.analog_values[channels[phase] - 1, window]
        rms = float(np.sqrt(np.mean(x**2)))
        assert rms == pytest.approx(reference[phase], rel=1e-3), (name, cycle, phase)
    for phase in ("Ia", "Ib", "Ic"):
        # the vendor's current phasors exclude the ADC's DC offset (ygz: ~1 % of
        # 0.34 A), so compare the RMS of the AC part
        x = rec.analog_values[channels[phase] - 1, window]
        rms = float(np.std(x))
        assert rms == pytest.approx(reference[phase], rel=5e-3), (name, cycle, phase)


def test_xtz_prefault_phase_a_plain_rms(
    records: dict[str, Recording], labels: dict[str, dict[str, object]]
) -> None:
    """The README's own check: plain one-cycle RMS of Ua (ch 5) and Ia (ch 33)."""
    rec = records["xtz"]
    window = _one_cycle_windows(labels, "xtz")["Cyc3Befort"]
    reference = _phasors(labels, "xtz", "Cyc3Befort")
    ua = rec.analog_values[4, window]
    ia = rec.analog_values[32, window]
    assert np.sqrt(np.mean(ua**2)) == pytest.approx(reference["Ua"], rel=5e-3)
    assert np.sqrt(np.mean(ia**2)) == pytest.approx(reference["Ia"], rel=5e-3)


def test_xtz_inception_and_a_trip_edge(
    records: dict[str, Recording], labels: dict[str, dict[str, object]]
) -> None:
    rec = records["xtz"]
    k0 = labels["xtz"]["fault_inception_sample_index_0based"]
    assert rec.time_s[k0] == pytest.approx(0.2106, abs=1e-4)  # README: 674 = 0.2106 s
    trip = next(d for d in rec.digital if d.index == 53)
    assert trip.name == "220kVxgx_214开关_保护二_A相跳闸"  # bay xgx, protection 2, A-phase trip
    rise = int(np.flatnonzero(np.diff(trip.data.astype(int)) == 1)[0]) + 1
    assert rec.time_s[rise] == pytest.approx(0.2256, abs=2e-4)
    relay_ms = labels["xtz"]["relative_times_ms_from_inception"]["RelayActTime"]  # type: ignore[index]
    assert (rec.time_s[rise] - rec.time_s[k0]) * 1e3 == pytest.approx(relay_ms, abs=0.5)


def test_timestamps_differ_from_the_rate_table_as_the_readme_says(
    records: dict[str, Recording],
) -> None:
    rec = records["xtz"]
    rate = np.empty(rec.n_samples)
    start = 0
    for r in rec.rates:
        rate[start:r.end_sample] = r.rate_hz
        start = r.end_sample
    from_table = np.concatenate(([0.0], np.cumsum(1.0 / rate[:-1])))
    gap_ms = np.abs(rec.time_s - from_table).max() * 1e3
    assert gap_ms == pytest.approx(2.2, abs=0.05)  # README: "up to 2.2 ms"


def test_primary_values_use_the_transformer_ratio(records: dict[str, Recording]) -> None:
    rec = records["xtz"]
    primary = rec.primary_values()
    np.testing.assert_allclose(primary[4], rec.analog_values[4] * 127017.0 / 57.735)
    np.testing.assert_allclose(primary[32], rec.analog_values[32] * 1600.0 / 5.0)
    np.testing.assert_array_equal(rec.values(Scaling.SECONDARY), rec.analog_values)


def test_d51_ascii_1991_record() -> None:
    rec = read_comtrade(CN / f"{D51}.cfg")
    assert rec.revision == 1991
    assert rec.file_type is FileType.ASCII
    assert rec.station == "UNREAL SUBSTATION"
    assert rec.device == "DEMOTEST"
    assert (len(rec.analog), len(rec.digital)) == (24, 37)
    assert len(rec.rates) == 8
    assert all(r.rate_hz == 1200 for r in rec.rates)
    assert rec.n_samples == 2131
    # 1991 date order mm/dd/yy with a two-digit year
    assert rec.start_time == datetime(2015, 9, 17, 10, 52, 52, 987545)
    assert rec.trigger_time == datetime(2015, 9, 17, 10, 52, 53, 65045)
    assert rec.analog[0].a == 0.001
    assert rec.analog[0].ps == ""
    table = np.loadtxt(CN / f"{D51}.dat", delimiter=",")
    np.testing.assert_allclose(rec.time_s, (table[:, 1] - table[0, 1]) * 1e-6, atol=1e-12)
    np.testing.assert_allclose(rec.analog_values, table[:, 2:26].T * 0.001)
    np.testing.assert_array_equal(rec.digital[0].data, table[:, 26])
    # the trigger is the sample the relay stamped 0 µs; the stamps start at -77500 µs
    trigger_row = int(np.flatnonzero(table[:, 1] == 0)[0])
    assert rec.trigger_ns is not None
    assert rec.start_ns is not None
    assert rec.time_s[trigger_row] * 1e9 == pytest.approx(rec.trigger_ns - rec.start_ns, abs=1)
    # time gaps: intervals far longer than 1/1200 s
    gaps = np.flatnonzero(np.diff(table[:, 1]) > 1.5e6 / 1200) + 1
    assert gaps.tolist() == [289, 506, 1045, 1812, 2099]
    with pytest.raises(ValueError, match="scaling"):
        rec.primary_values()  # 1991 files carry no transformer ratings


@needs_shared
def test_generator_test3() -> None:
    rec = read_comtrade(GENERATOR / "test3.cfg")
    assert (len(rec.analog), len(rec.digital)) == (31, 32)
    assert [(r.rate_hz, r.end_sample) for r in rec.rates] == [(5760, 24768)]
    assert rec.lf_hz == 50
    assert rec.analog[0].ps == "P"
    assert rec.n_samples == 24768
    assert rec.time_s[-1] == pytest.approx(24767 / 5760, abs=2e-6)
    # the recorder's timestamps wrap at 2**16 µs; unwrapped they match 5760 Hz
    np.testing.assert_allclose(np.diff(rec.time_s), 1 / 5760, atol=1.01e-6)
    by_name = {d.name: d for d in rec.digital}
    edges_86 = np.flatnonzero(np.diff(by_name["86_G4"].data.astype(int)))
    assert len(edges_86) == 1
    assert by_name["86_G4"].data[0] == 1
    assert rec.time_s[edges_86[0] + 1] == pytest.approx(0.316, abs=1e-3)  # README
    edges_32 = np.flatnonzero(np.diff(by_name["32_G4"].data.astype(int))) + 1
    np.testing.assert_allclose(rec.time_s[edges_32], [0.300, 0.639], atol=1e-3)  # README
    # README helper figures for GER 1 phase A: about 3.48 kV RMS, P about 4.47 MW,
    # PF about 0.94 (values are primary: kV and A, so v*i is in kW)
    ia = rec.analog_values[rec.channel_row("IA_G1")]
    va = rec.analog_values[rec.channel_row("VA_G1")]
    p_kw = float(np.mean(va * ia))
    s_kva = float(np.sqrt(np.mean(va**2)) * np.sqrt(np.mean(ia**2)))
    assert np.sqrt(np.mean(va**2)) == pytest.approx(3.48, rel=0.01)
    assert p_kw == pytest.approx(4470, rel=0.01)
    assert p_kw / s_kva == pytest.approx(0.94, abs=0.01)


@needs_shared
def test_generator_test2() -> None:
    rec = read_comtrade(GENERATOR / "test2.cfg")
    assert (len(rec.analog), len(rec.digital)) == (26, 13)
    assert rec.lf_hz == 60
    assert rec.analog[0].unit == "kV"
    assert rec.time_s[-1] == pytest.approx(13247 / 5760, abs=2e-6)
