"""MCP3008 source against an emulated chip on SPI, measured by the real metrics engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.config import GridGuardConfig, parse_config
from collector.metrics_engine import MetricsEngine, circuits_from_capabilities
from collector.sources.hardware.mcp3008 import Mcp3008Source, command_bytes, decode_reply
from tests.hardware.ads1115_emulator import constant, sine
from tests.hardware.emulated import EmulatedHardware
from tests.hardware.fields import nums
from tests.hardware.mcp3008_emulator import Mcp3008Emulator


def test_command_and_reply_bytes_follow_the_datasheet() -> None:
    # DS21295 Figure 6-1: start bit in byte 0, SGL/DIFF D2 D1 D0 in the high nibble of
    # byte 1; B9..B8 in the low bits of reply byte 1, B7..B0 in reply byte 2
    assert command_bytes(3, None) == (0x01, 0xB0, 0x00)
    assert command_bytes(None, (0, 1)) == (0x01, 0x00, 0x00)
    assert command_bytes(None, (5, 4)) == (0x01, 0x50, 0x00)
    assert decode_reply([0x00, 0x03, 0xFF]) == 1023
    assert decode_reply([0xFF, 0xFE, 0x01]) == 0x201
    with pytest.raises(ValueError, match="pairs CH0/CH1"):
        command_bytes(None, (1, 2))


def _config(rate_hz: float, model: str = "mcp3008") -> GridGuardConfig:
    return parse_config({
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "mcp3008", "mcp3008": {"model": model, "vref_v": 3.3,
                                                  "sample_rate_hz": rate_hz}},
        "channels": {
            "voltage": [{"id": "v_a", "phase": "A", "adc": {"channel": 0},
                         "sensor": {"type": "zmpt101b", "ratio": 325.0, "zero_v": 1.65}}],
            "current": [{"id": "i_k", "phase": "A", "adc": {"channel": 3},
                         "sensor": {"type": "sct013", "variant": "030", "zero_v": 1.65}}],
        },
        "circuits": [{"id": "k", "phases": ["A"], "current_channels": ["i_k"],
                      "breaker_rating_a": 16}],
    })


@pytest.mark.parametrize("model", ["mcp3008", "mcp3208"])
def test_blocks_measure_right_through_the_metrics_engine(model: str) -> None:
    f = 50.0
    # 230 V with 3 % third harmonic; 10 A lagging 30° with 20 % third harmonic
    v_pin = sine(1.65, 230 / 325, f, 0.0, {3: (0.03 * 230 / 325, 0.0)})
    i_pin = sine(1.65, 10 / 30, f, -math.radians(30), {3: (2 / 30, 0.0)})
    chip = Mcp3008Emulator({0: v_pin, 3: i_pin}, model=model, vref_v=3.3)
    env = EmulatedHardware(mcp3008=chip)
    src = Mcp3008Source(_config(8000.0, model), hardware=env, duration_s=2.0)
    caps = src.capabilities
    assert caps.waveform is True
    assert [c.rate_hz for c in caps.channels] == [4000.0, 4000.0]
    assert caps.channels[1].skew_s == pytest.approx(1 / 8000)
    engine = MetricsEngine(caps, circuits_from_capabilities(caps), aggregations=("basic",))
    out = []
    for block in src.blocks():
        out += engine.process(block)
    src.close()
    assert chip.closed
    v = [nums(m.fields) for m in out if m.channel == "v_a"][2:]
    k = [nums(m.fields) for m in out if m.channel == "k"][2:]
    assert len(v) >= 5
    v_true = 230 * math.hypot(1, 0.03)
    i_true = math.hypot(10, 2)
    p_true = 230 * 10 * math.cos(math.radians(30)) + 0.03 * 230 * 2 * math.cos(
        math.radians(90))  # the 3rd harmonic of I lags 3·30° behind its voltage
    # 10 bits: one step is 3.2 mV at the pin, 1.05 V / 0.1 A here (12 bits: a quarter)
    for fields in v:
        assert fields["voltage_rms_v"] == pytest.approx(v_true, rel=0.005)
        # 80 samples per cycle: harmonics to the 32nd; the 3rd group holds the 3 %
        assert fields["harmonics_max_order"] >= 19
        assert fields["voltage_h3_v"] == pytest.approx(0.03 * 230, abs=0.5)
    for fields in k:
        assert fields["current_rms_a"] == pytest.approx(i_true, rel=0.01)
        assert fields["power_active_w"] == pytest.approx(p_true, rel=0.01)
    assert src.late_conversions == 0
    assert chip.transfers == 2 * 8000  # one transfer per conversion, 2 s at 8 kS/s


def test_a_host_too_slow_for_the_rate_gives_gaps_not_shifted_samples() -> None:
    chip = Mcp3008Emulator({0: sine(1.65, 0.7, 50.0), 3: constant(1.65)}, vref_v=3.3,
                           host_overhead_s=150e-6)  # slower than 1/8000 s per transfer
    env = EmulatedHardware(mcp3008=chip)
    src = Mcp3008Source(_config(8000.0), hardware=env, duration_s=0.5)
    blocks = list(src.blocks())
    nan = sum(int(np.isnan(b.samples).sum()) for b in blocks)
    assert src.late_conversions == nan > 0
    done = sum(int(np.isfinite(b.samples).sum()) for b in blocks)
    assert done == chip.transfers  # every made conversion is in its own slot


def test_rails_read_as_full_scale_so_clipping_is_seen() -> None:
    chip = Mcp3008Emulator({0: sine(1.65, 2.0, 50.0), 3: constant(1.65)}, vref_v=3.3)
    env = EmulatedHardware(mcp3008=chip)
    src = Mcp3008Source(_config(4000.0), hardware=env, duration_s=0.2)
    samples = src.acquire(0.2)
    v = samples.channel("v_a")
    assert v.clipped.any()
    fs = src.capabilities.channels[0].full_scale
    assert fs is not None
    assert np.nanmax(np.abs(v.values)) == pytest.approx(fs)


def test_block_size_does_not_change_the_samples() -> None:
    def run(block_s: float) -> np.ndarray:
        chip = Mcp3008Emulator({0: sine(1.65, 0.7, 50.0, 0.2), 3: sine(1.65, 0.3, 50.0)},
                               vref_v=3.3)
        src = Mcp3008Source(_config(4000.0), hardware=EmulatedHardware(mcp3008=chip),
                            block_duration_s=block_s, duration_s=0.4)
        blocks = list(src.blocks())
        assert all(b.fs_hz == 2000.0 for b in blocks)
        assert blocks[0].t0_ns + round(0.4 * 1e9) == pytest.approx(
            blocks[-1].t0_ns + round(blocks[-1].n_samples / 2000.0 * 1e9), abs=1)
        return np.concatenate([b.samples for b in blocks], axis=1)

    whole, chunked = run(0.4), run(0.025)
    assert whole.shape == (2, 800)
    np.testing.assert_array_equal(whole, chunked)
