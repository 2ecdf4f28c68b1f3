"""WAV reading: the real ENF recording, formats written by the stdlib, and sidecars."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from collector.model import Phase, Quantity
from collector.sources.errors import RecordingError
from collector.sources.replay import ReplaySource
from collector.sources.wav import read_wav

REPO = Path(__file__).resolve().parents[2]
ENF = REPO / "tests" / "data" / "enf_whu_mains_400hz"


def _wav_int(path: Path, counts: np.ndarray, width: int, rate: int = 8000) -> None:
    """Write integer PCM with the stdlib (an encoder independent of ours)."""
    frames = counts.T.reshape(-1)  # interleave channels
    if width == 1:
        data = (frames + 128).astype(np.uint8).tobytes()
    elif width == 3:
        little = frames.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        data = little.tobytes()
    else:
        data = frames.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(counts.shape[0])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def _wav_float(path: Path, values: np.ndarray, rate: int, extensible: bool = False) -> None:
    data = values.T.astype("<f4").tobytes()
    n_ch = values.shape[0]
    if extensible:
        guid_float = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, n_ch, rate, rate * 4 * n_ch, 4 * n_ch, 32,
                          22, 32, 0) + guid_float
    else:
        fmt = struct.pack("<HHIIHH", 3, n_ch, rate, rate * 4 * n_ch, 4 * n_ch, 32)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd chunk + pad byte
            + b"data" + struct.pack("<I", len(data)) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_enf_001_reference() -> None:
    rec = read_wav(ENF / "001_ref.wav")
    assert rec.fs_hz == 400
    assert rec.bits_per_sample == 16
    assert len(rec.channels) == 1
    assert rec.duration_s == pytest.approx(482, abs=1)  # README: 482 s
    assert not rec.calibrated
    assert any("UNCALIBRATED" in note for note in rec.notes)
    # README: peak about ±16 500 counts
    assert 15000 < np.abs(rec.values).max() <= 32768
    # values are the raw int16 counts, byte for byte
    raw = (ENF / "001_ref.wav").read_bytes()
    data_at = raw.index(b"data") + 8
    counts = np.frombuffer(raw[data_at:data_at + 2 * rec.n_samples], dtype="<i2")
    np.testing.assert_array_equal(rec.values[0], counts)


def test_enf_replay_keeps_8_samples_per_cycle() -> None:
    src = ReplaySource(read_wav(ENF / "001_ref.wav"))
    caps = src.capabilities
    assert caps.nominal_frequency_hz == 50  # measured: the mains line near 50 Hz
    assert caps.nominal_voltage_v is None
    assert caps.channels[0].quantity is Quantity.VOLTAGE
    assert caps.channels[0].resolution == 1.0
    assert caps.channels[0].full_scale == 32768.0
    blocks = list(src.blocks())
    assert blocks[0].n_samples == 80
    assert sum(b.n_samples for b in blocks) == src.recording.n_samples
    assert [b.contiguous for b in blocks].count(False) == 1
    assert src.skipped_segments == ()
    step = blocks[1].t0_ns - blocks[0].t0_ns
    assert step == 200_000_000


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_integer_widths(tmp_path: Path, width: int) -> None:
    bits = 8 * width
    top = 2 ** (bits - 1)
    counts = np.array([[-top, -1, 0, 1, top - 1], [5, -5, 7, -7, 0]])
    path = tmp_path / f"i{bits}.wav"
    _wav_int(path, counts, width)
    rec = read_wav(path)
    assert rec.bits_per_sample == bits
    assert rec.full_scale_counts == top
    np.testing.assert_array_equal(rec.values, counts)


@pytest.mark.parametrize("extensible", [False, True])
def test_float32(tmp_path: Path, extensible: bool) -> None:
    values = np.array([[0.5, -0.25, 1.5, -2.0]], dtype=np.float32)
    path = tmp_path / "f.wav"
    _wav_float(path, values, 4000, extensible)
    rec = read_wav(path)
    assert rec.sample_format == "float"
    assert rec.full_scale_counts is None
    np.testing.assert_array_equal(rec.values, values)
    src = ReplaySource(rec, nominal_frequency_hz=50)
    assert src.capabilities.channels[0].resolution is None
    assert src.capabilities.channels[0].full_scale is None


SIDECAR = """\
start_time: "2024-03-01T12:00:00.250Z"
nominal_frequency_hz: 60
nominal_voltage_v: 120
channels:
  - id: v_l1
    quantity: voltage
    phase: L1
    scale: 0.01
  - id: i_main
    quantity: current
    phase: A
    circuit: main
    scale: 0.001
    offset: -0.5
