"""PZEM-004T v3.0 energy meters over Modbus RTU (pymodbus) as a meter source.

Protocol, from the Peacefair/Innovators Guru "PZEM-004T V3.0 User Manual", §2
(Modbus-RTU, 9600 baud, 8N1):

===========  =====================================  ==========
input reg.   value                                  1 LSB
===========  =====================================  ==========
0x0000       voltage                                0.1 V
0x0001/02    current, low / high 16 bits            0.001 A
0x0003/04    active power, low / high 16 bits       0.1 W
0x0005/06    active energy, low / high 16 bits      1 Wh
0x0007       frequency                              0.1 Hz
0x0008       power factor                           0.01
0x0009       power alarm (0xFFFF alarm, 0 none)
===========  =====================================  ==========

Holding registers: 0x0001 power alarm threshold (1 W), 0x0002 slave address
(0x01..0xF7). Function 0x42 resets the energy counter: the request is
``address 0x42 CRC`` and a good reply echoes it; a refusal is ``address 0xC2 code
CRC``. Accuracy (manual §1): ±0.5 % for V, I, P and energy, ±0.5 % frequency, ±1 %
power factor; range 80..260 V, 0..10 A or 0..100 A (external CT), 45..65 Hz.

How readings become Metrics (this is a :class:`~.meter.MeterSource`):

- one record per poll per meter, interval ``"reading"`` (the module's own ~1 s
  measurement), time = when the poll was made;
- the meter's voltage channel gives a voltage record; its current channel the
  circuit's record with V, I, P, S = V·I, N = sqrt(S² - P²), PF and frequency;
  Q1, displacement PF, harmonics, peaks are not measured by the module: None;
- the module measures |P|: it cannot see the direction of power. A circuit of
  ``kind: generation`` is reported as export (negative P, energy into
  ``energy_export_wh``); every other circuit as import;
- a meter that does not answer (timeout), answers garbled (CRC error) or refuses
  (Modbus exception) is named in the batch's ``errors``; the source goes on with
  the other meters, and after :data:`FAULT_AFTER_FAILURES` failed polls in a row a
  ``sensor_fault`` event (``fault: no_reply``/``crc_error``/``exception``) starts,
  ending when the meter answers again.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.calibration.apply import IDENTITY, ChannelCalibration, gain_at
from collector.calibration.resolve import calibration_for
from collector.clock import Clock, SystemClock
from collector.config.channels import AnyChannel
from collector.config.circuits import CircuitKind
from collector.config.models import GridGuardConfig
from collector.config.source import SourceType
from collector.model import (
    NS_PER_S,
    ChannelInfo,
    Event,
    EventType,
    Metrics,
    Quantity,
    Severity,
    SourceCapabilities,
)
from collector.sources.hardware.environment import HardwareUnavailableError
from collector.sources.hardware.meter import READING_INTERVAL, MeterBatch

INPUT_REGISTERS = 10
RESET_ENERGY_FUNCTION = 0x42
ACCURACY_PCT = 0.5
FAULT_AFTER_FAILURES = 3
DEFAULT_TIMEOUT_S = 0.5
MODBUS_EXCEPTIONS = {
    1: "illegal function", 2: "illegal address", 3: "illegal data", 4: "slave error",
}


@dataclass(frozen=True, slots=True)
class PzemReading:
    """One decoded reading of a PZEM-004T v3.0."""

    address: int
    voltage_v: float
    current_a: float
    power_w: float
    energy_wh: float
    frequency_hz: float
    power_factor: float
    alarm: bool


def decode_registers(address: int, regs: Sequence[int]) -> PzemReading:
    """The ten input registers 0x0000..0x0009 as a reading (scaling per the manual)."""
    if len(regs) != INPUT_REGISTERS:
        raise ValueError(
            f"registers: expected {INPUT_REGISTERS} input registers, got {len(regs)}"
        )
    if any(not 0 <= r <= 0xFFFF for r in regs):
        raise ValueError(f"registers: 16-bit values expected, got {list(regs)}")

    def u32(lo: int, hi: int) -> int:
        return (regs[hi] << 16) | regs[lo]  # low word first

    # divisions, not multiplications by 0.1: 2314 / 10 is exactly the decimal 231.4
    return PzemReading(
        address=address,
        voltage_v=regs[0] / 10,
        current_a=u32(1, 2) / 1000,
        power_w=u32(3, 4) / 10,
        energy_wh=float(u32(5, 6)),
        frequency_hz=regs[7] / 10,
        power_factor=regs[8] / 100,
        alarm=regs[9] == 0xFFFF,
    )


class PzemError(Exception):
    """A meter that did not deliver, with a kind for the event and a readable message."""

    def __init__(self, address: int, kind: str, message: str) -> None:
        self.address = address
        self.kind = kind
        self.message = message
        super().__init__(f"PZEM at address {address}: {message}")

    def __reduce__(self) -> tuple[type[PzemError], tuple[int, str, str]]:
        return (type(self), (self.address, self.kind, self.message))


def _reset_pdu_class() -> type[Any]:
    """The function 0x42 PDU (no data either way), built when pymodbus is imported."""
    from pymodbus.pdu import ModbusPDU

    class ResetEnergy(ModbusPDU):
        function_code = RESET_ENERGY_FUNCTION
        rtu_frame_size = 4  # address, function, CRC

        def encode(self) -> bytes:
            return b""

        def decode(self, data: bytes) -> None:
            del data

    return ResetEnergy


class PzemBus:
    """The RS485/TTL bus with its meters: a pymodbus RTU client, errors translated.

    Parameters
    ----------
    port : str
        Serial device (``/dev/ttyUSB0``, ``/dev/serial0``, a pty in tests).
    timeout_s : float
        How long to wait for a reply [s].
    """

    def __init__(self, port: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 baudrate: int = 9600) -> None:
        try:
            from pymodbus.client import ModbusSerialClient
        except ImportError as exc:
            raise HardwareUnavailableError(
                f"PZEM: cannot import {exc.name!r}; install pymodbus and pyserial"
            ) from None
        self.port = port
        self.timeout_s = timeout_s
        self._rx = b""
        self._reset_cls = _reset_pdu_class()
        # typed as Any: pymodbus' sync client leaves some methods unannotated
        self._client: Any = ModbusSerialClient(
            port, baudrate=baudrate, bytesize=8, parity="N", stopbits=1,
            timeout=timeout_s, retries=0, trace_packet=self._trace,
        )
        self._client.register(self._reset_cls)
        if not self._client.connect():
            raise HardwareUnavailableError(
                f"PZEM: cannot open serial port {port}: check the device exists, the user "
                "is in group dialout, and (for /dev/serial0) that the UART is enabled"
            )

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._rx = b""
        else:
            self._rx = bytes(data)
        return data

    def _call(self, address: int, call: Callable[[], Any]) -> Any:
        from pymodbus.exceptions import ConnectionException, ModbusException

        self._rx = b""
        try:
            response = call()
        except ConnectionException as exc:
            raise PzemError(address, "no_port", f"serial port {self.port}: {exc}") from None
        except ModbusException:
            if self._rx:
                raise PzemError(
                    address, "crc_error",
                    f"garbled reply (CRC error or wrong length): {self._rx.hex(' ')}",
                ) from None
            raise PzemError(
                address, "no_reply",
                f"no reply within {self.timeout_s:g} s (meter missing, unpowered, "
                "miswired A/B or TX/RX, or at another address)",
            ) from None
        if response is None:
            raise PzemError(address, "no_reply", "no reply")
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise PzemError(
                address, "exception",
                f"refused: Modbus exception {code} ({MODBUS_EXCEPTIONS.get(code, 'unknown')})",
            )
        return response

    def read(self, address: int) -> PzemReading:
        """Read one meter's ten input registers."""
        response = self._call(address, lambda: self._client.read_input_registers(
            0, count=INPUT_REGISTERS, device_id=address))
        try:
            return decode_registers(address, list(response.registers))
        except ValueError as exc:
            raise PzemError(address, "crc_error", f"malformed reply: {exc}") from None

    def reset_energy(self, address: int) -> None:
        """Zero the meter's energy counter (function 0x42)."""
        self._call(address, lambda: self._client.execute(
            False, self._reset_cls(dev_id=address)))

    def close(self) -> None:
        self._client.close()


