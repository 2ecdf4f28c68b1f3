"""`influx`: where measurements are stored (InfluxDB 2.x) and how they are written."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from collector.config.base import HttpUrl, StrictModel
from collector.config.errors import LocatedProblem, problems_error
from collector.config.secrets import TokenSecret


def _check_bucket(value: str) -> str:
    # InfluxDB 2 bucket names: no leading underscore (system buckets), no double
    # quotes, at most 255 bytes; we also keep them free of spaces for Flux and shells.
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$", value):
        raise ValueError("must be a bucket name of letters, digits, '_', '.', '-'")
    return value


BucketName = Annotated[str, AfterValidator(_check_bucket)]


class Buckets(StrictModel):
    raw: BucketName = Field(default="raw", description="Raw intervals (short retention).")
    rollup_1m: BucketName = Field(default="rollup_1m", description="1-minute rollups.")
    rollup_1h: BucketName = Field(default="rollup_1h", description="1-hour rollups.")
    events: BucketName = Field(default="events", description="Events and faults.")
    analytics: BucketName = Field(default="analytics", description="Forecasts and anomalies.")

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        problems = []
        seen: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value in seen:
                problems.append(LocatedProblem(
                    (name,), f"same bucket as {seen[value]}", repr(value)
                ))
            seen.setdefault(value, name)
        if problems:
            raise problems_error(problems)
        return self


class Retention(StrictModel):
    raw_days: int | None = Field(default=7, ge=1, description="Raw bucket [days]; null = forever.")
    rollup_1m_days: int | None = Field(default=90, ge=1, description="1-minute rollups [days].")
    rollup_1h_days: int | None = Field(default=1825, ge=1, description="1-hour rollups [days].")
    events_days: int | None = Field(default=1825, ge=1, description="Events bucket [days].")
    analytics_days: int | None = Field(default=365, ge=1, description="Analytics bucket [days].")


class RawInterval(StrEnum):
    """Which aggregation goes to the raw bucket."""

    BASIC = "basic"  # 10/12-cycle values, ~5 per second per circuit
    AGGREGATE_150C = "150c"  # 150-cycle (~3 s) values; 180 cycles on 60 Hz systems


class WriteConfig(StrictModel):
    batch_size: int = Field(default=5000, ge=1, le=100_000, description="Points per write.")
    flush_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="Longest a point waits in the batch [s]."
    )
    max_retries: int = Field(
        default=5, ge=0, le=100,
        description="Retries of a failed batch before it waits in the backlog.",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="HTTP timeout [s].")
    interval: RawInterval = Field(
        default=RawInterval.AGGREGATE_150C,
        description="What goes to raw: `basic` (10/12 cycles) or `150c` (~3 s; 180 cycles "
        "at 60 Hz).",
    )


class SpoolConfig(StrictModel):
    path: Path = Field(
        default=Path("/var/lib/gridguard/spool"),
        description="Directory of the on-disk spool: every accepted point is committed "
        "here before it is sent, and waits here while InfluxDB is unreachable.",
    )
    max_mb: int = Field(
        default=512, ge=1, description="Spool size bound [MiB]; the oldest points go first."
    )


class InfluxConfig(StrictModel):
    enabled: bool = Field(default=False, description="Write measurements to InfluxDB.")
    url: HttpUrl = Field(default="http://localhost:8086", description="InfluxDB base URL.")
    org: str = Field(default="gridguard", min_length=1, description="Organisation name.")
    token: TokenSecret | None = Field(
        default=None,
        description="Credential the collector writes with; required when enabled. "
        "`user:password` (the write-only v1 credential `gridguard influx setup` saves as "
        "`collector.token`: it cannot read or delete) is sent to `/write`; a v2 API token "
        "(no `:`) to `/api/v2/write`.",
    )
    verify_tls: bool = Field(default=True, description="Verify the server certificate.")
    ca_file: Path | None = Field(default=None, description="CA bundle for a private CA.")
    buckets: Buckets = Field(default_factory=Buckets, description="Bucket names.")
    retention: Retention = Field(default_factory=Retention, description="Bucket retention.")
    write: WriteConfig = Field(default_factory=WriteConfig, description="Write batching.")
    spool: SpoolConfig = Field(default_factory=SpoolConfig, description="Write-ahead spool.")

    @model_validator(mode="after")
    def _token_when_enabled(self) -> Self:
        if self.enabled and self.token is None:
            raise problems_error([LocatedProblem(
                ("token",), "is required when influx.enabled is true (give token_env or "
                "token_file)"
            )])
        return self
