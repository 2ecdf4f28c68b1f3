"""`source`: where samples come from, with one sub-section per source type."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Self

from pydantic import Field, model_validator

from collector.config.base import HexInt, StrictModel
from collector.config.errors import LocatedProblem, format_value, problems_error


class SourceType(StrEnum):
    SIMULATED = "simulated"
    REPLAY = "replay"
    ADS1115 = "ads1115"
    MCP3008 = "mcp3008"
    PZEM = "pzem"


class SimulatedSourceConfig(StrictModel):
    scenario: Path = Field(
        description="Scenario YAML of the simulated panel (relative paths: to this file)."
    )
    seed: int | None = Field(
        default=None, description="Random seed; null keeps the scenario's own seed."
    )
    sample_rate_hz: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Per-channel sample rate [Hz]; null keeps the scenario's rate.",
    )


class ReplaySourceConfig(StrictModel):
    path: Path = Field(description="COMTRADE .cfg or WAV recording to replay.")


# ADS1115 datasheet (TI SBAS444) Table 8: PGA full-scale ranges [V] and data rates [SPS].
ADS1115_FULL_SCALES_V = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256)
ADS1115_DATA_RATES_SPS = (8, 16, 32, 64, 128, 250, 475, 860)
# ADDR pin to GND, VDD, SDA, SCL selects 0x48..0x4B (SBAS444 Table 4).
ADS1115_ADDRESSES = (0x48, 0x49, 0x4A, 0x4B)


class Ads1115Device(StrictModel):
    address: HexInt = Field(description="I2C address, 0x48..0x4B (ADDR pin).")
    full_scale_v: float = Field(
        default=4.096,
        description="PGA full-scale range ±FSR [V]: 6.144, 4.096, 2.048, 1.024, 0.512 or "
        "0.256 (the PGA 'gain' 2/3, 1, 2, 4, 8, 16). Pins must stay within GND-0.3 V.."
        "VDD+0.3 V whatever the range.",
    )
    data_rate_sps: Literal[8, 16, 32, 64, 128, 250, 475, 860] = Field(
        default=860, description="Conversion rate [samples/s], shared by the device's inputs."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        if self.address not in ADS1115_ADDRESSES:
            problems.append(LocatedProblem(
                ("address",), "must be 0x48, 0x49, 0x4A or 0x4B", f"0x{self.address:02X}"
            ))
        if not any(abs(self.full_scale_v - fs) < 1e-9 for fs in ADS1115_FULL_SCALES_V):
            problems.append(LocatedProblem(
                ("full_scale_v",),
                "must be one of " + ", ".join(str(f) for f in ADS1115_FULL_SCALES_V),
                format_value(self.full_scale_v),
            ))
        if problems:
            raise problems_error(problems)
        return self


class Ads1115SourceConfig(StrictModel):
    bus: int = Field(default=1, ge=0, description="I2C bus number (/dev/i2c-N); 1 on the Pi.")
    devices: tuple[Ads1115Device, ...] = Field(
        min_length=1, max_length=4, description="ADS1115 converters on the bus."
    )
    continuous: bool = Field(
        default=True,
        description="Continuous conversion mode (single-shot mode adds I2C round trips "
        "per sample).",
    )

    @model_validator(mode="after")
    def _unique_addresses(self) -> Self:
        problems = []
        seen: dict[int, int] = {}
        for k, dev in enumerate(self.devices):
            if dev.address in seen:
                problems.append(LocatedProblem(
                    ("devices", k, "address"),
                    f"duplicate address, also devices[{seen[dev.address]}]",
                    f"0x{dev.address:02X}",
                ))
            seen.setdefault(dev.address, k)
        if problems:
            raise problems_error(problems)
        return self


class Mcp3x08Model(StrEnum):
    """Which Microchip SAR converter sits on the chip select: same pins, other framing."""

    MCP3008 = "mcp3008"  # 10 bits (DS21295)
    MCP3208 = "mcp3208"  # 12 bits (DS21298)


# Datasheet maximum conversion rates [samples/s] at VDD = 5 V (DS21295 §1, DS21298 §1).
MCP3X08_MAX_RATE_SPS: Mapping[Mcp3x08Model, float] = MappingProxyType(
    {Mcp3x08Model.MCP3008: 200_000.0, Mcp3x08Model.MCP3208: 100_000.0})


class Mcp3008SourceConfig(StrictModel):
    model: Mcp3x08Model = Field(
        default=Mcp3x08Model.MCP3008,
        description="Converter on the chip select: mcp3008 (10 bits) or mcp3208 (12 bits). "
        "Both share this section, their pinout and input pairs; the SPI command, the reply "
        "and the resolution follow the model.",
    )
    spi_bus: int = Field(default=0, ge=0, le=1, description="SPI bus (/dev/spidevB.D).")
    spi_device: int = Field(default=0, ge=0, le=2, description="Chip select (CE) number.")
    vref_v: float = Field(
        default=3.3,
        gt=0.25,
        le=5.5,
        description="Reference voltage on VREF [V]: the full scale (MCP3008/MCP3208 "
        "datasheets: 0.25 V..VDD).",
    )
    sample_rate_hz: float = Field(
        default=8000.0,
        gt=0,
        le=200_000,
        description="Total conversions per second shared by all inputs [Hz] (datasheet "
        "maximum at 5 V / 2.7 V: MCP3008 200 / 75 ksps, MCP3208 100 / 50 ksps).",
    )

    @model_validator(mode="after")
    def _rate_within_model(self) -> Self:
        limit = MCP3X08_MAX_RATE_SPS[self.model]
        if self.sample_rate_hz > limit:
            raise problems_error([LocatedProblem(
                ("sample_rate_hz",),
                f"must be <= {limit:g} for model {self.model.value}",
                format_value(self.sample_rate_hz),
            )])
        return self


class PzemSourceConfig(StrictModel):
    port: str = Field(default="/dev/ttyUSB0", min_length=1, description="Serial port.")
    baudrate: Literal[9600] = Field(
        default=9600, description="PZEM-004T v3 speaks Modbus RTU at 9600 baud, 8N1, only."
    )
    addresses: tuple[HexInt, ...] = Field(
        default=(1,),
        min_length=1,
        description="Modbus slave addresses of the meters on the bus, 0x01..0xF7.",
    )
    poll_interval_s: float = Field(
        default=1.0, ge=0.1, le=60, description="Time between readings of each meter [s]."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        seen: set[int] = set()
        for k, a in enumerate(self.addresses):
            if not 0x01 <= a <= 0xF7:
                problems.append(LocatedProblem(
                    ("addresses", k), "must be a Modbus slave address 1..247", str(a)
                ))
            elif a in seen:
                problems.append(LocatedProblem(("addresses", k), "duplicate address", str(a)))
            seen.add(a)
        if problems:
            raise problems_error(problems)
        return self


class SourceConfig(StrictModel):
    type: SourceType = Field(description="Which source delivers the samples.")
    simulated: SimulatedSourceConfig | None = Field(
        default=None, description="Settings when type is simulated."
    )
    replay: ReplaySourceConfig | None = Field(
        default=None, description="Settings when type is replay."
    )
    ads1115: Ads1115SourceConfig | None = Field(
        default=None, description="Settings when type is ads1115."
    )
    mcp3008: Mcp3008SourceConfig | None = Field(
        default=None,
        description="Settings when type is mcp3008 (an MCP3008 or an MCP3208, see model).",
    )
    pzem: PzemSourceConfig | None = Field(default=None, description="Settings when type is pzem.")
    process_interval_s: float = Field(
        default=1.0, ge=0.0, le=10.0,
        description=(
            "Waveform signal the collector holds before it measures it and looks for "
            "events [s]: results reach the sinks up to this much later (a dip is still "
            "timed to the half cycle). 0 processes every block as the source delivers "
            "it, at about 1.8x the CPU with 0.1-s blocks."
        ),
    )

    @model_validator(mode="after")
    def _selected_section_present(self) -> Self:
        name = self.type.value
        if getattr(self, name) is None:
            raise problems_error([
                LocatedProblem((name,), f"is required when source.type is {name}")
            ])
        return self

    @property
    def is_hardware_adc(self) -> bool:
        return self.type in (SourceType.ADS1115, SourceType.MCP3008)
