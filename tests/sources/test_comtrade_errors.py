"""Malformed recordings raise RecordingError naming the file and the line or record."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from collector.sources.comtrade import read_comtrade
from collector.sources.errors import RecordingError
from collector.sources.replay import open_recording
from collector.sources.wav import read_wav

REPO = Path(__file__).resolve().parents[2]
CN = REPO / "tests" / "data" / "cn_220kv_dfr_comtrade"

GOOD_CFG = """\
TESTSTATION,DEV1,1999
3,2A,1D
1,Va,A,feeder,V,0.1,0,0,-32767,32767,1,1,P
2,Ia,A,feeder,A,0.01,0,0,-32767,32767,1,1,P
1,trip,,feeder,0
50
1
1000,4
01/02/2024,10:00:00.000000
01/02/2024,10:00:00.001000
ASCII
1
"""
GOOD_DAT = "1,0,100,10,0\n2,1000,200,20,0\n3,2000,300,30,1\n4,3000,400,40,1\n"


def _write(tmp: Path, cfg: str, dat: str | bytes | None = GOOD_DAT, name: str = "rec") -> Path:
    cfg_path = tmp / f"{name}.cfg"
    cfg_path.write_text(cfg, encoding="utf-8")
    if isinstance(dat, str):
        (tmp / f"{name}.dat").write_text(dat, encoding="ascii")
    elif isinstance(dat, bytes):
        (tmp / f"{name}.dat").write_bytes(dat)
    return cfg_path


def _error(path: Path) -> RecordingError:
    with pytest.raises(RecordingError) as info:
        read_comtrade(path)
    return info.value


def test_good_fixture_reads(tmp_path: Path) -> None:
    rec = read_comtrade(_write(tmp_path, GOOD_CFG))
    np.testing.assert_allclose(rec.analog_values, [[10, 20, 30, 40], [0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_array_equal(rec.digital[0].data, [0, 0, 1, 1])


def test_message_format_and_pickling(tmp_path: Path) -> None:
    cfg = _write(tmp_path, GOOD_CFG.replace("2,Ia,A,feeder,A,0.01,0,0,-32767,32767,1,1,P",
                                            "2,Ia,A,feeder,A,0.01,0,0,-32767"))
    err = _error(cfg)
    assert str(err) == f"{cfg}:4: analog channel 2: expected 13 comma-separated fields, got 9"
    assert (err.path, err.line) == (cfg, 4)
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err)


def test_garbage_cfg(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    cfg = tmp_path / "junk.cfg"
    cfg.write_bytes(rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
    (tmp_path / "junk.dat").write_bytes(b"\x00" * 64)
    err = _error(cfg)
    assert str(err).startswith(f"{cfg}:")
    assert err.line is not None


def test_text_that_is_not_a_cfg(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "hello world\n")
    err = _error(cfg)
    assert "unexpected end of file" in str(err)
    assert err.line == 2


def test_empty_cfg(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "")
    err = _error(cfg)
    assert str(err) == f"{cfg}: empty file: expected a COMTRADE configuration"


def test_empty_dat(tmp_path: Path) -> None:
    cfg = _write(tmp_path, GOOD_CFG, dat="")
    err = _error(cfg)
    assert str(err) == f"{tmp_path / 'rec.dat'}: empty data file"


def test_missing_dat(tmp_path: Path) -> None:
    cfg = _write(tmp_path, GOOD_CFG, dat=None)
    err = _error(cfg)
    assert err.path == tmp_path / "rec.dat"
    assert "data file not found" in str(err)
    assert "rec.cfg" in str(err)


def test_channel_count_total_mismatch(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, GOOD_CFG.replace("3,2A,1D", "4,2A,1D")))
    assert err.line == 2
    assert "TT=4 but 2A + 1D = 3" in str(err)


def test_fewer_channel_lines_than_declared(tmp_path: Path) -> None:
    # 3 analog channels declared, 2 listed: the digital line is read as analog 3
    cfg = GOOD_CFG.replace("3,2A,1D", "4,3A,1D")
    err = _error(_write(tmp_path, cfg))
    assert err.line == 5
    assert "analog channel 3: expected 13 comma-separated fields, got 5" in str(err)


def test_non_numeric_field(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, GOOD_CFG.replace("V,0.1,0,", "V,zero.1,0,")))
    assert str(err).endswith(
        "rec.cfg:3: analog channel 1: multiplier a: expected a number, got 'zero.1'")


def test_bad_revision_year(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, GOOD_CFG.replace(",1999", ",1899")))
    assert err.line == 1
    assert "rev_year" in str(err)


def test_bad_date(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, GOOD_CFG.replace("01/02/2024,10:00:00.000000",
                                                   "31/02/2024,10:00:00.000000")))
    assert err.line == 9
    assert "no such date" in str(err)


def test_unknown_file_type_in_cfg(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, GOOD_CFG.replace("ASCII", "EBCDIC")))
    assert err.line == 11
    assert "file type" in str(err)


def test_ascii_dat_wrong_field_count(tmp_path: Path) -> None:
    dat = GOOD_DAT.replace("3,2000,300,30,1", "3,2000,300,1")
    err = _error(_write(tmp_path, GOOD_CFG, dat=dat))
    assert err.path == tmp_path / "rec.dat"
    assert err.line == 3
    assert "expected 5 comma-separated fields" in str(err)


def test_ascii_dat_non_numeric(tmp_path: Path) -> None:
    dat = GOOD_DAT.replace("4,3000,400,40,1", "4,3000,4x0,40,1")
    err = _error(_write(tmp_path, GOOD_CFG, dat=dat))
    assert (err.line, err.path.name) == (4, "rec.dat")
    assert "analog channel 1: expected a number, got '4x0'" in str(err)


def test_ascii_dat_shorter_than_endsamp(tmp_path: Path) -> None:
    dat = "\n".join(GOOD_DAT.splitlines()[:3]) + "\n"
    err = _error(_write(tmp_path, GOOD_CFG, dat=dat))
    assert "truncated: 3 samples, the cfg declares 4" in str(err)


def test_binary_dat_truncated_mid_record(tmp_path: Path) -> None:
    shutil.copy(CN / "xtz.cfg", tmp_path / "xtz.cfg")
    raw = (CN / "xtz.dat").read_bytes()
    (tmp_path / "xtz.dat").write_bytes(raw[: 116 * 1000 + 40])
    err = _error(tmp_path / "xtz.cfg")
    assert err.path == tmp_path / "xtz.dat"
    assert err.line == 1001  # the first incomplete record
    assert "truncated: 1000 whole records and 40 bytes" in str(err)
    assert "declares 3077 samples" in str(err)
    assert "116 bytes" in str(err)


def test_binary_dat_shorter_than_endsamp(tmp_path: Path) -> None:
    shutil.copy(CN / "xtz.cfg", tmp_path / "xtz.cfg")
    raw = (CN / "xtz.dat").read_bytes()
    (tmp_path / "xtz.dat").write_bytes(raw[: 116 * 3000])
    err = _error(tmp_path / "xtz.cfg")
    assert err.line == 3001
    assert "3000 whole records" in str(err)


def test_wrong_channel_count_against_binary_dat(tmp_path: Path) -> None:
    # a cfg claiming one analog channel fewer than the dat holds: record size mismatch
    lines = (CN / "xtz.cfg").read_bytes().splitlines()
    lines[1] = b"143,47A,96D"
    del lines[2 + 47]
    (tmp_path / "xtz.cfg").write_bytes(b"\n".join(lines))
    shutil.copy(CN / "xtz.dat", tmp_path / "xtz.dat")
    err = _error(tmp_path / "xtz.cfg")
    assert err.path == tmp_path / "xtz.dat"
    assert err.line == 2
    assert "records are not 114 bytes" in str(err)
    assert "do not match this data file" in str(err)


def test_open_recording_unknown_type(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(RecordingError, match=r"notes\.txt: unknown file type '\.txt'"):
        open_recording(path)


def test_open_recording_dat_without_cfg(tmp_path: Path) -> None:
    path = tmp_path / "lonely.dat"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(RecordingError, match="configuration file not found"):
        open_recording(path)


def test_cff_without_cfg_section(tmp_path: Path) -> None:
    path = tmp_path / "x.cff"
    path.write_text("--- file type: DAT ASCII ---\n1,0,1\n")
    with pytest.raises(RecordingError, match="no '--- file type: CFG ---' section"):
        read_comtrade(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"RIFX\x00\x00\x00\x00WAVE", "not a RIFF/WAVE file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "fmt chunk is 2 bytes"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
    ],
)
def test_bad_wav(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message) as info:
        read_wav(path)
    assert info.value.path == path


@pytest.mark.parametrize("stem", ["xtz", "D51_RCD_2346_20150917_105253_065_F"])
def test_mutated_records_raise_only_recording_errors(tmp_path: Path, stem: str) -> None:
    """Random byte edits of real records: either a record or a RecordingError, nothing else."""
    rng = np.random.default_rng(7)
    cfg0 = (CN / f"{stem}.cfg").read_bytes()
    dat0 = (CN / f"{stem}.dat").read_bytes()
    outcomes = {"read": 0, "error": 0}
    named: list[bool] = []
    for _ in range(60):
        cfg, dat = bytearray(cfg0), bytearray(dat0)
        target = cfg if rng.random() < 0.7 else dat
        for _ in range(int(rng.integers(1, 6))):
            k = int(rng.integers(0, len(target)))
            op = int(rng.integers(0, 3))
            if op == 0:
                target[k] = int(rng.integers(0, 256))
            elif op == 1:
                del target[k:k + int(rng.integers(1, 50))]
            else:
                junk = rng.integers(0, 256, int(rng.integers(1, 5)), dtype=np.uint8)
                target[k:k] = junk.tobytes()
        (tmp_path / "m.cfg").write_bytes(bytes(cfg))
        (tmp_path / "m.dat").write_bytes(bytes(dat))
        try:
            read_comtrade(tmp_path / "m.cfg")
        except RecordingError as exc:
            named.append(str(exc).startswith(str(tmp_path / "m.")))
            outcomes["error"] += 1
        else:
            outcomes["read"] += 1
    assert outcomes["error"] > 0
    assert all(named)
