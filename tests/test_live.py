from __future__ import annotations

from rich.console import Console

from collector.live import LiveView
from collector.model import Event, EventType, Metrics


def _render(view: LiveView) -> str:
    console = Console(width=100, record=True)
    console.print(view.render())
    return console.export_text()


def test_one_row_per_circuit_and_no_thd_for_idle_circuits() -> None:
    view = LiveView("t")
    m = [
        Metrics(0, "basic", "solar", p, {"current_rms_a": 11.6, "current_thd_pct": 3.0})
        for p in "ABC"
    ] + [
        Metrics(0, "basic", "solar", "ABC", {"power_active_w": -8038.4, "energy_export_wh": 19.6}),
        Metrics(0, "basic", "kitchen", "B", {"current_rms_a": 0.001, "current_thd_pct": 748.5,
                                             "power_active_w": -0.2}),
        Metrics(0, "basic", "v_a", "A", {"voltage_rms_v": 230.13, "frequency_hz": 50.009}),
    ]
    view.update(m, [Event(EventType.VOLTAGE_DIP, 0, 0.2, ("A",), residual_voltage_pct=58.7)], [])
    text = _render(view)
    solar = [line for line in text.splitlines() if line.strip().startswith("solar")]
    assert len(solar) == 1
    assert "ABC" in solar[0]
    assert "-8038" in solar[0]
    assert "11.60" in solar[0]
    kitchen = next(line for line in text.splitlines() if line.strip().startswith("kitchen"))
    assert "748" not in kitchen
    assert "—" in kitchen
    assert "-0 " not in kitchen
    assert "230.13" in text
    assert "voltage_dip" in text
    assert "58.7" in text


def test_meter_and_slow_converter_records_are_shown() -> None:
    view = LiveView("t")
    view.update([
        Metrics(0, "reading", "pzem_1", "A", {"current_rms_a": 4.2, "power_active_w": 950.0}),
        Metrics(0, "150c", "kitchen", "A", {"current_rms_a": 2.5, "power_active_w": 575.0}),
        Metrics(0, "10min", "oven", "A", {"current_rms_a": 9.0, "power_active_w": 2070.0}),
    ], [], [])
    text = _render(view)
    assert "950" in text
    assert "575" in text
    assert "2070" not in text  # storage aggregates are not live values
