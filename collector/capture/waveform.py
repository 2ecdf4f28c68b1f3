"""Waveform capture: a few cycles before and after each event's start, written as COMTRADE."""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from collector.capture.comtrade_writer import write_comtrade
from collector.model import NS_PER_S, Block, Event, SourceCapabilities
from collector.timefmt import iso_utc

log = logging.getLogger(__name__)

# Sustained faults (overcurrent, ground fault) are announced after their minimum
# duration with a start in the past: keep enough history to still capture their onset.
MIN_HISTORY_NS = 2_000_000_000


@dataclass
class _Job:
    event: Event
    start_ns: int
    end_ns: int
    pieces: list[Block] = field(default_factory=list)


class WaveformCapture:
    """Keeps ``pre_cycles`` of history and writes a record per started event.

    The record spans ``pre_cycles`` before the event start to ``post_cycles`` after
    it. A gap or rate change in the stream ends pending records early (what was
    captured is still written, the cfg time axis stays truthful).
    """

    def __init__(
        self,
        capabilities: SourceCapabilities,
        directory: Path,
        *,
        pre_cycles: int = 5,
        post_cycles: int = 10,
        fmt: str = "BINARY32",
        station: str = "GridGuard",
    ) -> None:
        if pre_cycles < 0 or post_cycles < 1:
            raise ValueError(
                f"pre_cycles/post_cycles: must be >= 0 / >= 1, got {pre_cycles}/{post_cycles}"
            )
        period_ns = NS_PER_S / capabilities.nominal_frequency_hz
        self._caps = capabilities
        self._dir = directory
        self._pre_ns = round(pre_cycles * period_ns)
        self._post_ns = round(post_cycles * period_ns)
        self._fmt = fmt
        self._station = station
        self._keep_ns = max(self._pre_ns, MIN_HISTORY_NS)
        self._history: deque[Block] = deque()
        self._jobs: list[_Job] = []
        self._captured: dict[object, None] = {}  # insertion-ordered, bounded
        self.written: list[Path] = []

    def feed(
        self, block: Block, started: Sequence[Event], ended: Sequence[Event] = ()
    ) -> list[Path]:
        """Add one block and the events that started or ended in it; return files written.

        An event that began and ended within one block is only seen ended; one
        capture is made per event either way (matched by ``details["event_id"]``).
        """
        if not block.contiguous or (self._history and self._history[-1].fs_hz != block.fs_hz):
            done = self._finish_all()
            self._history.clear()
        else:
            done = []
        self._history.append(block)
        block_end = block.time_ns(block.n_samples)
        while len(self._history) > 1 and self._history[1].t0_ns <= block_end - self._keep_ns:
            self._history.popleft()
        for job in self._jobs:
            job.pieces.append(block)
        for event in (*started, *ended):
            key = (event.type, event.details.get("event_id", event.start_ns))
            if key in self._captured:
                continue
            self._captured[key] = None
            if len(self._captured) > 4096:
                del self._captured[next(iter(self._captured))]
            start = event.start_ns - self._pre_ns
            job = _Job(event, start, event.start_ns + self._post_ns)
            job.pieces = [b for b in self._history if b.time_ns(b.n_samples) > start]
            self._jobs.append(job)
        pending: list[_Job] = []
        for job in self._jobs:
            if block_end >= job.end_ns:
                done.extend(self._write(job))
            else:
                pending.append(job)
        self._jobs = pending
        return done

    def close(self) -> list[Path]:
        """Write whatever is pending (end of stream)."""
        return self._finish_all()

    def _finish_all(self) -> list[Path]:
        done: list[Path] = []
        for job in self._jobs:
            done.extend(self._write(job))
        self._jobs = []
        return done

    def _write(self, job: _Job) -> list[Path]:
        if not job.pieces:
            return []
        fs = job.pieces[0].fs_hz
        t0 = job.pieces[0].t0_ns
        data: NDArray[np.float64] = np.concatenate([b.samples for b in job.pieces], axis=1)
        first = max(0, int(np.ceil((job.start_ns - t0) * fs / NS_PER_S)))
        last = min(data.shape[1], int(np.floor((job.end_ns - t0) * fs / NS_PER_S)) + 1)
        if last - first < 2:
            return []
        start_ns = t0 + round(first * NS_PER_S / fs)
        stamp = iso_utc(job.event.start_ns).replace(":", "").replace("-", "")
        name = re.sub(r"[^A-Za-z0-9_.]", "_", f"{job.event.type}_{stamp}")
        self._dir.mkdir(parents=True, exist_ok=True)
        cfg = self._dir / f"{name}.cfg"
        try:
            write_comtrade(
                cfg,
                self._caps.channels,
                data[:, first:last],
                fs,
                start_ns,
                trigger_ns=job.event.start_ns,
                station=self._station,
                fmt=self._fmt,  # type: ignore[arg-type]
                line_frequency_hz=self._caps.nominal_frequency_hz,
            )
        except OSError as exc:
            # A full disk must not stop measuring; the event itself is still recorded.
            log.error("waveform capture %s not written: %s", cfg, exc)
            return []
        self.written.append(cfg)
        return [cfg]
