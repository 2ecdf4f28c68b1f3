"""ISO-8601 UTC timestamps from integer nanoseconds (and back)."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.model import NS_PER_S


def iso_utc(t_ns: int) -> str:
    """Format ``t_ns`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microsecond resolution, UTC)."""
    seconds, rem_ns = divmod(t_ns, NS_PER_S)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{rem_ns // 1000:06d}Z"


def parse_iso_utc(text: str) -> int:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive means UTC) into ns since epoch."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"time: expected ISO-8601 like 2026-01-31T12:00:00Z, got {text!r}"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    whole = int(dt.replace(microsecond=0).timestamp())
    return whole * NS_PER_S + dt.microsecond * 1000
