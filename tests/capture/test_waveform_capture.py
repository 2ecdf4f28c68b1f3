"""Waveform capture around events: the right span, the right samples, one file per event."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collector.capture.waveform import WaveformCapture
from collector.model import (
    NS_PER_S,
    Block,
    ChannelInfo,
    Event,
    EventType,
    Quantity,
    SourceCapabilities,
)
from collector.sources.comtrade import read_comtrade

FS = 3200.0
T0 = 1_700_000_000 * NS_PER_S


def _caps() -> SourceCapabilities:
    return SourceCapabilities(
        channels=(ChannelInfo("va", Quantity.VOLTAGE, rate_hz=FS),),
        nominal_frequency_hz=50.0,
    )


def _blocks(signal: np.ndarray, n: int) -> list[Block]:
    return [
        Block(T0 + round(i * NS_PER_S / FS), FS, signal[None, i:i + n], contiguous=i > 0)
        for i in range(0, signal.size, n)
    ]


@pytest.mark.parametrize("announced", [True, False])
def test_capture_spans_pre_and_post_cycles(tmp_path: Path, announced: bool) -> None:
    t = np.arange(int(FS * 2)) / FS
    signal = 325.0 * np.sin(2 * np.pi * 50 * t)
    event = Event(EventType.VOLTAGE_DIP, T0 + NS_PER_S, None if announced else 0.05, ("A",),
                  details={"event_id": 1})
    capture = WaveformCapture(_caps(), tmp_path, pre_cycles=5, post_cycles=10)
    written: list[Path] = []
    for block in _blocks(signal, 640):
        at_event = block.t0_ns <= event.start_ns < block.time_ns(block.n_samples)
        started = [event] if announced and at_event else []
        ended = [event] if at_event else []  # the same event again: still one capture
        written += capture.feed(block, started, ended)
    written += capture.close()
    assert len(written) == 1
    rec = read_comtrade(written[0])
    # 5 cycles before (0.1 s) and 10 after (0.2 s) the event start at t = 1 s
    assert rec.time_s[0] + rec.start_ns / NS_PER_S == pytest.approx(T0 / NS_PER_S + 0.9, abs=1 / FS)
    assert rec.time_s[-1] - rec.time_s[0] == pytest.approx(0.3, abs=1 / FS)
    first = round(0.9 * FS)
    n = rec.analog_values.shape[1]
    np.testing.assert_allclose(rec.analog_values[0], signal[first:first + n], atol=325.0 / 2**30)
