"""An emulated HardwareEnvironment: ADS1115 chips on I2C, an MCP3008/MCP3208 on SPI.

Tests build it directly; the CLI gets it through the documented hook
``GRIDGUARD_HARDWARE_EMULATOR=tests.hardware.emulated:environment`` with the
scenario in the YAML file named by ``GRIDGUARD_EMULATOR_SCENARIO``::

    devices:                     # ADS1115 chips on the I2C bus
      - address: 0x48
        rate_error: 0.02         # oscillator error (±0.1 max)
        noise_lsb: 1.0
        inputs:                  # AIN number -> waveform at the pin [V]
          0: {dc_v: 1.65, rms_v: 1.0, f_hz: 50.0, phase_deg: 0}
          1: {dc_v: 1.65}        # a constant
          2:                     # stages in emulated time (for calibration runs)
            - {until_s: 5, dc_v: 1.66}
            - {dc_v: 1.66, rms_v: 0.3, f_hz: 50.0, phase_deg: -2.0}
    mcp3008:                     # optional: an MCP3008 (or MCP3208) on the SPI bus
      model: mcp3008             # or mcp3208
      vref_v: 3.3
      inputs: {0: {dc_v: 1.65, rms_v: 1.0, f_hz: 50.0}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from tests.hardware.ads1115_emulator import (
    Ads1115Emulator,
    BusTiming,
    EmulatedClock,
    EmulatedI2cBus,
    Waveform,
    sine,
)
from tests.hardware.mcp3008_emulator import Mcp3008Emulator

SCENARIO_ENV = "GRIDGUARD_EMULATOR_SCENARIO"


class EmulatedHardware:
    """HardwareEnvironment over emulated devices sharing one emulated clock."""

    def __init__(
        self,
        chips: Mapping[int, Ads1115Emulator] | None = None,
        *,
        clock: EmulatedClock | None = None,
        timing: BusTiming | None = None,
        mcp3008: Mcp3008Emulator | None = None,
    ) -> None:
        self._clock = clock or EmulatedClock()
        self.bus = EmulatedI2cBus(chips or {}, self._clock, timing)
        self.mcp3008 = mcp3008
        if mcp3008 is not None:
            mcp3008.clock = self._clock

    @property
    def clock(self) -> EmulatedClock:
        return self._clock

    def i2c(self, bus: int) -> EmulatedI2cBus:
        if bus != 1:
            raise OSError(2, f"No such file or directory: '/dev/i2c-{bus}'")
        return self.bus

    def spi(self, bus: int, device: int) -> Mcp3008Emulator:
        if self.mcp3008 is None:
            raise OSError(2, f"No such file or directory: '/dev/spidev{bus}.{device}'")
        return self.mcp3008


def _wave(spec: Mapping[str, Any]) -> Waveform:
    harmonics = {
        int(h): (float(v[0]), math.radians(float(v[1])))
        for h, v in (spec.get("harmonics") or {}).items()
    }
    return sine(
        float(spec.get("dc_v", 0.0)), float(spec.get("rms_v", 0.0)),
        float(spec.get("f_hz", 50.0)), math.radians(float(spec.get("phase_deg", 0.0))),
        harmonics,
    )


def staged(stages: list[tuple[float, Waveform]]) -> Waveform:
    """Waveform ``k`` until its ``until_s`` (the last one forever)."""

    def wave(t: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(t)
        done = np.zeros(t.shape, dtype=bool)
        for until, w in stages:
            sel = ~done & (t < until)
            if sel.any():
                out[sel] = w(t[sel])
            done |= sel
        return out

    return wave


def waveform_from_spec(spec: Any) -> Waveform:
    if isinstance(spec, list):
        stages = [(float(s.get("until_s", math.inf)), _wave(s)) for s in spec]
        return staged(stages)
    return _wave(spec)


def environment_from_scenario(data: Mapping[str, Any]) -> EmulatedHardware:
    chips = {}
    for dev in data.get("devices") or []:
        addr = int(dev["address"])
        chips[addr] = Ads1115Emulator(
            addr,
            {int(k): waveform_from_spec(v) for k, v in (dev.get("inputs") or {}).items()},
            rate_error=float(dev.get("rate_error", 0.0)),
            noise_lsb=float(dev.get("noise_lsb", 0.0)),
            seed=int(dev.get("seed", 0)),
        )
    mcp = None
    if data.get("mcp3008"):
        m = data["mcp3008"]
        mcp = Mcp3008Emulator(
            {int(k): waveform_from_spec(v) for k, v in (m.get("inputs") or {}).items()},
            model=str(m.get("model", "mcp3008")),
            vref_v=float(m.get("vref_v", 3.3)),
        )
    return EmulatedHardware(chips, mcp3008=mcp)


def environment() -> EmulatedHardware:
    """The factory GRIDGUARD_HARDWARE_EMULATOR names: reads GRIDGUARD_EMULATOR_SCENARIO."""
    path = os.environ.get(SCENARIO_ENV)
    if not path:
        raise RuntimeError(f"{SCENARIO_ENV} must name the emulator scenario YAML")
    return environment_from_scenario(yaml.safe_load(Path(path).read_text()))
