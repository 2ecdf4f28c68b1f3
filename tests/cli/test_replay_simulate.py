"""The command-line contract: `gridguard replay`, `simulate` and `run`, as a user calls them.

Every command runs in its own process (``python -m collector.cli.app``), like a user or
another tool would run it; expected values come from the vendor fault reports of the
220 kV records and from the scenario files' schedules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.sources.comtrade import read_comtrade
from collector.timefmt import parse_iso_utc

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
YMZ = DATA / "cn_220kv_dfr_comtrade" / "ymz.cfg"
LABELS = DATA / "cn_220kv_dfr_comtrade" / "labels_from_xml.json"


def gridguard(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli.app", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd, check=False,
    )


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_replay_finds_the_ymz_phase_a_dip_with_its_vendor_residual(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    # ymz: bus voltages Ua/Ub/Uc are channels 49-51 (README of the real data)
    proc = gridguard("replay", str(YMZ), "--channels", "49,50,51",
                     "--events-out", str(events), "--metrics-out", "-")
    assert proc.returncode == 0, proc.stderr
    dips = [e for e in jsonl(events) if e["type"] == "voltage_dip"]
    assert dips, jsonl(events)
    first = dips[0]
    assert first["phases"] == ["A"]
    # recorder report: retained Ua 72.9 % of the declared 57.735 V
    assert first["residual_voltage_pct"] == pytest.approx(72.9, abs=1.0)
    assert first["category"] == "instantaneous sag"
    # ymz's waveform segments (0.28 s each) are too short for a settled 10-cycle interval
    assert proc.stdout == ""


def test_replay_metrics_flag_the_intervals_of_the_xtz_fault(tmp_path: Path) -> None:
    metrics = tmp_path / "m.jsonl"
    proc = gridguard("replay", str(YMZ.with_name("xtz.cfg")), "--channels", "5,6,7,33,34,35",
                     "--metrics-out", str(metrics))
    assert proc.returncode == 0, proc.stderr
    rows = jsonl(metrics)
    assert {r["kind"] for r in rows} == {"metrics"}
    assert any(r["flagged"] for r in rows)  # the phase-A dip flags the intervals it overlaps
    ub = [r["voltage_rms_v"] for r in rows if r["channel"] == "ch6_Ub"]
    # phase B barely moves (vendor: retained 98.6 %; pre-fault 60.31 V)
    assert ub
    assert all(0.97 * 60.31 < v < 1.01 * 60.31 for v in ub)
    bay = [r for r in rows if r["phase"] == "A" and "current_rms_a" in r]
    assert bay
    assert all(r["power_active_w"] is not None for r in bay)


def test_replay_xtz_dip_starts_at_the_labelled_inception(tmp_path: Path) -> None:
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["xtz"]
    xtz = YMZ.with_name("xtz.cfg")
    rec = read_comtrade(xtz)
    inception = labels["fault_inception_sample_index_0based"]  # 674 (vendor XML)
    inception_ns = rec.start_ns + round(float(rec.time_s[inception]) * 1e9)
    events = tmp_path / "e.jsonl"
    proc = gridguard("replay", str(xtz), "--channels", "5,6,7", "--events-out", str(events))
    assert proc.returncode == 0, proc.stderr
    dip = next(e for e in jsonl(events) if e["type"] == "voltage_dip")
    assert dip["phases"] == ["A"]
    # within one cycle (20 ms) of the vendor's inception sample
    assert abs(parse_iso_utc(str(dip["start"])) - inception_ns) <= 20_000_000


def test_replay_of_the_400hz_mains_wav_gives_plausible_frequency(tmp_path: Path) -> None:
    metrics = tmp_path / "m.jsonl"
    proc = gridguard("replay", str(DATA / "enf_whu_mains_400hz" / "001_ref.wav"),
                     "--metrics-out", str(metrics))
    assert proc.returncode == 0, proc.stderr
    freqs = [r["frequency_hz"] for r in jsonl(metrics) if r["frequency_hz"] is not None]
    assert len(freqs) > 2000  # 482 s at 5 intervals per second
    # README: zero-crossing frequency of 001 stays within 49.93..50.06 Hz, median 50.008
    assert min(freqs) > 49.9
    assert max(freqs) < 50.1
    assert sorted(freqs)[len(freqs) // 2] == pytest.approx(50.008, abs=0.01)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda cfg, dat: cfg.write_text("this is not a cfg\n"), "ymz.cfg:"),
        (lambda cfg, dat: dat.write_bytes(dat.read_bytes()[:1000]), "ymz.dat"),
        (lambda cfg, dat: dat.unlink(), "ymz.dat"),
    ],
    ids=["garbage-cfg", "truncated-dat", "missing-dat"],
)
def test_bad_recordings_are_clear_errors_not_tracebacks(
    tmp_path: Path, mutate: object, expected: str
) -> None:
    cfg, dat = tmp_path / "ymz.cfg", tmp_path / "ymz.dat"
    cfg.write_bytes(YMZ.read_bytes())
    dat.write_bytes(YMZ.with_suffix(".dat").read_bytes())
    mutate(cfg, dat)  # type: ignore[operator]
    proc = gridguard("replay", str(cfg), "--events-out", str(tmp_path / "e.jsonl"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "error:" in proc.stderr
    assert expected in proc.stderr


def test_simulate_writes_a_recording_that_replays_to_the_scheduled_events(tmp_path: Path) -> None:
    out = tmp_path / "sim.cfg"
    proc = gridguard("simulate", str(REPO / "config" / "scenarios" / "dip_and_swell.yaml"),
                     "--out", str(out), "--duration", "20")
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
    assert out.with_suffix(".dat").exists()
    events = tmp_path / "e.jsonl"
    proc = gridguard("replay", str(out), "--nominal-voltage", "230", "--events-out", str(events))
    assert proc.returncode == 0, proc.stderr
    kinds = {e["type"] for e in jsonl(events)}
    assert {"voltage_dip", "voltage_swell"} <= kinds, kinds


def test_run_simulated_streams_metrics_and_stops_after_duration(tmp_path: Path) -> None:
    metrics, events = tmp_path / "m.jsonl", tmp_path / "e.jsonl"
    proc = gridguard("run", "--simulate", "--duration", "25", "--speed", "0", "--no-live",
                     "--metrics-out", str(metrics), "--events-out", str(events))
    assert proc.returncode == 0, proc.stderr
    rows = jsonl(metrics)
    circuits = {r["channel"] for r in rows}
    assert {"ev_charger", "solar", "kitchen", "v_a", "system"} <= circuits
    solar = [r for r in rows if r["channel"] == "solar" and r["phase"] == "ABC"]
    assert solar
    assert all(r["power_active_w"] < 0 for r in solar)
    assert solar[-1]["energy_export_wh"] > 0
    assert solar[-1]["energy_import_wh"] == 0
    # demo scenario: a 60 % dip on phase A at 20 s
    dips = [e for e in jsonl(events) if e["type"] == "voltage_dip"]
    assert len(dips) == 1
    assert dips[0]["phases"] == ["A"]
    assert dips[0]["duration_s"] == pytest.approx(0.2, abs=0.02)


def test_run_without_a_source_is_a_clear_error() -> None:
    proc = gridguard("run", "--no-live")
    assert proc.returncode != 0
    assert "--simulate" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_replay_writes_a_waveform_capture_per_event(tmp_path: Path) -> None:
    captures = tmp_path / "captures"
    proc = gridguard("replay", str(YMZ), "--channels", "49,50,51",
                     "--capture-dir", str(captures), "--events-out", str(tmp_path / "e.jsonl"))
    assert proc.returncode == 0, proc.stderr
    events = jsonl(tmp_path / "e.jsonl")
    files = sorted(captures.glob("*.cfg"))
    assert len(files) == len(events) > 0
    rec = read_comtrade(files[0])
    assert [c.name for c in rec.analog] == ["220kVxy1x_Ua", "220kVxy1x_Ub", "220kVxy1x_Uc"]
    # up to 5 cycles before the dip's start and 10 after, at the record's own 4000 Hz,
    # cut where ymz's short waveform segment (1121 samples) ends
    start = parse_iso_utc(str(events[0]["start"]))
    assert abs(rec.trigger_ns - start) < 1000  # JSON Lines times carry microseconds
    first = rec.start_ns + round(float(rec.time_s[0]) * 1e9)
    last = rec.start_ns + round(float(rec.time_s[-1]) * 1e9)
    assert first >= start - 100_000_000 - 250_000
    assert first < start < last <= start + 200_000_000 + 250_000
    assert rec.analog_values.shape[1] <= 15 * 80 + 1
