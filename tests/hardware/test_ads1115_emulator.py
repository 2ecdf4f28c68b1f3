"""The register emulation against the ADS1115 datasheet (TI SBAS444) and the real driver.

These pin the emulator to the chip's documented behaviour, so that the source's
tests against it mean something.
"""

from __future__ import annotations

import pytest
from adafruit_ads1x15.ads1x15 import Mode
from adafruit_ads1x15.ads1115 import ADS1115
from adafruit_ads1x15.analog_in import AnalogIn

from tests.hardware.ads1115_emulator import (
    CONFIG_RESET,
    REG_CONFIG,
    REG_CONVERSION,
    Ads1115Emulator,
    BusTiming,
    EmulatedClock,
    EmulatedI2cBus,
    constant,
)


def _bus(chip: Ads1115Emulator) -> EmulatedI2cBus:
    return EmulatedI2cBus({chip.address: chip}, EmulatedClock(), BusTiming())


def test_power_on_registers_match_the_datasheet() -> None:
    # SBAS444 §9.6.3: config register reset value 8583h; conversion register 0000h
    chip = Ads1115Emulator(0x48)
    assert chip.read_register(0.0, REG_CONFIG) == 0x8583 == CONFIG_RESET
    assert chip.read_register(0.0, REG_CONVERSION) == 0x0000
    assert chip.read_register(0.0, 0x02) == 0x8000  # Lo_thresh
    assert chip.read_register(0.0, 0x03) == 0x7FFF  # Hi_thresh


def test_single_shot_takes_one_period_and_os_bit_reports_it() -> None:
    chip = Ads1115Emulator(0x48, {0: constant(1.0)})
    # OS=1, MUX=100 (AIN0-GND), PGA=001 (±4.096 V), MODE=1, DR=111 (860 SPS)
    cfg = 0x8000 | (4 << 12) | (1 << 9) | 0x0100 | (7 << 5) | 0x3
    chip.write_register(0.0, REG_CONFIG, cfg)
    period = 1 / 860
    assert chip.read_register(period / 2, REG_CONFIG) & 0x8000 == 0  # converting
    assert chip.read_register(25e-6 + period * 1.001, REG_CONFIG) & 0x8000  # done
    # 1.0 V on ±4.096 V: 1.0 / (4.096 / 32768) = 8000 codes
    assert chip.read_register(0.01, REG_CONVERSION) == 8000


def test_os_write_while_converting_has_no_effect() -> None:
    chip = Ads1115Emulator(0x48, {0: constant(1.0)})
    cfg = 0x8000 | (4 << 12) | (1 << 9) | 0x0100 | (0 << 5)  # 8 SPS: 125 ms
    chip.write_register(0.0, REG_CONFIG, cfg)
    chip.write_register(0.05, REG_CONFIG, cfg)  # ignored: not in power-down
    assert chip.read_register(0.120, REG_CONFIG) & 0x8000 == 0
    assert chip.read_register(0.126, REG_CONFIG) & 0x8000
    assert chip.conversions_done == 1


def test_continuous_mode_keeps_converting_and_os_reads_busy() -> None:
    chip = Ads1115Emulator(0x48, {0: constant(0.5)}, rate_error=0.05)
    cfg = (4 << 12) | (1 << 9) | (7 << 5)  # MODE=0: continuous, 860 SPS
    chip.write_register(0.0, REG_CONFIG, cfg)
    assert chip.read_register(1.0, REG_CONFIG) & 0x8000 == 0
    # ±10 % oscillator: 860 * 1.05 conversions per second, one more or less
    assert abs(chip.conversions_done - 860 * 1.05) <= 1
    assert chip.read_register(1.0, REG_CONVERSION) == 4000


def test_new_mux_applies_from_the_next_conversion_in_continuous_mode() -> None:
    chip = Ads1115Emulator(0x48, {0: constant(0.5), 1: constant(1.0)})
    base = (1 << 9) | (7 << 5)
    chip.write_register(0.0, REG_CONFIG, base | (4 << 12))
    period = 1 / 860
    chip.write_register(1.5 * period, REG_CONFIG, base | (5 << 12))  # AIN1 from now on
    # the conversion in progress completes on AIN0...
    assert chip.read_register(2.01 * period + 25e-6, REG_CONVERSION) == 4000
    # ...the next one is AIN1
    assert chip.read_register(3.01 * period + 25e-6, REG_CONVERSION) == 8000


