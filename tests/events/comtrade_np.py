"""Minimal numpy reader for the binary COMTRADE-1999 DFR records in tests/data (test helper).

Follows /work/shared/data/real/README.md §1 "How to load with numpy". Not the production
reader: it only handles BINARY files with int16 analog samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA = Path(__file__).resolve().parents[1] / "data" / "cn_220kv_dfr_comtrade"


@dataclass(frozen=True)
class Record:
    names: tuple[str, ...]  # analog channel names, index = channel number - 1
    phases: tuple[str, ...]
    time_s: NDArray[np.float64]  # per-sample time from the .dat timestamp column
    analog: NDArray[np.float64]  # shape (n_samples, n_analog), secondary units
    rates: tuple[tuple[float, int], ...]  # (sample rate [Hz], last sample number)
    line_frequency_hz: float


def load(name: str) -> Record:
    lines = (DATA / f"{name}.cfg").read_text(encoding="gbk").splitlines()
    counts = lines[1].split(",")
    n_a = int(counts[1].rstrip("A"))
    n_d = int(counts[2].rstrip("D"))
    names, phases, gain, offset = [], [], [], []
    for line in lines[2:2 + n_a]:
        f = line.split(",")
        names.append(f[1])
        phases.append(f[2])
        gain.append(float(f[5]))
        offset.append(float(f[6]))
    pos = 2 + n_a + n_d
    lf = float(lines[pos])
    nrates = int(lines[pos + 1])
    rates = tuple(
        (float(r.split(",")[0]), int(r.split(",")[1])) for r in lines[pos + 2:pos + 2 + nrates]
    )
    n_words = -(-n_d // 16)
    dtype = np.dtype([("n", "<i4"), ("t", "<i4"), ("a", "<i2", (n_a,)), ("d", "<u2", (n_words,))])
    rec = np.fromfile(DATA / f"{name}.dat", dtype=dtype)
    analog = rec["a"].astype(np.float64) * np.array(gain) + np.array(offset)
    return Record(tuple(names), tuple(phases), rec["t"] * 1e-6, analog, rates, lf)


def first_segment(record: Record) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """(fs, time [s], analog) of the first (high-rate) segment."""
    fs, last = record.rates[0]
    return fs, record.time_s[:last], record.analog[:last]
