from __future__ import annotations

import pytest

from collector.clock import FakeClock, Pacer


def test_pacer_releases_blocks_at_real_time_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)
    for _ in range(10):
        pacer.wait_for(0.1)
    # ten 100-ms blocks take one second of wall time, not more, not less
    assert clock.monotonic() == pytest.approx(1.0)


def test_pacer_does_not_wait_when_behind() -> None:
    clock = FakeClock()
    pacer = Pacer(clock, speed=2.0)
    pacer.wait_for(1.0)
    clock.t_s += 5.0  # processing took longer than real time
    pacer.wait_for(1.0)
    assert clock.slept[-1] <= 0


def test_pacer_rejects_bad_speed() -> None:
    with pytest.raises(ValueError, match="speed"):
        Pacer(FakeClock(), speed=0)
