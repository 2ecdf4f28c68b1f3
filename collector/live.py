"""The live view of `gridguard run`: a rich table of the latest readings and recent events."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from collector.model import Event, Metrics, Severity
from collector.timefmt import iso_utc

_SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.CRITICAL: "bold red"}


def _num(value: object, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "—"


class LiveView:
    """Holds the latest basic-interval record per channel and the last events."""

    def __init__(self, title: str, max_events: int = 8) -> None:
        self._title = title
        self._latest: dict[tuple[str, str | None], Metrics] = {}
        self._events: deque[Event] = deque(maxlen=max_events)
        self._active: dict[tuple[str, int], Event] = {}
        self.frequency_hz: float | None = None

    def update(
        self, metrics: Sequence[Metrics], events: Sequence[Event], started: Sequence[Event]
    ) -> None:
        for m in metrics:
            if m.interval == "basic":
                self._latest[(m.channel, m.phase)] = m
        for e in started:
            self._active[(e.type, e.start_ns)] = e
        for e in events:
            self._active.pop((e.type, e.start_ns), None)
            self._events.append(e)

    def render(self) -> Group:
        volts = Table(title="Supply", expand=True)
        for col in ("channel", "phase", "V rms", "f Hz", "THD-V %", "flag"):
            volts.add_column(col, justify="right" if col not in ("channel", "phase") else "left")
        circuits = Table(title="Circuits", expand=True)
        for col in ("circuit", "phase", "I rms A", "P W", "Q1 var", "PF", "THD-I %",
                    "import Wh", "export Wh"):
            circuits.add_column(col, justify="left" if col in ("circuit", "phase") else "right")
        for (channel, phase), m in sorted(self._latest.items(), key=lambda kv: str(kv[0])):
            f = m.fields
            if "current_rms_a" in f or "power_active_w" in f:
                circuits.add_row(
                    channel, phase or "", _num(f.get("current_rms_a"), ".2f"),
                    _num(f.get("power_active_w"), ".0f"), _num(f.get("power_reactive_var"), ".0f"),
                    _num(f.get("power_factor"), ".2f"), _num(f.get("current_thd_pct"), ".1f"),
                    _num(f.get("energy_import_wh"), ".1f"), _num(f.get("energy_export_wh"), ".1f"),
                )
            elif "voltage_rms_v" in f:
                volts.add_row(
                    channel, phase or "", _num(f.get("voltage_rms_v"), ".2f"),
                    _num(f.get("frequency_hz"), ".3f"), _num(f.get("voltage_thd_pct"), ".2f"),
                    "⚑" if m.flagged else "",
                )
        lines = [Text(self._title, style="bold")]
        for e in self._active.values():
            lines.append(Text(f"ACTIVE {e.type} on {''.join(e.phases) or e.channel} "
                              f"since {iso_utc(e.start_ns)}", style="bold red"))
        for e in reversed(self._events):
            depth = e.residual_voltage_pct if e.residual_voltage_pct is not None else e.extreme_pct
            lines.append(Text(
                f"{iso_utc(e.start_ns)}  {e.type:<22} {''.join(e.phases) or '-':<4} "
                f"{_num(e.duration_s, '.3f')} s  {_num(depth, '.1f')} %  {e.category or ''}",
                style=_SEVERITY_STYLE.get(e.severity, ""),
            ))
        return Group(volts, circuits, *lines)
