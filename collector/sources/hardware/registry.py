"""Config source type -> hardware source implementation.

Two kinds of source come out of here:

- ``waveform``: a :class:`~collector.model.Source` of uniform blocks for the
  metrics and event engines (MCP3008 or MCP3208);
- ``meter``: a :class:`~.meter.MeterSource` whose ``read()`` returns finished
  Metrics and events (ADS1115 by incoherent sampling, PZEM-004T readings).

The collector's run loop picks the loop by :func:`source_kind` (or by
``capabilities.waveform``). Nothing here imports a hardware library: each source
does that in its constructor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from collector.config.models import GridGuardConfig
from collector.config.source import SourceType
from collector.model import Source
from collector.sources.hardware.environment import HardwareEnvironment
from collector.sources.hardware.meter import MeterSource
from collector.sources.hardware.samples import Sampler
from collector.sources.hardware.slow_adc import SlowAdcSettings

# Orders fitted when a waveform converter's samples are evaluated like a meter's
# (diagnostics, calibration readings): enough for RMS to follow the window's content.
SAMPLER_ORDERS = 11

SourceKind = Literal["waveform", "meter"]


@dataclass(frozen=True, slots=True)
class HardwareSourceEntry:
    """How to build one source type, and what it delivers."""

    kind: SourceKind
    build: Callable[[GridGuardConfig, HardwareEnvironment | None, bool], Source | MeterSource]
    summary: str


def _ads1115(cfg: GridGuardConfig, hw: HardwareEnvironment | None, calibrated: bool
             ) -> MeterSource:
    from collector.sources.hardware.ads1115 import Ads1115Source

    return Ads1115Source(cfg, hardware=hw, calibrated=calibrated)


def _mcp3008(cfg: GridGuardConfig, hw: HardwareEnvironment | None, calibrated: bool
             ) -> Source:
    from collector.sources.hardware.mcp3008 import Mcp3008Source

    return Mcp3008Source(cfg, hardware=hw, calibrated=calibrated)


def _pzem(cfg: GridGuardConfig, hw: HardwareEnvironment | None, calibrated: bool
          ) -> MeterSource:
    from collector.sources.hardware.pzem import PzemSource

    del calibrated  # a PZEM applies the config's gains itself; nothing to switch off
    return PzemSource(cfg, clock=hw.clock if hw is not None else None)


HARDWARE_SOURCES: Mapping[SourceType, HardwareSourceEntry] = MappingProxyType({
    SourceType.ADS1115: HardwareSourceEntry(
        "meter", _ads1115, "ADS1115 on I2C: RMS, power, energy over 150/180 cycles"),
    SourceType.MCP3008: HardwareSourceEntry(
        "waveform", _mcp3008, "MCP3008/MCP3208 on SPI: waveform blocks for the full DSP"),
    SourceType.PZEM: HardwareSourceEntry(
        "meter", _pzem, "PZEM-004T v3 meters on Modbus RTU: readings"),
})


def source_kind(source_type: SourceType) -> SourceKind:
    entry = HARDWARE_SOURCES.get(source_type)
    if entry is None:
        raise KeyError(
            f"source.type: {source_type} is not a hardware source; hardware types are "
            + ", ".join(str(t) for t in HARDWARE_SOURCES)
        )
    return entry.kind


def open_hardware_source(
    cfg: GridGuardConfig,
    *,
    hardware: HardwareEnvironment | None = None,
    calibrated: bool = True,
) -> Source | MeterSource:
    """The configured hardware source, opened (this is where buses are touched)."""
    entry = HARDWARE_SOURCES.get(cfg.source.type)
    if entry is None:
        raise KeyError(
            f"source.type: {cfg.source.type} is not a hardware source; hardware types are "
            + ", ".join(str(t) for t in HARDWARE_SOURCES)
        )
    return entry.build(cfg, hardware, calibrated)


def open_sampler(
    cfg: GridGuardConfig,
    *,
    hardware: HardwareEnvironment | None = None,
    calibrated: bool = True,
) -> tuple[Sampler, SlowAdcSettings]:
    """A converter source for raw windows, with the estimator settings that fit it.

    Only converters deliver samples: a PZEM meter does not (use :func:`open_hardware_source`).
    """
    if cfg.source.type is SourceType.ADS1115:
        from collector.sources.hardware.ads1115 import Ads1115Source

        ads = Ads1115Source(cfg, hardware=hardware, calibrated=calibrated)
        return ads, ads.settings
    if cfg.source.type is SourceType.MCP3008:
        from collector.sources.hardware.mcp3008 import Mcp3008Source

        mcp = Mcp3008Source(cfg, hardware=hardware, calibrated=calibrated)
        # a sample-and-hold converter: no averaging over a conversion to undo
        return mcp, SlowAdcSettings(float(cfg.system.nominal_frequency_hz),
                                    harmonic_orders=SAMPLER_ORDERS)
    raise KeyError(
        f"source.type: {cfg.source.type} delivers no converter samples; ads1115 and "
        "mcp3008 do"
    )
