"""``InfluxSink``: the :class:`collector.model.Sink` that stores metrics and events in InfluxDB."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collector.clock import Clock, SystemClock
from collector.model import Event, Metrics
from collector.sinks.influx.health import SinkHealth, health_metrics
from collector.sinks.influx.line_protocol import Dropped, encode_all, encode_metrics
from collector.sinks.influx.spool import Spool
from collector.sinks.influx.transport import HttpTransport, Transport
from collector.sinks.influx.writer import InfluxWriter, WriterSettings

log = logging.getLogger(__name__)

DEFAULT_INTERVALS = frozenset({"150c", "180c", "10min", "2h"})
"""Aggregations written by default: the ~3 s records and the IEC 10-min / 2-h ones.
Basic (~200 ms) records multiply the volume by 15; enable them explicitly."""

# A NaN that appears in every interval would otherwise log five times a second:
# the first drops are all logged, then one in _DROP_LOG_EVERY (all are counted).
_DROP_LOG_FIRST = 20
_DROP_LOG_EVERY = 1000


@dataclass(frozen=True, slots=True)
class InfluxSinkSettings:
    """Where and how the sink writes."""

    url: str
    org: str
    token: str
    site: str
    spool_path: Path
    bucket: str = "raw"
    events_bucket: str = "events"
    spool_max_bytes: int = 256 * 1024 * 1024
    intervals: frozenset[str] | None = DEFAULT_INTERVALS  # None: every interval
    health_interval_s: float = 10.0
    close_flush_s: float = 10.0  # at close, try this long to send before spooling the rest
    timeout_s: float = 10.0
    verify_tls: bool | str = True  # or the path of a CA bundle
    writer: WriterSettings = field(default_factory=WriterSettings)

    def __post_init__(self) -> None:
        if not self.site or "\n" in self.site:
            raise ValueError(f"site: must be a non-empty single-line name, got {self.site!r}")
        if self.health_interval_s <= 0:
            raise ValueError(f"health_interval_s: must be > 0 s, got {self.health_interval_s}")


class InfluxSink:
    """Encodes and spools on the caller's thread, sends on the writer thread."""

    def __init__(
        self,
        settings: InfluxSinkSettings,
        *,
        transport: Transport | None = None,
        clock: Clock | None = None,
        intervals: Collection[str] | None = None,
    ) -> None:
        self._settings = settings
        self._clock: Clock = clock or SystemClock()
        chosen = intervals if intervals is not None else settings.intervals
        self._intervals = frozenset(chosen) if chosen is not None else None
        spool = Spool(settings.spool_path, settings.spool_max_bytes,
                      gzip_level=settings.writer.gzip_level)
        self._transport = transport or HttpTransport(
            settings.url, settings.org, settings.token, timeout_s=settings.timeout_s,
            verify=settings.verify_tls,
        )
        self._writer = InfluxWriter(self._transport, spool, settings.writer, clock=self._clock)
        self._lock = threading.Lock()
        self._fields_dropped = 0
        self._next_health_s = self._clock.monotonic() + settings.health_interval_s
        self._writer.start()

    def publish(self, metrics: Sequence[Metrics], events: Sequence[Event]) -> None:
        """Accept metrics (of the configured intervals) and events; never raises.

        On return they are in the spool on disk (one transaction for the whole
        call), so a crash or power cut from then on loses none of them.
        """
        try:
            chosen = [m for m in metrics
                      if self._intervals is None or m.interval in self._intervals]
            metric_lines, event_lines, dropped = encode_all(chosen, events, self._settings.site)
            self._note_dropped(dropped)
            items = [(self._settings.bucket, metric_lines),
                     (self._settings.events_bucket, event_lines)]
            health = self._health_lines_due()
            if health:
                items.append((self._settings.bucket, health))
            self._writer.submit_many(items)
        except Exception:
            # The sampler must never die for the sake of storage.
            log.exception("InfluxSink.publish failed; %d metrics and %d events not stored",
                          len(metrics), len(events))

    def health(self) -> SinkHealth:
        with self._lock:
            dropped = self._fields_dropped
        return SinkHealth(self._clock.now_ns(), self._writer.stats(), dropped)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until the writer has sent what was published, or left it in the spool."""
        return self._writer.flush(timeout_s)

    def close(self) -> None:
        try:
            self._write_health()
            # A normal stop delivers what is waiting while InfluxDB answers; only what
            # cannot be sent in time stays in the spool for the next start.
            self._writer.flush(self._settings.close_flush_s)
        finally:
            self._writer.close()

    def _health_lines_due(self) -> list[str]:
        now = self._clock.monotonic()
        if now < self._next_health_s:
            return []
        self._next_health_s = now + self._settings.health_interval_s
        return self._health_lines()

    def _health_lines(self) -> list[str]:
        interval = f"{self._settings.health_interval_s:g}s"
        return list(encode_metrics(health_metrics(self.health(), interval),
                                   self._settings.site).lines)

    def _write_health(self) -> None:
        self._writer.submit(self._settings.bucket, self._health_lines())

    def _note_dropped(self, dropped: list[Dropped]) -> None:
        if not dropped:
            return
        with self._lock:
            before = self._fields_dropped
            self._fields_dropped += len(dropped)
            after = self._fields_dropped
        for k, d in enumerate(dropped):
            seq = before + k
            if seq < _DROP_LOG_FIRST or seq % _DROP_LOG_EVERY == 0:
                log.warning("not stored: %s: %s (%d fields dropped so far)", d.what, d.reason,
                            after)
