"""PZEM-004T v3.0 meters as a real pymodbus RTU server on a pseudo-terminal pair.

The "wire" between the client and the server is a relay between two pty pairs
(the client opens one slave end, the server the other): it forwards whole frames
and can make a meter absent (its requests reach nobody), garble a meter's replies
(one byte flipped: a CRC error) or swallow them (a timeout). The meters' register
contents follow a :class:`MeterModel` per address, written into the registers on
every read; function 0x42 (energy reset) is served by a custom PDU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType

FRAME_GAP_S = 0.004  # 3.5 characters at 9600 baud, rounded up


@dataclass
class MeterModel:
    """What one PZEM measures, in physical units."""

    voltage_v: float = 230.0
    current_a: float = 0.0
    power_w: float = 0.0
    energy_wh: int = 0
    frequency_hz: float = 50.0
    power_factor: float = 1.0
    alarm: bool = False

    def registers(self) -> list[int]:
        """Input registers 0x0000..0x0009 (PZEM-004T V3.0 manual §2.3)."""
        cur = round(self.current_a * 1000)
        pw = round(self.power_w * 10)
        en = int(self.energy_wh)
        return [
            round(self.voltage_v * 10),
            cur & 0xFFFF, cur >> 16,
            pw & 0xFFFF, pw >> 16,
            en & 0xFFFF, en >> 16,
            round(self.frequency_hz * 10),
            round(self.power_factor * 100),
            0xFFFF if self.alarm else 0,
        ]


@dataclass
class Wire:
    """Fault plan of the relay, changeable while the server runs."""

    absent: set[int] = field(default_factory=set)
    garble: set[int] = field(default_factory=set)
    swallow: set[int] = field(default_factory=set)
    log: list[tuple[str, bytes]] = field(default_factory=list)  # ("request"|"reply", frame)


def _relay(a: int, b: int, wire: Wire, stop: threading.Event) -> None:
    """Copy frames a->b (requests) and b->a (replies), applying the wire's faults."""
    buffers = {a: b"", b: b""}
    last = {a: 0.0, b: 0.0}
    while not stop.is_set():
        ready, _, _ = select.select([a, b], [], [], FRAME_GAP_S)
        now = time.monotonic()
        for fd in ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            buffers[fd] += chunk
            last[fd] = now
        for src, dst in ((a, b), (b, a)):
            frame = buffers[src]
            if not frame or now - last[src] < FRAME_GAP_S:
                continue
            buffers[src] = b""
            wire.log.append(("request" if src == a else "reply", frame))
            address = frame[0]
            if src == a and address in wire.absent:
                continue  # nobody on the bus answers this address
            if src == b and address in wire.swallow:
                continue
            if src == b and address in wire.garble:
                frame = frame[:2] + bytes([frame[2] ^ 0x5A]) + frame[3:]
            os.write(dst, frame)


def _raw_pty() -> tuple[int, int, str]:
    import tty

    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def _reset_pdu(meters: dict[int, MeterModel]) -> type[ModbusPDU]:
    class ResetEnergyServer(ModbusPDU):
        function_code = 0x42
        rtu_frame_size = 4

        def encode(self) -> bytes:
            return b""

        def decode(self, data: bytes) -> None:
            del data

        async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
            del context
            meters[device_id].energy_wh = 0
            return ResetEnergyServer(dev_id=device_id)

    return ResetEnergyServer


def _device(address: int, meter: MeterModel) -> SimDevice:
    async def refresh(function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], values: list[int] | list[bool] | None
                      ) -> ExcCodes | None:
        del start_address, address, count, values
        if function_code == 4:
            registers[:10] = meter.registers()
        return None

    return SimDevice(
        id=address,
        simdata=(
            [SimData(0, values=False, datatype=DataType.BITS)],
            [SimData(0, values=False, datatype=DataType.BITS)],
            # holding: 0x0001 alarm threshold [W], 0x0002 slave address
            [SimData(1, values=[2300, address], datatype=DataType.REGISTERS)],
            [SimData(0, values=meter.registers(), datatype=DataType.REGISTERS)],
        ),
        action=refresh,
    )


@dataclass
class PzemServer:
    port: str  # what the client opens
    meters: dict[int, MeterModel]
    wire: Wire


@contextmanager
def pzem_server(meters: dict[int, MeterModel]) -> Iterator[PzemServer]:
    """Meters on a pty bus; yields the client's port. Everything stops on exit."""
    c_master, c_slave, c_name = _raw_pty()
    s_master, s_slave, s_name = _raw_pty()
    wire = Wire()
    stop = threading.Event()
    relay = threading.Thread(target=_relay, args=(c_master, s_master, wire, stop), daemon=True)
    relay.start()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        server = ModbusSerialServer(
            [_device(a, m) for a, m in meters.items()],
            port=s_name, baudrate=9600, custom_pdu=[_reset_pdu(meters)],
        )
        holder["server"] = server
        await server.serve_forever(background=True)
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(5.0):
        raise RuntimeError("pymodbus server did not start")
    try:
        yield PzemServer(c_name, meters, wire)
    finally:
        async def shutdown() -> None:
            await holder["server"].shutdown()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5.0)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        loop.close()
        stop.set()
        relay.join(5.0)
        for fd in (c_master, c_slave, s_master, s_slave):
            with contextlib.suppress(OSError):
                os.close(fd)
