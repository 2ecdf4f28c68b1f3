"""The pipeline holds a source's blocks and runs the engines on ``process_s`` of signal.

Holding is a matter of cost only: the records and events must be those of running
the engines on every block, and they must come out no later than the block that
completes ``process_s`` of signal, at a gap, or at the end of the stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from collector.assembly import RunSettings, build_pipeline
from collector.model import Block, EventType, Metrics
from collector.pipeline import Pipeline
from collector.sources.simulated import SimulatedSource

# a 40 % dip on L2 from 1.35 s to 1.55 s (10 cycles at 50 Hz), on an otherwise quiet
# three-phase panel
_SCENARIO = """\
    seed: 4
    duration_s: 4
    panel:
      preset: three_phase_panel
      mains: {frequency_drift_hz: 0}
    events:
      - {type: voltage_dip, at_s: 1.35, duration_s: 0.2, residual_pct: 40, phases: [L2]}
"""


def _source(tmp_path: Path) -> SimulatedSource:
    path = tmp_path / "dip.yaml"
    path.write_text(textwrap.dedent(_SCENARIO))
    return SimulatedSource.from_scenario(path, block_duration_s=0.1)


def _pipeline(source: SimulatedSource, process_s: float) -> Pipeline:
    settings = RunSettings(nominal_voltage_v=230.0, process_s=process_s)
    return build_pipeline(source.capabilities, settings, [])


def _key(m: Metrics) -> tuple[int, str, str, str]:
    return (m.time_ns, m.interval, m.channel, m.phase or "")


def test_held_blocks_give_the_records_and_events_of_running_every_block(
    tmp_path: Path,
) -> None:
    source = _source(tmp_path)
    blocks = list(source.blocks())
    results = {}
    for process_s in (0.0, 1.0):
        pipeline = _pipeline(source, process_s)
        steps = [pipeline.process(b) for b in blocks] + [pipeline.finish()]
        results[process_s] = (
            sorted((m for s in steps for m in s.metrics), key=_key),
            [e for s in steps for e in s.events],
        )
    every, held = results[0.0], results[1.0]
    assert [_key(m) for m in held[0]] == [_key(m) for m in every[0]]
    assert len(every[0]) > 100
    for a, b in zip(every[0], held[0], strict=True):
        assert a.fields.keys() == b.fields.keys()
        for name, value in a.fields.items():
            if isinstance(value, float):
                # the event engine's windows follow the latest measured frequency,
                # which arrives at other moments when blocks are held: only what the
                # dip flags could differ, and it does not
                assert b.fields[name] == pytest.approx(value, rel=1e-9, abs=1e-9, nan_ok=True)
            else:
                assert b.fields[name] == value
    # the dip (scenario: 1.35-1.55 s, 40 % residual) found alike, to a half cycle
    dips = [[e for e in events if e.type is EventType.VOLTAGE_DIP] for _, events in (every, held)]
    assert [len(d) for d in dips] == [1, 1]
    a_dip, b_dip = dips[0][0], dips[1][0]
    t0 = blocks[0].t0_ns
    assert (a_dip.start_ns - t0) / 1e9 == pytest.approx(1.35, abs=0.02)
    assert abs(b_dip.start_ns - a_dip.start_ns) <= 10_000_000
    assert a_dip.duration_s is not None
    assert b_dip.duration_s is not None
    assert b_dip.duration_s == pytest.approx(a_dip.duration_s, abs=0.01)
    assert b_dip.residual_voltage_pct == pytest.approx(a_dip.residual_voltage_pct, abs=0.5)
    assert b_dip.residual_voltage_pct == pytest.approx(40.0, abs=1.0)


def test_results_come_out_with_the_block_that_completes_process_s(tmp_path: Path) -> None:
    source = _source(tmp_path)
    pipeline = _pipeline(source, 1.0)
    started_at = ended_at = None
    for k, block in enumerate(source.blocks()):
        step = pipeline.process(block)
        if k % 10 != 9:
            assert step == type(step)((), (), ())  # held, not processed yet
        if any(e.type is EventType.VOLTAGE_DIP for e in step.started):
            started_at = k
        if any(e.type is EventType.VOLTAGE_DIP for e in step.events):
            ended_at = k
    # the dip begins in block 13 (1.3-1.4 s) and ends in block 15: both are
    # processed with block 19, which completes the second second
    assert (started_at, ended_at) == (None, 19)  # begun and ended in one call: "ended" only


def test_a_gap_or_the_end_of_the_stream_processes_the_held_signal(tmp_path: Path) -> None:
    source = _source(tmp_path)
    blocks = list(source.blocks())
    t0 = blocks[0].t0_ns
    pipeline = _pipeline(source, 1.0)
    before_gap = [pipeline.process(b) for b in blocks[:15]]
    assert not any(s.started for s in before_gap)  # 1.0-1.5 s, with the dip, held
    shifted = [Block(b.t0_ns + 10**9, b.fs_hz, b.samples, contiguous=False) for b in blocks[15:]]
    # a block after a gap: the held 1.0-1.5 s is processed first, and the dip that
    # began at 1.35 s is reported as started
    step = pipeline.process(shifted[0])
    assert [e.type for e in step.started] == [EventType.VOLTAGE_DIP]
    assert (step.started[0].start_ns - t0) / 1e9 == pytest.approx(1.35, abs=0.02)
    # the engines see the gap with the block that completes the next second: the
    # stream before it ends there (the dip cut short, the last records out)
    steps = [pipeline.process(replace(b, contiguous=True)) for b in shifted[1:10]]
    assert not any(s.events or s.metrics for s in steps[:8])
    cut = [e for e in steps[8].events if e.details.get("end_reason") == "gap"]
    assert [e.type for e in cut] == [EventType.VOLTAGE_DIP]
    assert abs(cut[0].start_ns - step.started[0].start_ns) <= 10_000_000  # a half cycle
    before = [(m.time_ns - t0) / 1e9 for m in steps[8].metrics if m.time_ns < shifted[0].t0_ns]
    assert before
    assert 1.1 < max(before) <= 1.3  # the last whole 0.2-s interval before 1.5 s
    # at the end of the stream, what is held is processed first
    for b in shifted[10:14]:
        assert not pipeline.process(replace(b, contiguous=True)).metrics
    final = pipeline.finish()
    after = [(m.time_ns - t0) / 1e9 for m in final.metrics]
    assert after
    assert max(after) > 3.3


def test_process_s_must_not_be_negative(tmp_path: Path) -> None:
    source = _source(tmp_path)
    with pytest.raises(ValueError, match="process_s"):
        _pipeline(source, -1.0)
    assert np.isfinite(RunSettings().process_s)


def test_missing_samples_in_held_blocks_are_found_as_in_each_block(tmp_path: Path) -> None:
    # the join looks for missing samples while it copies and tells both engines: a
    # NaN run in one held block must reach them as it does block by block, and a
    # batch of the metrics engine without one is not looked at again
    source = _source(tmp_path)
    blocks = []
    for k, b in enumerate(source.blocks()):
        if k in (22, 29):  # 40 ms of one current channel missing at 2.2 s and 2.9 s
            samples = b.samples.copy()
            samples[5, 100:356] = np.nan
            b = replace(b, samples=samples)
        blocks.append(b)
    found = {}
    records = {}
    for process_s in (0.0, 1.0):
        pipeline = _pipeline(source, process_s)
        steps = [pipeline.process(b) for b in blocks] + [pipeline.finish()]
        found[process_s] = [
            (e.start_ns, e.duration_s, e.channel)
            for s in steps for e in s.events
            if e.type is EventType.SENSOR_FAULT and e.details.get("fault") == "missing_samples"
        ]
        records[process_s] = sorted(
            ((m.time_ns, m.channel, m.phase, m.fields.get("missing_samples"))
             for s in steps for m in s.metrics if m.interval == "basic"),
            key=lambda r: (r[0], r[1], r[2] or ""),
        )
    channel = source.capabilities.channels[5].id
    t0 = blocks[0].t0_ns
    assert len(found[0.0]) == 2
    assert found[1.0] == found[0.0]
    for (start_ns, duration_s, got_channel), at_s in zip(found[0.0], (2.2, 2.9), strict=True):
        assert got_channel == channel
        assert (start_ns - t0) / 1e9 == pytest.approx(at_s + 100 / 6400, abs=1e-6)
        assert duration_s == pytest.approx(256 / 6400, abs=1e-6)
    # the basic intervals that hold the runs count their 256 samples, and only they
    assert records[1.0] == records[0.0]
    # (of the three-phase EV charger: its phase C and its total)
    info = source.capabilities.channels[5]
    missing = [(t, circuit, phase, n) for t, circuit, phase, n in records[1.0] if n]
    assert {(circuit, phase) for _, circuit, phase, _ in missing} == {
        (info.circuit, info.phase.value), (info.circuit, "ABC")}
    for phase in (info.phase.value, "ABC"):
        counts = {round((t - t0) / 1e8): n for t, _, p, n in missing if p == phase}
        # 2.2-2.24 s in the interval from 2.12 s; 2.9-2.94 s across the boundary at 2.92 s
        assert counts == {21: 256, 27: 30, 29: 226}


# Run in a fresh interpreter so that no other test's threads are counted. Prints the
# CPU time (ns, /proc schedstat) that threads other than the main one used while a
# pipeline was built and ran 20 s of a split-phase panel 5 s at a time (its L1-L2
# row is a weighted sum of two channels, formed over 5 s of signal at once).
_ONE_THREAD = """
import os, sys, threading, time
from pathlib import Path
from collector.assembly import RunSettings, build_pipeline
from collector.sources.simulated import SimulatedSource

