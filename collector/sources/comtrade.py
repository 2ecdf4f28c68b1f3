"""IEEE C37.111 (COMTRADE) reader: 1991, 1999 and 2013 cfg + dat, and the 2013 .cff.

Facts used here, by clause of C37.111-1999 / -2013 (IEC 60255-24:2013):

- cfg line 1 is ``station_name,rec_dev_id,rev_year`` (no rev_year: 1991); line 2 is
  ``TT,##A,##D``; then one line per analog channel
  ``An,ch_id,ph,ccbm,uu,a,b,skew,min,max,primary,secondary,PS`` (1991: the first 10
  fields), one per digital channel ``Dn,ch_id,ph,ccbm,y`` (1991: ``Dn,ch_id,y``),
  then ``lf``, ``nrates``, ``nrates`` lines ``samp,endsamp`` (``nrates = 0``: a
  ``0,endsamp`` line, the time axis is in the timestamps only), the first-sample
  and trigger date/time stamps, the file type and, from 1999, ``timemult``; 2013
  adds ``time_code,local_code`` and ``tmq_code,leapsec``.
- Date stamps are ``dd/mm/yyyy,hh:mm:ss.ssssss`` (1991: ``mm/dd/yy``). In 2013 a
  stamp with nanoseconds (9 fractional digits) makes the dat timestamp unit ns,
  otherwise it is µs. The first-sample stamp is the time of the first data record.
- Channel values are ``a * raw + b`` in unit ``uu``; ``PS`` says whether that is a
  primary (``P``) or secondary (``S``) value; ``primary/secondary`` is the
  instrument-transformer ratio. ``skew`` is in µs.
- Binary records are little-endian: uint32 sample number, uint32 timestamp
  (0xFFFFFFFF = missing), analog values (int16 BINARY, int32 BINARY32, float32
  FLOAT32), then the digital channels packed 16 per uint16 word, bit 0 first.
  Missing analog values are 0x8000 (BINARY) and 0x80000000 (BINARY32); in ASCII a
  blank field, or 99999 in files whose declared range excludes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from collector.sources.errors import RecordingError

NS_PER_S = 1_000_000_000
_TWO_DIGIT_YEAR_PIVOT = 70  # 1991 files: 70..99 -> 19yy, 00..69 -> 20yy
_ENCODINGS = ("utf-8", "gbk", "latin-1")  # tried in this order; latin-1 never fails
_TIMESTAMP_MISSING = 0xFFFFFFFF
_T = TypeVar("_T", bound=np.generic)


class FileType(StrEnum):
    """Data file encoding (cfg ``ft``)."""

    ASCII = "ASCII"
    BINARY = "BINARY"
    BINARY32 = "BINARY32"
    FLOAT32 = "FLOAT32"


class TimeSource(StrEnum):
    """Where :attr:`Recording.time_s` came from."""

    TIMESTAMPS = "timestamps"  # the dat timestamp column times timemult
    RATE_TABLE = "rate_table"  # the cfg's nrates table (timestamps absent/unusable)


class Scaling(StrEnum):
    """Which side of the instrument transformer analog values are expressed on."""

    RECORDED = "recorded"  # as the file stores them (PS says which side)
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True, slots=True)
class AnalogChannel:
    """One analog channel line of the cfg; ``skew_s`` converted from µs to s."""

    index: int  # An, 1-based as written in the cfg
    name: str
    phase: str
    ccbm: str
    unit: str
    a: float
    b: float
    skew_s: float
    min: float
    max: float
    primary: float
    secondary: float
    ps: str  # "P", "S", or "" (1991 files carry no ratings)

    def factor(self, scaling: Scaling) -> float | None:
        """Multiplier from recorded values to ``scaling``; None when the cfg cannot say."""
        if scaling is Scaling.RECORDED:
            return 1.0
        if self.ps not in ("P", "S") or self.primary <= 0 or self.secondary <= 0:
            return None
        if scaling.value[0].upper() == self.ps:
            return 1.0
        ratio = self.primary / self.secondary
        return ratio if scaling is Scaling.PRIMARY else 1.0 / ratio


@dataclass(frozen=True, slots=True, eq=False)
class DigitalChannel:
    """One digital (status) channel and its samples (0/1)."""

    index: int
    name: str
    phase: str
    ccbm: str
    normal_state: int
    data: NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class SampleRate:
    """One line of the rate table: ``rate_hz`` up to and including sample ``end_sample``."""

    rate_hz: float
    end_sample: int  # 1-based sample number, as in the cfg


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """A parsed COMTRADE record; arrays are read-only.

    Attributes
    ----------
    time_s : NDArray[np.float64]
        Time of every sample since the first one [s]; sample 0 is at ``start_ns``.
    analog_values : NDArray[np.float64]
        Shape (n_analog, n_samples), ``a * raw + b`` in each channel's own unit
        (secondary values when ``PS = S``); NaN marks a missing sample.
    start_ns, trigger_ns : int | None
        First-sample and trigger times [ns since epoch, UTC]; the 2013 ``time_code``
        is applied, older files are taken as UTC. None when the cfg leaves them blank.
    """

    path: Path
    dat_path: Path
    station: str
    device: str
    revision: int
    encoding: str
    analog: tuple[AnalogChannel, ...]
    digital: tuple[DigitalChannel, ...]
    lf_hz: float | None
    rates: tuple[SampleRate, ...]
    start_ns: int | None
    trigger_ns: int | None
    file_type: FileType
    timemult: float
    time_code: str
    local_code: str
    tmq_code: str
    leap_second: str
    sample_numbers: NDArray[np.int64]
    time_s: NDArray[np.float64]
    time_source: TimeSource
    timestamp_resolution_s: float  # one count of the dat timestamp (unit x timemult)
    analog_values: NDArray[np.float64]
    notes: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def start_time(self) -> datetime | None:
        """First-sample time as a naive datetime meaning UTC (µs resolution)."""
        return _ns_to_datetime(self.start_ns)

    @property
    def trigger_time(self) -> datetime | None:
        """Trigger time as a naive datetime meaning UTC (µs resolution)."""
        return _ns_to_datetime(self.trigger_ns)

    def channel_row(self, key: int | str) -> int:
        """0-based row in ``analog_values`` of channel number ``key`` (1-based) or name."""
        if isinstance(key, int):
            if 1 <= key <= len(self.analog):
                return key - 1
            raise KeyError(f"analog channel number {key}: expected 1..{len(self.analog)}")
        for row, ch in enumerate(self.analog):
            if ch.name == key:
                return row
        raise KeyError(f"no analog channel named {key!r}")

    def values(self, scaling: Scaling = Scaling.RECORDED) -> NDArray[np.float64]:
        """Analog values on the ``scaling`` side of the instrument transformers.

        Raises ValueError naming the channels whose cfg gives no usable ratio.
        """
        factors = [ch.factor(scaling) for ch in self.analog]
        unknown = [ch.index for ch, f in zip(self.analog, factors, strict=True) if f is None]
        if unknown:
            raise ValueError(
                f"scaling: {scaling.value} values need PS and primary/secondary ratings, "
                f"which analog channels {unknown} of {self.path} lack"
            )
        scale = np.array(factors, dtype=np.float64)[:, None]
        return self.analog_values * scale

    def primary_values(self) -> NDArray[np.float64]:
        """Analog values on the primary side (``values(Scaling.PRIMARY)``)."""
        return self.values(Scaling.PRIMARY)


def read_comtrade(
    path: Path | str, dat_path: Path | str | None = None, *, encoding: str | None = None
) -> Recording:
    """Read a COMTRADE record from a ``.cfg`` (+ ``.dat``) pair or a 2013 ``.cff`` file.

    ``encoding`` forces the cfg text encoding; by default UTF-8, GBK and latin-1
    are tried in that order (``Recording.encoding`` says which one worked).
    Every malformed input raises :class:`RecordingError` naming file and line/record.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".cff":
            return _read_cff(path, encoding)
        dat = Path(dat_path) if dat_path is not None else _sibling_dat(path)
        raw_cfg = _read_bytes(path)
        text, used = _decode(raw_cfg, path, encoding)
        cfg = _parse_cfg(text, path, used, line_offset=0)
        raw_dat = _read_bytes(dat)
        return _assemble(cfg, dat, raw_dat)
    except RecordingError:
        raise
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeError) as exc:
        # a parser bug or a case the checks above missed: still name the file
        raise RecordingError(path, f"malformed COMTRADE record: {exc}") from exc


