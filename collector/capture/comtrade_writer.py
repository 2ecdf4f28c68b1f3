"""Write uniformly sampled channels as an IEEE C37.111 COMTRADE cfg + dat pair.

Revision 2013 by default (it has BINARY32/FLOAT32 and nanosecond time stamps);
1999 on request for BINARY and ASCII. Values are written in physical units (V, A)
as primary values (PS = P, ratio 1:1). Integer formats get a per-channel a/b that
spans the channel's full scale (or its data, with headroom, when the full scale
is unknown), so reading back gives every sample within one LSB (``a``).
Timestamps are exact: the sample interval is an integer number of timestamp
counts (``timemult`` chosen for it), or, when no such count exists (5760 Hz),
each timestamp is the sample index and ``timemult`` is the interval itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, ChannelInfo, Quantity

DatFormat = Literal["BINARY", "BINARY32", "FLOAT32", "ASCII"]

# largest raw magnitude per format; the most negative code is reserved for "missing"
_RAW_LIMIT = MappingProxyType({"BINARY": 32767, "BINARY32": 2**31 - 1, "ASCII": 99998})
_MISSING = MappingProxyType({"BINARY": -32768, "BINARY32": -(2**31), "ASCII": 99999})
_UINT32_MAX_STAMP = 2**32 - 2  # 0xFFFFFFFF means "timestamp missing"
_HEADROOM = 1.125  # data-derived ranges leave 1/8 spare so replayed peaks are not "clipped"


def write_comtrade(
    cfg_path: Path,
    channels: Sequence[ChannelInfo],
    samples: NDArray[np.float64],
    fs_hz: float,
    start_ns: int,
    trigger_ns: int | None = None,
    station: str = "GridGuard",
    device: str = "gridguard",
    fmt: DatFormat = "BINARY32",
    *,
    line_frequency_hz: float | None = None,
    revision: Literal[1999, 2013] = 2013,
) -> tuple[Path, Path]:
    """Write ``samples`` (n_channels, n) sampled at ``fs_hz`` [Hz] from ``start_ns``.

    Parameters
    ----------
    cfg_path : Path
        The cfg to write; the dat goes next to it with suffix ``.dat``.
    channels : Sequence[ChannelInfo]
        One per row of ``samples``: id, quantity (unit V or A), phase, circuit
        (written as ccbm), skew and full scale are used. Residual currents get
        ``ph = G``.
    samples : NDArray[np.float64]
        Values [V or A]; NaN is written as the format's "missing" code.
    fs_hz : float
        Sample rate [Hz].
    start_ns, trigger_ns : int
        First-sample and trigger times [ns since epoch, UTC]; the trigger
        defaults to the start. Revision 1999 stores them to the µs (rounded).
    line_frequency_hz : float, optional
        Nominal frequency for the cfg's ``lf`` [Hz]; 0 (unknown) when omitted.
    revision : {1999, 2013}
        2013 (default) or 1999 (BINARY and ASCII only).

    Returns
    -------
    tuple[Path, Path]
        The cfg and dat paths.
    """
    data = np.asarray(samples, dtype=np.float64)
    _check(channels, data, fs_hz, fmt, revision, cfg_path)
    n_ch, n = data.shape
    dat_path = cfg_path.with_suffix(".dat")
    unit_s = 1e-9 if revision == 2013 else 1e-6
    stamps, timemult = _timestamps(n, fs_hz, unit_s)
    scales = [_scale(ch, row, fmt) for ch, row in zip(channels, data, strict=True)]
    trigger = start_ns if trigger_ns is None else trigger_ns

    lines = [f"{_clean(station)},{_clean(device)},{revision}", f"{n_ch},{n_ch}A,0D"]
    for k, (ch, (a, b, lo, hi)) in enumerate(zip(channels, scales, strict=True), start=1):
        ph = "G" if ch.quantity is Quantity.RESIDUAL_CURRENT else (ch.phase or "")
        lines.append(",".join((
            str(k), _clean(ch.id), str(ph), _clean(ch.circuit or ""), ch.unit, repr(a),
            repr(b), repr(ch.skew_s * 1e6), _num(lo), _num(hi), "1", "1", "P",
        )))
    lines += [
        _num(line_frequency_hz or 0),
        "1",
        f"{_num(fs_hz)},{n}",
        _stamp(start_ns, revision),
        _stamp(trigger, revision),
        fmt,
        _num(timemult),
    ]
    if revision == 2013:
        # stamps are UTC (time_code 0); tmq F: the writer cannot vouch for clock sync
        lines += ["0,0", "F,0"]
    cfg_path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    raw = _raw_values(data, scales, fmt)
    if fmt == "ASCII":
        _write_ascii(dat_path, stamps, raw)
    else:
        _write_binary(dat_path, stamps, raw, fmt)
    return cfg_path, dat_path


def _check(
    channels: Sequence[ChannelInfo], data: NDArray[np.float64], fs_hz: float, fmt: str,
    revision: int, cfg_path: Path,
) -> None:
    if data.ndim != 2 or data.shape[0] != len(channels):
        raise ValueError(f"samples: expected shape ({len(channels)}, n), got {data.shape}")
    if data.shape[1] < 1:
        raise ValueError("samples: at least one sample is needed")
    if not (math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz: must be a positive rate in Hz, got {fs_hz}")
    if fmt not in ("BINARY", "BINARY32", "FLOAT32", "ASCII"):
        raise ValueError(f"fmt: expected BINARY, BINARY32, FLOAT32 or ASCII, got {fmt!r}")
    if revision not in (1999, 2013):
        raise ValueError(f"revision: expected 1999 or 2013, got {revision}")
    if revision == 1999 and fmt in ("BINARY32", "FLOAT32"):
        raise ValueError(f"fmt: {fmt} needs revision 2013 (C37.111-1999 has ASCII and BINARY)")
    if cfg_path.suffix.lower() != ".cfg":
        raise ValueError(f"cfg_path: expected a .cfg file name, got {cfg_path.name!r}")


def _clean(text: str) -> str:
    # commas and line breaks would shift every later cfg field
    return " ".join(text.replace(",", " ").split())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def _stamp(ns: int, revision: int) -> str:
    if revision == 1999:
        ns = (ns + 500) // 1000 * 1000  # the 1999 stamp resolution is 1 µs
    seconds, frac = divmod(ns, NS_PER_S)
    t = datetime.fromtimestamp(seconds, UTC)
    digits = f"{frac:09d}" if revision == 2013 else f"{frac // 1000:06d}"
    return f"{t:%d/%m/%Y},{t:%H:%M:%S}.{digits}"


def _timestamps(n: int, fs_hz: float, unit_s: float) -> tuple[NDArray[np.int64], float]:
    """Integer timestamps and the timemult that makes ``stamp * timemult`` exact."""
    interval = 1.0 / (fs_hz * unit_s)  # sample interval in timestamp units
    for mult in _timemult_candidates():
        counts = interval / mult
        whole = round(counts)
        if whole >= 1 and abs(counts - whole) <= 1e-9 * counts and whole * (n - 1) <= (
                _UINT32_MAX_STAMP):
            return np.arange(n, dtype=np.int64) * whole, mult
    # no whole number of counts per interval: count samples, timemult = the interval
    return np.arange(n, dtype=np.int64), interval


def _timemult_candidates() -> tuple[float, ...]:
    """Multipliers with short exact decimal forms: 1, then finer, then coarser."""
    finer = (0.5, 0.25, 0.2, 0.125, 0.1, 0.0625, 0.05, 0.04, 0.025, 0.02, 0.01, 0.001)
    coarser = tuple(m * 10.0**e for e in range(0, 9) for m in (2.0, 2.5, 4.0, 5.0, 8.0, 10.0))
    return (1.0, *finer, *coarser)


def _scale(
    ch: ChannelInfo, row: NDArray[np.float64], fmt: str
) -> tuple[float, float, float, float]:
    """(a, b, min, max) for one channel."""
    finite = row[np.isfinite(row)]
    if fmt == "FLOAT32":
        lo = math.floor(float(finite.min())) if finite.size else 0.0
        hi = math.ceil(float(finite.max())) if finite.size else 0.0
        return 1.0, 0.0, lo, hi
    limit = _RAW_LIMIT[fmt]
    peak = float(np.abs(finite).max()) if finite.size else 0.0
    if ch.full_scale is not None and ch.full_scale >= peak and ch.full_scale > 0:
        # the source's own range: its clipped samples stay at full scale on replay
        a, b = ch.full_scale / limit, 0.0
    elif finite.size and peak > 0:
        lo, hi = float(finite.min()), float(finite.max())
        b = (hi + lo) / 2
        half = (hi - lo) / 2 * _HEADROOM
        a = half / limit if half > 0 else abs(b) / limit
    else:
        a, b = 1.0 / limit, 0.0
    return a, b, -limit, limit


def _raw_values(
    data: NDArray[np.float64], scales: Sequence[tuple[float, float, float, float]], fmt: str
) -> NDArray[np.float64]:
    a = np.array([s[0] for s in scales])[:, None]
    b = np.array([s[1] for s in scales])[:, None]
    if fmt == "FLOAT32":
        return data.astype(np.float32).astype(np.float64)
    limit = _RAW_LIMIT[fmt]
    raw = np.clip(np.rint((data - b) / a), -limit, limit)
    return np.where(np.isfinite(data), raw, float(_MISSING[fmt]))


def _write_binary(path: Path, stamps: NDArray[np.int64], raw: NDArray[np.float64],
                  fmt: str) -> None:
    n_ch, n = raw.shape
    analog = {"BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}[fmt]
    record = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", analog, (n_ch,))])
    out = np.empty(n, dtype=record)
    out["n"] = np.arange(1, n + 1, dtype=np.uint32)
    out["t"] = stamps.astype(np.uint32)
    out["a"] = raw.T.astype(analog)
    path.write_bytes(out.tobytes())


def _write_ascii(path: Path, stamps: NDArray[np.int64], raw: NDArray[np.float64]) -> None:
    columns = np.vstack((np.arange(1, raw.shape[1] + 1), stamps, raw)).T.astype(np.int64)
    with path.open("w", encoding="ascii", newline="") as fh:
        np.savetxt(fh, columns, fmt="%d", delimiter=",", newline="\r\n")
