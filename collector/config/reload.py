"""Which changes a running appliance can apply live, and which need a restart.

Thresholds and the tariff are read on every evaluation, so a new value simply takes
effect; everything that shapes the pipeline (sources, channels, buses, sinks,
workers) is built once at start and needs a restart.
"""

from __future__ import annotations

from typing import Any

from collector.config.dump import to_data
from collector.config.errors import format_path
from collector.config.models import GridGuardConfig

LIVE_RELOADABLE_SECTIONS: tuple[str, ...] = ("thresholds", "tariff")
RESTART_REQUIRED_SECTIONS: tuple[str, ...] = tuple(
    name for name in GridGuardConfig.model_fields if name not in LIVE_RELOADABLE_SECTIONS
)


def _diff(a: Any, b: Any, loc: tuple[str | int, ...], out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                out.append(format_path((*loc, key)))
            else:
                _diff(a[key], b[key], (*loc, key), out)
    elif isinstance(a, list) and isinstance(b, list):
        for k in range(max(len(a), len(b))):
            if k >= len(a) or k >= len(b):
                out.append(format_path((*loc, k)))
            else:
                _diff(a[k], b[k], (*loc, k), out)
    elif a != b:
        out.append(format_path(loc))


def changed_paths(old: GridGuardConfig, new: GridGuardConfig) -> list[str]:
    """Key paths whose value differs between two configurations (secrets compared by
    fingerprint, never printed)."""
    out: list[str] = []
    _diff(to_data(old, secrets="fingerprint"), to_data(new, secrets="fingerprint"), (), out)
    return out


def diff_requires_restart(old: GridGuardConfig, new: GridGuardConfig) -> list[str]:
    """Changed key paths that a live reload cannot apply; empty = reload live."""
    return [
        p for p in changed_paths(old, new)
        if p.split(".", 1)[0].split("[", 1)[0] in RESTART_REQUIRED_SECTIONS
    ]