# --------------------------------------------------------------------------- files


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise RecordingError(path, "file not found") from exc
    except OSError as exc:
        raise RecordingError(path, f"cannot read: {exc.strerror or exc}") from exc


def _sibling_dat(cfg_path: Path) -> Path:
    for suffix in (".dat", ".DAT", ".Dat"):
        candidate = cfg_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    dat = cfg_path.with_suffix(".dat")
    raise RecordingError(dat, f"data file not found (expected next to {cfg_path.name})")


def _decode(raw: bytes, path: Path, forced: str | None) -> tuple[str, str]:
    if not raw.strip():
        raise RecordingError(path, "empty file: expected a COMTRADE configuration")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if forced is not None:
        try:
            return raw.decode(forced), forced
        except (UnicodeDecodeError, LookupError) as exc:
            raise RecordingError(path, f"cannot decode as {forced}: {exc}") from exc
    for name in _ENCODINGS:
        try:
            text = raw.decode(name)
        except UnicodeDecodeError:
            continue
        return text, ("ascii" if raw.isascii() else name)
    raise AssertionError("latin-1 decodes any byte string")  # pragma: no cover


_CFF_MARK = re.compile(
    rb"^--- *file type: *(CFG|INF|HDR|DAT +ASCII|DAT +BINARY32|DAT +BINARY|DAT +FLOAT32)"
    rb" *(?::\s*(\d+))? *---[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)


def _read_cff(path: Path, forced: str | None) -> Recording:
    raw = _read_bytes(path)
    if not raw.strip():
        raise RecordingError(path, "empty file: expected a COMTRADE .cff")
    marks = list(_CFF_MARK.finditer(raw))
    kinds = [re.sub(rb"\s+", b" ", m.group(1)).decode().upper() for m in marks]
    if "CFG" not in kinds:
        raise RecordingError(path, "no '--- file type: CFG ---' section: not a COMTRADE .cff", 1)
    dat_at = next((k for k, kind in enumerate(kinds) if kind.startswith("DAT")), None)
    if dat_at is None:
        raise RecordingError(path, "no '--- file type: DAT ... ---' section")
    cfg_at = kinds.index("CFG")
    cfg_mark = marks[cfg_at]
    cfg_end = marks[cfg_at + 1].start() if cfg_at + 1 < len(marks) else len(raw)
    cfg_bytes = raw[cfg_mark.end():cfg_end].lstrip(b"\r\n")
    offset = raw[: cfg_mark.end()].count(b"\n") + 1
    text, used = _decode(cfg_bytes, path, forced)
    cfg = _parse_cfg(text, path, used, line_offset=offset)
    dat_mark = marks[dat_at]
    body = raw[dat_mark.end():]
    body = body[2:] if body.startswith(b"\r\n") else body[1:] if body.startswith(b"\n") else body
    kind = kinds[dat_at].removeprefix("DAT ")
    if kind != cfg.file_type.value:
        raise RecordingError(
            path, f"DAT section is {kind} but the CFG section says {cfg.file_type.value}",
            raw[: dat_mark.start()].count(b"\n") + 1,
        )
    if cfg.file_type is FileType.ASCII:
        return _assemble(cfg, path, body, dat_line_offset=raw[: dat_mark.end()].count(b"\n") + 1)
    declared = dat_mark.group(2)
    if declared is not None and int(declared) <= len(body):
        body = body[: int(declared)]
    return _assemble(cfg, path, body)


# --------------------------------------------------------------------------- cfg


@dataclass(frozen=True, slots=True)
class _Cfg:
    path: Path
    encoding: str
    station: str
    device: str
    revision: int
    analog: tuple[AnalogChannel, ...]
    digital: tuple[tuple[int, str, str, str, int], ...]
    lf_hz: float | None
    rates: tuple[SampleRate, ...]
    start_ns: int | None
    trigger_ns: int | None
    timestamp_unit_s: float
    file_type: FileType
    timemult: float
    time_code: str
    local_code: str
    tmq_code: str
    leap_second: str
    notes: tuple[str, ...]


class _Lines:
    """Non-blank cfg lines with their 1-based line numbers."""

    def __init__(self, text: str, path: Path, offset: int) -> None:
        self._path = path
        raw = re.split(r"\r\n|\r|\n", text)
        if raw and raw[-1] == "":
            raw.pop()  # the piece after the final line break is not a line
        self._items = [(k + 1 + offset, ln) for k, ln in enumerate(raw) if ln.strip()]
        self._pos = 0
        self._last = len(raw) + offset

    def next(self, what: str) -> tuple[int, list[str]]:
        if self._pos >= len(self._items):
            raise RecordingError(
                self._path, f"unexpected end of file: expected {what}", self._last + 1
            )
        number, line = self._items[self._pos]
        self._pos += 1
        return number, [f.strip() for f in line.split(",")]

    def peek(self) -> list[str] | None:
        if self._pos >= len(self._items):
            return None
        return [f.strip() for f in self._items[self._pos][1].split(",")]

    def at_end(self) -> bool:
        return self._pos >= len(self._items)


def _float(text: str, path: Path, line: int, what: str, default: float | None = None) -> float:
    if text == "" and default is not None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise RecordingError(path, f"{what}: expected a number, got {text!r}", line) from None
    if not np.isfinite(value):
        raise RecordingError(path, f"{what}: expected a finite number, got {text!r}", line)
    return value


def _int(text: str, path: Path, line: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    # some writers put "1.0" where an integer belongs; accept only whole numbers
    value = _float(text, path, line, what)
    if value != int(value):
        raise RecordingError(path, f"{what}: expected an integer, got {text!r}", line)
    return int(value)


def _fields(fields: list[str], n: int, path: Path, line: int, what: str) -> list[str]:
    """``fields`` with extra trailing blanks removed; error unless exactly ``n`` remain."""
    while len(fields) > n and fields[-1] == "":
        fields = fields[:-1]
    if len(fields) != n:
        raise RecordingError(
            path, f"{what}: expected {n} comma-separated fields, got {len(fields)}", line
        )
    return fields


def _parse_cfg(text: str, path: Path, encoding: str, line_offset: int) -> _Cfg:
    lines = _Lines(text, path, line_offset)
    notes: list[str] = []
    if encoding not in ("ascii", "utf-8"):
        notes.append(f"cfg text decoded as {encoding}")

    n, f = lines.next("station_name,rec_dev_id,rev_year")
    station = f[0]
    device = f[1] if len(f) > 1 else ""
    revision = _revision(f[2] if len(f) > 2 else "", path, n)

    n, f = lines.next("TT,##A,##D")
    f = _fields(f, 3, path, n, "channel counts 'TT,##A,##D'")
    total = _int(f[0], path, n, "total channel count TT")
    n_a = _count(f[1], "A", path, n)
    n_d = _count(f[2], "D", path, n)
    if total != n_a + n_d:
        raise RecordingError(
            path, f"channel counts: TT={total} but {n_a}A + {n_d}D = {n_a + n_d}", n
        )

    analog = tuple(
        _analog_line(*lines.next(f"analog channel {k} of {n_a}"), k, revision, path)
        for k in range(1, n_a + 1)
    )
    digital = tuple(
        _digital_line(*lines.next(f"digital channel {k} of {n_d}"), k, path)
        for k in range(1, n_d + 1)
    )

    n, f = lines.next("line frequency lf")
    lf_hz = None if f[0] == "" else _float(f[0], path, n, "line frequency lf")
    if lf_hz is not None and lf_hz <= 0:
        notes.append(f"line {n}: lf={f[0]} is not a frequency; treated as unknown")
        lf_hz = None
    rates = _rate_table(lines, path, notes)

    n_start, f_start = lines.next("first-sample date/time stamp")
    n_trig, f_trig = lines.next("trigger date/time stamp")
    start_ns, start_digits = _stamp(f_start, path, n_start, revision, "start", notes)
    trigger_ns, _ = _stamp(f_trig, path, n_trig, revision, "trigger", notes)

    n, f = lines.next("file type (ASCII, BINARY, BINARY32 or FLOAT32)")
    try:
        file_type = FileType(f[0].upper())
    except ValueError:
        raise RecordingError(
            path, f"file type: expected ASCII, BINARY, BINARY32 or FLOAT32, got {f[0]!r}", n
        ) from None

    timemult = 1.0
    if not lines.at_end():
        n, f = lines.next("timemult")
        timemult = _float(f[0], path, n, "timemult", default=1.0)
        if timemult <= 0:
            raise RecordingError(path, f"timemult: must be > 0, got {f[0]!r}", n)
    elif revision >= 1999:
        notes.append("cfg ends before timemult; 1.0 assumed")

    time_code = local_code = tmq_code = leap = ""
    offset_ns = 0
    if revision >= 2013 and not lines.at_end():
        n, f = lines.next("time_code,local_code")
        time_code, local_code = f[0], (f[1] if len(f) > 1 else "")
        offset_ns = _time_code_ns(time_code, path, n)
    if revision >= 2013 and not lines.at_end():
        n, f = lines.next("tmq_code,leapsec")
        tmq_code, leap = f[0], (f[1] if len(f) > 1 else "")
    if not lines.at_end():
        notes.append(f"lines after line {n} of the cfg ignored")
    if offset_ns:
        notes.append(f"time_code {time_code}: stamps converted to UTC")
        start_ns = None if start_ns is None else start_ns - offset_ns
        trigger_ns = None if trigger_ns is None else trigger_ns - offset_ns

    # C37.111-2013: a nanosecond date/time stamp makes the dat timestamp unit ns
    unit_s = 1e-9 if (revision >= 2013 and start_digits > 6) else 1e-6
    return _Cfg(
        path=path, encoding=encoding, station=station, device=device, revision=revision,
        analog=analog, digital=digital, lf_hz=lf_hz, rates=rates, start_ns=start_ns,
        trigger_ns=trigger_ns, timestamp_unit_s=unit_s, file_type=file_type,
        timemult=timemult, time_code=time_code, local_code=local_code, tmq_code=tmq_code,
        leap_second=leap, notes=tuple(notes),
    )


def _revision(text: str, path: Path, line: int) -> int:
    if text == "":
        return 1991
    try:
        year = int(text)
    except ValueError:
        year = 0
    if year == 2001:  # IEC 60255-24:2001 is the 1999 format
        return 1999
    if year not in (1991, 1999, 2013):
        raise RecordingError(path, f"rev_year: expected 1991, 1999 or 2013, got {text!r}", line)
    return year


def _count(text: str, letter: str, path: Path, line: int) -> int:
    m = re.fullmatch(rf"(\d+)\s*{letter}", text, re.IGNORECASE)
    if m is None:
        raise RecordingError(
            path, f"channel counts: expected a number followed by {letter!r}, got {text!r}", line
        )
    return int(m.group(1))


def _analog_line(line: int, f: list[str], k: int, revision: int, path: Path) -> AnalogChannel:
    what = f"analog channel {k}"
    # 1991 lines end after max; tolerate 1999-style lines in 1991 files
    short = revision == 1991 and len([x for x in f[10:] if x != ""]) == 0
    f = _fields(f, 10 if short else 13, path, line, what)
    a = _float(f[5], path, line, f"{what}: multiplier a")
    b = _float(f[6], path, line, f"{what}: offset b")
    skew_us = _float(f[7], path, line, f"{what}: skew", default=0.0)
    lo = _float(f[8], path, line, f"{what}: min")
    hi = _float(f[9], path, line, f"{what}: max")
    if short:
        primary, secondary, ps = 1.0, 1.0, ""
    else:
        primary = _float(f[10], path, line, f"{what}: primary", default=1.0)
        secondary = _float(f[11], path, line, f"{what}: secondary", default=1.0)
        ps = f[12].upper()
        if ps not in ("P", "S", ""):
            raise RecordingError(path, f"{what}: PS: expected 'P' or 'S', got {f[12]!r}", line)
    return AnalogChannel(
        index=_int(f[0], path, line, f"{what}: index An"), name=f[1], phase=f[2], ccbm=f[3],
        unit=f[4], a=a, b=b, skew_s=skew_us * 1e-6, min=lo, max=hi, primary=primary,
        secondary=secondary, ps=ps,
    )


def _digital_line(
    line: int, f: list[str], k: int, path: Path
) -> tuple[int, str, str, str, int]:
    what = f"digital channel {k}"
    while len(f) > 5 and f[-1] == "":
        f = f[:-1]
    if len(f) == 3:  # 1991: Dn,ch_id,y
        f = [f[0], f[1], "", "", f[2]]
    f = _fields(f, 5, path, line, what)
    y = 0 if f[4] == "" else _int(f[4], path, line, f"{what}: normal state y")
    return (_int(f[0], path, line, f"{what}: index Dn"), f[1], f[2], f[3], y)


def _rate_table(lines: _Lines, path: Path, notes: list[str]) -> tuple[SampleRate, ...]:
    n, f = lines.next("nrates")
    nrates = _int(f[0], path, n, "nrates")
    if nrates < 0:
        raise RecordingError(path, f"nrates: must be >= 0, got {nrates}", n)
    if nrates == 0:
        # "0,endsamp" follows when the rate is not fixed; it has no date slash
        nxt = lines.peek()
        if nxt is not None and len(nxt) >= 2 and "/" not in ",".join(nxt):
            n, f = lines.next("0,endsamp")
        return ()
    rates: list[SampleRate] = []
    previous_end = 0
    for k in range(1, nrates + 1):
        n, f = lines.next(f"sample rate {k} of {nrates} 'samp,endsamp'")
        f = _fields(f, 2, path, n, f"sample rate {k}")
        rate = _float(f[0], path, n, f"sample rate {k}: samp")
        end = _int(f[1], path, n, f"sample rate {k}: endsamp")
        if rate < 0:
            raise RecordingError(path, f"sample rate {k}: samp must be >= 0, got {f[0]}", n)
        if end <= previous_end:
            raise RecordingError(
                path, f"sample rate {k}: endsamp {end} must exceed the previous {previous_end}", n
            )
        previous_end = end
        rates.append(SampleRate(rate, end))
    if any(r.rate_hz == 0 for r in rates):
        notes.append("rate table has samp = 0: the time axis comes from the timestamps")
    return tuple(rates)


_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d*))?")
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def _stamp(
    f: list[str], path: Path, line: int, revision: int, what: str, notes: list[str]
) -> tuple[int | None, int]:
    """(ns since epoch, fractional digits) of a ``date,time`` cfg line."""
    if not any(f):
        notes.append(f"line {line}: {what} time stamp is blank")
        return None, 0
    if len(f) < 2:
        raise RecordingError(path, f"{what} time stamp: expected 'date,time', got {f[0]!r}", line)
    dm, tm = _DATE.fullmatch(f[0]), _TIME.fullmatch(f[1])
    if dm is None or tm is None:
        form = "mm/dd/yy" if revision == 1991 else "dd/mm/yyyy"
        raise RecordingError(
            path,
            f"{what} time stamp: expected '{form},hh:mm:ss.ssssss', got {','.join(f[:2])!r}",
            line,
        )
    first, second, year = int(dm.group(1)), int(dm.group(2)), int(dm.group(3))
    if len(dm.group(3)) == 2:
        year += 1900 if year >= _TWO_DIGIT_YEAR_PIVOT else 2000
    month, day = (first, second) if revision == 1991 else (second, first)
    if not 1 <= month <= 12 and 1 <= day <= 12:
        # writers that ignore the revision's field order; the other order is the only valid one
        month, day = day, month
        notes.append(f"line {line}: {what} date {f[0]} read with day and month swapped")
    try:
        ordinal = datetime(year, month, day).toordinal()
    except ValueError:
        raise RecordingError(path, f"{what} time stamp: no such date {f[0]!r}", line) from None
    hh, mm, ss = int(tm.group(1)), int(tm.group(2)), int(tm.group(3))
    if hh > 23 or mm > 59 or ss > 60:  # 60: a leap second
        raise RecordingError(path, f"{what} time stamp: no such time {f[1]!r}", line)
    digits = tm.group(4) or ""
    frac_ns = int((digits + "000000000")[:9])
    seconds = (ordinal - _EPOCH_ORDINAL) * 86400 + hh * 3600 + mm * 60 + ss
    return seconds * NS_PER_S + frac_ns, len(digits)