"""


def test_sidecar_scales_and_roles(tmp_path: Path) -> None:
    path = tmp_path / "panel.wav"
    counts = np.tile([[100, -200, 300], [1000, 0, -1000]], 100)  # 300 samples, 2.3 cycles
    _wav_int(path, counts, 2, rate=7680)
    (tmp_path / "panel.wav.yaml").write_text(SIDECAR)
    rec = read_wav(path)
    assert rec.calibrated
    np.testing.assert_allclose(rec.values, np.tile([[1.0, -2.0, 3.0], [0.5, -0.5, -1.5]], 100))
    assert rec.start_ns == 1709294400_250_000_000
    src = ReplaySource(rec)
    caps = src.capabilities
    assert (caps.nominal_frequency_hz, caps.nominal_voltage_v) == (60, 120)
    v, i = caps.channels
    assert (v.id, v.quantity, v.phase, v.circuit) == ("v_l1", Quantity.VOLTAGE, Phase.A, None)
    assert (i.id, i.quantity, i.circuit) == ("i_main", Quantity.CURRENT, "main")
    assert i.resolution == pytest.approx(0.001)
    assert i.full_scale == pytest.approx(32768 * 0.001 + 0.5)
    block = next(src.blocks())
    assert block.t0_ns == rec.start_ns
    np.testing.assert_allclose(block.samples, rec.values)


def test_sidecar_plain_yaml_name(tmp_path: Path) -> None:
    path = tmp_path / "panel.wav"
    _wav_int(path, np.array([[1, 2, 3], [4, 5, 6]]), 2)
    (tmp_path / "panel.yaml").write_text(SIDECAR)
    assert read_wav(path).sidecar == tmp_path / "panel.yaml"


@pytest.mark.parametrize(("text", "message"), [
    (SIDECAR.replace("scale: 0.01", "scale: lots"), "channels[0].scale: Input should be a valid"),
    (SIDECAR.replace("quantity: current", "quantity: power"), "channels[1].quantity"),
    (SIDECAR.replace("id: v_l1", "id: v l1"), "channels[0].id"),
    (SIDECAR.replace("nominal_voltage_v: 120", "nominal_voltage_v: -1"), "nominal_voltage_v"),
    (SIDECAR.replace("channels:", "chanels:"), "chanels: Extra inputs are not permitted"),
    ("channels: [\n  - id: x\n  quantity", "not valid YAML"),
])
def test_bad_sidecar(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "panel.wav"
    _wav_int(path, np.array([[1, 2, 3], [4, 5, 6]]), 2)
    (tmp_path / "panel.wav.yaml").write_text(text)
    with pytest.raises(RecordingError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        read_wav(path)
    assert e.value.path == tmp_path / "panel.wav.yaml"


def test_sidecar_channel_count_must_match(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    _wav_int(path, np.array([[1, 2, 3]]), 2)
    (tmp_path / "mono.wav.yaml").write_text(SIDECAR)
    with pytest.raises(RecordingError, match=r"describes 2 channels, mono\.wav has 1"):
        read_wav(path)


def test_truncated_data_chunk_is_read_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    _wav_int(path, np.arange(20).reshape(1, 20), 2)
    raw = path.read_bytes()
    path.write_bytes(raw[:-7])  # 16 whole samples and half of one remain
    rec = read_wav(path)
    np.testing.assert_array_equal(rec.values[0], np.arange(16))
    assert any("declares 40 bytes" in n for n in rec.notes)