@dataclass
class _MeterState:
    failures: int = 0
    first_failure_ns: int = 0
    fault_kind: str | None = None
    fault_start_ns: int = 0
    fault_id: int = 0


@dataclass(frozen=True, slots=True)
class _MeterPlan:
    address: int
    voltage: AnyChannel | None
    current: AnyChannel | None
    circuit: str | None
    generation: bool
    cal_v: ChannelCalibration = IDENTITY
    cal_i: ChannelCalibration = IDENTITY


@dataclass
class _Ids:
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next(self) -> int:
        return next(self.counter)


class PzemSource:
    """PZEM-004T meters as a :class:`~.meter.MeterSource` (see the module docstring).

    Parameters
    ----------
    cfg : GridGuardConfig
        With ``source.type: pzem``.
    bus : PzemBus | None
        Default: a :class:`PzemBus` on ``source.pzem.port``.
    clock : Clock | None
        Paces the polls (default: the system clock).
    """

    def __init__(self, cfg: GridGuardConfig, *, bus: PzemBus | None = None,
                 clock: Clock | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        src = cfg.source.pzem
        if cfg.source.type is not SourceType.PZEM or src is None:
            raise ValueError(f"source.type: expected pzem, got {cfg.source.type}")
        self._cfg = cfg
        self._poll_s = src.poll_interval_s
        self._clock = clock or SystemClock()
        self._plans = self._plan(cfg)
        self._bus = bus or PzemBus(src.port, timeout_s=timeout_s, baudrate=src.baudrate)
        self._state = {p.address: _MeterState() for p in self._plans}
        self._ids = _Ids()
        self._next_due: float | None = None
        self._caps = SourceCapabilities(
            channels=tuple(self._channel_info(ch) for _, _, ch in cfg.channels.all()),
            simultaneous=True,
            waveform=False,
            nominal_frequency_hz=float(cfg.system.nominal_frequency_hz),
            nominal_voltage_v=cfg.system.nominal_voltage_v,
        )

    def _channel_info(self, ch: AnyChannel) -> ChannelInfo:
        cal = calibration_for(ch)
        return ChannelInfo(
            id=ch.id, quantity=ch.quantity, phase=ch.phase,
            circuit=self._cfg.circuit_of_channel(ch.id),
            rate_hz=1.0 / self._poll_s,
            resolution=0.1 if ch.quantity is Quantity.VOLTAGE else 0.001,
            calibration_id=cal.id,
        )

    def _plan(self, cfg: GridGuardConfig) -> tuple[_MeterPlan, ...]:
        src = cfg.source.pzem
        assert src is not None
        plans = []
        for address in src.addresses:
            def on_meter(ch: AnyChannel, address: int = address) -> bool:
                dev = ch.adc.device if ch.adc is not None else None
                return (dev if dev is not None else src.addresses[0]) == address

            volt = next((c for c in cfg.channels.voltage if on_meter(c)), None)
            curr = next((c for c in cfg.channels.current if on_meter(c)), None)
            circuit = cfg.circuit_of_channel(curr.id) if curr is not None else None
            generation = (circuit is not None
                          and cfg.circuit(circuit).kind is CircuitKind.GENERATION)
            plans.append(_MeterPlan(
                address=address, voltage=volt, current=curr, circuit=circuit,
                generation=generation,
                cal_v=calibration_for(volt) if volt is not None else IDENTITY,
                cal_i=calibration_for(curr) if curr is not None else IDENTITY,
            ))
        return tuple(plans)

    @property
    def capabilities(self) -> SourceCapabilities:
        return self._caps

    @property
    def bus(self) -> PzemBus:
        return self._bus

    def read(self) -> MeterBatch:
        """Wait for the next poll time, then poll every meter once."""
        now = self._clock.monotonic()
        if self._next_due is None:
            self._next_due = now
        self._clock.sleep(self._next_due - now)
        self._next_due += self._poll_s
        metrics: list[Metrics] = []
        ended: list[Event] = []
        started: list[Event] = []
        errors: list[str] = []
        for plan in self._plans:
            t_ns = self._clock.now_ns()
            state = self._state[plan.address]
            try:
                reading = self._bus.read(plan.address)
            except PzemError as exc:
                errors.append(str(exc))
                state.failures += 1
                if state.failures == 1:
                    state.first_failure_ns = t_ns
                if state.failures == FAULT_AFTER_FAILURES:
                    # the fault began when the meter stopped answering, not when confirmed
                    state.fault_kind = exc.kind
                    state.fault_start_ns = state.first_failure_ns
                    state.fault_id = self._ids.next()
                    started.append(self._fault_event(plan, state, None))
                continue
            if state.fault_kind is not None:
                ended.append(self._fault_event(plan, state, t_ns))
                state.fault_kind = None
            state.failures = 0
            metrics.extend(self._metrics(plan, reading, t_ns))
        return MeterBatch(tuple(metrics), tuple(ended), tuple(started), tuple(errors))

    def _fault_event(self, plan: _MeterPlan, state: _MeterState, end_ns: int | None) -> Event:
        ch = plan.current or plan.voltage
        details: dict[str, float | str | int | bool] = {
            "event_id": state.fault_id,
            "fault": state.fault_kind or "no_reply",
            "meter_address": plan.address,
        }
        return Event(
            type=EventType.SENSOR_FAULT,
            start_ns=state.fault_start_ns,
            duration_s=None if end_ns is None else (end_ns - state.fault_start_ns) / NS_PER_S,
            phases=(str(ch.phase),) if ch is not None else (),
            severity=Severity.WARNING,
            channel=plan.circuit or (ch.id if ch is not None else None),
            details=details,
        )

    def _metrics(self, plan: _MeterPlan, r: PzemReading, t_ns: int) -> list[Metrics]:
        out = []
        v = (r.voltage_v - plan.cal_v.offset) * gain_at(r.voltage_v, plan.cal_v)
        i = max(r.current_a - plan.cal_i.offset, 0.0)
        i *= gain_at(i, plan.cal_i)
        gain_p = gain_at(r.voltage_v, plan.cal_v) * gain_at(i, plan.cal_i)
        common: dict[str, float | int | bool | str | None] = {
            "frequency_hz": r.frequency_hz if r.frequency_hz > 0 else None,
            "harmonics_max_order": 0,
            "sampling": "meter",
            "accuracy_rms_pct": ACCURACY_PCT,
            "flagged": False,
        }
        if plan.voltage is not None:
            out.append(Metrics(t_ns, READING_INTERVAL, plan.voltage.id, str(plan.voltage.phase), {
                **common,
                "voltage_rms_v": v,
                "voltage_fundamental_v": None,
                "voltage_peak_v": None,
                "voltage_thd_pct": None,
                "calibration_id": plan.cal_v.id,
            }))
        if plan.current is not None:
            p = r.power_w * gain_p
            s = v * i
            sign = -1.0 if plan.generation else 1.0
            cal_ids = [c for c in (plan.cal_v.id, plan.cal_i.id) if c]
            out.append(Metrics(t_ns, READING_INTERVAL, plan.circuit or plan.current.id,
                               str(plan.current.phase), {
                **common,
                "voltage_rms_v": v,
                "current_rms_a": i,
                "current_fundamental_a": None,
                "current_peak_a": None,
                "current_thd_pct": None,
                "power_active_w": sign * p,
                "power_apparent_va": s,
                "power_reactive_var": None,
                "power_nonactive_var": math.sqrt(max(s * s - p * p, 0.0)),
                "power_factor": sign * r.power_factor,
                "power_factor_displacement": None,
                "energy_import_wh": None if plan.generation else r.energy_wh,
                "energy_export_wh": r.energy_wh if plan.generation else None,
                "accuracy_power_pct_of_s": ACCURACY_PCT,
                "meter_alarm": r.alarm,
                "calibration_id": "+".join(dict.fromkeys(cal_ids)) or None,
            }))
        return out

    def reset_energy(self, address: int) -> None:
        """Zero one meter's energy counter (raises :class:`PzemError`)."""
        if address not in self._state:
            raise ValueError(
                f"address: {address} is not in source.pzem.addresses "
                f"{sorted(self._state)}"
            )
        self._bus.reset_energy(address)

    def close(self) -> MeterBatch:
        now_ns = self._clock.now_ns()
        ended = []
        for plan in self._plans:
            state = self._state[plan.address]
            if state.fault_kind is not None:
                ended.append(self._fault_event(plan, state, now_ns))
                state.fault_kind = None
        self._bus.close()
        return MeterBatch(events=tuple(ended))
