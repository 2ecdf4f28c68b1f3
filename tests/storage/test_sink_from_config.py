"""Sink settings from a validated `influx` config section."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config.influx import InfluxConfig
from collector.sinks.influx.from_config import sink_settings

TOKEN = "k3J9x2LqP0w8ZrT4vN6bY1cD"


def test_defaults_map_to_the_sink() -> None:
    cfg = InfluxConfig.model_validate({
        "enabled": True, "url": "http://influx:8086", "org": "home",
        "token": {"value": TOKEN},
        "spool": {"path": "/var/lib/gg", "max_mb": 64},
        "write": {"max_retries": 3, "batch_size": 2000},
    })
    s = sink_settings(cfg, site="barn")
    assert (s.url, s.org, s.token, s.site) == ("http://influx:8086", "home", TOKEN, "barn")
    assert (s.bucket, s.events_bucket) == ("raw", "events")
    assert s.spool_path == Path("/var/lib/gg/influx-spool.sqlite")
    assert s.spool_max_bytes == 64 * 1024 * 1024
    assert s.intervals == frozenset({"150c", "180c", "10min", "2h"})
    assert s.writer.retry_attempts == 4  # 3 retries after the first attempt
    assert s.writer.batch_max_points == 2000


def test_basic_interval_and_private_ca() -> None:
    cfg = InfluxConfig.model_validate({
        "token": {"value": TOKEN}, "write": {"interval": "basic"},
        "ca_file": "/etc/ssl/private-ca.pem",
    })
    s = sink_settings(cfg, site="s")
    assert s.intervals == frozenset({"basic", "10min", "2h"})
    assert s.verify_tls == "/etc/ssl/private-ca.pem"


def test_missing_token() -> None:
    with pytest.raises(ValueError, match=r"influx\.token"):
        sink_settings(InfluxConfig(), site="s")
