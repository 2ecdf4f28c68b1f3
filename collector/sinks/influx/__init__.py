"""InfluxDB 2.x sink: line protocol, the batching writer, the on-disk spool."""

from collector.sinks.influx.sink import InfluxSink, InfluxSinkSettings
from collector.sinks.influx.writer import InfluxWriter, WriterSettings, WriterStats

__all__ = ["InfluxSink", "InfluxSinkSettings", "InfluxWriter", "WriterSettings", "WriterStats"]
