"""COMTRADE variants built by hand from the standard's field layout (C37.111-1999/2013)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collector.sources.comtrade import FileType, TimeSource, read_comtrade
from collector.sources.errors import RecordingError

CFG_1999_BINARY = """\
ST,DEV,1999
2,2A,0D
1,Va,A,bay1,V,0.5,1.0,2.5,-32767,32767,100,1,S
2,Ia,A,bay1,A,0.25,0,0,-32768,32767,400,5,S
50
1
1000,5
24/12/2023,23:59:59.999000
25/12/2023,00:00:00.000500
BINARY
1
"""


def _binary_records(
    analog: np.ndarray, stamps: np.ndarray, analog_type: str = "<i2",
    words: np.ndarray | None = None,
) -> bytes:
    n, n_a = analog.shape
    fields = [("n", "<u4"), ("t", "<u4"), ("a", analog_type, (n_a,))]
    if words is not None:
        fields.append(("d", "<u2", (words.shape[1],)))
    rec = np.zeros(n, dtype=np.dtype(fields))
    rec["n"] = np.arange(1, n + 1)
    rec["t"] = stamps
    rec["a"] = analog
    if words is not None:
        rec["d"] = words
    return rec.tobytes()


def test_binary_scaling_missing_codes_skew_and_midnight(tmp_path: Path) -> None:
    raw = np.array([[10, 4], [-32768, -32768], [32767, 8], [0, 0], [-2, -1]])
    (tmp_path / "r.cfg").write_text(CFG_1999_BINARY)
    (tmp_path / "r.dat").write_bytes(_binary_records(raw, np.arange(5) * 1000))
    rec = read_comtrade(tmp_path / "r.cfg")
    va, ia = rec.analog_values
    # Va: min -32767, so -32768 is the missing code; Ia declares -32768 as data
    np.testing.assert_array_equal(va, [6.0, np.nan, 32767 * 0.5 + 1, 1.0, 0.0])
    np.testing.assert_array_equal(ia, [1.0, -8192.0, 2.0, 0.0, -0.25])
    assert rec.analog[0].skew_s == pytest.approx(2.5e-6)
    assert rec.start_ns is not None
    assert rec.trigger_ns is not None
    assert rec.trigger_ns - rec.start_ns == 1_500_000  # across midnight and the year end
    np.testing.assert_allclose(rec.time_s, [0, 1e-3, 2e-3, 3e-3, 4e-3])
    np.testing.assert_allclose(rec.primary_values()[0], va * 100)
    np.testing.assert_allclose(rec.primary_values()[1], ia * 80)


def test_digital_words_bit_order(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("2,2A,0D", "20,2A,18D").replace(
        "50\n", "".join(f"{k},d{k},,,0\n" for k in range(1, 19)) + "50\n", 1)
    words = np.array([[0b1000_0000_0000_0001, 0b10], [0, 0b01], [0xFFFF, 0], [2, 0], [0, 0]])
    (tmp_path / "r.cfg").write_text(cfg)
    (tmp_path / "r.dat").write_bytes(
        _binary_records(np.zeros((5, 2), int), np.arange(5) * 1000, words=words))
    rec = read_comtrade(tmp_path / "r.cfg")
    bits = np.array([d.data for d in rec.digital])
    np.testing.assert_array_equal(bits[0], [1, 0, 1, 0, 0])  # word 0 bit 0
    np.testing.assert_array_equal(bits[1], [0, 0, 1, 1, 0])  # word 0 bit 1
    np.testing.assert_array_equal(bits[15], [1, 0, 1, 0, 0])  # word 0 bit 15
    np.testing.assert_array_equal(bits[16], [0, 1, 0, 0, 0])  # word 1 bit 0
    np.testing.assert_array_equal(bits[17], [1, 0, 0, 0, 0])  # word 1 bit 1


@pytest.mark.parametrize(("file_type", "dtype", "missing"), [
    ("BINARY32", "<i4", -(2**31)), ("FLOAT32", "<f4", np.nan)])
def test_2013_wide_formats(tmp_path: Path, file_type: str, dtype: str, missing: float) -> None:
    cfg = (CFG_1999_BINARY.replace("1999", "2013").replace("BINARY", file_type)
           .replace("-32767,32767", "-2147483647,2147483647")
           + "0,0\n0,0\n")
    raw = np.array([[100000, 3], [missing, 1], [-7, 2], [0, 0], [5, 5]])
    (tmp_path / "r.cfg").write_text(cfg)
    (tmp_path / "r.dat").write_bytes(_binary_records(raw, np.arange(5) * 1000, dtype))
    rec = read_comtrade(tmp_path / "r.cfg")
    assert rec.file_type is FileType(file_type)
    np.testing.assert_array_equal(rec.analog_values[0], [50001.0, np.nan, -2.5, 1.0, 3.5])


def test_missing_timestamps_fall_back_to_the_rate_table(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("1\n1000,5\n", "2\n1000,3\n500,5\n")
    (tmp_path / "r.cfg").write_text(cfg)
    stamps = np.full(5, 0xFFFFFFFF)
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), stamps))
    rec = read_comtrade(tmp_path / "r.cfg")
    assert rec.time_source is TimeSource.RATE_TABLE
    # samples 1..3 at 1000 Hz, 4..5 at 500 Hz: the interval after a sample has its rate
    np.testing.assert_allclose(rec.time_s, [0, 1e-3, 2e-3, 3e-3, 5e-3])
    assert any("0xFFFFFFFF" in note for note in rec.notes)


def test_all_zero_timestamps_fall_back(tmp_path: Path) -> None:
    (tmp_path / "r.cfg").write_text(CFG_1999_BINARY)
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), np.zeros(5)))
    rec = read_comtrade(tmp_path / "r.cfg")
    assert rec.time_source is TimeSource.RATE_TABLE
    np.testing.assert_allclose(rec.time_s, np.arange(5) / 1000)


def test_no_rate_and_no_timestamps_is_an_error(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("1\n1000,5\n", "0\n0,5\n")
    (tmp_path / "r.cfg").write_text(cfg)
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), np.zeros(5)))
    with pytest.raises(RecordingError, match="no usable time axis: timestamps are all zero"):
        read_comtrade(tmp_path / "r.cfg")


def test_nrates_zero_uses_timestamps_times_timemult(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("1\n1000,5\n", "0\n0,5\n").replace("BINARY\n1\n",
                                                                      "BINARY\n2.5\n")
    (tmp_path / "r.cfg").write_text(cfg)
    stamps = np.array([0, 100, 200, 400, 500])
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), stamps))
    rec = read_comtrade(tmp_path / "r.cfg")
    assert rec.rates == ()
    assert rec.timemult == 2.5
    np.testing.assert_allclose(rec.time_s, stamps * 2.5e-6)


def test_2013_nanosecond_stamps_and_time_code(tmp_path: Path) -> None:
    cfg = (CFG_1999_BINARY.replace("1999", "2013")
           .replace("24/12/2023,23:59:59.999000", "01/07/2024,08:00:00.000000250")
           .replace("25/12/2023,00:00:00.000500", "01/07/2024,08:00:00.001000250")
           + "+8,+8\n0,0\n")
    (tmp_path / "r.cfg").write_text(cfg)
    stamps = np.array([0, 1000, 2000, 3000, 4000])  # ns, because the cfg stamps have ns
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), stamps))
    rec = read_comtrade(tmp_path / "r.cfg")
    np.testing.assert_allclose(rec.time_s, stamps * 1e-9)
    # 08:00 at UTC+8 is 00:00 UTC; 2024-07-01T00:00:00Z = 1719792000 s
    assert rec.start_ns == 1_719_792_000 * 10**9 + 250
    assert rec.trigger_ns == rec.start_ns + 1_000_000
    assert rec.time_code == "+8"


def test_ascii_missing_values(tmp_path: Path) -> None:
    cfg = (CFG_1999_BINARY.replace("BINARY", "ASCII").replace("-32767,32767", "-99999,99998")
           .replace("-32768,32767", "-999999,999999"))
    (tmp_path / "r.cfg").write_text(cfg)
    (tmp_path / "r.dat").write_text(
        "1,0,2,4\n2,1000,,4\n3,2000,99999,99999\n4,,2,4\n5,4000,2,4\n")
    rec = read_comtrade(tmp_path / "r.cfg")
    # blank is missing; 99999 only where the declared range (max 99998) excludes it
    np.testing.assert_array_equal(rec.analog_values[0], [2, np.nan, np.nan, 2, 2])
    np.testing.assert_array_equal(rec.analog_values[1], [1, 1, 99999 * 0.25, 1, 1])
    # a blank timestamp: the time axis comes from the rate table
    assert rec.time_source is TimeSource.RATE_TABLE


def test_1991_ten_field_channels_and_two_digit_year(tmp_path: Path) -> None:
    cfg = """\
