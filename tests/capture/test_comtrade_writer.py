"""The COMTRADE writer: round trips through our reader within one LSB, exact timestamps,
and a binary layout that the README's plain-numpy recipe decodes as well."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from collector.capture.comtrade_writer import write_comtrade
from collector.model import NS_PER_S, ChannelInfo, Phase, Quantity
from collector.sources.comtrade import FileType, TimeSource, read_comtrade
from collector.sources.replay import ReplaySource

CHANNELS = (
    ChannelInfo("v_a", Quantity.VOLTAGE, Phase.A),
    ChannelInfo("i_a", Quantity.CURRENT, Phase.A, circuit="main", full_scale=100.0),
    ChannelInfo("leak", Quantity.RESIDUAL_CURRENT, None, circuit="main", skew_s=12e-6),
)
START_NS = 1_700_000_000_123_456_789


def _signals(fs_hz: float, n: int) -> np.ndarray:
    t = np.arange(n) / fs_hz
    x = np.vstack([
        325.0 * np.sin(2 * np.pi * 50 * t) + 3.0,
        20.0 * np.sin(2 * np.pi * 50 * t + 1.0),
        0.03 * np.cos(2 * np.pi * 150 * t),
    ])
    x[1, 5] = np.nan
    x[0, -1] = np.nan
    return x


CASES = [
    (fmt, rev, fs)
    for fs in (3200.0, 5760.0, 400.0, 4000.0)
    for fmt, rev in (("BINARY", 1999), ("BINARY", 2013), ("BINARY32", 2013),
                     ("FLOAT32", 2013), ("ASCII", 1999), ("ASCII", 2013))
]


@pytest.mark.parametrize(("fmt", "revision", "fs_hz"), CASES)
def test_round_trip(
    tmp_path: Path, fmt: Literal["BINARY", "BINARY32", "FLOAT32", "ASCII"],
    revision: Literal[1999, 2013], fs_hz: float,
) -> None:
    n = 1500
    x = _signals(fs_hz, n)
    cfg, dat = write_comtrade(tmp_path / "cap.cfg", CHANNELS, x, fs_hz, START_NS,
                              trigger_ns=START_NS + 50_000_000, fmt=fmt, revision=revision,
                              line_frequency_hz=50.0)
    assert dat == tmp_path / "cap.dat"
    rec = read_comtrade(cfg)
    assert rec.revision == revision
    assert rec.file_type is FileType(fmt)
    assert rec.time_source is TimeSource.TIMESTAMPS
    assert rec.lf_hz == 50
    assert [r.rate_hz for r in rec.rates] == [fs_hz]
    # values within one LSB (a); float32 within its own rounding
    missing = np.isnan(x)
    np.testing.assert_array_equal(np.isnan(rec.analog_values), missing)
    err = np.abs(np.where(missing, 0, rec.analog_values - np.nan_to_num(x)))
    for row, ch in enumerate(rec.analog):
        if fmt == "FLOAT32":
            assert err[row].max() <= np.abs(np.nan_to_num(x[row])).max() * 2**-23
        else:
            assert err[row].max() <= abs(ch.a) * (0.5 + 1e-9)
            # the integer range is used well: the largest sample needs over 3/4 of it
            peak_raw = np.nanmax(np.abs((x[row] - ch.b) / ch.a))
            assert peak_raw > 0.75 * ch.max or row == 1  # row 1 spans its full scale
    # timestamps: sample k at exactly k / fs
    k = np.arange(n)
    assert np.abs(rec.time_s - k / fs_hz).max() < 1e-12
    # start and trigger: exact to the ns in 2013, to the µs in 1999
    resolution = 1 if revision == 2013 else 1000
    assert rec.start_ns is not None
    assert rec.trigger_ns is not None
    assert abs(rec.start_ns - START_NS) < resolution
    assert abs(rec.trigger_ns - rec.start_ns - 50_000_000) < resolution


def test_full_scale_is_kept(tmp_path: Path) -> None:
    x = np.array([[0.0, 50.0, -100.0, 100.0, 25.0]])
    ch = ChannelInfo("i", Quantity.CURRENT, Phase.B, circuit="c1", full_scale=100.0,
                     rate_hz=1000.0)
    cfg, _ = write_comtrade(tmp_path / "fs.cfg", [ch], x, 1000.0, START_NS, fmt="BINARY")
    rec = read_comtrade(cfg)
    assert rec.analog[0].a == pytest.approx(100.0 / 32767)
    assert rec.analog[0].b == 0
    np.testing.assert_allclose(rec.analog_values[0], x[0], atol=100 / 32767 / 2)
    assert rec.analog_values[0, 2] == pytest.approx(-100.0)  # the clipped sample stays at FS


def test_data_range_leaves_headroom(tmp_path: Path) -> None:
    x = np.array([[1.0, 2.0, 3.0, 2.0]])
    cfg, _ = write_comtrade(tmp_path / "h.cfg", [ChannelInfo("v", Quantity.VOLTAGE)], x,
                            100.0, START_NS, fmt="BINARY")
    src = ReplaySource(read_comtrade(cfg), nominal_frequency_hz=50, block_duration_s=1)
    full_scale = src.capabilities.channels[0].full_scale
    assert full_scale is not None
    assert full_scale > 3.0


def test_constant_and_empty_channels(tmp_path: Path) -> None:
    x = np.array([[230.0] * 4, [0.0] * 4, [np.nan] * 4])
    chans = [ChannelInfo(f"c{k}", Quantity.VOLTAGE) for k in range(3)]
    for fmt in ("BINARY", "BINARY32", "FLOAT32", "ASCII"):
        cfg, _ = write_comtrade(tmp_path / f"k_{fmt}.cfg", chans, x, 1000.0, START_NS,
                                fmt=fmt)
        rec = read_comtrade(cfg)
        np.testing.assert_allclose(rec.analog_values[:2], x[:2], atol=1e-9)
        assert np.isnan(rec.analog_values[2]).all()


def test_binary_layout_matches_the_plain_recipe(tmp_path: Path) -> None:
    x = _signals(3200.0, 64)
    cfg, dat = write_comtrade(tmp_path / "r.cfg", CHANNELS, x, 3200.0, START_NS, fmt="BINARY",
                              revision=1999)
    text = cfg.read_text(encoding="utf-8").splitlines()
    assert text[0] == "GridGuard,gridguard,1999"
    assert text[1] == "3,3A,0D"
    fields = [line.split(",") for line in text[2:5]]
    assert [f[1:5] for f in fields] == [["v_a", "A", "", "V"], ["i_a", "A", "main", "A"],
                                        ["leak", "G", "main", "A"]]
    assert float(fields[2][7]) == pytest.approx(12.0)  # skew in µs
    a = np.array([float(f[5]) for f in fields])
    b = np.array([float(f[6]) for f in fields])
    dtype = np.dtype([("n", "<i4"), ("t", "<i4"), ("a", "<i2", (3,))])
    raw = np.fromfile(dat, dtype=dtype)
    np.testing.assert_array_equal(raw["n"], np.arange(1, 65))
    assert raw["a"][5, 1] == -32768  # missing
    values = raw["a"] * a + b
    ok = ~np.isnan(x.T)
    np.testing.assert_allclose(values[ok], x.T[ok], atol=float(a.max()) / 2 + 1e-12)
    # 312.5 µs per sample in 1999 µs units: timemult 0.5, stamps of 625 counts
    assert text[-1] == "0.5"
    np.testing.assert_array_equal(raw["t"], np.arange(64) * 625)


def test_long_record_keeps_timestamps_in_range(tmp_path: Path) -> None:
    fs = 3200.0
    n = 20_000  # 6.25 s: 312 500 ns per sample would overflow uint32 at ns resolution
    x = np.zeros((1, n))
    cfg, _ = write_comtrade(tmp_path / "long.cfg", [ChannelInfo("v", Quantity.VOLTAGE)], x, fs,
                            START_NS)
    rec = read_comtrade(cfg)
    assert rec.timemult > 1
    assert np.abs(rec.time_s - np.arange(n) / fs).max() < 1e-12


def test_replay_of_a_written_record_keeps_roles(tmp_path: Path) -> None:
    fs = 3200.0
    x = _signals(fs, 3200)
    cfg, _ = write_comtrade(tmp_path / "r.cfg", CHANNELS, x, fs, START_NS)
    src = ReplaySource.open(cfg, block_duration_s=0.1)
    got = [(c.id, c.quantity, c.phase, c.circuit) for c in src.capabilities.channels]
    assert got == [("v_a", Quantity.VOLTAGE, Phase.A, None),
                   ("i_a", Quantity.CURRENT, Phase.A, "main"),
                   ("leak", Quantity.RESIDUAL_CURRENT, Phase.G, "main")]
    assert src.capabilities.channels[1].full_scale == pytest.approx(100.0)
    assert src.capabilities.channels[2].skew_s == pytest.approx(12e-6)
    blocks = list(src.blocks())
    assert blocks[0].t0_ns == START_NS
    assert blocks[1].t0_ns == START_NS + NS_PER_S // 10
    joined = np.concatenate([b.samples for b in blocks], axis=1)
    np.testing.assert_allclose(joined, x, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fs_hz": 0.0}, "fs_hz: must be a positive rate"),
    ({"fmt": "HEX"}, "fmt: expected BINARY"),
    ({"fmt": "FLOAT32", "revision": 1999}, "needs revision 2013"),
    ({"samples": np.zeros((2, 5))}, r"samples: expected shape \(3, n\)"),
    ({"samples": np.zeros((3, 0))}, "at least one sample"),
    ({"cfg_path": Path("x.txt")}, "cfg_path: expected a .cfg"),
])
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "cfg_path": tmp_path / "bad.cfg", "channels": CHANNELS, "samples": np.zeros((3, 5)),
        "fs_hz": 1000.0, "start_ns": START_NS,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        write_comtrade(**args)  # type: ignore[arg-type]


def test_station_names_with_commas_are_cleaned(tmp_path: Path) -> None:
    cfg, _ = write_comtrade(tmp_path / "s.cfg", CHANNELS[:1], np.zeros((1, 3)), 1000.0, START_NS,
                            station="Site, North", device="pi\n5")
    rec = read_comtrade(cfg)
    assert (rec.station, rec.device) == ("Site North", "pi 5")
