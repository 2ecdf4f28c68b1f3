"""`site` and `system`: where the appliance is and what supply it measures."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from collector.config.base import Slug, StrictModel
from collector.model import Phase

# IANA names look like Area/Location[/Sub]; existence is checked by `config check`
# (reading the tz database is I/O, which validation does not do).
_TZ = re.compile(r"^(UTC|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2})$")


def _check_tz(value: str) -> str:
    if not _TZ.match(value):
        raise ValueError("must be an IANA time zone name like 'Europe/Berlin' or 'UTC'")
    return value


class SiteConfig(StrictModel):
    id: Slug = Field(
        description="Site id, written as the InfluxDB `site` tag; a slug so it needs no "
        "escaping in line protocol, Flux or MQTT topics.",
    )
    name: str | None = Field(
        default=None, min_length=1, description="Human-readable site name (defaults to the id)."
    )
    timezone: Annotated[str, AfterValidator(_check_tz)] = Field(
        default="UTC",
        description="IANA time zone for schedules, time-of-use tariffs and reports; "
        "measurements are always stored in UTC.",
    )

    @property
    def display_name(self) -> str:
        return self.name or self.id


class SystemType(StrEnum):
    SINGLE_PHASE = "single_phase"
    SPLIT_PHASE = "split_phase"
    THREE_PHASE = "three_phase"


def line_phases(system_type: SystemType) -> frozenset[Phase]:
    """Phases a line conductor can be on (split phase: the two 120 V legs A and B)."""
    if system_type is SystemType.SINGLE_PHASE:
        return frozenset({Phase.A})
    if system_type is SystemType.SPLIT_PHASE:
        return frozenset({Phase.A, Phase.B})
    return frozenset({Phase.A, Phase.B, Phase.C})

# IEC 60038:2009 Table 1 and common North American/Japanese phase-to-neutral values [V].
STANDARD_PHASE_VOLTAGES_V = (100.0, 110.0, 115.0, 120.0, 127.0, 220.0, 230.0, 240.0, 277.0, 347.0)


class SystemConfig(StrictModel):
    type: SystemType = Field(description="Supply arrangement.")
    nominal_voltage_v: float = Field(
        ge=50.0,
        le=1000.0,
        description="Nominal phase-to-neutral voltage Udin [V] (230 for 230/400 V, "
        "120 for 120/240 V split phase).",
    )
    nominal_frequency_hz: Literal[50, 60] = Field(description="Nominal mains frequency [Hz].")

    @property
    def line_phases(self) -> frozenset[Phase]:
        return line_phases(self.type)
