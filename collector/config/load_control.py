"""`load_control`: relays that shed loads to stay under a demand limit."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from collector.config.base import GpioPin, Slug, StrictModel
from collector.config.errors import LocatedProblem, problems_error


class RelayConfig(StrictModel):
    circuit: Slug = Field(description="Circuit the relay (contactor) switches.")
    gpio_pin: GpioPin = Field(description="BCM GPIO driving the relay.")
    active_high: bool = Field(default=True, description="Relay energised by a high level.")


class LoadControlConfig(StrictModel):
    enabled: bool = Field(default=False, description="Shed loads automatically.")
    relays: tuple[RelayConfig, ...] = Field(
        default=(), description="Sheddable circuits (never a critical one)."
    )
    min_off_s: float = Field(
        default=300.0, ge=0, le=86_400, description="Shortest off time of a shed circuit [s]."
    )
    min_on_s: float = Field(
        default=300.0, ge=0, le=86_400, description="Shortest on time after restoring [s] "
        "(compressors must not short-cycle)."
    )
    hysteresis_pct: float = Field(
        default=5.0, ge=0, le=50, description="Restore below limit minus this [% of limit]."
    )
    demand_limit_w: float | None = Field(
        default=None, gt=0, description="Shedding limit [W]; default thresholds.demand_limit_w."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        if self.enabled and not self.relays:
            problems.append(LocatedProblem(("relays",), "needs at least one relay when enabled"))
        for k, relay in enumerate(self.relays):
            for j in range(k):
                if self.relays[j].circuit == relay.circuit:
                    problems.append(LocatedProblem(
                        ("relays", k, "circuit"), f"already switched by relays[{j}]",
                        repr(relay.circuit),
                    ))
        if problems:
            raise problems_error(problems)
        return self
