"""Folding metrics and events into the latest state the sink publishes."""

from __future__ import annotations

import math

import pytest

from collector.model import Event, EventType, Metrics
from collector.sinks.mqtt.discovery import ReadingTopic
from collector.sinks.mqtt.readings import FaultBook, ReadingsBook

T0 = 1_700_000_000_000_000_000


def m(interval: str, p_w: float, t: int = T0, channel: str = "kitchen") -> Metrics:
    return Metrics(t, interval, channel, "A", {"power_active_w": p_w, "current_rms_a": 4.2})


def test_aggregated_values_win_over_basic_once_they_arrive() -> None:
    book = ReadingsBook()
    book.add([m("basic", 100.0)])
    assert book.payload(("kitchen", "A"))["power_active_w"] == 100.0
    book.add([m("150c", 200.0), m("basic", 300.0)])
    assert book.payload(("kitchen", "A"))["power_active_w"] == 200.0
    assert book.payload(("kitchen", "A"))["interval"] == "150c"
    book.add([m("10min", 999.0), m("2h", 999.0)])  # storage aggregates are not live values
    assert book.payload(("kitchen", "A"))["power_active_w"] == 200.0


def test_non_finite_numbers_become_null_and_declared_fields_are_present() -> None:
    book = ReadingsBook([ReadingTopic("kitchen", "A", ("power_active_w", "energy_export_wh"))])
    book.add([m("150c", math.nan)])
    p = book.payload(("kitchen", "A"))
    assert p["power_active_w"] is None
    assert p["energy_export_wh"] is None  # declared, never delivered: unknown in HA
    assert p["current_rms_a"] == 4.2
    assert p["time"] == "2023-11-14T22:13:20.000000Z"  # 1.7e9 s after the epoch


def test_dirty_tracking() -> None:
    book = ReadingsBook()
    book.add([m("basic", 1.0), m("basic", 1.0, channel="oven")])
    assert book.take_dirty() == [("kitchen", "A"), ("oven", "A")]
    assert book.take_dirty() == []
    book.mark_all_dirty()
    assert len(book.take_dirty()) == 2


def ev(duration_s: float | None, t: EventType = EventType.VOLTAGE_DIP) -> Event:
    return Event(t, T0, duration_s, ("A",), residual_voltage_pct=72.9)


def test_an_ended_event_holds_its_fault_on_for_the_hold_time() -> None:
    book = FaultBook(hold_s=60.0)
    assert not book.active(EventType.VOLTAGE_DIP, 0.0)
    objs = book.add([ev(0.061)], now_s=100.0)
    assert objs[0]["residual_voltage_pct"] == 72.9
    assert objs[0]["duration_s"] == 0.061
    assert book.active(EventType.VOLTAGE_DIP, 100.0)
    assert book.active(EventType.VOLTAGE_DIP, 159.9)
    assert not book.active(EventType.VOLTAGE_DIP, 160.0)
    assert not book.active(EventType.OVERCURRENT, 120.0)
    assert book.next_change_s(120.0) == pytest.approx(160.0)


def test_an_event_in_progress_stays_on_until_its_end_is_reported() -> None:
    book = FaultBook(hold_s=1.0)
    book.add([ev(None, EventType.GROUND_FAULT)], now_s=0.0)
    assert book.active(EventType.GROUND_FAULT, 1000.0)
    book.add([ev(2.5, EventType.GROUND_FAULT)], now_s=1000.0)
    assert book.active(EventType.GROUND_FAULT, 1000.5)
    assert not book.active(EventType.GROUND_FAULT, 1001.0)


def test_changes_are_reported_once() -> None:
    book = FaultBook(hold_s=10.0)
    first = dict(book.changes(0.0))
    assert len(first) == len(EventType)
    assert not any(first.values())
    for t, on in first.items():
        book.mark_published(t, on)
    assert book.changes(0.0) == []
    book.add([ev(0.1)], now_s=1.0)
    assert book.changes(1.0) == [(EventType.VOLTAGE_DIP, True)]


def test_meter_readings_are_published() -> None:
    book = ReadingsBook()
    assert book.add([Metrics(0, "reading", "pzem_1", "A", {"power_active_w": 950.0})]) == 1
    assert book.add([Metrics(0, "10min", "pzem_1", "A", {"power_active_w": 900.0})]) == 0
