"""Registry: config source type -> implementation; hardware libraries stay unimported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collector.config.source import SourceType
from collector.sources.hardware.meter import MeterSource, PublishStats, batches, publish
from collector.sources.hardware.registry import (
    HARDWARE_SOURCES,
    open_hardware_source,
    source_kind,
)
from tests.hardware.emulated import EmulatedHardware
from tests.hardware.pzem_server import MeterModel, pzem_server
from tests.hardware.test_pzem import _config


def test_kinds() -> None:
    assert source_kind(SourceType.ADS1115) == "meter"
    assert source_kind(SourceType.MCP3008) == "waveform"
    assert source_kind(SourceType.PZEM) == "meter"
    assert SourceType.SIMULATED not in HARDWARE_SOURCES
    with pytest.raises(KeyError, match="simulated is not a hardware source"):
        source_kind(SourceType.SIMULATED)


def test_importing_the_sources_imports_no_hardware_library() -> None:
    code = (
        "import sys\n"
        "import collector.sources.hardware.registry, collector.sources.hardware.ads1115\n"
        "import collector.sources.hardware.mcp3008, collector.sources.hardware.pzem\n"
        "import collector.cli.sensors_cmd, collector.cli.calibrate_cmd\n"
        "bad = [m for m in ('adafruit_ads1x15', 'board', 'busio', 'spidev', 'pymodbus',"
        " 'serial') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


class _ListSink:
    def __init__(self) -> None:
        self.metrics: list[object] = []

    def publish(self, metrics: object, events: object) -> None:
        self.metrics += list(metrics)  # type: ignore[call-overload]

    def close(self) -> None:
        pass


class _BrokenSink(_ListSink):
    def publish(self, metrics: object, events: object) -> None:
        raise RuntimeError("disk full")


def test_pzem_through_the_registry_and_published() -> None:
    with pzem_server({1: MeterModel(230.0, 2.0, 440.0, 5, 50.0, 0.96)}) as srv:
        cfg = _config(srv.port, [1])
        env = EmulatedHardware()
        source = open_hardware_source(cfg, hardware=env)
        assert not source.capabilities.waveform
        meter: MeterSource = source  # type: ignore[assignment]
        sink, broken, stats = _ListSink(), _BrokenSink(), PublishStats()
        for batch in batches(meter, count=2):
            publish(batch, [broken, sink], stats)
    assert stats.batches == 3  # two readings and the closing batch
    assert len(sink.metrics) == 4  # voltage and circuit record, twice
    assert stats.sink_errors == {"_BrokenSink": 2}
    assert env.clock.t_s == pytest.approx(1.0)  # the second poll waited one interval