def _time_code_ns(text: str, path: Path, line: int) -> int:
    """Offset of the stamps from UTC [ns] from a 2013 time_code such as ``-5h30``."""
    if text.lower() in ("x", ""):
        return 0
    m = re.fullmatch(r"([+-]?)(\d{1,2})(?:h(\d{1,2}))?", text)
    if m is None:
        raise RecordingError(path, f"time_code: expected e.g. '+8', '-5h30' or 'x', got {text!r}",
                             line)
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return (-1 if m.group(1) == "-" else 1) * minutes * 60 * NS_PER_S


def _ns_to_datetime(ns: int | None) -> datetime | None:
    if ns is None:
        return None
    seconds, rem = divmod(ns, NS_PER_S)
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None, microsecond=rem // 1000)


# --------------------------------------------------------------------------- dat


@dataclass(frozen=True, slots=True)
class _Dat:
    sample_numbers: NDArray[np.int64]
    timestamps: NDArray[np.float64]  # raw timestamp column; NaN = missing
    raw_analog: NDArray[np.float64]  # (nA, n), NaN = missing
    digital: NDArray[np.uint8]  # (nD, n)


def _expected_samples(cfg: _Cfg) -> int | None:
    return cfg.rates[-1].end_sample if cfg.rates else None


def _assemble(cfg: _Cfg, dat_path: Path, raw: bytes, dat_line_offset: int = 0) -> Recording:
    """Decode the data bytes ``raw`` (a dat file or a cff's DAT section) against ``cfg``."""
    notes = list(cfg.notes)
    if cfg.file_type is FileType.ASCII:
        dat = _ascii_dat(cfg, dat_path, raw, dat_line_offset, notes)
    else:
        dat = _binary_dat(cfg, dat_path, raw, notes)
    time_s, source = _time_axis(cfg, dat_path, dat.timestamps, notes)
    a = np.array([ch.a for ch in cfg.analog], dtype=np.float64)[:, None]
    b = np.array([ch.b for ch in cfg.analog], dtype=np.float64)[:, None]
    values = dat.raw_analog * a + b
    digital = tuple(
        DigitalChannel(index=d[0], name=d[1], phase=d[2], ccbm=d[3], normal_state=d[4],
                       data=_frozen(dat.digital[k]))
        for k, d in enumerate(cfg.digital)
    )
    return Recording(
        path=cfg.path, dat_path=dat_path, station=cfg.station, device=cfg.device,
        revision=cfg.revision, encoding=cfg.encoding, analog=cfg.analog, digital=digital,
        lf_hz=cfg.lf_hz, rates=cfg.rates, start_ns=cfg.start_ns, trigger_ns=cfg.trigger_ns,
        file_type=cfg.file_type, timemult=cfg.timemult, time_code=cfg.time_code,
        local_code=cfg.local_code, tmq_code=cfg.tmq_code, leap_second=cfg.leap_second,
        sample_numbers=_frozen(dat.sample_numbers), time_s=_frozen(time_s),
        time_source=source, timestamp_resolution_s=cfg.timestamp_unit_s * cfg.timemult,
        analog_values=_frozen(values), notes=tuple(notes),
    )


