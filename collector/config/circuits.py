"""`circuits`: what the current channels belong to, and how to treat each circuit."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from collector.config.base import PhaseName, Slug, StrictModel, TimeOfDay
from collector.config.errors import LocatedProblem, format_value, problems_error
from collector.model import Phase

# Reserved: Metrics.channel uses "system" for polyphase quantities.
RESERVED_CIRCUIT_IDS = frozenset({"system"})


class Priority(StrEnum):
    """Load-shedding order: low is shed first."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class CircuitKind(StrEnum):
    LOAD = "load"  # consumes
    GENERATION = "generation"  # exports, e.g. a PV inverter: negative P is normal
    STORAGE = "storage"  # battery inverter: both directions are normal
    MAIN = "main"  # an incomer measuring the whole installation


class RunWindow(StrictModel):
    start: TimeOfDay = Field(description="Window start, site local time 'HH:MM'.")
    end: TimeOfDay = Field(description="Window end 'HH:MM'; before start = over midnight.")


class ExpectedRunning(StrictModel):
    """The circuit should draw current; less than this points at a failed device."""

    min_current_a: float = Field(gt=0, description="Below this RMS current [A] ...")
    min_duration_s: float = Field(
        default=600.0, gt=0, description="... for at least this long [s] raises an alert."
    )
    windows: tuple[RunWindow, ...] = Field(
        default=(), description="When the rule applies (site local time); empty = always."
    )


class CircuitConfig(StrictModel):
    id: Slug = Field(description="Circuit id, the InfluxDB `circuit` tag.")
    name: str | None = Field(
        default=None, min_length=1, description="Display name (defaults to the id)."
    )
    kind: CircuitKind = Field(
        default=CircuitKind.LOAD,
        description="load, generation (exports), storage (both directions) or main.",
    )
    phases: tuple[PhaseName, ...] = Field(
        min_length=1, description="Line phases the circuit is on, e.g. [A] or [A, B, C]."
    )
    current_channels: tuple[str, ...] = Field(
        min_length=1,
        description="Current channel ids, one per phase (plus optionally a neutral CT).",
    )
    voltage_channels: tuple[str, ...] | None = Field(
        default=None,
        description="Voltage channel per phase; default: the system's voltage channel on "
        "each of the circuit's phases.",
    )
    breaker_rating_a: float = Field(
        gt=0, le=6300, description="Rated current In of the protective device [A]."
    )
    max_power_w: float | None = Field(
        default=None, gt=0, description="Power above which to warn [W] (optional)."
    )
    priority: Priority = Field(
        default=Priority.MEDIUM, description="Load-shedding priority: low is shed first."
    )
    critical: bool = Field(
        default=False,
        description="Never shed; alerts at critical severity (fridge, server, medical).",
    )
    expected_running: ExpectedRunning | None = Field(
        default=None, description="Undercurrent / equipment-failure rule (optional)."
    )

    @field_validator("phases", mode="before")
    @classmethod
    def _phases_from_string(cls, value: Any) -> Any:
        # "ABC" and "A" are how electricians write it; so is a YAML list.
        if isinstance(value, str):
            text = value.strip().upper()
            if text.startswith("L"):
                return [p for p in text.replace(",", " ").split() if p]
            return list(text.replace(",", "").replace(" ", ""))
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        if self.id in RESERVED_CIRCUIT_IDS:
            problems.append(LocatedProblem(
                ("id",), "is reserved for system-wide quantities", repr(self.id)
            ))
        seen: set[Phase] = set()
        for k, ph in enumerate(self.phases):
            if ph in (Phase.N, Phase.G):
                problems.append(LocatedProblem(
                    ("phases", k), "must be a line phase A, B or C", repr(ph.value)
                ))
            elif ph in seen:
                problems.append(LocatedProblem(("phases", k), "duplicate phase", repr(ph.value)))
            seen.add(ph)
        for name in ("current_channels", "voltage_channels"):
            ids = getattr(self, name) or ()
            for k, cid in enumerate(ids):
                if cid in ids[:k]:
                    problems.append(LocatedProblem((name, k), "listed twice", repr(cid)))
        er = self.expected_running
        if er is not None and er.min_current_a >= self.breaker_rating_a:
            problems.append(LocatedProblem(
                ("expected_running", "min_current_a"),
                f"must be below breaker_rating_a ({format_value(self.breaker_rating_a)})",
                format_value(er.min_current_a),
            ))
        if problems:
            raise problems_error(problems)
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id
