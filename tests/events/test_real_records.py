"""Dips in real 220 kV fault records (tests/data/cn_220kv_dfr_comtrade, Mulan PSL v2).

Reference values come from the recorders' own fault reports (XML, summarised in
labels_from_xml.json) and from /work/shared/data/real/README.md §1. Only the first
high-rate segment of each record is used (the low-rate segments hold one value per
cycle, not a waveform).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from collector.events.engine import EventEngine
from collector.model import (
    NS_PER_S,
    Block,
    ChannelInfo,
    Event,
    EventType,
    Phase,
    Quantity,
    SourceCapabilities,
)

from .comtrade_np import DATA, first_segment, load

NOMINAL_SECONDARY_V = 100.0 / np.sqrt(3.0)  # 57.735 V, the records' Udin
LABELS = json.loads((DATA / "labels_from_xml.json").read_text(encoding="utf-8"))
CYCLE_S = 1.0 / 50.0


def _dips(record: str, first_channel_1based: int, reference: str) -> tuple[list[Event], float]:
    """Voltage events of the three phase voltages starting at the given channel."""
    rec = load(record)
    fs, time_s, analog = first_segment(rec)
    k = first_channel_1based - 1
    assert [p.strip() for p in rec.phases[k:k + 3]] == ["A", "B", "C"]
    caps = SourceCapabilities(
        channels=tuple(
            ChannelInfo(f"u{p.lower()}", Quantity.VOLTAGE, Phase(p), rate_hz=fs) for p in "ABC"
        ),
        nominal_frequency_hz=rec.line_frequency_hz,
    )
    engine = EventEngine(
        caps,
        nominal_voltage_v=NOMINAL_SECONDARY_V if reference == "nominal" else None,
        reference="nominal" if reference == "nominal" else "sliding",
    )
    # the first segment's stored timestamps are uniform at 1/fs (checked here)
    assert np.allclose(np.diff(time_s), 1.0 / fs, atol=1.1e-6)
    x = analog[:, k:k + 3].T
    events: list[Event] = []
    for a in range(0, x.shape[1], 256):
        batch = engine.process(Block(round(a * NS_PER_S / fs), fs, x[:, a:a + 256]))
        events += batch.events
    events += engine.flush().events
    return [e for e in events if e.type.startswith("voltage")], fs


def test_ymz_remote_sag_residual_against_nominal_matches_the_recorder() -> None:
    dips, fs = _dips("ymz", 49, "nominal")
    assert len(dips) == 1
    dip = dips[0]
    assert dip.type is EventType.VOLTAGE_DIP
    assert dip.phases == ("A",)  # Ub 97.9 %, Uc 96.1 %: not dips
    # README: min Urms(1/2) 42.08 V = 72.9 % of 57.735 V; XML retained Ua 72.88 %
    assert dip.residual_voltage_pct == pytest.approx(72.9, abs=1.0)
    assert dip.residual_voltage_pct == pytest.approx(LABELS["ymz"][
        "retained_voltage_percent_by_channel_1based"]["49"], abs=1.0)
    assert float(dip.details["extreme_voltage_v"]) == pytest.approx(42.08, abs=0.3)
    assert dip.details["reference_voltage_v"] == pytest.approx(57.735, abs=1e-3)
    trigger_s = LABELS["ymz"]["fault_inception_sample_index_0based"] / fs
    assert abs(dip.start_ns / NS_PER_S - trigger_s) <= CYCLE_S
    assert dip.category == "instantaneous sag"
    assert "open_ended" not in dip.details


def test_ymz_remote_sag_residual_against_the_pre_event_level() -> None:
    dips, _ = _dips("ymz", 49, "sliding")
    assert len(dips) == 1
    dip = dips[0]
    assert dip.details["reference"] == "sliding"
    assert float(dip.details["reference_voltage_v"]) == pytest.approx(60.3, abs=0.3)
    assert dip.residual_voltage_pct == pytest.approx(69.8, abs=1.0)


@pytest.mark.parametrize(("record", "channel_1based"), [("xtz", 5), ("ygz", 9)])
def test_line_end_records_dip_starts_at_inception_and_lasts_until_clearing(
    record: str, channel_1based: int
) -> None:
    labels = LABELS[record]
    dips, fs = _dips(record, channel_1based, "nominal")
    assert len(dips) == 1
    dip = dips[0]
    assert dip.type is EventType.VOLTAGE_DIP
    assert dip.phases == ("A",)
    inception_s = labels["fault_inception_sample_index_0based"] / fs
    assert abs(dip.start_ns / NS_PER_S - inception_s) <= CYCLE_S
    clear_s = labels["relative_times_ms_from_inception"]["FaultClearTime"] / 1000.0
    assert dip.duration_s is not None
    assert abs(dip.duration_s - clear_s) <= CYCLE_S
    retained = labels["retained_voltage_percent_by_channel_1based"][str(channel_1based)]
    # the recorders' retained voltage is their own (phasor) estimate: agree within 1 pp
    assert dip.residual_voltage_pct == pytest.approx(retained, abs=1.0)


def test_xtz_dip_starts_within_one_cycle_of_sample_674() -> None:
    dips, fs = _dips("xtz", 5, "nominal")
    assert abs(dips[0].start_ns / NS_PER_S - 0.2106) <= CYCLE_S
    assert abs(dips[0].start_ns / NS_PER_S * fs - 674) <= fs * CYCLE_S