OLD STATION,OLD DEV
2,1A,1D
1,IA,A,,A,0.01,0,0,-32767,32767
1,52A,0
60
1
960,3
12/31/99,23:59:59.5
12/31/99,23:59:59.501
ASCII
"""
    (tmp_path / "old.cfg").write_text(cfg)
    (tmp_path / "old.dat").write_text("1,0,100,0\n2,1042,200,1\n3,2083,300,1\n")
    rec = read_comtrade(tmp_path / "old.cfg")
    assert rec.revision == 1991
    assert rec.start_time is not None
    assert rec.start_time.isoformat() == "1999-12-31T23:59:59.500000"
    assert rec.timemult == 1.0
    assert rec.analog[0].ps == ""
    np.testing.assert_allclose(rec.analog_values[0], [1, 2, 3])


def test_day_month_swapped_is_read_and_noted(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("24/12/2023", "12/24/2023")
    (tmp_path / "r.cfg").write_text(cfg)
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), np.arange(5) * 1000))
    rec = read_comtrade(tmp_path / "r.cfg")
    assert rec.start_time is not None
    assert rec.start_time.date().isoformat() == "2023-12-24"
    assert any("swapped" in note for note in rec.notes)


@pytest.mark.parametrize(("encoding", "expected"), [
    ("utf-8", "utf-8"), ("gbk", "gbk"), ("latin-1", "latin-1")])
def test_cfg_encodings(tmp_path: Path, encoding: str, expected: str) -> None:
    name = {"utf-8": "Spannung Ü", "gbk": "电压Ua", "latin-1": "Tensão"}[encoding]
    if encoding == "latin-1":
        # "ão" is not valid GBK (0xE3 0x6F is a GBK pair, so end the name on 0xE3)
        name = "Tensã"
    cfg = CFG_1999_BINARY.replace("1,Va,", f"1,{name},")
    (tmp_path / "r.cfg").write_bytes(cfg.encode(encoding))
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), np.arange(5) * 1000))
    rec = read_comtrade(tmp_path / "r.cfg")
    assert rec.encoding == expected
    assert rec.analog[0].name == name


def test_forced_encoding(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("1,Va,", "1,Tensão,")
    (tmp_path / "r.cfg").write_bytes(cfg.encode("latin-1"))
    (tmp_path / "r.dat").write_bytes(_binary_records(np.zeros((5, 2), int), np.arange(5) * 1000))
    rec = read_comtrade(tmp_path / "r.cfg", encoding="latin-1")
    assert rec.analog[0].name == "Tensão"


def _cff(cfg: str, dat_kind: str, dat: bytes) -> bytes:
    head = (f"--- file type: CFG ---\r\n{cfg.replace(chr(10), chr(13) + chr(10))}"
            "--- file type: INF ---\r\n--- file type: HDR ---\r\nfree text\r\n")
    size = f": {len(dat)}" if dat_kind != "ASCII" else ""
    return (head + f"--- file type: DAT {dat_kind}{size} ---\r\n").encode() + dat


def test_cff_binary_equals_cfg_dat(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("1999", "2013") + "0,0\n0,0\n"
    raw = np.array([[10, 4], [20, 8], [30, 12], [40, 16], [50, 20]])
    dat = _binary_records(raw, np.arange(5) * 1000)
    (tmp_path / "r.cfg").write_text(cfg)
    (tmp_path / "r.dat").write_bytes(dat)
    (tmp_path / "r.cff").write_bytes(_cff(cfg, "BINARY", dat))
    pair = read_comtrade(tmp_path / "r.cfg")
    single = read_comtrade(tmp_path / "r.cff")
    np.testing.assert_array_equal(single.analog_values, pair.analog_values)
    np.testing.assert_array_equal(single.time_s, pair.time_s)
    assert single.start_ns == pair.start_ns


def test_cff_ascii_error_lines_count_from_the_cff(tmp_path: Path) -> None:
    cfg = CFG_1999_BINARY.replace("BINARY", "ASCII")
    dat = b"1,0,1,1\n2,1000,1,1\n3,2000,x,1\n4,3000,1,1\n5,4000,1,1\n"
    (tmp_path / "r.cff").write_bytes(_cff(cfg, "ASCII", dat))
    with pytest.raises(RecordingError) as info:
        read_comtrade(tmp_path / "r.cff")
    # 1 marker + 11 cfg lines + INF marker + HDR marker + 1 HDR line + DAT marker = 16
    assert info.value.line == 16 + 3
    assert info.value.path == tmp_path / "r.cff"
