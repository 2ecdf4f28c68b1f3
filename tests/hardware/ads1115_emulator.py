"""An ADS1115 at register level behind the I2C bus interface the Adafruit library uses.

What is emulated (TI SBAS444, "ADS111x Ultra-Small, Low-Power, I2C-Compatible,
860-SPS, 16-Bit ADCs"):

- the address pointer register (§9.6.1): a one-byte write sets it, a three-byte
  write sets it and writes a 16-bit register MSB first, a read returns the register
  the pointer selects, MSB first;
- the conversion register (reset 0x0000, read only) and the config register (reset
  0x8583: OS=1, MUX=AIN0-AIN1, PGA ±2.048 V, single-shot, 128 SPS, comparator off),
  Lo_thresh (0x8000) and Hi_thresh (0x7FFF);
- MUX (bits 14:12, eight input pairs), PGA (bits 11:9, ±6.144..±0.256 V), MODE
  (bit 8), DR (bits 7:5, 8..860 SPS) with a per-chip oscillator error (the data rate
  varies by up to ±10 % over temperature);
- the OS bit: writing 1 in power-down starts one conversion after a ~25 µs wake-up
  (single-shot); reading it gives 1 when no conversion is running, so it reads 0
  all the time in continuous mode;
- continuous mode: conversions back to back; a config written meanwhile takes
  effect from the next conversion (the one in progress completes with the old
  settings), which is why the library waits two periods after changing inputs;
- the conversion result: the input averaged over the conversion time (the
  single-cycle-settling digital filter modelled as a uniform average), with
  optional Gaussian noise, offset and gain error, rounded to a code and saturated
  at -32768..32767; inputs are clamped to GND-0.3 V..VDD+0.3 V by the ESD diodes.

Time is an :class:`EmulatedClock`; every bus transaction advances it by what the
transaction takes on the wire at the bus clock plus a host overhead, so a driver
that polls the OS bit spends emulated, not real, time. Nothing ever sleeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Waveform = Callable[[NDArray[np.float64]], NDArray[np.float64]]

REG_CONVERSION = 0x00
REG_CONFIG = 0x01
REG_LO_THRESH = 0x02
REG_HI_THRESH = 0x03
CONFIG_RESET = 0x8583
FULL_SCALES_V = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)
DATA_RATES_SPS = (8, 16, 32, 64, 128, 250, 475, 860)
# MUX code -> (positive input, negative input); None is GND
MUX_INPUTS: tuple[tuple[int, int | None], ...] = (
    (0, 1), (0, 3), (1, 3), (2, 3), (0, None), (1, None), (2, None), (3, None),
)
WAKEUP_S = 25e-6
AVERAGING_POINTS = 32
EREMOTEIO = 121


@dataclass
class EmulatedClock:
    """A clock (collector.clock.Clock) that only moves when told to."""

    t_s: float = 0.0
    epoch_ns: int = 1_700_000_000_000_000_000

    def monotonic(self) -> float:
        return self.t_s

    def sleep(self, seconds: float) -> None:
        self.t_s += max(seconds, 0.0)

    def now_ns(self) -> int:
        return self.epoch_ns + round(self.t_s * 1e9)

    def advance(self, seconds: float) -> None:
        self.t_s += seconds


@dataclass
class BusTiming:
    """Time one transaction takes: bits on the wire plus the host's own overhead.

    ``host_jitter_s``: the host overhead varies by up to this much (uniform, seeded):
    a Linux process never issues ioctls at perfectly regular instants, which is also
    what keeps a polling loop's phase from locking to the converter's.
    """

    scl_hz: float = 400_000.0
    host_overhead_s: float = 60e-6
    host_jitter_s: float = 30e-6
    seed: int = 0
    _rng: np.random.Generator | None = None

    def transaction_s(self, data_bytes: int, address_phases: int = 1) -> float:
        # 9 clocks per byte (8 bits + ACK), one address byte per (repeated) start,
        # and about one clock each for start and stop conditions
        bits = 9 * (data_bytes + address_phases) + 2 * address_phases
        jitter = 0.0
        if self.host_jitter_s > 0:
            if self._rng is None:
                self._rng = np.random.default_rng(self.seed)
            jitter = float(self._rng.uniform(0.0, self.host_jitter_s))
        return self.host_overhead_s + jitter + bits / self.scl_hz


def constant(volts: float) -> Waveform:
    def wave(t: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.full_like(t, volts, dtype=np.float64)

    return wave


def sine(
    dc_v: float, rms_v: float, f_hz: float, phase_rad: float = 0.0,
    harmonics: Mapping[int, tuple[float, float]] | None = None,
) -> Waveform:
    """dc + √2·rms·sin(2πft + φ) + Σ √2·a_h·sin(2πhft + φ_h) [V]."""
    extra = dict(harmonics or {})

    def wave(t: NDArray[np.float64]) -> NDArray[np.float64]:
        w = 2.0 * math.pi * f_hz * t
        out = dc_v + math.sqrt(2.0) * rms_v * np.sin(w + phase_rad)
        for h, (a, p) in extra.items():
            out = out + math.sqrt(2.0) * a * np.sin(h * w + p)
        return np.asarray(out, dtype=np.float64)

    return wave


def sampled(t0_s: float, fs_hz: float, values_v: NDArray[np.float64]) -> Waveform:
    """A waveform given as uniform samples from ``t0_s``, linearly interpolated."""
    data = np.asarray(values_v, dtype=np.float64)

    def wave(t: NDArray[np.float64]) -> NDArray[np.float64]:
        pos = (np.asarray(t, dtype=np.float64) - t0_s) * fs_hz
        if np.any(pos < 0) or np.any(pos > data.size - 1):
            raise ValueError(
                f"sampled waveform: t outside {t0_s}..{t0_s + (data.size - 1) / fs_hz} s"
            )
        return np.asarray(np.interp(pos, np.arange(data.size), data), dtype=np.float64)

    return wave


@dataclass
class _Conversion:
    start_s: float
    end_s: float
    config: int


@dataclass
class Ads1115Emulator:
    """One chip. ``inputs`` maps AIN0..AIN3 to pin voltage waveforms [V] vs time [s]."""

    address: int
    inputs: dict[int, Waveform] = field(default_factory=dict)
    rate_error: float = 0.0  # oscillator: actual rate = nominal * (1 + rate_error)
    noise_lsb: float = 0.0
    offset_lsb: float = 0.0
    gain_error: float = 0.0
    vdd_v: float = 3.3
    seed: int = 0
    pointer: int = 0
    config: int = CONFIG_RESET
    conversion: int = 0
    lo_thresh: int = 0x8000
    hi_thresh: int = 0x7FFF
    conversions_done: int = 0
    _running: _Conversion | None = None
    _pending_config: int | None = None
    _rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        if not 0x48 <= self.address <= 0x4B:
            raise ValueError(f"address: an ADS1115 answers at 0x48..0x4B, got 0x{self.address:02X}")
        if abs(self.rate_error) > 0.1:
            raise ValueError(f"rate_error: the datasheet bounds it to ±10 %, got {self.rate_error}")
        self._rng = np.random.default_rng(self.seed)

    # --- converter -----------------------------------------------------------------

    @staticmethod
    def _mode_continuous(config: int) -> bool:
        return not config & 0x0100

    def _period_s(self, config: int) -> float:
        return 1.0 / (DATA_RATES_SPS[(config >> 5) & 0x7] * (1.0 + self.rate_error))

    def _pin(self, pin: int | None, t: NDArray[np.float64]) -> NDArray[np.float64]:
        if pin is None:
            return np.zeros_like(t)
        wave = self.inputs.get(pin)
        v = np.zeros_like(t) if wave is None else wave(t)
        return np.clip(v, -0.3, self.vdd_v + 0.3)

    def _result(self, conv: _Conversion) -> int:
        pos, neg = MUX_INPUTS[(conv.config >> 12) & 0x7]
        fs = FULL_SCALES_V[(conv.config >> 9) & 0x7]
        span = conv.end_s - conv.start_s
        t = np.asarray(conv.start_s + (np.arange(AVERAGING_POINTS) + 0.5)
                       * (span / AVERAGING_POINTS), dtype=np.float64)
        v = float(np.mean(self._pin(pos, t) - self._pin(neg, t)))
        assert self._rng is not None
        noise = self._rng.normal(0.0, self.noise_lsb) if self.noise_lsb > 0 else 0.0
        code = round(v * (1.0 + self.gain_error) / (fs / 32768.0) + self.offset_lsb + noise)
        return max(-32768, min(32767, code))

    def _complete(self, conv: _Conversion) -> None:
        self.conversion = self._result(conv) & 0xFFFF
        self.conversions_done += 1

    def advance_to(self, t_s: float) -> None:
        """Complete every conversion that has ended by ``t_s``."""
        while self._running is not None and self._running.end_s <= t_s:
            done = self._running
            continuous = self._mode_continuous(self.config)
            if not continuous:
                self._complete(done)
                self._running = None
                break
            nxt_config = self._pending_config if self._pending_config is not None else done.config
            self._pending_config = None
            period = self._period_s(nxt_config)
            # skip conversions nobody could have read: only the last one before t_s counts
            skipped = max(0, math.floor((t_s - done.end_s) / period) - 1)
            if skipped:
                start = done.end_s + skipped * period
                self.conversions_done += skipped
                done = _Conversion(start - period, start, nxt_config)
            self._complete(done)
            self._running = _Conversion(done.end_s, done.end_s + period, nxt_config)

    def write_register(self, t_s: float, reg: int, value: int) -> None:
        self.advance_to(t_s)
        if reg == REG_CONFIG:
            was_converting = self._running is not None
            self.config = value & 0x7FFF | (self.config & 0x8000)
            if self._mode_continuous(value):
                if not was_converting:
                    start = t_s + WAKEUP_S
                    self._running = _Conversion(start, start + self._period_s(value), value)
                else:
                    self._pending_config = value
            elif value & 0x8000 and not was_converting:
                start = t_s + WAKEUP_S
                self._running = _Conversion(start, start + self._period_s(value), value)
            # single-shot written while a continuous conversion runs: it completes,
            # then the device powers down (advance_to sees MODE=1)
        elif reg == REG_LO_THRESH:
            self.lo_thresh = value
        elif reg == REG_HI_THRESH:
            self.hi_thresh = value
        # the conversion register is read only: writes are ignored

    def read_register(self, t_s: float, reg: int) -> int:
        self.advance_to(t_s)
        if reg == REG_CONVERSION:
            return self.conversion
        if reg == REG_CONFIG:
            busy = self._running is not None
            return (self.config & 0x7FFF) | (0 if busy else 0x8000)
        if reg == REG_LO_THRESH:
            return self.lo_thresh
        return self.hi_thresh

    # --- I2C byte protocol ---------------------------------------------------------

    def i2c_write(self, t_s: float, data: bytes) -> None:
        if not data:
            return  # an address-only probe
        self.pointer = data[0] & 0x3
        if len(data) >= 3:
            self.write_register(t_s, self.pointer, (data[1] << 8) | data[2])

    def i2c_read(self, t_s: float, n: int) -> bytes:
        value = self.read_register(t_s, self.pointer)
        two = bytes([(value >> 8) & 0xFF, value & 0xFF])
        return (two * ((n + 1) // 2))[:n]


class EmulatedI2cBus:
    """busio.I2C's interface (as adafruit_bus_device calls it) over emulated chips."""

    def __init__(
        self,
        devices: Mapping[int, Ads1115Emulator],
        clock: EmulatedClock | None = None,
        timing: BusTiming | None = None,
    ) -> None:
        self.devices = dict(devices)
        self.clock = clock or EmulatedClock()
        self.timing = timing or BusTiming()
        self.transactions = 0
        self.fail_every = 0  # > 0: every n-th transfer fails like a disturbed bus
        self._locked = False

    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def deinit(self) -> None:
        self._locked = False

    def _device(self, address: int) -> Ads1115Emulator:
        dev = self.devices.get(address)
        if dev is None:
            # what Linux's i2c-dev reports when no device ACKs the address
            raise OSError(EREMOTEIO, "Remote I/O error")
        return dev

    def _spend(self, data_bytes: int, phases: int = 1) -> float:
        self.transactions += 1
        self.clock.advance(self.timing.transaction_s(data_bytes, phases))
        if self.fail_every and self.transactions % self.fail_every == 0:
            raise OSError(EREMOTEIO, "Remote I/O error")
        return self.clock.monotonic()

    def scan(self) -> list[int]:
        self.clock.advance(0x70 * (self.timing.host_overhead_s + 20 / self.timing.scl_hz))
        return sorted(self.devices)

    def writeto(self, address: int, buffer: bytes | bytearray, *, start: int = 0,
                end: int | None = None) -> None:
        data = bytes(buffer[start:end])
        t = self._spend(len(data))
        self._device(address).i2c_write(t, data)

    def readfrom_into(self, address: int, buffer: bytearray, *, start: int = 0,
                      end: int | None = None) -> None:
        stop = len(buffer) if end is None else end
        t = self._spend(stop - start)
        buffer[start:stop] = self._device(address).i2c_read(t, stop - start)

    def writeto_then_readfrom(
        self, address: int, buffer_out: bytes | bytearray, buffer_in: bytearray, *,
        out_start: int = 0, out_end: int | None = None, in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        data = bytes(buffer_out[out_start:out_end])
        stop = len(buffer_in) if in_end is None else in_end
        t = self._spend(len(data) + stop - in_start, phases=2)
        dev = self._device(address)
        dev.i2c_write(t, data)
        buffer_in[in_start:stop] = dev.i2c_read(t, stop - in_start)
