"""Typed access to Metrics fields in tests."""

from __future__ import annotations

from collections.abc import Mapping


def nums(fields: Mapping[str, object]) -> dict[str, float]:
    """The numeric fields (booleans and strings left out), as floats."""
    return {
        k: float(v) for k, v in fields.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
