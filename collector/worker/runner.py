"""The worker's threads: the tick loop, the notification dispatcher and the metrics poller.

The tick loop (alarm patterns, escalation, shedding) never waits on the network:
polling InfluxDB and sending messages each have their own thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.clock import Clock
from collector.worker.engine import WorkerEngine
from collector.worker.feed import MetricsFeed
from collector.worker.state_file import save_state

log = logging.getLogger(__name__)


class WorkerRunner:
    def __init__(
        self,
        engine: WorkerEngine,
        *,
        clock: Clock,
        feed: MetricsFeed | None = None,
        poll_s: float = 5.0,
        tick_s: float = 0.05,
        dispatch_s: float = 0.5,
        state_path: Path | None = None,
        periodic: Sequence[Callable[[], object]] = (),
        on_stop: Sequence[Callable[[], object]] = (),
    ) -> None:
        """``periodic``: also called on every tick (e.g. manual relay holds ending);
        ``on_stop``: called once when stopping, before the engine releases its outputs."""
        for name, value in (("poll_s", poll_s), ("tick_s", tick_s), ("dispatch_s", dispatch_s)):
            if not value > 0:
                raise ValueError(f"{name}: must be > 0 s, got {value}")
        self._engine = engine
        self._clock = clock
        self._feed = feed
        self._poll_s = poll_s
        self._tick_s = tick_s
        self._dispatch_s = dispatch_s
        self._state_path = state_path
        self._periodic = tuple(periodic)
        self._on_stop = tuple(on_stop)
        self._saved_revision = -1

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; then release the relays and save the state."""
        threads = [threading.Thread(target=self._loop, args=(stop, self._dispatch_s,
                                                              self._engine.deliver_pending),
                                    name="worker-dispatch", daemon=True)]
        if self._feed is not None:
            threads.append(threading.Thread(target=self._loop,
                                            args=(stop, self._poll_s, self._poll),
                                            name="worker-feed", daemon=True))
        for t in threads:
            t.start()
        try:
            while not stop.is_set():
                self._guard("tick", self._engine.tick)
                for step in self._periodic:
                    self._guard("tick", step)
                self._save()
                stop.wait(self._tick_s)
        finally:
            for t in threads:
                t.join(15.0)
            for step in self._on_stop:
                self._guard("stop", step)
            self._engine.close()
            self._save()

    def _poll(self) -> None:
        assert self._feed is not None
        records = self._feed.poll(self._clock.now_ns())
        if records:
            self._engine.on_metrics(records)

    def _loop(self, stop: threading.Event, period_s: float, step: Callable[[], object]) -> None:
        while not stop.is_set():
            self._guard(threading.current_thread().name, step)
            stop.wait(period_s)

    @staticmethod
    def _guard(what: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception:
            # a failing step is logged and retried next period; the worker stays up
            log.exception("worker: %s failed", what)

    def _save(self) -> None:
        if self._state_path is None:
            return
        revision, state = self._engine.state_snapshot(self._saved_revision)
        if state is None:
            return
        try:
            save_state(state, self._state_path)
            self._saved_revision = revision
        except OSError as exc:
            log.error("worker: cannot save the alert state to %s: %s", self._state_path, exc)