def others_ns():
    me = threading.get_native_id()
    return sum(int(Path(f"/proc/self/task/{t}/schedstat").read_text().split()[0])
               for t in os.listdir("/proc/self/task") if int(t) != me)

source = SimulatedSource.from_scenario(Path(sys.argv[1]), block_duration_s=0.1)
blocks = list(source.blocks())
time.sleep(0.3)  # let whatever the imports started settle
before = others_ns()
settings = RunSettings(nominal_voltage_v=240.0, process_s=5.0)
pipeline = build_pipeline(source.capabilities, settings, [])
records = sum(len(pipeline.process(b).metrics) for b in blocks)
print(records, others_ns() - before)
"""


def test_the_chain_runs_on_one_core(tmp_path: Path) -> None:
    # numpy's OpenBLAS runs a matrix product this size (the derived rows, the
    # interpolator's response at build) on every core, and its threads then spin
    # for about 0.1 s: on a Pi that is CPU the collector must not take
    scenario = tmp_path / "split.yaml"
    scenario.write_text("seed: 4\nduration_s: 20\npanel:\n  preset: home_split_phase_240v\n")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", _ONE_THREAD, str(scenario)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout.split()
    records, other_ns = int(out[0]), int(out[1])
    assert records > 1000
    assert other_ns < 5_000_000, f"other threads used {other_ns / 1e6:.1f} ms of CPU"
