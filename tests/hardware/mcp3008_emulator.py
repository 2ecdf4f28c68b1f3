"""An MCP3008 or MCP3208 behind spidev's ``xfer2``, emulated bit by bit.

This is the test oracle for the SPI framing, so it follows the datasheets' serial
protocol (Microchip DS21295 §5.0 and Figure 6-1 for the MCP3008, DS21298 §5.0 and
Figure 6-1 for the MCP3208) clock by clock, not the source's byte formulas:

- the first clock with CS low and DIN high is the start bit (clock ``s``);
- DIN on the next four clocks is SGL/DIFF, D2, D1, D0 (Table 5-2);
- the input is sampled from the 4th rising edge after the start bit and held at the
  falling edge of the 5th (clock ``s + 5``);
- DOUT is high-impedance until then, a null bit (0) at clock ``s + 6``, then the
  result MSB first: 10 bits (MCP3008) or 12 bits (MCP3208), then zeros.

Code = floor(2^bits·Vin/Vref), clipped to the code range; pseudo-differential
inputs give 0 when IN+ < IN-. High-impedance DOUT clocks read as 1 here (a floating
MISO reads anything; ones expose a decoder that does not mask them). A frame whose
start bit comes too late for the channel bits converts nothing.

Each transfer advances the emulated clock by a host overhead plus its bits at the
SPI clock. Every conversion is logged as (sample instant [s], voltage the chip
converted [V], code) so tests can check each decoded sample against the truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tests.hardware.ads1115_emulator import EmulatedClock, Waveform

# differential selections D2..D0 -> (IN+, IN-) (DS21295 and DS21298, Table 5-2)
DIFF_INPUTS = ((0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4), (6, 7), (7, 6))
# result bits per model (DS21295 §1: 10-bit; DS21298 §1: 12-bit)
RESULT_BITS = {"mcp3008": 10, "mcp3208": 12}


def _bits_of(data: Sequence[int]) -> list[int]:
    return [(byte >> (7 - k)) & 1 for byte in data for k in range(8)]


def _bytes_of(bits: Sequence[int]) -> list[int]:
    return [
        sum(bit << (7 - k) for k, bit in enumerate(bits[i:i + 8]))
        for i in range(0, len(bits), 8)
    ]


class Mcp3008Emulator:
    """An opened ``spidev.SpiDev`` with an MCP3008 or MCP3208 on its chip select."""

    def __init__(
        self,
        inputs: Mapping[int, Waveform],
        *,
        model: str = "mcp3008",
        vref_v: float = 3.3,
        clock: EmulatedClock | None = None,
        host_overhead_s: float = 20e-6,
    ) -> None:
        if model not in RESULT_BITS:
            raise ValueError(f"model: expected one of {sorted(RESULT_BITS)}, got {model!r}")
        self.inputs = dict(inputs)
        self.model = model
        self.bits = RESULT_BITS[model]
        self.vref_v = vref_v
        self.clock = clock or EmulatedClock()
        self.host_overhead_s = host_overhead_s
        self.max_speed_hz = 500_000
        self.mode = 0
        self.transfers = 0
        self.closed = False
        self.log: list[tuple[float, float, int]] = []

    def _pin(self, ch: int, t: float) -> float:
        wave = self.inputs.get(ch)
        if wave is None:
            return 0.0
        return float(np.clip(wave(np.array([t]))[0], 0.0, self.vref_v))

    def xfer2(self, data: Sequence[int]) -> list[int]:
        if self.closed:
            raise OSError(9, "Bad file descriptor")
        t0 = self.clock.monotonic() + self.host_overhead_s
        clk_s = 1.0 / self.max_speed_hz
        self.clock.advance(self.host_overhead_s + 8 * len(data) * clk_s)
        din = _bits_of(data)
        dout = [1] * len(din)  # high-impedance until the null bit
        start = din.index(1) if 1 in din else len(din)  # 0-based clock of the start bit
        if start + 4 >= len(din):
            return _bytes_of(dout)  # CS rose before the channel was selected
        self.transfers += 1
        single = din[start + 1] == 1
        sel = (din[start + 2] << 2) | (din[start + 3] << 1) | din[start + 4]
        # held at the falling edge of the 5th clock after the start bit
        t_sample = t0 + (start + 6) * clk_s
        if single:
            v = self._pin(sel, t_sample)
        else:
            pos, neg = DIFF_INPUTS[sel]
            v = max(self._pin(pos, t_sample) - self._pin(neg, t_sample), 0.0)
        n_codes = 1 << self.bits
        code = min(n_codes - 1, max(0, math.floor(n_codes * v / self.vref_v)))
        self.log.append((t_sample, v, code))
        result = [0] + [(code >> (self.bits - 1 - k)) & 1 for k in range(self.bits)]
        for k, bit in enumerate(result):
            if start + 6 + k < len(dout):
                dout[start + 6 + k] = bit
        for k in range(start + 6 + len(result), len(dout)):
            dout[k] = 0  # zeros after the LSB while CS stays low
        return _bytes_of(dout)

    def close(self) -> None:
        self.closed = True