def _frozen(x: NDArray[_T]) -> NDArray[_T]:
    x = np.ascontiguousarray(x)
    x.setflags(write=False)
    return x


def _binary_dat(cfg: _Cfg, path: Path, raw: bytes, notes: list[str]) -> _Dat:
    n_a, n_d = len(cfg.analog), len(cfg.digital)
    n_words = -(-n_d // 16)
    analog_type = {FileType.BINARY: "<i2", FileType.BINARY32: "<i4",
                   FileType.FLOAT32: "<f4"}[cfg.file_type]
    record = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", analog_type, (n_a,)),
                       ("d", "<u2", (n_words,))])
    if not raw:
        raise RecordingError(path, "empty data file")
    n_full, rest = divmod(len(raw), record.itemsize)
    expected = _expected_samples(cfg)
    layout = (f"{record.itemsize} bytes: sample number, timestamp, {n_a} analog as "
              f"{cfg.file_type.value}, {n_words} digital words")
    if expected is not None and n_full < expected:
        raise RecordingError(
            path,
            f"truncated: {n_full} whole records{f' and {rest} bytes' if rest else ''}, the cfg "
            f"declares {expected} samples (endsamp); a record is {layout}",
            n_full + 1,
        )
    if rest and expected is None:
        raise RecordingError(
            path, f"truncated: {rest} bytes of a last record present; a record is {layout}",
            n_full + 1,
        )
    n = expected if expected is not None else n_full
    if n_full > n or rest:
        notes.append(f"{path.name}: {len(raw) - n * record.itemsize} bytes after sample {n} "
                     "(the cfg's last endsamp) ignored")
    rec = np.frombuffer(raw, dtype=record, count=n)
    _check_sample_numbers(rec["n"].astype(np.int64), path, layout, notes)
    raw_analog = rec["a"].T.astype(np.float64)
    if cfg.file_type is not FileType.FLOAT32:
        missing = -(2 ** (15 if cfg.file_type is FileType.BINARY else 31))
        for row, ch in enumerate(cfg.analog):
            if ch.min > missing:  # the code is data when the declared range includes it
                raw_analog[row, rec["a"][:, row] == missing] = np.nan
    stamps = rec["t"].astype(np.float64)
    stamps[rec["t"] == _TIMESTAMP_MISSING] = np.nan
    words = np.ascontiguousarray(rec["d"]).astype("<u2")
    bits = np.unpackbits(words.view(np.uint8).reshape(n, -1), axis=1, bitorder="little")
    return _Dat(rec["n"].astype(np.int64), stamps, raw_analog,
                np.ascontiguousarray(bits[:, :n_d].T))


