"""Acquisition runs ahead of a busy pipeline; an overrun is a marked gap, never a stall."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from collector.model import Block, ChannelInfo, Quantity, SourceCapabilities
from collector.sources.threaded import ThreadedSource

CAPS = SourceCapabilities(channels=(ChannelInfo("v", Quantity.VOLTAGE, rate_hz=1000.0),))


class Counting:
    """A source that signals each block it has produced."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.produced = [threading.Event() for _ in range(n)]
        self.closed = False

    @property
    def capabilities(self) -> SourceCapabilities:
        return CAPS

    def blocks(self) -> Iterator[Block]:
        for k in range(self.n):
            if k == self.fail_at:
                raise OSError("SPI transfer failed")
            yield Block(k * 100_000_000, 1000.0, np.full((1, 100), float(k)), contiguous=k > 0)
            self.produced[k].set()

    def close(self) -> None:
        self.closed = True


def test_blocks_arrive_in_order_and_unchanged() -> None:
    src = ThreadedSource(Counting(20))
    got = [b.samples[0, 0] for b in src.blocks()]
    src.close()
    assert got == [float(k) for k in range(20)]


def test_the_source_keeps_sampling_while_the_pipeline_is_busy() -> None:
    inner = Counting(5)
    src = ThreadedSource(inner)
    it = src.blocks()
    first = next(it)
    # the consumer still holds block 0: a synchronous source would not have made block 3
    assert inner.produced[3].wait(timeout=5.0)
    assert first.samples[0, 0] == 0.0
    assert [b.samples[0, 0] for b in it] == [1.0, 2.0, 3.0, 4.0]
    src.close()
    assert inner.closed


def test_an_overrun_drops_blocks_and_marks_the_gap() -> None:
    inner = Counting(10)
    src = ThreadedSource(inner, max_blocks=2)
    it = src.blocks()
    first = next(it)
    assert inner.produced[9].wait(timeout=5.0)  # acquisition finished while we were busy
    rest = list(it)
    src.close()
    kept = [first, *rest]
    assert src.dropped_blocks == 10 - len(kept)
    assert src.dropped_blocks > 0
    # the first block after the dropped ones says so
    indices = [int(b.samples[0, 0]) for b in kept]
    for prev, block, k in zip(kept, kept[1:], indices[1:], strict=False):
        jumped = k != int(prev.samples[0, 0]) + 1
        assert block.contiguous is not jumped


def test_a_source_error_reaches_the_pipeline() -> None:
    src = ThreadedSource(Counting(5, fail_at=2))
    with pytest.raises(OSError, match="SPI transfer failed"):
        list(src.blocks())
    src.close()
