"""MCP3008 or MCP3208 on SPI (spidev) as a waveform source: uniform blocks for the full DSP.

Capability model: a 10-bit (MCP3008) or 12-bit (MCP3208) successive-approximation
converter with a sample-and-hold (it samples in ~1.5 clocks, no averaging), 8
single-ended or 4 pseudo-differential inputs behind a multiplexer, up to 200 ksps at
5 V / 75 ksps at 2.7 V (MCP3008, Microchip DS21295 §1) or 100 / 50 ksps (MCP3208,
DS21298 §1). Both chips share the pinout and the input pairs; ``source.mcp3008.model``
selects the command framing, the reply decoding, the resolution and the SPI clock.
One SPI transfer per conversion (the chip needs CS toggled for each),
so the achievable rate is set by the Pi: ~20-40 k transfers/s from Python.
``source.mcp3008.sample_rate_hz`` is the *total* rate, shared by the configured
channels in a fixed round; channel k is sampled ``k / sample_rate_hz`` after the
block timestamps (``ChannelInfo.skew_s``, which the metrics engine aligns).

At 8 kS/s total and four channels each channel gets 2 kS/s, 40 samples per 50 Hz
cycle: harmonics to the 19th and half-cycle RMS events work; arc signatures need
more. A conversion that could not be made on time (the host was busy) is a NaN,
never a shifted sample, so the block stays uniform and the gap is counted.

``spidev`` is imported when this source is constructed (through
:class:`~.environment.RealHardware`), not before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from collector.calibration.apply import (
    IDENTITY,
    ChannelCalibration,
    apply_offset_gain,
    phase_skew_s,
)
from collector.calibration.file_format import CalibrationFile
from collector.calibration.resolve import calibration_for
from collector.clock import Clock
from collector.config.models import GridGuardConfig
from collector.config.source import Mcp3x08Model, SourceType
from collector.model import NS_PER_S, Block, ChannelInfo, SourceCapabilities
from collector.sources.hardware.environment import (
    HardwareEnvironment,
    SpiDevice,
    hardware_environment,
)
from collector.sources.hardware.samples import SampleSet, sample_set_from_blocks
from collector.sources.hardware.transfer import (
    ChannelTransfer,
    full_scale_physical,
    pin_to_physical,
    resolution_physical,
    transfer_of,
)

DEFAULT_BLOCK_DURATION_S = 0.1


@dataclass(frozen=True, slots=True)
class Mcp3x08Chip:
    """What differs between the converters that fit the same socket and section."""

    model: Mcp3x08Model
    bits: int
    spi_hz: int

    @property
    def codes(self) -> int:
        return 1 << self.bits


# The SPI clock is each datasheet's limit at VDD = 2.7 V, hence safe at 3.3 V:
# DS21295 §1 fCLK 1.35 MHz (MCP3008), DS21298 §1 fCLK 1.0 MHz (MCP3208).
CHIPS: Mapping[Mcp3x08Model, Mcp3x08Chip] = MappingProxyType({
    Mcp3x08Model.MCP3008: Mcp3x08Chip(Mcp3x08Model.MCP3008, 10, 1_350_000),
    Mcp3x08Model.MCP3208: Mcp3x08Chip(Mcp3x08Model.MCP3208, 12, 1_000_000),
})


@dataclass(frozen=True, slots=True)
class Mcp3008Input:
    info: ChannelInfo
    command: tuple[int, int, int]
    transfer: ChannelTransfer
    calibration: ChannelCalibration


def _selection(single_ended: int | None, differential: tuple[int, int] | None,
               model: Mcp3x08Model) -> tuple[int, int]:
    """SGL/DIFF bit and D2..D0 for an input (Table 5-2 of both datasheets)."""
    if single_ended is not None:
        if not 0 <= single_ended <= 7:
            raise ValueError(f"channel: must be 0..7, got {single_ended}")
        return 1, single_ended
    if differential is None:
        raise ValueError("adc: needs channel or differential")
    pos, neg = differential
    if not (0 <= pos <= 7 and neg == pos ^ 1):
        raise ValueError(
            f"differential: the {model.value.upper()} pairs CH0/CH1, CH2/CH3, CH4/CH5, "
            f"CH6/CH7, got {[pos, neg]}"
        )
    return 0, pos  # D2..D0 = IN+


def command_bytes(single_ended: int | None, differential: tuple[int, int] | None,
                  model: Mcp3x08Model = Mcp3x08Model.MCP3008) -> tuple[int, int, int]:
    """The three bytes that start one conversion on ``model``.

    MCP3008 (DS21295 §6.1, Figure 6-1): seven leading zeros and the start bit in
    byte 0, SGL/DIFF D2 D1 D0 in the high nibble of byte 1. MCP3208 (DS21298 §6.1,
    Figure 6-1): the start bit moves three places earlier so that the two extra
    result bits still end with byte 2: five zeros, start, SGL/DIFF, D2 in byte 0,
    D1 D0 in the top bits of byte 1.
    """
    sgl, sel = _selection(single_ended, differential, model)
    if model is Mcp3x08Model.MCP3208:
        return (0x04 | (sgl << 1) | (sel >> 2), (sel & 0x03) << 6, 0x00)
    return (0x01, (sgl << 7) | (sel << 4), 0x00)


def decode_reply(reply: Sequence[int], model: Mcp3x08Model = Mcp3x08Model.MCP3008) -> int:
    """The code in the reply to :func:`command_bytes` on ``model``.

    MCP3008: B9..B8 in the low 2 bits of byte 1, B7..B0 in byte 2; MCP3208: B11..B8
    in the low nibble of byte 1, B7..B0 in byte 2. The bits before them (DOUT still
    high-impedance, then the null bit) are masked off.
    """
    if len(reply) != 3:
        raise ValueError(f"reply: expected 3 bytes, got {len(reply)}")
    high_mask = 0x0F if model is Mcp3x08Model.MCP3208 else 0x03
    return ((reply[1] & high_mask) << 8) | (reply[2] & 0xFF)


def plan_inputs(
    cfg: GridGuardConfig, *, calibrated: bool = True,
    cache: dict[Path, CalibrationFile] | None = None,
) -> tuple[Mcp3008Input, ...]:
    src = cfg.source.mcp3008
    if cfg.source.type is not SourceType.MCP3008 or src is None:
        raise ValueError(f"source.type: expected mcp3008, got {cfg.source.type}")
    channels = cfg.channels.all()
    n = len(channels)
    rate = src.sample_rate_hz / n
    f_nom = float(cfg.system.nominal_frequency_hz)
    out = []
    for k, (kind, idx, ch) in enumerate(channels):
        if ch.adc is None:
            raise ValueError(f"channels.{kind}[{idx}].adc: required for an mcp3008 source")
        diff = None if ch.adc.differential is None else (
            ch.adc.differential[0], ch.adc.differential[1])
        cmd = command_bytes(ch.adc.channel, diff, src.model)
        transfer = transfer_of(ch)
        cal = calibration_for(ch, cache=cache) if calibrated else IDENTITY
        scale = max([cal.gain] + [g for _, g in cal.gain_points])
        lsb = src.vref_v / CHIPS[src.model].codes
        info = ChannelInfo(
            id=ch.id, quantity=ch.quantity, phase=ch.phase,
            circuit=cfg.circuit_of_channel(ch.id),
            rate_hz=rate,
            # channel k waits k conversions in the round; a phase lead is a later instant
            skew_s=k / src.sample_rate_hz + phase_skew_s(cal, f_nom),
            resolution=resolution_physical(transfer, lsb) * scale,
            full_scale=full_scale_physical(transfer, 0.0, src.vref_v) * scale,
            calibration_id=cal.id,
        )
        out.append(Mcp3008Input(info, cmd, transfer, cal))
    return tuple(out)


class Mcp3008Source:
    """An MCP3008 or MCP3208 as a waveform :class:`~collector.model.Source`.

    Parameters
    ----------
    cfg : GridGuardConfig
        With ``source.type: mcp3008`` (``source.mcp3008.model`` names the chip).
    hardware : HardwareEnvironment | None
        SPI device and clock (default: :func:`hardware_environment`).
    calibrated : bool
        Apply each channel's calibration (False for `gridguard calibrate`).
    duration_s : float | None
        Stop after this long (None: run until closed).
    """

    def __init__(
        self,
        cfg: GridGuardConfig,
        *,
        hardware: HardwareEnvironment | None = None,
        calibrated: bool = True,
        block_duration_s: float = DEFAULT_BLOCK_DURATION_S,
        duration_s: float | None = None,
    ) -> None:
        src = cfg.source.mcp3008
        if cfg.source.type is not SourceType.MCP3008 or src is None:
            raise ValueError(f"source.type: expected mcp3008, got {cfg.source.type}")
        if not block_duration_s > 0:
            raise ValueError(f"block_duration_s: must be > 0, got {block_duration_s}")
        self.inputs = plan_inputs(cfg, calibrated=calibrated)
        self._vref = src.vref_v
        self.chip = CHIPS[src.model]
        self._total_hz = src.sample_rate_hz
        self._rate = src.sample_rate_hz / len(self.inputs)
        self._rounds = max(1, round(block_duration_s * self._rate))
        self._duration_s = duration_s
        env = hardware or hardware_environment()
        self._clock: Clock = env.clock
        self._spi: SpiDevice = env.spi(src.spi_bus, src.spi_device)
        self._spi.max_speed_hz = self.chip.spi_hz
        self._spi.mode = 0
        self._closed = False
        self.late_conversions = 0
        self._caps = SourceCapabilities(
            channels=tuple(i.info for i in self.inputs),
            simultaneous=len(self.inputs) == 1,
            waveform=True,
            nominal_frequency_hz=float(cfg.system.nominal_frequency_hz),
            nominal_voltage_v=cfg.system.nominal_voltage_v,
        )

    @property
    def capabilities(self) -> SourceCapabilities:
        return self._caps

    @property
    def clock(self) -> Clock:
        return self._clock

    def _convert(self, k: int) -> float:
        try:
            reply = self._spi.xfer2(list(self.inputs[k].command))
        except OSError:
            return float("nan")
        return float(decode_reply(reply, self.chip.model))

    def _block_codes(self, start_mono: float, first_round: int) -> NDArray[np.float64]:
        n_ch = len(self.inputs)
        codes = np.full((n_ch, self._rounds), np.nan)
        interval = 1.0 / self._total_hz
        for r in range(self._rounds):
            for k in range(n_ch):
                due = start_mono + ((first_round + r) * n_ch + k) * interval
                now = self._clock.monotonic()
                if now < due:
                    self._clock.sleep(due - now)
                elif now > due + interval:
                    # too late to be this slot's sample: a gap, not a shifted sample
                    self.late_conversions += 1
                    continue
                codes[k, r] = self._convert(k)
        return codes

    def _to_physical(self, codes: NDArray[np.float64], calibrated: bool) -> NDArray[np.float64]:
        n_codes = self.chip.codes
        lsb = self._vref / n_codes
        out = np.empty_like(codes)
        for k, inp in enumerate(self.inputs):
            x = pin_to_physical(codes[k] * lsb, inp.transfer)
            # a code at either end is a rail: report it at full scale so |x| >= full_scale
            rail = (codes[k] <= 0) | (codes[k] >= n_codes - 1)
            fs = inp.info.full_scale or np.inf
            x = np.where(rail, np.sign(x) * fs / max(inp.calibration.gain, 1e-12), x)
            out[k] = apply_offset_gain(x, inp.calibration) if calibrated else x
        return out

    def blocks(self) -> Iterator[Block]:
        return self._blocks(calibrated=True)

    def _blocks(self, *, calibrated: bool) -> Iterator[Block]:
        start_mono = self._clock.monotonic()
        start_ns = self._clock.now_ns()
        round_no = 0
        first = True
        total = None if self._duration_s is None else round(self._duration_s * self._rate)
        while not self._closed and (total is None or round_no < total):
            codes = self._block_codes(start_mono, round_no)
            t0_ns = start_ns + round(round_no / self._rate * NS_PER_S)
            yield Block(t0_ns, self._rate, self._to_physical(codes, calibrated),
                        contiguous=not first)
            first = False
            round_no += self._rounds

    def acquire(self, duration_s: float, *, calibrated: bool = True) -> SampleSet:
        """Uniform samples of every channel for ``duration_s`` as a sample set."""
        if not duration_s > 0:
            raise ValueError(f"duration_s: must be > 0, got {duration_s}")
        n_blocks = max(1, round(duration_s * self._rate / self._rounds))
        gen = self._blocks(calibrated=calibrated)
        blocks = [next(gen) for _ in range(n_blocks)]
        caps = self._caps
        if not calibrated:
            caps = replace(caps, channels=tuple(
                replace(i.info, calibration_id=None,
                        skew_s=k / self._total_hz) for k, i in enumerate(self.inputs)))
        return sample_set_from_blocks(blocks, caps)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._spi.close()
