"""MCP3208 (12-bit) through the mcp3008 source against the bit-serial chip emulator.

Ground truth comes from outside the source: the command and reply bytes of
Microchip DS21298 Figure 6-1, the transfer function code = floor(4096·Vin/Vref)
(DS21298 §4), the emulator's record of the voltage it converted, and the error of a
uniform quantiser (RMS LSB/√12).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from collector.config import ConfigError, GridGuardConfig, parse_config
from collector.config.source import Mcp3x08Model
from collector.sources.hardware.mcp3008 import Mcp3008Source, command_bytes, decode_reply
from tests.hardware.ads1115_emulator import Waveform, constant, sine
from tests.hardware.emulated import EmulatedHardware, environment_from_scenario
from tests.hardware.mcp3008_emulator import Mcp3008Emulator

M3208 = Mcp3x08Model.MCP3208
VREF_V = 3.3
LSB12_V = VREF_V / 4096
BIAS_V = 1.65


def _config_data(model: str | None, rate_hz: float = 8000.0) -> dict[str, Any]:
    # direct sensors with scale 1: the physical value is the pin voltage minus the bias
    direct = {"type": "direct", "scale": 1.0, "zero_v": BIAS_V}
    section: dict[str, Any] = {"vref_v": VREF_V, "sample_rate_hz": rate_hz}
    if model is not None:
        section["model"] = model
    return {
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "mcp3008", "mcp3008": section},
        "channels": {
            "voltage": [{"id": "v_a", "phase": "A", "adc": {"channel": 0}, "sensor": direct}],
            "current": [{"id": "i_k", "phase": "A", "adc": {"channel": 5}, "sensor": direct}],
        },
        "circuits": [{"id": "k", "phases": ["A"], "current_channels": ["i_k"],
                      "breaker_rating_a": 16}],
    }


def _config(model: str, rate_hz: float = 8000.0) -> GridGuardConfig:
    return parse_config(_config_data(model, rate_hz))


def test_command_and_reply_bytes_follow_the_mcp3208_datasheet() -> None:
    # DS21298 Figure 6-1: byte 0 = 0 0 0 0 0 start SGL/DIFF D2, byte 1 = D1 D0 x x x x x x;
    # reply byte 1 = ? ? ? 0 B11 B10 B9 B8, reply byte 2 = B7..B0
    assert command_bytes(0, None, M3208) == (0b0000_0110, 0b0000_0000, 0x00)
    assert command_bytes(5, None, M3208) == (0b0000_0111, 0b0100_0000, 0x00)
    assert command_bytes(7, None, M3208) == (0b0000_0111, 0b1100_0000, 0x00)
    assert command_bytes(None, (0, 1), M3208) == (0b0000_0100, 0x00, 0x00)
    assert command_bytes(None, (6, 7), M3208) == (0b0000_0101, 0b1000_0000, 0x00)
    assert decode_reply([0xFF, 0b1110_1010, 0xBC], M3208) == 0xABC
    assert decode_reply([0xFF, 0b1110_1111, 0xFF], M3208) == 4095
    with pytest.raises(ValueError, match="MCP3208 pairs CH0/CH1"):
        command_bytes(None, (2, 1), M3208)


def _levels() -> dict[int, int]:
    # channel -> code; the pin sits mid-step, (code + 1/2)·Vref/4096
    return {0: 0, 1: 1, 2: 1000, 3: 2047, 4: 2048, 5: 3001, 6: 4094, 7: 4095}


def _dc_chip(model: str) -> Mcp3008Emulator:
    waves: dict[int, Waveform] = {
        ch: constant((code + 0.5) * LSB12_V) for ch, code in _levels().items()}
    return Mcp3008Emulator(waves, model=model, vref_v=VREF_V)


def _read(chip: Mcp3008Emulator, model: Mcp3x08Model, ch: int) -> int:
    return decode_reply(chip.xfer2(list(command_bytes(ch, None, model))), model)


def test_dc_levels_decode_to_their_12_bit_codes() -> None:
    chip = _dc_chip("mcp3208")
    assert {ch: _read(chip, M3208, ch) for ch in range(8)} == _levels()
    # pseudo-differential CH3-CH2: one step above zero... and IN+ below IN- reads 0
    assert decode_reply(chip.xfer2(list(command_bytes(None, (3, 2), M3208))), M3208) == 1047
    assert decode_reply(chip.xfer2(list(command_bytes(None, (2, 3), M3208))), M3208) == 0


def test_a_wrong_model_does_not_read_the_levels() -> None:
    right = _levels()
    # MCP3008 bytes to an MCP3208: its result starts two clocks late and is cut off
    got = {ch: _read(_dc_chip("mcp3208"), Mcp3x08Model.MCP3008, ch) for ch in range(8)}
    assert sum(got[ch] != right[ch] for ch in range(8)) >= 6, got
    # MCP3208 bytes to an MCP3008: its 10 bits land in B11..B2, so only the 10-bit
    # truncation of each level comes back (DS21295 code = floor(1024·Vin/Vref))
    got = {ch: _read(_dc_chip("mcp3008"), M3208, ch) for ch in range(8)}
    assert got == {ch: 4 * (code // 4) for ch, code in right.items()}
    assert got != right


def test_source_reads_dc_levels_to_the_code_through_the_capability_model() -> None:
    levels = {0: 1000, 5: 3001}
    chip = Mcp3008Emulator(
        {ch: constant((c + 0.5) * LSB12_V) for ch, c in levels.items()},
        model="mcp3208", vref_v=VREF_V)
    src = Mcp3008Source(_config("mcp3208"), hardware=EmulatedHardware(mcp3008=chip))
    assert chip.max_speed_hz == 1_000_000  # DS21298 §1: fCLK 1 MHz at VDD = 2.7 V
    for info in src.capabilities.channels:
        assert info.resolution == pytest.approx(VREF_V / 4096, rel=1e-12)
        assert info.full_scale == pytest.approx(BIAS_V, rel=1e-12)
    samples = src.acquire(0.1, calibrated=False)
    src.close()
    for ch_id, ch in (("v_a", 0), ("i_k", 5)):
        codes = (samples.channel(ch_id).values + BIAS_V) / LSB12_V
        assert codes.size == 400
        np.testing.assert_allclose(codes, levels[ch], atol=1e-9)


def _sine_run(model: str) -> tuple[Mcp3008Source, Mcp3008Emulator, Any]:
    # 1 V RMS on the bias, 50 Hz, 4 kS/s per channel for 1 s: exactly 50 cycles
    chip = Mcp3008Emulator({0: sine(BIAS_V, 1.0, 50.0, 0.3), 5: constant(BIAS_V)},
                           model=model, vref_v=VREF_V)
    src = Mcp3008Source(_config(model), hardware=EmulatedHardware(mcp3008=chip))
    samples = src.acquire(1.0, calibrated=False)
    src.close()
    return src, chip, samples


def test_a_sine_reads_within_the_12_bit_quantisation_bound() -> None:
    _, chip, samples = _sine_run("mcp3208")
    v = samples.channel("v_a").values
    assert v.size == 4000
    assert not samples.channel("v_a").clipped.any()
    # the truth: what the chip held at each v_a conversion (every other transfer)
    held_v = np.array([rec[1] for rec in chip.log[0::2]]) - BIAS_V
    err_v = held_v - v
    # floor quantisation: every sample is 0..1 LSB below the held voltage
    assert err_v.min() >= -1e-12
    assert err_v.max() < LSB12_V
    # a uniform quantiser's error has RMS LSB/√12 (0.23 mV); a 10-bit one would be 4x
    assert np.std(err_v) == pytest.approx(LSB12_V / math.sqrt(12), rel=0.1)
    # uniform sampling of whole cycles: the discrete RMS of the sine is exactly 1 V, and
    # an error bounded by one LSB moves the AC RMS by at most half an LSB
    rms_v = float(np.std(v))
    assert abs(rms_v - 1.0) <= LSB12_V / 2


def test_the_mcp3008_model_quantises_four_times_coarser() -> None:
    # the same run on a 10-bit chip: the model, not the emulator, sets the step
    src, chip, samples = _sine_run("mcp3008")
    assert src.capabilities.channels[0].resolution == pytest.approx(VREF_V / 1024)
    held_v = np.array([rec[1] for rec in chip.log[0::2]]) - BIAS_V
    err_v = held_v - samples.channel("v_a").values
    assert err_v.min() >= -1e-12
    assert err_v.max() < 4 * LSB12_V
    assert np.std(err_v) == pytest.approx(4 * LSB12_V / math.sqrt(12), rel=0.1)


def test_config_model_key() -> None:
    assert _config("mcp3008").source.mcp3008 is not None
    default = parse_config(_config_data(None))
    assert default.source.mcp3008 is not None
    assert default.source.mcp3008.model is Mcp3x08Model.MCP3008
    # DS21298 §1: the MCP3208 converts at most 100 ksps (at 5 V)
    with pytest.raises(ConfigError, match=r"source\.mcp3008\.sample_rate_hz: must be <= "
                                          r"100000 for model mcp3208, got 150000"):
        _config("mcp3208", rate_hz=150_000)
    _config("mcp3008", rate_hz=150_000)
    with pytest.raises(ConfigError, match=r"source\.mcp3008\.model"):
        _config("mcp3204")


def test_emulator_scenario_names_the_model() -> None:
    env = environment_from_scenario({"mcp3008": {"model": "mcp3208", "vref_v": 3.3}})
    assert env.mcp3008 is not None
    assert env.mcp3008.bits == 12
    env = environment_from_scenario({"mcp3008": {"vref_v": 3.3}})
    assert env.mcp3008 is not None
    assert env.mcp3008.bits == 10
