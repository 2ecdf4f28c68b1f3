"""Sink settings from the config's ``influx`` section (collector.config.influx.InfluxConfig)."""

from __future__ import annotations

from typing import Any

from collector.sinks.influx.sink import InfluxSinkSettings
from collector.sinks.influx.writer import WriterSettings

SPOOL_FILE = "influx-spool.sqlite"

# What the raw bucket receives for each choice of `influx.write.interval`: the chosen
# short aggregation plus the IEC 10-min and 2-h records (the rollup tasks carry
# them on to the long-lived buckets).
_INTERVALS = {
    "basic": frozenset({"basic", "10min", "2h"}),
    "150c": frozenset({"150c", "180c", "10min", "2h"}),
}


def sink_settings(influx: Any, site: str) -> InfluxSinkSettings:
    """Build :class:`InfluxSinkSettings` from a validated ``InfluxConfig``.

    ``influx.token`` must be resolved (a secret read from its env var or file).
    """
    if influx.token is None:
        raise ValueError("influx.token: required to write to InfluxDB")
    interval = str(getattr(influx.write.interval, "value", influx.write.interval))
    if interval not in _INTERVALS:
        raise ValueError(f"influx.write.interval: expected one of {sorted(_INTERVALS)}, "
                         f"got {interval!r}")
    verify: bool | str = bool(influx.verify_tls)
    if verify and influx.ca_file is not None:
        verify = str(influx.ca_file)
    return InfluxSinkSettings(
        url=str(influx.url).rstrip("/"),
        org=str(influx.org),
        token=influx.token.get_secret_value(),
        site=site,
        spool_path=influx.spool.path / SPOOL_FILE,
        bucket=str(influx.buckets.raw),
        events_bucket=str(influx.buckets.events),
        spool_max_bytes=int(influx.spool.max_mb) * 1024 * 1024,
        intervals=_INTERVALS[interval],
        timeout_s=float(influx.write.timeout_s),
        verify_tls=verify,
        writer=WriterSettings(
            batch_max_points=int(influx.write.batch_size),
            flush_interval_s=float(influx.write.flush_interval_s),
            retry_attempts=int(influx.write.max_retries) + 1,
        ),
    )
