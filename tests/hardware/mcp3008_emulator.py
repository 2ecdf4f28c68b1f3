"""An MCP3008 behind spidev's ``xfer2`` (Microchip DS21295, §5 and §6.1).

One conversion per transfer, as CS frames it: the controller sends ``0x01`` (start
bit), then ``SGL/DIFF D2 D1 D0`` in the upper nibble of the second byte, then a
dummy byte; the chip samples the input during the clocks after the channel bits
(sample-and-hold) and shifts out a null bit and B9..B0, which land in the low two
bits of the second reply byte and the whole third byte. Code = floor(1024·Vin/Vref),
0..1023; pseudo-differential inputs give 0 when IN+ < IN-.

Each transfer advances the emulated clock by a host overhead plus its bits at the
SPI clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tests.hardware.ads1115_emulator import EmulatedClock, Waveform

# differential selections D2..D0 -> (IN+, IN-) (DS21295 Table 5-2)
DIFF_INPUTS = ((0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4), (6, 7), (7, 6))


class Mcp3008Emulator:
    """An opened ``spidev.SpiDev`` with an MCP3008 on its chip select."""

    def __init__(
        self,
        inputs: Mapping[int, Waveform],
        *,
        vref_v: float = 3.3,
        clock: EmulatedClock | None = None,
        host_overhead_s: float = 20e-6,
    ) -> None:
        self.inputs = dict(inputs)
        self.vref_v = vref_v
        self.clock = clock or EmulatedClock()
        self.host_overhead_s = host_overhead_s
        self.max_speed_hz = 500_000
        self.mode = 0
        self.transfers = 0
        self.closed = False

    def _pin(self, ch: int, t: float) -> float:
        wave = self.inputs.get(ch)
        if wave is None:
            return 0.0
        return float(np.clip(wave(np.array([t]))[0], 0.0, self.vref_v))

    def xfer2(self, data: Sequence[int]) -> list[int]:
        if self.closed:
            raise OSError(9, "Bad file descriptor")
        if len(data) != 3 or data[0] & 0x01 == 0:
            # not the three-byte framing: the chip never sees a start bit where expected
            self.clock.advance(self.host_overhead_s + 8 * len(data) / self.max_speed_hz)
            return [0] * len(data)
        self.transfers += 1
        t0 = self.clock.monotonic() + self.host_overhead_s
        # sampling ends on the falling edge of the 4th clock after the start bit;
        # the start bit is the last bit of byte 0
        t_sample = t0 + 12 / self.max_speed_hz
        self.clock.advance(self.host_overhead_s + 24 / self.max_speed_hz)
        single = bool(data[1] & 0x80)
        sel = (data[1] >> 4) & 0x7
        if single:
            v = self._pin(sel, t_sample)
        else:
            pos, neg = DIFF_INPUTS[sel]
            v = max(self._pin(pos, t_sample) - self._pin(neg, t_sample), 0.0)
        code = min(1023, max(0, math.floor(1024.0 * v / self.vref_v)))
        return [0, (code >> 8) & 0x03, code & 0xFF]

    def close(self) -> None:
        self.closed = True