def _check_sample_numbers(
    numbers: NDArray[np.int64], path: Path, layout: str, notes: list[str]
) -> None:
    """Sample numbers count up by one; if they mostly do not, the record layout is wrong."""
    if numbers.shape[0] < 2:
        return
    breaks = np.flatnonzero(np.diff(numbers) != 1)
    if breaks.size > 0.01 * (numbers.shape[0] - 1):
        k = int(breaks[0])
        raise RecordingError(
            path,
            f"sample numbers go {numbers[k]}, {numbers[k + 1]}: records are not {layout}; "
            "the cfg's channel counts or file type do not match this data file",
            k + 2,
        )
    if breaks.size:
        notes.append(f"{path.name}: sample numbers skip at {breaks.size} records "
                     f"(first after record {int(breaks[0]) + 1})")


def _ascii_dat(
    cfg: _Cfg, path: Path, raw: bytes, line_offset: int, notes: list[str]
) -> _Dat:
    n_a, n_d = len(cfg.analog), len(cfg.digital)
    width = 2 + n_a + n_d
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1 + line_offset
        raise RecordingError(path, f"non-ASCII byte 0x{raw[exc.start]:02x} in ASCII data",
                             bad_line) from None
    text = text.rstrip("\x1a")  # DOS end-of-file mark
    numbered = [(k + 1 + line_offset, ln) for k, ln in
                enumerate(re.split(r"\r\n|\r|\n", text)) if ln.strip()]
    if not numbered:
        raise RecordingError(path, "empty data file")
    rows: list[list[str]] = []
    for number, line in numbered:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == width + 1 and fields[-1] == "":
            fields.pop()
        if len(fields) != width:
            raise RecordingError(
                path, f"expected {width} comma-separated fields (sample number, timestamp, "
                f"{n_a} analog, {n_d} digital), got {len(fields)}", number,
            )
        rows.append(fields)
    expected = _expected_samples(cfg)
    if expected is not None and len(rows) < expected:
        raise RecordingError(
            path, f"truncated: {len(rows)} samples, the cfg declares {expected} (endsamp)",
            numbered[-1][0] + 1,
        )
    if expected is not None and len(rows) > expected:
        notes.append(f"{path.name}: {len(rows) - expected} lines after sample {expected} "
                     "(the cfg's last endsamp) ignored")
        rows = rows[:expected]
    cells = np.array(rows, dtype=str)
    blank = cells == ""
    try:
        table = np.where(blank, "nan", cells).astype(np.float64)
    except ValueError:
        table = _locate_bad_cell(cells, path, numbered, n_a)
    required = blank.copy()
    required[:, 1:2 + n_a] = False  # timestamps and analog values may be missing
    if required.any():
        r, c = np.argwhere(required)[0]
        raise RecordingError(path, f"field {c + 1}: blank sample number or digital value",
                             numbered[int(r)][0])
    raw_analog = table[:, 2:2 + n_a].T.copy()
    for row, ch in enumerate(cfg.analog):
        if cfg.revision >= 1999 and ch.max < 99999:
            raw_analog[row, raw_analog[row] == 99999] = np.nan
    digital = table[:, 2 + n_a:]
    if ((digital != 0) & (digital != 1)).any():
        r, c = np.argwhere((digital != 0) & (digital != 1))[0]
        raise RecordingError(path, f"digital channel {c + 1}: expected 0 or 1, got "
                             f"{cells[r, 2 + n_a + c]!r}", numbered[int(r)][0])
    return _Dat(table[:, 0].astype(np.int64), table[:, 1], raw_analog,
                digital.T.astype(np.uint8))