@pytest.mark.parametrize(
    ("mux", "expected_v"),
    [(0, -0.25), (1, 0.5), (2, 0.75), (3, -1.0), (4, 0.5), (5, 0.75), (6, 0.0), (7, 1.0)],
)
def test_mux_selects_the_documented_pairs(mux: int, expected_v: float) -> None:
    # SBAS444 Table 8-3 (MUX[2:0]): 000 AIN0-AIN1, 001 AIN0-AIN3, 010 AIN1-AIN3,
    # 011 AIN2-AIN3, 100..111 AINx-GND
    chip = Ads1115Emulator(0x48, {0: constant(0.5), 1: constant(0.75), 2: constant(0.0),
                                  3: constant(0.0)})
    chip.inputs[3] = constant(1.0) if mux == 7 else constant(0.0)
    if mux == 3:
        chip.inputs[2], chip.inputs[3] = constant(0.0), constant(1.0)
    cfg = 0x8000 | (mux << 12) | (1 << 9) | 0x0100 | (7 << 5)
    chip.write_register(0.0, REG_CONFIG, cfg)
    code = chip.read_register(0.01, REG_CONVERSION)
    signed = code - 0x10000 if code & 0x8000 else code
    assert signed * 4.096 / 32768 == pytest.approx(expected_v, abs=2 * 4.096 / 32768)


@pytest.mark.parametrize(
    ("pga", "fs_v"), [(0, 6.144), (1, 4.096), (2, 2.048), (3, 1.024), (4, 0.512), (5, 0.256)]
)
def test_pga_sets_lsb_and_saturation(pga: int, fs_v: float) -> None:
    chip = Ads1115Emulator(0x48, {0: constant(0.2), 1: constant(3.0)})
    for mux, v in ((4, 0.2), (5, 3.0)):
        chip.write_register(0.0, REG_CONFIG, 0x8000 | (mux << 12) | (pga << 9) | 0x0100
                            | (7 << 5))
        code = chip.read_register(1.0, REG_CONVERSION)
        expected = min(32767, round(v / (fs_v / 32768)))
        assert code == expected


def test_adafruit_driver_single_shot_reads_through_the_bus() -> None:
    chip = Ads1115Emulator(0x48, {0: constant(1.234), 2: constant(0.4), 3: constant(0.1)})
    bus = _bus(chip)
    ads = ADS1115(bus, gain=1, data_rate=860, address=0x48)
    assert AnalogIn(ads, 0).voltage == pytest.approx(1.234, abs=4.096 / 32768)
    assert AnalogIn(ads, 2, 3).voltage == pytest.approx(0.3, abs=4.096 / 32768)
    # each read: config write + OS polls + pointer/result read, ~1.16 ms conversion
    before = bus.clock.t_s
    _ = AnalogIn(ads, 0).value
    spent = bus.clock.t_s - before
    assert 1 / 860 < spent < 1 / 860 + 1e-3


def test_missing_chip_is_a_remote_io_error_and_the_driver_says_so() -> None:
    bus = _bus(Ads1115Emulator(0x48))
    with pytest.raises(ValueError, match="No I2C device at address: 0x49"):
        ADS1115(bus, address=0x49)
    assert bus.scan() == [0x48]


def test_driver_in_continuous_mode_keeps_the_power_on_mux() -> None:
    # The quirk Ads1115Reader works around: adafruit-circuitpython-ads1x15 3.0 ignores
    # the pin it is asked for when it writes the config in continuous mode.
    chip = Ads1115Emulator(0x48, {0: constant(0.5), 1: constant(0.0), 2: constant(2.0)})
    bus = _bus(chip)
    ads = ADS1115(bus, gain=1, data_rate=860, mode=Mode.CONTINUOUS, address=0x48)
    bus.clock.advance(0.01)  # the driver's own wait is a real time.sleep
    value = AnalogIn(ads, 2).voltage
    assert value == pytest.approx(0.5, abs=1e-3)  # AIN0-AIN1 (power-on MUX), not AIN2
