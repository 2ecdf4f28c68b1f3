"""Local outputs: alarm patterns by severity on the simulated backend, the GPIO backend's
pin levels and polarity (with a stand-in for the RPi.GPIO module), lazy import."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import pytest

import collector.worker
from collector.clock import FakeClock
from collector.model import Severity
from collector.worker.outputs import (
    BUZZER,
    LED_CRITICAL,
    LED_WARNING,
    AlarmDriver,
    GpioOutputs,
    OutputChange,
    PinSpec,
    SimulatedOutputs,
    relay_output,
)

TICK_S = 0.05


def _run(alarm: tuple[Severity, bool] | None, seconds: float) -> SimulatedOutputs:
    clock = FakeClock()
    outputs = SimulatedOutputs(clock)
    driver = AlarmDriver(outputs)
    for _ in range(round(seconds / TICK_S)):
        driver.update(clock.monotonic(), alarm)
        clock.sleep(TICK_S)
    return outputs


def _on_intervals(changes: list[OutputChange], end_s: float) -> list[tuple[float, float]]:
    """(start, length) of every 'on' period, from the recorded changes."""
    out, start = [], None
    for c in changes:
        if c.on and start is None:
            start = c.t_s
        elif not c.on and start is not None:
            out.append((round(start, 6), round(c.t_s - start, 6)))
            start = None
    if start is not None:
        out.append((round(start, 6), round(end_s - start, 6)))
    return out


def test_critical_unacknowledged_fast_blink_and_buzzer() -> None:
    out = _run((Severity.CRITICAL, True), 4.0)
    led = _on_intervals(out.changes(LED_CRITICAL), 4.0)
    assert led[:4] == [(0.0, 0.25), (0.5, 0.25), (1.0, 0.25), (1.5, 0.25)]  # 2 Hz
    assert len(led) == 8
    assert _on_intervals(out.changes(BUZZER), 4.0) == [(0.0, 0.5), (2.0, 0.5)]
    assert out.changes(LED_WARNING) == []


def test_critical_acknowledged_is_steady_and_silent() -> None:
    out = _run((Severity.CRITICAL, False), 3.0)
    assert [(c.t_s, c.on) for c in out.changes(LED_CRITICAL)] == [(0.0, True)]
    assert out.changes(BUZZER) == []


def test_warning_blinks_the_warning_led_at_1hz_without_sound() -> None:
    out = _run((Severity.WARNING, True), 3.0)
    assert _on_intervals(out.changes(LED_WARNING), 3.0) == [(0.0, 0.5), (1.0, 0.5), (2.0, 0.5)]
    assert out.changes(BUZZER) == []
    assert out.changes(LED_CRITICAL) == []


def test_no_alarm_keeps_everything_off_and_clearing_switches_off() -> None:
    assert _run(None, 2.0).changes() == []
    clock = FakeClock()
    outputs = SimulatedOutputs(clock)
    driver = AlarmDriver(outputs)
    driver.update(0.0, (Severity.CRITICAL, True))
    driver.update(0.1, None)
    assert not any(outputs.state(n) for n in (BUZZER, LED_CRITICAL, LED_WARNING))


class FakeGpio:
    """Stand-in for rpi-lgpio's RPi.GPIO module: records every call."""

    BCM = "BCM"
    OUT = "OUT"
    HIGH = 1
    LOW = 0

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.levels: dict[int, int] = {}

    def setmode(self, mode: str) -> None:
        self.calls.append(("setmode", mode))

    def setwarnings(self, flag: bool) -> None:
        self.calls.append(("setwarnings", flag))

    def setup(self, pin: int, direction: str, initial: int) -> None:
        self.calls.append(("setup", pin, direction, initial))
        self.levels[pin] = initial

    def output(self, pin: int, level: int) -> None:
        self.calls.append(("output", pin, level))
        self.levels[pin] = level

    def cleanup(self, pins: list[int]) -> None:
        self.calls.append(("cleanup", tuple(pins)))


def test_gpio_backend_levels_and_polarity() -> None:
    gpio = FakeGpio()
    pins = {BUZZER: PinSpec(17), relay_output("heat_pump"): PinSpec(13, active_high=False)}
    out = GpioOutputs(pins, gpio=gpio)
    assert ("setmode", "BCM") in gpio.calls
    # inactive at start: buzzer low; the active-low relay's coil off means a HIGH pin
    assert gpio.levels == {17: 0, 13: 1}
    out.set(relay_output("heat_pump"), True)  # shed: energise the active-low relay
    assert gpio.levels[13] == 0
    out.set("led_warning", True)  # not wired here: ignored, no error
    out.close()
    assert gpio.levels == {17: 0, 13: 1}  # loads back on
    assert gpio.calls[-1] == ("cleanup", (17, 13))


def test_gpio_backend_refuses_a_pin_used_twice() -> None:
    with pytest.raises(ValueError, match="GPIO 5"):
        GpioOutputs({BUZZER: PinSpec(5), LED_WARNING: PinSpec(5)}, gpio=FakeGpio())


def test_no_worker_module_imports_the_gpio_library() -> None:
    for info in pkgutil.walk_packages(collector.worker.__path__, "collector.worker."):
        importlib.import_module(info.name)
    importlib.import_module("collector.cli.worker_cmd")
    assert "RPi" not in sys.modules
    assert "RPi.GPIO" not in sys.modules
