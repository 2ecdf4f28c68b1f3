"""ADS1115 converters on I2C as a meter source (incoherent sampling).

Capability model (what this source can and cannot honestly deliver)
-------------------------------------------------------------------
- One ADS1115 has one converter behind a 4-input multiplexer: its data rate
  (8..860 SPS, ±10 % oscillator tolerance, TI SBAS444 §7.5) is *shared* by the
  inputs it scans. Several chips convert in parallel, but the I2C bus and the
  Adafruit driver read them one after the other, so in single-shot mode every
  configured input costs one conversion (1/DR) plus the bus traffic (a config
  write, OS-bit polls, a result read: ~0.3 ms at 400 kHz). Four inputs at 860 SPS
  give each channel ~170..215 samples/s: 3 to 4 per 50 Hz cycle.
- Continuous mode helps a chip with a single configured input: it converts back to
  back and the result register is read without a config write, so several such
  chips are sampled in parallel. The instant of such a sample is only known to
  within one conversion period (the driver cannot see when a result arrived) and
  the period itself only to the oscillator's ±10 %, which is fine for RMS but not
  for pairing a voltage with a current (2° at 50 Hz). So ``continuous: true`` is
  used for single-input chips whose channel is in no V/I pair (a residual CT, a
  current channel in no circuit); paired channels are always read single-shot.
- Each sample is the input averaged over the conversion time (single-cycle
  settling): at 860 SPS the fundamental reads sinc(50/860) = 0.55 % low, the 7th
  harmonic 26 % low. The fitted orders are corrected (see :mod:`.incoherent`).
- That rules out anything that needs the waveform: no harmonics/THD, no
  half-cycle RMS, hence no dip/swell/interruption events, no peak or crest factor,
  no arc signature. The source is therefore a :class:`~.meter.MeterSource`
  (``waveform=False``) and reports those fields as None.
- What it does deliver, over 150 cycles (3 s at 50 Hz), by incoherent sampling:
  Vrms, Irms, fundamental V and I, P, S, Q1, PF, displacement PF, energy, and
  frequency, with the promise recorded in every record: RMS within
  :data:`RMS_ACCURACY_PCT` of reading and P within :data:`POWER_ACCURACY_PCT_OF_S`
  of S, for inputs between 10 % and 100 % of full scale whose content above the
  fitted orders (11th harmonic) is under 5 % of the RMS, before the sensor's own
  error (which calibration removes). The power promise holds for a current wired
  to the same chip as its voltage; across chips the end of a conversion is seen
  one OS-bit poll late at worst and the chips' periods differ, which widens the
  promise by 2π·f·(half a poll) - about 3 % of S at 400 kHz - until a
  phase calibration with a resistive load measures the pair's actual offset.

The hardware libraries (``adafruit-circuitpython-ads1x15`` with ``adafruit-blinka``)
are imported when this source is constructed, not before.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collector.calibration.apply import IDENTITY, ChannelCalibration
from collector.calibration.file_format import CalibrationFile
from collector.calibration.resolve import calibration_for
from collector.clock import Clock
from collector.config.models import GridGuardConfig
from collector.config.source import SourceType
from collector.events.sensor import SensorFaultDetector, SensorSettings
from collector.metrics_engine import CircuitSpec
from collector.model import NS_PER_S, ChannelInfo, Event, SourceCapabilities
from collector.sources.hardware.calibrated import calibrate_sample_set
from collector.sources.hardware.environment import (
    HardwareEnvironment,
    HardwareUnavailableError,
    I2cBus,
    hardware_environment,
)
from collector.sources.hardware.meter import MeterBatch
from collector.sources.hardware.samples import ChannelSamples, SampleSet
from collector.sources.hardware.slow_adc import (
    EnergyCounters,
    SlowAdcSettings,
    window_metrics,
)
from collector.sources.hardware.transfer import (
    ChannelTransfer,
    full_scale_physical,
    pin_to_physical,
    resolution_physical,
    transfer_of,
)

RMS_ACCURACY_PCT = 0.5
POWER_ACCURACY_PCT_OF_S = 1.0
HARMONIC_ORDERS = 11
# Supply of the ADS1115 on the Pi (3.3 V rail): a single-ended input cannot read
# above it (SBAS444 §7.1: inputs GND-0.3 V..VDD+0.3 V).
VDD_V = 3.3
# PGA full scale [V] -> the Adafruit driver's `gain`
PGA_GAIN: Mapping[float, float] = {
    6.144: 2 / 3, 4.096: 1.0, 2.048: 2.0, 1.024: 4.0, 0.512: 8.0, 0.256: 16.0,
}
DIFFERENTIAL_PAIRS = frozenset({(0, 1), (0, 3), (1, 3), (2, 3)})
WAKEUP_S = 25e-6  # power-down to conversion start (single-shot)
# The data rate varies by up to ±10 % (SBAS444 §7.5): a continuous-mode chip is
# read no faster than its slowest possible period, so no result is read twice.
OSCILLATOR_TOLERANCE = 0.10
# Longest pause between windows whose energy is still counted at the next window's power.
MAX_ENERGY_GAP_S = 1.0


@dataclass(frozen=True, slots=True)
class BusEstimate:
    """Bus timing assumed for the *expected* rates in the capabilities (measured later)."""

    scl_hz: float = 400_000.0
    host_overhead_s: float = 80e-6

    def transaction_s(self, data_bytes: int, address_phases: int = 1) -> float:
        return self.host_overhead_s + (9 * (data_bytes + address_phases)
                                       + 2 * address_phases) / self.scl_hz


@dataclass(frozen=True, slots=True)
class Ads1115Input:
    """One configured channel and the converter input it is wired to."""

    info: ChannelInfo
    address: int
    positive: int
    negative: int | None
    full_scale_v: float
    data_rate_sps: int
    continuous: bool
    transfer: ChannelTransfer
    calibration: ChannelCalibration
    vdd_v: float = VDD_V

    @property
    def conversion_s(self) -> float:
        return 1.0 / self.data_rate_sps

    @property
    def lsb_v(self) -> float:
        return self.full_scale_v / 32768.0

    @property
    def pin_range_v(self) -> tuple[float, float]:
        if self.negative is not None:
            return (-self.full_scale_v, self.full_scale_v)
        return (0.0, min(self.full_scale_v, self.vdd_v))

    def describe(self) -> str:
        where = f"AIN{self.positive}" + (f"-AIN{self.negative}" if self.negative is not None
                                         else "")
        return f"0x{self.address:02X}:{where}"


def _timing_bias_s(inp: Ads1115Input, bus: BusEstimate) -> float:
    """Bound of the bias of an input's sample instants against another chip's [s].

    Single-shot: an instant is the middle of the driver call, whose end waits for
    the OS-bit poll that sees the conversion done: up to one poll transaction after
    it, i.e. up to half a poll on the middle. The chips' periods differ (their
    oscillators), so how late that poll comes differs too: two chips' instants can
    be off by half a poll, a quarter each. Continuous: the result's instant is
    inferred from the nominal period, off by the oscillator tolerance.
    """
    poll = bus.transaction_s(3, 2)
    if inp.continuous:
        return OSCILLATOR_TOLERANCE * inp.conversion_s + poll / 4
    return poll / 4


def _expected_cycle_s(inputs: Sequence[Ads1115Input], bus: BusEstimate) -> float:
    """Expected time of one round over all inputs [s]."""
    total = 0.0
    for inp in inputs:
        if inp.continuous:
            total += bus.transaction_s(2)
        else:
            # config write, wake-up, conversion, on average half a poll late, result read
            poll = bus.transaction_s(3, 2)
            total += bus.transaction_s(3) + WAKEUP_S + inp.conversion_s + 1.5 * poll + poll
    return total


def plan_inputs(
    cfg: GridGuardConfig,
    *,
    calibrated: bool = True,
    vdd_v: float = VDD_V,
    bus: BusEstimate | None = None,
    cache: dict[Path, CalibrationFile] | None = None,
) -> tuple[Ads1115Input, ...]:
    """The channels of an ``ads1115`` configuration, in config order, with their inputs."""
    src = cfg.source
    if src.type is not SourceType.ADS1115 or src.ads1115 is None:
        raise ValueError(f"source.type: expected ads1115, got {src.type}")
    devices = {d.address: d for d in src.ads1115.devices}
    per_device: dict[int, int] = {}
    refs = []
    for kind, k, ch in cfg.channels.all():
        if ch.adc is None:
            raise ValueError(f"channels.{kind}[{k}].adc: required for an ads1115 source")
        address = ch.adc.device if ch.adc.device is not None else next(iter(devices))
        dev = devices.get(address)
        if dev is None:
            raise ValueError(
                f"channels.{kind}[{k}].adc.device: 0x{address:02X} is not in "
                "source.ads1115.devices"
            )
        if ch.adc.differential is not None:
            pair = (ch.adc.differential[0], ch.adc.differential[1])
            if pair not in DIFFERENTIAL_PAIRS:
                raise ValueError(
                    f"channels.{kind}[{k}].adc.differential: the ADS1115 offers "
                    f"{sorted(DIFFERENTIAL_PAIRS)}, got {list(pair)}"
                )
            pos, neg = pair[0], pair[1]
        elif ch.adc.channel is not None and ch.adc.channel <= 3:
            pos, neg = ch.adc.channel, None
        else:
            raise ValueError(f"channels.{kind}[{k}].adc: needs channel 0..3 or differential")
        per_device[address] = per_device.get(address, 0) + 1
        refs.append((ch, dev, pos, neg))
    # A V/I pair needs the two sample instants to within microseconds; in continuous
    # mode they are only known to the chip's oscillator tolerance (±10 % of a
    # period, 2° at 50 Hz), so continuous mode is kept for channels without a partner.
    paired = {c for circuit in cfg.circuits for c in circuit.current_channels}
    paired |= {v for circuit in cfg.circuits for v in cfg.voltage_channels_for(circuit.id)}
    inputs = []
    for ch, dev, pos, neg in refs:
        transfer = transfer_of(ch)
        cal = calibration_for(ch, cache=cache) if calibrated else IDENTITY
        scale = max([cal.gain] + [g for _, g in cal.gain_points])
        lo, hi = (-dev.full_scale_v, dev.full_scale_v) if neg is not None else (
            0.0, min(dev.full_scale_v, vdd_v))
        info = ChannelInfo(
            id=ch.id,
            quantity=ch.quantity,
            phase=ch.phase,
            circuit=cfg.circuit_of_channel(ch.id),
            resolution=resolution_physical(transfer, dev.full_scale_v / 32768.0) * scale,
            full_scale=full_scale_physical(transfer, lo, hi) * scale,
            calibration_id=cal.id,
        )
        inputs.append(Ads1115Input(
            info=info, address=dev.address, positive=pos, negative=neg,
            full_scale_v=dev.full_scale_v, data_rate_sps=dev.data_rate_sps,
            continuous=(src.ads1115.continuous and per_device[dev.address] == 1
                        and ch.id not in paired),
            transfer=transfer, calibration=cal, vdd_v=vdd_v,
        ))
    # expected rate and the position of each input in the round (skew)
    estimate = bus or BusEstimate()
    cycle = _expected_cycle_s(inputs, estimate)
    out = []
    offset = 0.0
    for inp in inputs:
        period = max(cycle, (1 + OSCILLATOR_TOLERANCE) * inp.conversion_s) if inp.continuous \
            else cycle
        mid = offset + (estimate.transaction_s(3) + WAKEUP_S + inp.conversion_s / 2
                        if not inp.continuous else estimate.transaction_s(2) - inp.conversion_s)
        out.append(replace(inp, info=replace(inp.info, rate_hz=1.0 / period, skew_s=mid)))
        offset += _expected_cycle_s([inp], estimate)
    return tuple(out)


def capabilities_of(inputs: Sequence[Ads1115Input], cfg: GridGuardConfig) -> SourceCapabilities:
    return SourceCapabilities(
        channels=tuple(i.info for i in inputs),
        simultaneous=False,
        waveform=False,
        nominal_frequency_hz=float(cfg.system.nominal_frequency_hz),
        nominal_voltage_v=cfg.system.nominal_voltage_v,
    )


def circuits_of(cfg: GridGuardConfig) -> tuple[CircuitSpec, ...]:
    return tuple(
        CircuitSpec(c.id, tuple(c.current_channels), cfg.voltage_channels_for(c.id))
        for c in cfg.circuits
    )


class Ads1115Reader:
    """The chips through the Adafruit driver: scans the inputs for a while.

    The driver's own quirks shape this class (adafruit-circuitpython-ads1x15 3.0):
    in continuous mode ``read(pin)`` keeps whatever MUX the config register holds,
    and its fast path reads the register the pointer was last set to. So an input
    is first read once in single-shot mode (MUX set), then the mode is switched
    and the pointer is set back to the conversion register before fast reads.
    """

    def __init__(self, inputs: Sequence[Ads1115Input], bus: I2cBus, clock: Clock,
                 *, bus_number: int = 1) -> None:
        try:
            from adafruit_ads1x15.ads1x15 import Mode
            from adafruit_ads1x15.ads1115 import ADS1115
            from adafruit_ads1x15.analog_in import AnalogIn
        except ImportError as exc:
            raise HardwareUnavailableError(
                f"ADS1115: cannot import {exc.name!r}; install adafruit-circuitpython-ads1x15 "
                "and adafruit-blinka (pip install 'gridguard[pi]')"
            ) from None
        self.inputs = tuple(inputs)
        self.clock = clock
        self._bus = bus
        chips: dict[int, Any] = {}
        self._analog: list[Any] = []
        for inp in self.inputs:
            chip = chips.get(inp.address)
            if chip is None:
                try:
                    chip = ADS1115(bus, gain=PGA_GAIN[inp.full_scale_v],
                                   data_rate=inp.data_rate_sps, mode=Mode.SINGLE,
                                   address=inp.address)
                except ValueError:
                    raise HardwareUnavailableError(
                        f"ADS1115 at 0x{inp.address:02X} does not answer on I2C bus "
                        f"{bus_number}: check power, SDA/SCL and the ADDR pin "
                        "(`gridguard sensors scan` lists what answers)"
                    ) from None
                chips[inp.address] = chip
            if inp.negative is None:
                self._analog.append(AnalogIn(chip, inp.positive))
            else:
                self._analog.append(AnalogIn(chip, inp.positive, inp.negative))
        self._next_due = [0.0] * len(self.inputs)
        slowest = 0.0
        for k, inp in enumerate(self.inputs):
            if not inp.continuous:
                continue
            chip = chips[inp.address]
            _ = self._analog[k].value  # single-shot: puts this input's MUX in the register
            chip.mode = Mode.CONTINUOUS
            chip.get_last_result(False)  # pointer back to the conversion register
            slowest = max(slowest, (1 + OSCILLATOR_TOLERANCE) * inp.conversion_s)
        if slowest:
            # the first continuous result needs one full conversion after the switch
            self.clock.sleep(2 * slowest)

    def acquire(self, duration_s: float) -> SampleSet:
        """Scan every input round-robin for ``duration_s``; physical units, uncalibrated."""
        if not duration_s > 0:
            raise ValueError(f"duration_s: must be > 0, got {duration_s}")
        clock = self.clock
        n = len(self.inputs)
        t_lists: list[list[float]] = [[] for _ in range(n)]
        codes: list[list[int | None]] = [[] for _ in range(n)]
        start_mono = clock.monotonic()
        start_ns = clock.now_ns()
        end = start_mono + duration_s
        while clock.monotonic() < end:
            waited = True
            for k, inp in enumerate(self.inputs):
                now = clock.monotonic()
                if inp.continuous and now < self._next_due[k]:
                    continue
                waited = False
                t0 = now
                try:
                    code: int | None = int(self._analog[k].value)
                except OSError:
                    code = None  # a failed transfer is a missing sample, never a crash
                    if not inp.continuous:
                        # a conversion may still be running; a config written now would
                        # be ignored and its result read as the next input's
                        clock.sleep((1 + OSCILLATOR_TOLERANCE) * inp.conversion_s)
                t1 = clock.monotonic()
                if inp.continuous:
                    # the result finished somewhere in the last period: its middle is,
                    # on average, one period before the read
                    t = t1 - inp.conversion_s
                    self._next_due[k] = t0 + (1 + OSCILLATOR_TOLERANCE) * inp.conversion_s
                else:
                    t = 0.5 * (t0 + t1)
                t_lists[k].append(t)
                codes[k].append(code)
            if waited:
                nxt = min(self._next_due[k] for k, i in enumerate(self.inputs) if i.continuous)
                clock.sleep(max(nxt - clock.monotonic(), 0.0))
        channels = []
        for k, inp in enumerate(self.inputs):
            t_mono = np.asarray(t_lists[k], dtype=np.float64)
            raw = np.array([c if c is not None else 0 for c in codes[k]], dtype=np.int64)
            failed = np.array([c is None for c in codes[k]], dtype=bool)
            v_pin = raw.astype(np.float64) * inp.lsb_v
            values = pin_to_physical(v_pin, inp.transfer)
            values[failed] = np.nan
            lo, hi = inp.pin_range_v
            clipped = ~failed & ((v_pin <= lo + inp.lsb_v / 2) | (v_pin >= hi - inp.lsb_v / 2)
                                 | (raw >= 32767) | (raw <= -32768))
            t_ns = start_ns + np.rint((t_mono - start_mono) * NS_PER_S).astype(np.int64)
            channels.append(ChannelSamples(
                info=replace(inp.info, calibration_id=None),
                t_ns=t_ns, values=values, clipped=clipped, codes=raw,
            ))
        end_ns = start_ns + round((clock.monotonic() - start_mono) * NS_PER_S)
        return SampleSet(start_ns=start_ns, end_ns=end_ns, channels=tuple(channels))


class Ads1115Source:
    """ADS1115 channels as a :class:`~.meter.MeterSource`: one 150/180-cycle record per read.

    Parameters
    ----------
    cfg : GridGuardConfig
        With ``source.type: ads1115``; channels need ``adc`` and ``sensor``.
    hardware : HardwareEnvironment | None
        Buses and clock (default: :func:`hardware_environment`).
    calibrated : bool
        Apply each channel's calibration (False for `gridguard calibrate`).
    """

    def __init__(
        self,
        cfg: GridGuardConfig,
        *,
        hardware: HardwareEnvironment | None = None,
        calibrated: bool = True,
        sensor_settings: SensorSettings | None = None,
    ) -> None:
        src = cfg.source.ads1115
        if cfg.source.type is not SourceType.ADS1115 or src is None:
            raise ValueError(f"source.type: expected ads1115, got {cfg.source.type}")
        self._cfg = cfg
        self.inputs = plan_inputs(cfg, calibrated=calibrated)
        self._caps = capabilities_of(self.inputs, cfg)
        env = hardware or hardware_environment()
        self._reader = Ads1115Reader(self.inputs, env.i2c(src.bus), env.clock,
                                     bus_number=src.bus)
        f_nom = float(cfg.system.nominal_frequency_hz)
        self.settings = SlowAdcSettings(
            f_nominal_hz=f_nom,
            conversion_s={i.info.id: i.conversion_s for i in self.inputs},
            timing_jitter_s={i.info.id: (i.conversion_s if i.continuous else 0.0)
                             for i in self.inputs},
            timing_bias_s={i.info.id: _timing_bias_s(i, BusEstimate()) for i in self.inputs},
            timing_group={i.info.id: f"0x{i.address:02X}" for i in self.inputs},
            phase_uncertainty_deg={
                i.info.id: i.calibration.phase_uncertainty_deg for i in self.inputs
                if i.calibration.phase_uncertainty_deg is not None
            },
            harmonic_orders=HARMONIC_ORDERS,
            accuracy_rms_pct=RMS_ACCURACY_PCT,
            accuracy_power_pct_of_s=POWER_ACCURACY_PCT_OF_S,
        )
        self._circuits = circuits_of(cfg)
        self._calibrations = {i.info.id: i.calibration for i in self.inputs}
        self._energy = EnergyCounters()
        self._last_end_ns: int | None = None
        ids = itertools.count(1)
        self._sensor = SensorFaultDetector(
            [i.info for i in self.inputs],
            [str(i.info.phase) if i.info.phase else "" for i in self.inputs],
            sensor_settings or SensorSettings(),
            f_nom,
            lambda: next(ids),
        )

    @property
    def capabilities(self) -> SourceCapabilities:
        return self._caps

    @property
    def clock(self) -> Clock:
        return self._reader.clock

    def acquire(self, duration_s: float, *, calibrated: bool = True) -> SampleSet:
        """Raw scan of every channel for ``duration_s`` (diagnostics and calibration)."""
        raw = self._reader.acquire(duration_s)
        if not calibrated:
            return raw
        return calibrate_sample_set(raw, self._calibrations, self.settings.f_nominal_hz)

    def read(self) -> MeterBatch:
        samples = self.acquire(self.settings.window_s)
        # windows follow each other with a short pause for computing; the power of a
        # window stands for that pause too, unless the pause was long (a stall)
        since = None
        if self._last_end_ns is not None:
            gap_s = (samples.start_ns - self._last_end_ns) / NS_PER_S
            if 0 <= gap_s <= MAX_ENERGY_GAP_S:
                since = (samples.end_ns - self._last_end_ns) / NS_PER_S
        self._last_end_ns = samples.end_ns
        metrics, self._energy = window_metrics(samples, self._circuits, self.settings,
                                               self._energy, since)
        ended, started = self._sensor_faults(samples, metrics)
        return MeterBatch(metrics=tuple(metrics), events=tuple(ended), started=tuple(started))

    def _sensor_faults(self, samples: SampleSet, metrics: Sequence[Any]
                       ) -> tuple[list[Event], list[Event]]:
        n = min(c.n for c in samples.channels)
        if n < 4:
            return [], []
        x: NDArray[np.float64] = np.stack([c.values[:n] for c in samples.channels])
        fs = n / samples.duration_s
        f = next((m.fields.get("frequency_hz") for m in metrics
                  if isinstance(m.fields.get("frequency_hz"), float)), None)
        f_hz = float(f) if isinstance(f, float) else self.settings.f_nominal_hz
        return self._sensor.process(x, samples.start_ns, fs, f_hz)

    def close(self) -> MeterBatch:
        return MeterBatch(events=tuple(self._sensor.close()))


def full_scale_note(inp: Ads1115Input) -> str:
    """Human-readable range of an input, for the CLI."""
    lo, hi = inp.pin_range_v
    return f"{inp.describe()} {lo:+.3f}..{hi:+.3f} V at the pin, ±{inp.info.full_scale:.4g} " \
           f"{inp.info.unit} after the sensor"

