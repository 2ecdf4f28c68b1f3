"""Local outputs: buzzer, status LEDs and relays, behind one small interface.

Outputs are *logical* names (``buzzer``, ``led_warning``, ``led_critical``,
``relay:<circuit>``) switched on or off; a backend maps them to hardware:

* :class:`GpioOutputs` drives BCM GPIO pins through ``rpi-lgpio`` (its ``RPi.GPIO``
  compatible module, on the Raspberry Pi 5's RP1). It is imported only when this
  backend is built, never at import time, so nothing here needs the Pi.
* :class:`SimulatedOutputs` records every change with its time: the backend off the
  Pi and in tests.

Relays: *on* means the relay coil is energised, which the worker uses for "circuit
shed". Wire the contactor so that it *opens the load when energised* (a normally
closed contact in the load path): a crashed worker, a reboot or a dead Pi then
de-energises every relay and leaves all loads supplied.

Alarm patterns by severity (``ALARM_PATTERNS``): a warning blinks the warning LED at
1 Hz; a critical alert blinks the critical LED at 2 Hz and beeps the buzzer (0.5 s
every 2 s) until acknowledged; acknowledged alerts keep their LED lit steadily and
silence the buzzer. For an RGB LED, wire its red element to ``led_critical`` and
red + green (amber) to ``led_warning``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from collector.clock import Clock
from collector.model import Severity

log = logging.getLogger(__name__)

BUZZER = "buzzer"
LED_WARNING = "led_warning"
LED_CRITICAL = "led_critical"
ALARM_OUTPUTS = (BUZZER, LED_WARNING, LED_CRITICAL)
RELAY_PREFIX = "relay:"


def relay_output(circuit: str) -> str:
    """Logical output name of the relay switching ``circuit``."""
    return RELAY_PREFIX + circuit


class Outputs(Protocol):
    """Switches logical outputs; ``set`` must be cheap and never block for long."""

    def set(self, name: str, on: bool) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OutputChange:
    """One recorded switching: monotonic time [s], wall time [ns], output, new level."""

    t_s: float
    time_ns: int
    name: str
    on: bool


class SimulatedOutputs:
    """Records changes instead of switching pins (off the Pi, and in tests)."""

    def __init__(self, clock: Clock, *, log_changes: bool = False) -> None:
        self._clock = clock
        self._log = log_changes
        self._lock = threading.Lock()
        self._state: dict[str, bool] = {}
        self._changes: list[OutputChange] = []

    def set(self, name: str, on: bool) -> None:
        with self._lock:
            if self._state.get(name, False) == on:
                return
            self._state[name] = on
            change = OutputChange(self._clock.monotonic(), self._clock.now_ns(), name, on)
            self._changes.append(change)
        if self._log:
            log.info("output %s -> %s (simulated)", name, "on" if on else "off")

    def state(self, name: str) -> bool:
        with self._lock:
            return self._state.get(name, False)

    def changes(self, name: str | None = None) -> list[OutputChange]:
        with self._lock:
            return [c for c in self._changes if name is None or c.name == name]

    def close(self) -> None:
        for name in list(self._state):
            self.set(name, False)


@dataclass(frozen=True, slots=True)
class PinSpec:
    """A BCM GPIO pin and whether a high level means *on*."""

    pin: int
    active_high: bool = True


def is_raspberry_pi(model_path: Path = Path("/proc/device-tree/model")) -> bool:
    """True on a Raspberry Pi (the device tree names the board)."""
    try:
        return model_path.read_bytes().startswith(b"Raspberry Pi")
    except OSError:
        return False


class GpioOutputs:
    """Outputs on GPIO pins via rpi-lgpio (``RPi.GPIO`` API), imported lazily."""

    def __init__(self, pins: Mapping[str, PinSpec], gpio: Any | None = None) -> None:
        seen: dict[int, str] = {}
        for name, spec in pins.items():
            if spec.pin in seen:
                raise ValueError(f"pins[{name!r}]: GPIO {spec.pin} already used by "
                                 f"{seen[spec.pin]!r}")
            seen[spec.pin] = name
        # rpi-lgpio installs the module RPi.GPIO; importing it off the Pi fails.
        self._gpio = gpio if gpio is not None else importlib.import_module("RPi.GPIO")
        self._pins = dict(pins)
        self._lock = threading.Lock()
        self._gpio.setmode(self._gpio.BCM)
        self._gpio.setwarnings(False)
        for spec in self._pins.values():
            # start inactive: relays de-energised (loads on), LEDs and buzzer off
            self._gpio.setup(spec.pin, self._gpio.OUT, initial=self._level(spec, False))

    def _level(self, spec: PinSpec, on: bool) -> Any:
        return self._gpio.HIGH if on == spec.active_high else self._gpio.LOW

    def set(self, name: str, on: bool) -> None:
        spec = self._pins.get(name)
        if spec is None:
            return  # an output the installation does not have (e.g. no buzzer)
        with self._lock:
            self._gpio.output(spec.pin, self._level(spec, on))

    def close(self) -> None:
        with self._lock:
            for spec in self._pins.values():
                self._gpio.output(spec.pin, self._level(spec, False))
            self._gpio.cleanup([s.pin for s in self._pins.values()])


@dataclass(frozen=True, slots=True)
class Blink:
    """A periodic pattern: on for ``on_s``, off for ``off_s`` [s]; ``off_s`` 0 = steady."""

    on_s: float
    off_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.on_s > 0 or self.off_s < 0:
            raise ValueError(f"Blink: need on_s > 0 and off_s >= 0, got {self.on_s}, "
                             f"{self.off_s}")

    def level(self, elapsed_s: float) -> bool:
        """Output level ``elapsed_s`` seconds after the pattern started."""
        if self.off_s == 0:
            return True
        period = self.on_s + self.off_s
        # a tiny epsilon keeps exact multiples of the period on the "on" side
        return (elapsed_s + 1e-9) % period < self.on_s


STEADY = Blink(1.0)

ALARM_PATTERNS: Mapping[tuple[Severity, bool], Mapping[str, Blink]] = MappingProxyType({
    (Severity.WARNING, True): MappingProxyType({LED_WARNING: Blink(0.5, 0.5)}),
    (Severity.WARNING, False): MappingProxyType({LED_WARNING: STEADY}),
    (Severity.CRITICAL, True): MappingProxyType({
        LED_CRITICAL: Blink(0.25, 0.25), BUZZER: Blink(0.5, 1.5),
    }),
    (Severity.CRITICAL, False): MappingProxyType({LED_CRITICAL: STEADY}),
})
"""(severity, unacknowledged) -> output -> pattern; outputs not listed stay off."""


class AlarmDriver:
    """Renders the alarm state on the outputs; call :meth:`update` every ~50 ms."""

    def __init__(
        self, outputs: Outputs,
        patterns: Mapping[tuple[Severity, bool], Mapping[str, Blink]] = ALARM_PATTERNS,
    ) -> None:
        self._outputs = outputs
        self._patterns = patterns
        self._alarm: tuple[Severity, bool] | None = None
        self._since_s = 0.0
        self._levels: dict[str, bool] = {}

    def update(self, now_s: float, alarm: tuple[Severity, bool] | None) -> None:
        """Show ``alarm`` (highest severity, unacknowledged?) or nothing at ``now_s`` [s]."""
        if alarm != self._alarm:
            self._alarm = alarm
            self._since_s = now_s
        pattern = self._patterns.get(alarm, {}) if alarm is not None else {}
        for name in ALARM_OUTPUTS:
            blink = pattern.get(name)
            level = blink.level(now_s - self._since_s) if blink is not None else False
            if self._levels.get(name) != level:
                self._levels[name] = level
                self._outputs.set(name, level)