def _locate_bad_cell(
    cells: NDArray[np.str_], path: Path, numbered: list[tuple[int, str]], n_a: int
) -> NDArray[np.float64]:
    for r in range(cells.shape[0]):
        for c in range(cells.shape[1]):
            text = str(cells[r, c])
            if text == "":
                continue
            try:
                float(text)
            except ValueError:
                what = ("sample number" if c == 0 else "timestamp" if c == 1 else
                        f"analog channel {c - 1}" if c < 2 + n_a else
                        f"digital channel {c - 1 - n_a}")
                raise RecordingError(path, f"{what}: expected a number, got {text!r}",
                                     numbered[r][0]) from None
    raise AssertionError("a cell failed to convert but none is bad")  # pragma: no cover


def _time_axis(
    cfg: _Cfg, path: Path, stamps: NDArray[np.float64], notes: list[str]
) -> tuple[NDArray[np.float64], TimeSource]:
    n = stamps.shape[0]
    problem = _timestamp_problem(stamps)
    if problem == "not strictly increasing":
        unwrapped = _unwrap_16bit(stamps)
        if unwrapped is not None:
            notes.append("timestamps wrap at 65536 (a 16-bit counter in a 32-bit field): "
                         "unwrapped")
            stamps, problem = unwrapped, None
    if problem is None:
        if stamps[0] != 0:
            notes.append(f"first timestamp is {stamps[0]:.0f}, not 0: times are taken "
                         "relative to the first sample, which is at the cfg start time")
        return (stamps - stamps[0]) * (cfg.timemult * cfg.timestamp_unit_s), (
            TimeSource.TIMESTAMPS)
    if not cfg.rates or any(r.rate_hz <= 0 for r in cfg.rates):
        raise RecordingError(path, f"no usable time axis: timestamps are {problem} and the cfg "
                             "gives no fixed sample rate")
    notes.append(f"timestamps are {problem}: time axis built from the cfg rate table")
    rate = np.empty(n, dtype=np.float64)
    start = 0
    for r in cfg.rates:
        rate[start:min(r.end_sample, n)] = r.rate_hz
        start = r.end_sample
    # the interval after a sample belongs to that sample's rate: the convention that
    # reproduces the timestamps of real variable-rate records (xtz, ygz: within 2.2 ms;
    # the other reading is 20 ms off at every change to a slower rate)
    return np.concatenate(([0.0], np.cumsum(1.0 / rate[:-1]))), TimeSource.RATE_TABLE


def _timestamp_problem(stamps: NDArray[np.float64]) -> str | None:
    if np.isnan(stamps).any():
        return "missing (0xFFFFFFFF or blank)"
    if stamps.shape[0] > 1 and not stamps.any():
        return "all zero"
    if stamps.shape[0] > 1 and (np.diff(stamps) <= 0).any():
        return "not strictly increasing"
    return None


def _unwrap_16bit(stamps: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """``stamps`` with 16-bit counter wraps undone, or None when that does not explain them.

    A wrap is accepted only where the repaired interval matches a neighbouring interval
    within 5 % (plus one count of quantisation), so a real backwards jump is not hidden.
    """
    steps = np.diff(stamps)
    wrapped = steps <= 0
    fixed = np.where(wrapped, steps + 65536.0, steps)
    if (fixed <= 0).any() or wrapped.all():
        return None
    for i in np.flatnonzero(wrapped):
        neighbours = [fixed[j] for j in (i - 1, i + 1)
                      if 0 <= j < fixed.shape[0] and not wrapped[j]]
        if not any(abs(fixed[i] - v) <= 0.05 * v + 1.5 for v in neighbours):
            return None
    return np.concatenate(([stamps[0]], stamps[0] + np.cumsum(fixed)))
