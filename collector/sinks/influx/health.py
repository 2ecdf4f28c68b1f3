"""Self-monitoring of the InfluxDB sink: a snapshot for ``gridguard status`` and the
``health`` measurement records the sink writes about itself."""

from __future__ import annotations

from dataclasses import dataclass

from collector.model import Metrics
from collector.nomenclature import Measurement, field_spec
from collector.sinks.influx.writer import WriterStats

HEALTH_CHANNEL = "collector"
"""``circuit`` tag of the health records."""


@dataclass(frozen=True, slots=True)
class SinkHealth:
    """Writer statistics plus what the encoder left out, at ``time_ns``."""

    time_ns: int
    writer: WriterStats
    fields_dropped: int  # NaN/inf, unknown names (logged)

    @property
    def spool_depth_points(self) -> int:
        return self.writer.spool.points


def _health_field(name: str) -> bool:
    try:
        return field_spec(name).measurement is Measurement.HEALTH
    except KeyError:
        return False


def health_values(h: SinkHealth) -> dict[str, float | int | bool | str | None]:
    """Every counter, by the name it would have as a field (some are not in the table)."""
    w = h.writer
    return {
        "spool_depth_points": w.spool.points,
        "spool_depth_bytes": w.spool.bytes,
        "queue_depth_points": w.queue_points,
        "points_written": w.points_written,
        "points_replayed": w.points_replayed,
        "points_spooled": w.points_spooled,
        "points_dropped": w.points_dropped,
        "points_evicted": w.points_evicted,
        "points_lost": w.points_lost,
        "fields_dropped": h.fields_dropped,
        "write_errors": w.write_errors,
        "last_error": w.last_error,
    }


def health_metrics(h: SinkHealth, interval: str) -> Metrics:
    """The sink's own record for the ``health`` measurement.

    Only counters the nomenclature names as ``health`` fields are included; the
    others are available from :meth:`InfluxSink.health` (``gridguard status``).
    """
    fields = {k: v for k, v in health_values(h).items() if _health_field(k)}
    return Metrics(
        time_ns=h.time_ns, interval=interval, channel=HEALTH_CHANNEL, phase=None,
        fields=fields,
    )
