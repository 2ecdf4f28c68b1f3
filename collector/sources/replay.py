"""Replay a COMTRADE or WAV recording as a waveform :class:`~collector.model.Source`.

The recording is cut into uniform-rate segments along its own time axis (a gap or
a change of sample interval starts a new segment). Segments that hold one value
per cycle or so (the "envelope" parts of variable-rate fault recorders) are not
waveforms and are skipped, and said so in :attr:`ReplaySource.skipped_segments`.
Channel roles (voltage/current/residual, phase, circuit) are inferred from the
COMTRADE unit, phase field and channel name, or taken from a WAV sidecar;
docs/recordings.md describes the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, Block, ChannelInfo, Phase, Quantity, SourceCapabilities
from collector.sources.comtrade import AnalogChannel, FileType, Recording, Scaling, read_comtrade
from collector.sources.errors import RecordingError
from collector.sources.wav import WavRecording, full_scale_physical, read_wav

DEFAULT_BLOCK_DURATION_S = 0.2
ENVELOPE_SAMPLES_PER_CYCLE = 16.0  # below this a segment is an envelope, not a waveform
RATE_SNAP_TOLERANCE = 1e-3  # measured rate within 0.1 % of a declared one: use the declared
INTERVAL_TOLERANCE = 0.05  # sample intervals within 5 % belong to the same segment
_SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True, slots=True)
class Segment:
    """Samples ``start``..``stop - 1`` share one sample rate ``fs_hz`` with no gap."""

    start: int
    stop: int
    fs_hz: float

    @property
    def n_samples(self) -> int:
        return self.stop - self.start

    @property
    def duration_s(self) -> float:
        """Samples times the sample interval [s] (what the segment's blocks cover)."""
        return self.n_samples / self.fs_hz


@dataclass(frozen=True, slots=True)
class SkippedSegment:
    """A segment that is not replayed, and why."""

    start_ns: int
    duration_s: float
    n_samples: int
    fs_hz: float
    reason: str


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One analog channel of the recording as the replay sees it (for the CLI's table)."""

    id: str
    name: str  # as written in the recording
    number: int  # 1-based channel number in the recording
    quantity: Quantity | None  # None: not a voltage or current, never replayed
    phase: Phase | None
    unit: str  # as written in the recording
    circuit: str | None
    selected: bool
    note: str = ""


def open_recording(path: Path | str) -> Recording | WavRecording:
    """Read a ``.cfg``/``.dat``/``.cff`` COMTRADE record or a ``.wav`` file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".cfg", ".cff"):
        return read_comtrade(path)
    if suffix == ".dat":
        for cfg_suffix in (".cfg", ".CFG", ".Cfg"):
            if path.with_suffix(cfg_suffix).is_file():
                return read_comtrade(path.with_suffix(cfg_suffix), path)
        raise RecordingError(path.with_suffix(".cfg"),
                             f"configuration file not found (expected next to {path.name})")
    if suffix == ".wav":
        return read_wav(path)
    raise RecordingError(path, f"unknown file type {path.suffix or '(none)'!r}: expected "
                         ".cfg, .cff or .dat (COMTRADE) or .wav")


# --------------------------------------------------------------------------- segments


def find_segments(time_s: NDArray[np.float64], resolution_s: float = 0.0) -> list[tuple[int, int]]:
    """Split a time axis into runs of equal sample interval: ``[(start, stop), ...]``.

    A run ends where the sample interval changes by more than 5 % (plus
    ``resolution_s``, the timestamp quantisation). The sample at such a change has
    one interval of each kind; it joins the run with the shorter interval, so a
    gap or a slow (envelope) stretch never takes a waveform sample, and the first
    sample after a gap starts the next run.
    """
    n = int(time_s.shape[0])
    if n < 3:
        return [(0, n)] if n else []
    dt = np.diff(time_s)
    changed = np.abs(dt[1:] - dt[:-1]) > INTERVAL_TOLERANCE * np.abs(dt[:-1]) + resolution_s
    starts = [0]
    for k in np.flatnonzero(changed).tolist():
        # sample k + 1 sits between intervals dt[k] and dt[k + 1]
        start = k + 1 if dt[k + 1] < dt[k] else k + 2
        if start > starts[-1]:
            starts.append(start)
    return list(zip(starts, [*starts[1:], n], strict=True))


def _measured_rate_hz(
    time_s: NDArray[np.float64], start: int, stop: int, declared: Sequence[float]
) -> float:
    if stop - start < 2:
        return math.nan
    # end-to-end slope: immune to the ±1 count jitter of quantised timestamps
    fs = (stop - 1 - start) / float(time_s[stop - 1] - time_s[start])
    for rate in declared:
        if rate > 0 and abs(fs - rate) <= RATE_SNAP_TOLERANCE * rate:
            return float(rate)
    return fs


# --------------------------------------------------------------------------- roles

_V, _A = Quantity.VOLTAGE, Quantity.CURRENT
# unit as written -> (quantity, factor to V or A); "MV"/"MA" are left out (mega or milli?)
_UNITS = MappingProxyType({
    "V": (_V, 1.0), "kV": (_V, 1e3), "KV": (_V, 1e3), "mV": (_V, 1e-3),
    "v": (_V, 1.0), "kv": (_V, 1e3),
    "A": (_A, 1.0), "kA": (_A, 1e3), "KA": (_A, 1e3), "mA": (_A, 1e-3),
    "a": (_A, 1.0), "ka": (_A, 1e3),
})
# the cfg's ph field (upper-cased) -> phase
_PH_FIELD = MappingProxyType({
    "A": Phase.A, "B": Phase.B, "C": Phase.C, "N": Phase.N, "G": Phase.G,
    "L1": Phase.A, "L2": Phase.B, "L3": Phase.C,
    "R": Phase.A, "S": Phase.B, "T": Phase.C,
    "1": Phase.A, "2": Phase.B, "3": Phase.C,
    "E": Phase.G, "PE": Phase.G,
})
# phase letter or number inside a name token (Ua, IL2, VT) -> phase
_LETTER_PHASE = MappingProxyType({
    "A": Phase.A, "B": Phase.B, "C": Phase.C,
    "R": Phase.A, "S": Phase.B, "T": Phase.C,
    "1": Phase.A, "2": Phase.B, "3": Phase.C,
})
# name tokens, tried on each ASCII alphanumeric run of the name, last run first
_RESIDUAL_I = re.compile(r"3?I[0O]|I[NEG]|IRES", re.IGNORECASE)
_RESIDUAL_U = re.compile(r"3?[UV][0O]|[UV][NEG]", re.IGNORECASE)
_PHASE_TOKEN = re.compile(r"(?P<q>[UVI])(?:(?P<p>[ABCRST])(?P<d>\d*)|L?(?P<n>[123]))",
                          re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _NameRole:
    token: str  # the matched token as written, e.g. "Ua", "3I0"
    residual: bool
    phase: Phase | None
    key: str  # the name with the token removed: groups the phases of one circuit


def _name_role(name: str) -> _NameRole | None:
    for m in reversed(list(re.finditer(r"[A-Za-z0-9]+", name))):
        token = m.group(0)
        if _RESIDUAL_I.fullmatch(token) or _RESIDUAL_U.fullmatch(token):
            phase = Phase.N if token.upper().lstrip("3")[0] in "UV" else Phase.G
            return _NameRole(token, True, phase, _strip_key(name[:m.start()] + name[m.end():]))
        pm = _PHASE_TOKEN.fullmatch(token)
        if pm is not None:
            letter = (pm.group("p") or pm.group("n")).upper()
            # keep a circuit number written into the token (Ia1, Ib1 -> circuit I1)
            rest = pm.group("q").upper() + pm.group("d") if pm.group("d") else ""
            key = _strip_key(name[:m.start()] + rest + name[m.end():])
            return _NameRole(token, False, _LETTER_PHASE[letter], key)
    return None


def _strip_key(text: str) -> str:
    return text.strip(" _-.")


def _sanitise(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]", "_", text)).strip("_-")


def _phase_from_field(ph: str) -> Phase | None:
    return _PH_FIELD.get(ph.strip().upper())


@dataclass(frozen=True, slots=True)
class _Role:
    quantity: Quantity | None
    phase: Phase | None
    unit_factor: float  # recorded unit -> V or A
    token: str
    key: str
    note: str


def infer_role(name: str, ph: str, unit: str) -> tuple[Quantity | None, Phase | None, float]:
    """(quantity, phase, factor to V or A) of a COMTRADE channel; quantity None = not replayable."""
    role = _role(name, ph, unit)
    return role.quantity, role.phase, role.unit_factor


def _role(name: str, ph: str, unit: str) -> _Role:
    found = _UNITS.get(unit.strip())
    named = _name_role(name)
    token = named.token if named else ""
    key = named.key if named else _strip_key(name)
    if found is None:
        return _Role(None, None, 1.0, token, key,
                     f"unit {unit!r} is neither a voltage nor a current: ignored")
    quantity, factor = found
    phase = _phase_from_field(ph)
    if named is not None and named.residual:
        if quantity is Quantity.CURRENT:
            return _Role(Quantity.RESIDUAL_CURRENT, Phase.G, factor, token, key, "")
        return _Role(quantity, Phase.N, factor, token, key, "")
    if quantity is Quantity.CURRENT and phase is Phase.G:
        # a current in the earth path is a residual current (our writer marks them so)
        return _Role(Quantity.RESIDUAL_CURRENT, Phase.G, factor, token, key, "")
    if phase is None and named is not None:
        phase = named.phase
    return _Role(quantity, phase, factor, token, key, "")


def _channel_ids(names: Sequence[str], tokens: Sequence[str]) -> list[str]:
    ids: list[str] = []
    taken: set[str] = set()
    for number, (name, token) in enumerate(zip(names, tokens, strict=True), start=1):
        if name.isascii() and _sanitise(name):
            base = _sanitise(name)
        else:
            # non-ASCII names (GBK Chinese): the channel number finds it in the cfg
            base = f"ch{number}" + (f"_{token}" if token else "")
        cid = base
        while cid in taken:
            cid = f"{base}_{number}" if cid == base else f"{cid}_"
        taken.add(cid)
        ids.append(cid)
    return ids


def _circuits(
    roles: Sequence[_Role], channels: Sequence[AnalogChannel], ids: Sequence[str]
) -> dict[int, str]:
    """Circuit id per row of the current and residual-current channels.

    Channels sharing a ccbm form a circuit when that ccbm names at most one channel
    per (quantity, phase): some recorders write the unit ("kA") into ccbm, and a
    circuit never has two phase-A currents. The others group by their name with
    the phase token removed (``IA_G1``, ``IB_G1`` -> ``G1``).
    """
    current_rows = [r for r, role in enumerate(roles)
                    if role.quantity in (Quantity.CURRENT, Quantity.RESIDUAL_CURRENT)]
    by_ccbm: dict[str, list[int]] = {}
    for r in current_rows:
        if channels[r].ccbm:
            by_ccbm.setdefault(channels[r].ccbm, []).append(r)
    groups: list[tuple[list[str], list[int]]] = []  # (names to try in order, rows)
    grouped: set[int] = set()
    for ccbm, rows in by_ccbm.items():
        kinds = [(roles[r].quantity, roles[r].phase) for r in rows]
        if len(rows) > 1 and (any(p is None for _, p in kinds) or len(set(kinds)) < len(kinds)):
            continue
        groups.append(([ccbm, roles[rows[0]].key], rows))
        grouped.update(rows)
    by_key: dict[str, list[int]] = {}
    for r in current_rows:
        if r in grouped:
            continue
        if roles[r].key:
            by_key.setdefault(roles[r].key, []).append(r)
        else:  # the name is just "3I0" or "IA": its own circuit, named like the channel
            groups.append(([ids[r]], [r]))
    groups += [([key], rows) for key, rows in by_key.items()]
    result: dict[int, str] = {}
    used: set[str] = set()
    for names, rows in sorted(groups, key=lambda g: min(g[1])):
        first = channels[min(rows)].index
        cid = _readable(names) or f"ckt{first}"
        if cid in used:
            cid = f"{cid}_{first}"
        used.add(cid)
        for r in rows:
            result[r] = cid
    return result


def _readable(names: Sequence[str]) -> str | None:
    """An ASCII circuit id from the first usable name, or None."""
    for name in names:
        if name.isascii() and _sanitise(name):
            return _sanitise(name)
    for name in names:
        # names mixing ASCII and other scripts ("220kVxyx_215开关"): keep the ASCII
        # part when it says something (three letters or more)
        residue = _sanitise(re.sub(r"[^\x00-\x7f]+", "_", name))
        if sum(c.isalpha() for c in residue) >= 3:
            return residue
    return None


# nominal system voltages, line to line [V] (IEC 60038 and North American practice);
# 240 and 415 are left out because 240/415 V and 120/240 V systems make them ambiguous
_SYSTEM_VOLTAGES_V = (208, 380, 400, 480, 600, 690, 1000, 3000, 3300, 6000, 6600, 10000, 11000,
                      13200, 13800, 15000, 20000, 22000, 25000, 33000, 34500, 35000, 44000,
                      66000, 69000, 110000, 115000, 132000, 138000, 150000, 161000, 220000,
                      230000, 275000, 330000, 345000, 380000, 400000, 500000, 735000,
                      750000, 765000)


# low-voltage nominal phase-to-neutral voltages [V] (IEC 60038: 230/400, 220/380,
# 127/220, 120/208, 277/480, 347/600); 230 * sqrt(3) is 0.4 % off 400, so list them
_LV_PHASE_VOLTAGES_V = (120, 127, 220, 230, 277, 347)


def _system_match(v: float, table: Sequence[float] = _SYSTEM_VOLTAGES_V) -> bool:
    return any(abs(v - u) <= 1e-3 * u for u in table)


def nominal_phase_voltage_from_rating(primary_v: float) -> float | None:
    """Nominal phase-to-neutral voltage [V] implied by a VT primary rating [V].

    A rating that is a standard system voltage is line-to-line (220000 -> 127017);
    one that is a standard system voltage over sqrt(3) is already phase-to-neutral
    (127017 -> 127017). Anything else: None (unknown).
    """
    if primary_v <= 0:
        return None
    if _system_match(primary_v, _LV_PHASE_VOLTAGES_V) or _system_match(primary_v * _SQRT3):
        return primary_v
    if _system_match(primary_v):
        return primary_v / _SQRT3
    return None


# --------------------------------------------------------------------------- source


@dataclass(frozen=True, slots=True)
class _Plan:
    rows: tuple[int, ...]  # rows of the recording's value array, in channel order
    factors: NDArray[np.float64]  # (n_selected, 1): recorded -> emitted V or A
    channels: tuple[ChannelInfo, ...]


class ReplaySource:
    """A COMTRADE or WAV recording replayed as blocks (implements ``Source``).

    Parameters
    ----------
    recording : Recording | WavRecording
        From :func:`open_recording`, :func:`read_comtrade` or :func:`read_wav`.
    channels : sequence of str or int, optional
        Channels to replay: ids (see :meth:`channel_table`), names as written in the
        recording, or 1-based channel numbers. Default: every voltage and current.
    nominal_frequency_hz : float, optional
        Overrides the recording's ``lf`` (or the sidecar's value).
    nominal_voltage_v : float, optional
        Nominal phase-to-neutral voltage [V] in the emitted scale; overrides what
        the sidecar or the VT ratings say.
    block_duration_s : float
        Target block length [s]. Blocks never span a segment boundary; the last
        block of a segment absorbs a remainder shorter than half a block.
    scaling : Scaling
        COMTRADE only: emit recorded values, or convert to primary/secondary.
    envelope_below_samples_per_cycle : float, optional
        Segments with fewer samples per nominal cycle are skipped as envelopes.
        Default: 16, applied only when the recording also holds waveform segments
        (a record sampled slowly throughout, like a 400 Hz WAV, is replayed).
    """

    def __init__(
        self,
        recording: Recording | WavRecording,
        *,
        channels: Sequence[str | int] | None = None,
        nominal_frequency_hz: float | None = None,
        nominal_voltage_v: float | None = None,
        block_duration_s: float = DEFAULT_BLOCK_DURATION_S,
        scaling: Scaling = Scaling.RECORDED,
        envelope_below_samples_per_cycle: float | None = None,
    ) -> None:
        if not block_duration_s > 0:
            raise ValueError(f"block_duration_s: must be > 0 s, got {block_duration_s}")
        for name, value in (("nominal_frequency_hz", nominal_frequency_hz),
                            ("nominal_voltage_v", nominal_voltage_v)):
            if value is not None and not value > 0:
                raise ValueError(f"{name}: must be > 0, got {value}")
        if isinstance(recording, WavRecording) and scaling is not Scaling.RECORDED:
            raise ValueError(f"scaling: {scaling.value} needs COMTRADE transformer ratings; "
                             "a WAV sidecar already gives physical units")
        self._rec = recording
        self._block_s = block_duration_s
        notes = list(recording.notes)
        self._table = (
            _comtrade_table(recording) if isinstance(recording, Recording)
            else _wav_table(recording)
        )
        rows = self._select(channels)
        chosen = set(rows)
        self._table = tuple(replace(r, selected=k in chosen) for k, r in enumerate(self._table))
        self._values: NDArray[np.float64] = (
            recording.analog_values if isinstance(recording, Recording) else recording.values
        )
        self._start_ns = recording.start_ns if recording.start_ns is not None else 0
        if recording.start_ns is None:
            notes.append("the cfg gives no start time: blocks are stamped from 1970-01-01")

        f_nom = nominal_frequency_hz or (
            recording.lf_hz if isinstance(recording, Recording) else recording.nominal_frequency_hz
        )
        if f_nom is None:
            f_nom, how = _guess_mains_hz(self._values, self._table, recording)
            notes.append(how)
        self._f_nom = float(f_nom)

        segments, skipped = self._segments(envelope_below_samples_per_cycle)
        self._segments_list = segments
        self._skipped = skipped
        for s in skipped:
            notes.append(f"skipped {s.n_samples} samples at {s.fs_hz:g} Hz "
                         f"({s.duration_s:.3f} s): {s.reason}")
        if not segments:
            notes.append("nothing to replay: no segment is a waveform")
        top_rate = max((s.fs_hz for s in segments), default=0.0)
        self._plan = self._make_plan(rows, scaling, top_rate)
        v_nom = nominal_voltage_v
        if v_nom is None:
            v_nom, how = self._nominal_voltage(scaling)
            if how:
                notes.append(how)
        self._caps = SourceCapabilities(
            channels=self._plan.channels,
            # recorders sample all channels together; the cfg's small per-channel skews
            # (anti-alias filter delays, µs) are reported in ChannelInfo.skew_s
            simultaneous=True,
            waveform=True,
            nominal_frequency_hz=self._f_nom,
            nominal_voltage_v=v_nom,
        )
        self._notes = tuple(notes)

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        channels: Sequence[str | int] | None = None,
        nominal_frequency_hz: float | None = None,
        nominal_voltage_v: float | None = None,
        block_duration_s: float = DEFAULT_BLOCK_DURATION_S,
        scaling: Scaling = Scaling.RECORDED,
        envelope_below_samples_per_cycle: float | None = None,
    ) -> ReplaySource:
        """:func:`open_recording` then the constructor (options as in the class doc)."""
        return cls(
            open_recording(path), channels=channels, nominal_frequency_hz=nominal_frequency_hz,
            nominal_voltage_v=nominal_voltage_v, block_duration_s=block_duration_s,
            scaling=scaling, envelope_below_samples_per_cycle=envelope_below_samples_per_cycle,
        )

    # ------------------------------------------------------------------ Source

    @property
    def capabilities(self) -> SourceCapabilities:
        return self._caps

    def blocks(self) -> Iterator[Block]:
        """Blocks of every replayed segment in time order; each call starts over."""
        values = self._values
        rows = list(self._plan.rows)
        factors = self._plan.factors
        for seg in self._segments_list:
            n_block = max(1, round(self._block_s * seg.fs_hz))
            # a remainder under half a block joins the last block instead of trailing alone
            n_blocks = max(1, round(seg.n_samples / n_block))
            first = True
            for b in range(n_blocks):
                i = seg.start + b * n_block
                j = seg.stop if b == n_blocks - 1 else i + n_block
                samples = values[rows, i:j] * factors
                yield Block(t0_ns=self._t0_ns(i, seg), fs_hz=seg.fs_hz,
                            samples=samples, contiguous=not first)
                first = False

    def close(self) -> None:
        """Nothing to release: the recording was read into memory up front."""

    # ------------------------------------------------------------------ extras

    @property
    def recording(self) -> Recording | WavRecording:
        return self._rec

    @property
    def segments(self) -> tuple[Segment, ...]:
        """Replayed segments, in order."""
        return tuple(self._segments_list)

    @property
    def skipped_segments(self) -> tuple[SkippedSegment, ...]:
        return tuple(self._skipped)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the reader and the replay assumed or ignored, for the user to see."""
        return self._notes

    def channel_table(self) -> tuple[ChannelRow, ...]:
        """Every analog channel of the recording with its inferred role and id."""
        return self._table

    # ------------------------------------------------------------------ internals

    def _t0_ns(self, i: int, seg: Segment) -> int:
        rec = self._rec
        if isinstance(rec, Recording):
            return self._start_ns + round(float(rec.time_s[i]) * NS_PER_S)
        return self._start_ns + round(i * NS_PER_S / seg.fs_hz)

    def _select(self, wanted: Sequence[str | int] | None) -> list[int]:
        table = self._table
        if wanted is None:
            rows = [k for k, r in enumerate(table) if r.quantity is not None]
            if not rows:
                raise ValueError(f"{self._rec.path}: no voltage or current channel to replay")
            return rows
        if isinstance(wanted, str):
            wanted = [wanted]
        rows = []
        for key in wanted:
            row = _find_row(table, key)
            if table[row].quantity is None:
                raise ValueError(f"channels: {key!r} ({table[row].name!r}) cannot be replayed: "
                                 f"{table[row].note}")
            if row in rows:
                raise ValueError(f"channels: {key!r} selected twice")
            rows.append(row)
        if not rows:
            raise ValueError("channels: empty selection")
        return rows

    def _segments(
        self, threshold: float | None
    ) -> tuple[list[Segment], list[SkippedSegment]]:
        rec = self._rec
        if isinstance(rec, WavRecording):
            candidates = [Segment(0, rec.n_samples, rec.fs_hz)]
        else:
            resolution = rec.timestamp_resolution_s if rec.time_source == "timestamps" else 0.0
            declared = [r.rate_hz for r in rec.rates]
            candidates = [
                Segment(a, b, _measured_rate_hz(rec.time_s, a, b, declared))
                for a, b in find_segments(rec.time_s, resolution)
            ]
        waveform = any(s.fs_hz / self._f_nom >= ENVELOPE_SAMPLES_PER_CYCLE
                       for s in candidates if math.isfinite(s.fs_hz))
        limit = threshold if threshold is not None else (
            ENVELOPE_SAMPLES_PER_CYCLE if waveform else 0.0)
        kept: list[Segment] = []
        skipped: list[SkippedSegment] = []
        for seg in candidates:
            reason = ""
            if seg.n_samples < 2 or not math.isfinite(seg.fs_hz):
                reason = "a single sample between gaps"
            elif seg.fs_hz / self._f_nom < limit:
                reason = (f"{seg.fs_hz / self._f_nom:.3g} samples per cycle (< {limit:g}): "
                          "an envelope, not a waveform")
            elif seg.n_samples / seg.fs_hz < 1.0 / self._f_nom:
                reason = "shorter than one nominal cycle"
            if reason:
                fs = seg.fs_hz if math.isfinite(seg.fs_hz) else 0.0
                skipped.append(SkippedSegment(
                    start_ns=self._t0_ns(seg.start, seg) if isinstance(rec, Recording)
                    else self._start_ns,
                    duration_s=seg.n_samples / fs if fs else 0.0,
                    n_samples=seg.n_samples, fs_hz=fs, reason=reason))
            else:
                kept.append(seg)
        return kept, skipped

    def _make_plan(self, rows: list[int], scaling: Scaling, rate_hz: float) -> _Plan:
        rec = self._rec
        infos: list[ChannelInfo] = []
        factors: list[float] = []
        for row in rows:
            entry = self._table[row]
            assert entry.quantity is not None  # _select admits only replayable channels
            if isinstance(rec, Recording):
                ch = rec.analog[row]
                factor = _emit_factor(ch, scaling)
                resolution = None if rec.file_type is FileType.FLOAT32 else abs(ch.a) * factor
                full_scale = (max(abs(ch.a * ch.min + ch.b), abs(ch.a * ch.max + ch.b)) * factor
                              if ch.max > ch.min else None)
                skew = ch.skew_s
            else:
                wch = rec.channels[row]
                factor = 1.0
                resolution = abs(wch.scale) if rec.sample_format == "int" else None
                full_scale = full_scale_physical(wch, rec.full_scale_counts)
                skew = 0.0
            infos.append(ChannelInfo(
                id=entry.id, quantity=entry.quantity, phase=entry.phase,
                circuit=entry.circuit, rate_hz=rate_hz, skew_s=skew,
                resolution=resolution, full_scale=full_scale,
                calibration_id=None,
            ))
            factors.append(factor)
        return _Plan(tuple(rows), np.array(factors, dtype=np.float64)[:, None], tuple(infos))

    def _nominal_voltage(self, scaling: Scaling) -> tuple[float | None, str]:
        rec = self._rec
        if isinstance(rec, WavRecording):
            return rec.nominal_voltage_v, ""
        found: dict[str, float] = {}
        for row, info in zip(self._plan.rows, self._plan.channels, strict=True):
            if info.quantity is not Quantity.VOLTAGE or info.phase not in (
                    Phase.A, Phase.B, Phase.C):
                continue
            ch = rec.analog[row]
            unit = _UNITS[ch.unit.strip()][1]
            phase_primary = nominal_phase_voltage_from_rating(ch.primary * unit)
            side = ch.ps if scaling is Scaling.RECORDED else scaling.value[0].upper()
            if phase_primary is None or ch.ps not in ("P", "S") or ch.secondary <= 0:
                continue
            value = phase_primary if side == "P" else phase_primary * ch.secondary / ch.primary
            found[info.id] = value
        if not found:
            return None, ("nominal voltage unknown (no standard VT rating in the cfg): "
                          "pass nominal_voltage_v")
        values = sorted(found.values())
        if values[-1] > values[0] * 1.005:
            return None, (f"voltage channels imply different nominal voltages "
                          f"({values[0]:.4g}..{values[-1]:.4g} V): pass nominal_voltage_v")
        v = values[len(values) // 2]
        return v, f"nominal voltage {v:.5g} V (phase to neutral) from the cfg's VT ratings"


def _emit_factor(ch: AnalogChannel, scaling: Scaling) -> float:
    scale = ch.factor(scaling)
    if scale is None:
        raise ValueError(f"scaling: {scaling.value} values need PS and primary/secondary "
                         f"ratings, which channel {ch.index} ({ch.name!r}) lacks")
    return scale * _UNITS[ch.unit.strip()][1]


def _find_row(table: Sequence[ChannelRow], key: str | int) -> int:
    for k, row in enumerate(table):
        if row.id == key or row.name == key:
            return k
    number = key if isinstance(key, int) else int(key) if str(key).isdigit() else None
    if number is not None and 1 <= number <= len(table):
        return number - 1
    raise ValueError(f"channels: no channel {key!r}; expected an id, a name or a number "
                     f"1..{len(table)} (ids: {', '.join(r.id for r in table[:12])}"
                     f"{', ...' if len(table) > 12 else ''})")


def _comtrade_table(rec: Recording) -> tuple[ChannelRow, ...]:
    roles = [_role(ch.name, ch.phase, ch.unit) for ch in rec.analog]
    ids = _channel_ids([ch.name for ch in rec.analog], [r.token for r in roles])
    circuits = _circuits(roles, rec.analog, ids)
    return tuple(
        ChannelRow(id=ids[k], name=ch.name, number=k + 1, quantity=role.quantity,
                   phase=role.phase, unit=ch.unit, circuit=circuits.get(k),
                   selected=False, note=role.note)
        for k, (ch, role) in enumerate(zip(rec.analog, roles, strict=True))
    )


def _wav_table(rec: WavRecording) -> tuple[ChannelRow, ...]:
    unit = "V" if rec.calibrated else "counts"
    return tuple(
        ChannelRow(id=ch.id, name=ch.id, number=ch.number, quantity=ch.quantity,
                   phase=ch.phase, unit=unit if ch.quantity is Quantity.VOLTAGE or
                   not rec.calibrated else "A", circuit=ch.circuit, selected=False,
                   note="" if rec.calibrated else "uncalibrated (no sidecar)")
        for ch in rec.channels
    )


def _guess_mains_hz(
    values: NDArray[np.float64], table: Sequence[ChannelRow], rec: Recording | WavRecording
) -> tuple[float, str]:
    """50 or 60 Hz, whichever is nearer the strongest spectral line in 40-70 Hz."""
    fs = rec.fs_hz if isinstance(rec, WavRecording) else (
        rec.rates[0].rate_hz if rec.rates else 0.0)
    row = next((k for k, r in enumerate(table) if r.quantity is Quantity.VOLTAGE), 0)
    if fs < 150:
        return 50.0, "nominal frequency unknown and the rate too low to tell: 50 Hz assumed"
    x = values[row, : int(min(values.shape[1], 4 * fs))]
    x = np.nan_to_num(x - np.nanmean(x))
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    freqs = np.fft.rfftfreq(x.shape[0], 1.0 / fs)
    band = (freqs >= 40) & (freqs <= 70)
    if not band.any() or spectrum[band].max() <= 0:
        return 50.0, "nominal frequency unknown and no mains line found: 50 Hz assumed"
    peak = float(freqs[band][np.argmax(spectrum[band])])
    f = 50.0 if abs(peak - 50) < abs(peak - 60) else 60.0
    return f, f"nominal frequency not declared: {f:g} Hz (spectral peak at {peak:.2f} Hz)"
