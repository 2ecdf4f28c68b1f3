"""Injected time: the pipeline paces itself with a clock object, never with bare sleeps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds and a way to wait."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def now_ns(self) -> int:
        """Wall-clock time [ns since epoch, UTC]."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now_ns(self) -> int:
        return time.time_ns()


@dataclass
class FakeClock:
    """A clock for tests: ``sleep`` advances time instantly."""

    t_s: float = 0.0
    epoch_ns: int = 1_700_000_000_000_000_000
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.t_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t_s += max(seconds, 0.0)

    def now_ns(self) -> int:
        return self.epoch_ns + round(self.t_s * 1e9)


class Pacer:
    """Releases blocks no faster than real time (for live runs of simulated sources)."""

    def __init__(self, clock: Clock, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed: must be > 0, got {speed}")
        self._clock = clock
        self._speed = speed
        self._start: float | None = None
        self._media_s = 0.0

    def wait_for(self, block_duration_s: float) -> None:
        """Account for one block and wait until its end is due in wall time."""
        if self._start is None:
            self._start = self._clock.monotonic()
        self._media_s += block_duration_s
        due = self._start + self._media_s / self._speed
        self._clock.sleep(due - self._clock.monotonic())
