"""Acquisition in its own thread, so the sampler never waits on DSP or sinks.

A hardware source that reads its converter inside ``blocks()`` would otherwise pause
sampling whenever the pipeline is busy (a disk flush of the write-ahead spool, a
slow sink). :class:`ThreadedSource` runs the wrapped source's ``blocks()`` in a
thread and hands blocks over through a bounded queue. If the pipeline falls so far
behind that the queue is full, the newest block is dropped and the next one is
marked ``contiguous=False``: the stream then shows a gap, exactly what it is, instead
of stalling the converter.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Iterator

from collector.model import Block, Source, SourceCapabilities

log = logging.getLogger(__name__)

_END = object()


class ThreadedSource:
    """Wraps a :class:`~collector.model.Source`; same capabilities, same blocks."""

    def __init__(self, source: Source, *, max_blocks: int = 64) -> None:
        if max_blocks < 1:
            raise ValueError(f"max_blocks: must be >= 1, got {max_blocks}")
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_blocks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped_blocks = 0

    @property
    def capabilities(self) -> SourceCapabilities:
        return self._source.capabilities

    def blocks(self) -> Iterator[Block]:
        self._thread = threading.Thread(target=self._acquire, name="acquisition", daemon=True)
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Block)
            yield item

    def close(self) -> None:
        self._stop.set()
        # unblock a producer waiting on a full queue is not needed: it never waits
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._source.close()

    def _acquire(self) -> None:
        gap = False
        try:
            for block in self._source.blocks():
                if self._stop.is_set():
                    break
                if gap:
                    block = dataclasses.replace(block, contiguous=False)
                try:
                    self._queue.put_nowait(block)
                    gap = False
                except queue.Full:
                    self.dropped_blocks += 1
                    gap = True
                    log.warning("pipeline behind: dropped a %.3f s block (%d so far); "
                                "the stream shows a gap", block.duration_s, self.dropped_blocks)
            self._queue.put(_END)
        except Exception as exc:  # handed to the consumer, who reports it
            self._queue.put(exc)
