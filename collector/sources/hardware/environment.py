"""Where the hardware sources get their buses and their time from.

On the Pi this is :class:`RealHardware`: blinka's ``busio.I2C`` (or
``adafruit_extended_bus.ExtendedI2C`` for a bus other than 1), ``spidev`` and the
system clock, each imported only when first asked for, so that everything else
runs on any machine.

Tests, demos and the CLI can run the same code against emulated devices: set
``GRIDGUARD_HARDWARE_EMULATOR=module:callable``; the callable is imported and
called with no arguments and must return a :class:`HardwareEnvironment` (the
repository's own is ``tests.hardware.emulated:environment``, which reads its
scenario from ``GRIDGUARD_EMULATOR_SCENARIO``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Protocol, cast

from collector.clock import Clock, SystemClock

EMULATOR_ENV = "GRIDGUARD_HARDWARE_EMULATOR"


class I2cBus(Protocol):
    """The part of ``busio.I2C`` that ``adafruit_bus_device`` and a bus scan use."""

    def try_lock(self) -> bool: ...

    def unlock(self) -> None: ...

    def scan(self) -> list[int]: ...

    def writeto(self, address: int, buffer: bytes | bytearray, *, start: int = 0,
                end: int | None = None) -> None: ...

    def readfrom_into(self, address: int, buffer: bytearray, *, start: int = 0,
                      end: int | None = None) -> None: ...

    def writeto_then_readfrom(
        self, address: int, buffer_out: bytes | bytearray, buffer_in: bytearray, *,
        out_start: int = 0, out_end: int | None = None, in_start: int = 0,
        in_end: int | None = None,
    ) -> None: ...


class SpiDevice(Protocol):
    """The part of ``spidev.SpiDev`` an MCP3008 needs (already opened)."""

    max_speed_hz: int
    mode: int

    def xfer2(self, data: Sequence[int]) -> list[int]: ...

    def close(self) -> None: ...


class HardwareEnvironment(Protocol):
    """Buses and the clock the hardware sources use."""

    @property
    def clock(self) -> Clock: ...

    def i2c(self, bus: int) -> I2cBus: ...

    def spi(self, bus: int, device: int) -> SpiDevice: ...


class HardwareUnavailableError(RuntimeError):
    """A hardware library or device node is missing; the message says what to install."""


class RealHardware:
    """The Pi's buses through blinka and spidev, and the system clock."""

    def __init__(self) -> None:
        self._clock = SystemClock()

    @property
    def clock(self) -> Clock:
        return self._clock

    def i2c(self, bus: int) -> I2cBus:
        try:
            # imported by name: these exist (and type-check) only where installed
            if bus == 1:
                board = importlib.import_module("board")
                busio = importlib.import_module("busio")
                return cast(I2cBus, busio.I2C(board.SCL, board.SDA))
            extended = importlib.import_module("adafruit_extended_bus")
            return cast(I2cBus, extended.ExtendedI2C(bus))
        except ImportError as exc:
            package = "adafruit-blinka" if bus == 1 else "adafruit-extended-bus"
            raise HardwareUnavailableError(
                f"I2C bus {bus}: cannot import {exc.name!r}; install {package} "
                "(pip install 'gridguard[pi]')"
            ) from None
        except (OSError, RuntimeError, ValueError) as exc:
            raise HardwareUnavailableError(
                f"I2C bus {bus}: cannot open /dev/i2c-{bus}: {exc}; enable I2C "
                "(raspi-config, or dtparam=i2c_arm=on) and check the user is in group i2c"
            ) from None

    def spi(self, bus: int, device: int) -> SpiDevice:
        try:
            spidev = importlib.import_module("spidev")
        except ImportError:
            raise HardwareUnavailableError(
                "SPI: cannot import 'spidev'; install it on the Pi (pip install "
                "'gridguard[pi]')"
            ) from None
        dev = spidev.SpiDev()
        try:
            dev.open(bus, device)
        except OSError as exc:
            raise HardwareUnavailableError(
                f"SPI: cannot open /dev/spidev{bus}.{device}: {exc.strerror or exc}; enable "
                "SPI (dtparam=spi=on)"
            ) from None
        return cast(SpiDevice, dev)


def hardware_environment() -> HardwareEnvironment:
    """The emulator named by ``GRIDGUARD_HARDWARE_EMULATOR``, else the real hardware."""
    spec = os.environ.get(EMULATOR_ENV, "").strip()
    if not spec:
        return RealHardware()
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise HardwareUnavailableError(
            f"{EMULATOR_ENV}: expected 'module:callable', got {spec!r}"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise HardwareUnavailableError(f"{EMULATOR_ENV}: cannot load {spec!r}: {exc}") from None
    return cast(HardwareEnvironment, factory())
