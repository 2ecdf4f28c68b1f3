"""The live view of `gridguard run`: a rich table of the latest readings and recent events."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from collector.model import Event, Metrics, Severity
from collector.timefmt import iso_utc

# The freshest record wins: basic intervals on waveform sources, otherwise what a slow
# converter (150/180 cycles) or a meter ("reading") delivers.
LIVE_RANK = {"basic": 0, "reading": 0, "150c": 1, "180c": 1}

IDLE_CURRENT_A = 0.05  # below this a circuit is shown as idle (no THD)

_SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.CRITICAL: "bold red"}


def _num(value: object, fmt: str) -> str:
    if not isinstance(value, int | float):
        return "—"
    text = format(value, fmt)
    # "-0" says nothing a reader can use
    return text[1:] if text.startswith("-") and float(text) == 0 else text


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
            rank = LIVE_RANK.get(m.interval)
            if rank is None:
                continue  # 10-min / 2-h aggregates are for storage
            key = (m.channel, m.phase)
            held = self._latest.get(key)
            if held is None or rank <= LIVE_RANK[held.interval]:
                self._latest[key] = m
        for e in started:
            self._active[(e.type, e.start_ns)] = e
        for e in events:
            self._active.pop((e.type, e.start_ns), None)
            self._events.append(e)

    def render(self) -> Group:
        volts = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("supply", "phase", "V rms", "f Hz", "THD-V %", "flag"):
            volts.add_column(col, justify="right" if col not in ("supply", "phase") else "left")
        circuits = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                         caption="multi-phase circuits: totals; I = highest phase")
        for col in ("circuit", "phase", "I A", "P W", "Q1 var", "PF", "THD-I %",
                    "in Wh", "out Wh"):
            circuits.add_column(col, justify="left" if col in ("circuit", "phase") else "right")
        by_channel: dict[str, dict[str | None, Metrics]] = {}
        for (channel, phase), m in self._latest.items():
            by_channel.setdefault(channel, {})[phase] = m
        for channel in sorted(by_channel):
            records = by_channel[channel]
            # one row per circuit: the multi-phase total when there is one
            phase = max(records, key=lambda p: len(p or ""))
            m = records[phase]
            f = m.fields
            if "current_rms_a" in f or "power_active_w" in f:
                amps = [r.fields.get("current_rms_a") for r in records.values()]
                amp_values = [a for a in amps if isinstance(a, int | float)]
                i_max = max(amp_values) if amp_values else None
                thd = f.get("current_thd_pct")
                if not isinstance(i_max, int | float) or i_max < IDLE_CURRENT_A:
                    thd = None  # THD of an idle circuit is the THD of noise
                circuits.add_row(
                    channel, phase or "", _num(i_max, ".2f"),
                    _num(f.get("power_active_w"), ".0f"), _num(f.get("power_reactive_var"), ".0f"),
                    _num(f.get("power_factor"), ".2f"), _num(thd, ".1f"),
                    _num(f.get("energy_import_wh"), ".1f"), _num(f.get("energy_export_wh"), ".1f"),
                )
            elif "voltage_rms_v" in f and "voltage_unbalance_neg_pct" not in f:
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
