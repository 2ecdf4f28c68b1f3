"""`events`: what happens around a detected event (waveform capture, arc advisory)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field

from collector.config.base import StrictModel


class CaptureFormat(StrEnum):
    """COMTRADE (IEEE C37.111-1999 / IEC 60255-24) data file encoding."""

    COMTRADE_BINARY = "comtrade_binary"
    COMTRADE_ASCII = "comtrade_ascii"


class WaveformCaptureConfig(StrictModel):
    enabled: bool = Field(default=True, description="Record waveforms around events.")
    pre_cycles: int = Field(default=5, ge=0, le=100, description="Cycles kept before onset.")
    post_cycles: int = Field(default=10, ge=0, le=3000, description="Cycles kept after the end.")
    directory: Path = Field(
        default=Path("/var/lib/gridguard/waveforms"), description="Where records are written."
    )
    format: CaptureFormat = Field(
        default=CaptureFormat.COMTRADE_BINARY, description="comtrade_binary or comtrade_ascii."
    )
    max_mb: int = Field(
        default=1024, ge=1, description="Disk budget [MiB]; the oldest records go first."
    )


class ArcDetectionConfig(StrictModel):
    enabled: bool = Field(
        default=True,
        description="Advisory arc-fault signature (never a substitute for an AFCI/RCD); "
        "needs a waveform source of several kHz.",
    )


class EventsConfig(StrictModel):
    waveform_capture: WaveformCaptureConfig = Field(
        default_factory=WaveformCaptureConfig, description="COMTRADE capture."
    )
    arc_detection: ArcDetectionConfig = Field(
        default_factory=ArcDetectionConfig, description="Arc-fault advisory."
    )
