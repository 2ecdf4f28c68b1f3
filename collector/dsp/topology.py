"""Which channels feed which metrics record.

From the source's channels and the configured circuits this builds the rows
of the per-interval values array (see :mod:`collector.dsp.records`) and the
channel indices behind each row:

* one row per voltage channel;
* one row per circuit phase (a current and the voltage it pairs with, or no
  voltage: an empty voltage channel id ``""`` or an empty tuple); current
  channels that are in no circuit become a current-only circuit of their own,
  named after the channel;
* one total row per circuit with more than one current (phase = the joined
  phases, e.g. "ABC" or "ABCN"): powers and energies summed over the phases
  that are not the neutral, current unbalance for three phases and, when the
  source has no residual-current channel, the residual current as the sum of
  all its currents plus any neutral (phase N) current channel of the same
  circuit;
* one "system" row when there are voltages of phases A, B and C (or exactly
  three voltages with unknown phases, taken in channel order);
* one row per residual-current channel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from collector.dsp.records import (
    CIRCUIT_PHASE_FIELDS,
    CIRCUIT_TOTAL_FIELDS,
    CURRENT_HARMONICS,
    RESIDUAL_FIELDS,
    SYSTEM_FIELDS,
    VOLTAGE_FIELDS,
    VOLTAGE_HARMONICS,
    RecordKind,
    RecordLayout,
    build_layout,
)
from collector.model import ChannelInfo, Phase, Quantity, SourceCapabilities

Row = tuple[RecordKind, str, str | None, str | None, tuple[str, ...]]


class Circuit(Protocol):
    """What the topology needs of a circuit (``metrics_engine.CircuitSpec``)."""

    @property
    def id(self) -> str: ...

    @property
    def current_channels(self) -> tuple[str, ...]: ...

    @property
    def voltage_channels(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class _OwnChannel:
    """A current channel that is in no circuit: a current-only circuit of its own."""

    id: str
    current_channels: tuple[str, ...]
    voltage_channels: tuple[str, ...] = ()


def _ix(values: Sequence[int]) -> NDArray[np.intp]:
    return np.asarray(values, dtype=np.intp)


@dataclass(frozen=True, slots=True)
class Totals:
    """Total rows of multi-phase circuits.

    Attributes
    ----------
    rows : tuple[int, ...]
        Row of each total.
    members : tuple[NDArray[np.intp], ...]
        Its phases, as indices into the circuit-phase arrays of
        :class:`Topology`.
    unbalance : tuple[tuple[int, NDArray[np.intp]], ...]
        (row, circuit-phase indices of A, B, C) for three-phase circuits.
    residual : tuple[tuple[int, NDArray[np.intp]], ...]
        (row, current channels summed) where the residual current is computed.
    """

    rows: tuple[int, ...] = ()
    members: tuple[NDArray[np.intp], ...] = ()
    unbalance: tuple[tuple[int, NDArray[np.intp]], ...] = ()
    residual: tuple[tuple[int, NDArray[np.intp]], ...] = ()


# Rows of the per-channel quantities that records copy (see ChannelCopies); the
# harmonic groups follow, group h in row GROUPS + h.
RMS, PEAK, MISSING, CLIPPED, GROUPS = range(5)


@dataclass(frozen=True, slots=True)
class ChannelCopies:
    """Cells of the values array that are a channel's quantity copied unchanged.

    The quantities of one window are stacked as a (GROUPS + H, C + 1) array
    (rows RMS, PEAK, MISSING, CLIPPED, then the H harmonic groups; column C
    is NaN, standing for "no channel"), so every such cell of every record
    is filled by one gather and one scatter of flat indices.

    Attributes
    ----------
    src : NDArray[np.intp]
        Flat index into that (GROUPS + H, C + 1) array, whatever H.
    dst : NDArray[np.intp]
        Flat index into the (records, fields) array of one window.
    group : NDArray[np.intp]
        Harmonic group copied (0 = fundamental), -1 for the other quantities:
        only cells with ``group < H`` are copied.
    """

    src: NDArray[np.intp]
    dst: NDArray[np.intp]
    group: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Topology:
    """Rows of the values array and the channels behind them.

    Attributes
    ----------
    layout : RecordLayout
    v_rows, v_ch : NDArray[np.intp]
        Voltage-channel rows and their channels.
    cp_rows, cp_i, cp_v : NDArray[np.intp]
        Circuit-phase rows, their current channel and paired voltage channel
        (-1 when there is none).
    cp_skew_us : NDArray[np.float64]
        Sampling skew of each current relative to its voltage [us] (NaN
        without a voltage).
    cp_energy_keys : tuple[tuple[str, ...], ...]
        Keys under which each circuit phase's energy counters resume.
    totals : Totals
    system : tuple[int, NDArray[np.intp]] | None
        (row, voltage channels A, B, C) of the polyphase record.
    residual_rows, residual_ch : NDArray[np.intp]
        Residual-current channel rows and channels.
    copies : ChannelCopies
        The cells of voltage, circuit-phase and residual rows that copy a
        channel's RMS, peak, sample counts or harmonic groups.
    """

    layout: RecordLayout
    v_rows: NDArray[np.intp]
    v_ch: NDArray[np.intp]
    cp_rows: NDArray[np.intp]
    cp_i: NDArray[np.intp]
    cp_v: NDArray[np.intp]
    cp_skew_us: NDArray[np.float64]
    cp_energy_keys: tuple[tuple[str, ...], ...]
    totals: Totals = field(default_factory=Totals)
    system: tuple[int, NDArray[np.intp]] | None = None
    residual_rows: NDArray[np.intp] = field(default_factory=lambda: _ix([]))
    residual_ch: NDArray[np.intp] = field(default_factory=lambda: _ix([]))
    copies: ChannelCopies = field(
        default_factory=lambda: ChannelCopies(_ix([]), _ix([]), _ix([]))
    )


def phase_label(k: int, n: int, *phases: Phase | None) -> str | None:
    """First known phase; else A, B, C by position in a multi-phase circuit."""
    for p in phases:
        if p is not None:
            return str(p)
    return "ABC"[k] if 1 < n <= 3 else None


def join_ids(*ids: str | None) -> str | None:
    """Distinct calibration ids joined with '+', None when there are none."""
    seen = [i for i in dict.fromkeys(ids) if i]
    return "+".join(seen) if seen else None


def circuit_channels(
    spec: Circuit, caps: SourceCapabilities, covered: set[int]
) -> tuple[list[int], list[int]]:
    """Indices of a circuit's currents and paired voltages (-1: none), validated."""
    where = f"circuits[{spec.id!r}]"
    chans = caps.channels
    if not spec.current_channels:
        raise ValueError(f"{where}.current_channels: must not be empty")
    n = len(spec.current_channels)
    if spec.voltage_channels and len(spec.voltage_channels) != n:
        raise ValueError(
            f"{where}.voltage_channels: must pair 1:1 with {n} current channels or be empty, "
            f"got {len(spec.voltage_channels)}"
        )
    i_idx = [caps.index(c) for c in spec.current_channels]
    # "" pairs a current with no voltage (e.g. a neutral CT in a three-phase circuit)
    v_idx = [caps.index(c) if c else -1 for c in spec.voltage_channels] or [-1] * n
    for c in i_idx:
        if chans[c].quantity is not Quantity.CURRENT:
            raise ValueError(f"{where}.current_channels: {chans[c].id!r} is not a current channel")
        if c in covered:
            raise ValueError(f"{where}: channel {chans[c].id!r} is in more than one circuit")
        covered.add(c)
    for c in v_idx:
        if c >= 0 and chans[c].quantity is not Quantity.VOLTAGE:
            raise ValueError(f"{where}.voltage_channels: {chans[c].id!r} is not a voltage channel")
    return i_idx, v_idx


def _three_phase_voltages(chans: tuple[ChannelInfo, ...], voltages: list[int]) -> list[int] | None:
    by_phase: dict[Phase, int] = {}
    for k in voltages:
        p = chans[k].phase
        if p in (Phase.A, Phase.B, Phase.C) and p not in by_phase:
            by_phase[p] = k
    if len(by_phase) == 3:
        return [by_phase[Phase.A], by_phase[Phase.B], by_phase[Phase.C]]
    if len(voltages) == 3 and all(chans[k].phase is None for k in voltages):
        return list(voltages)
    return None


@dataclass
class _Builder:
    """Accumulates rows while the topology is built (local to build_topology)."""

    caps: SourceCapabilities
    energy_start: Mapping[str, tuple[float, float]]
    rows: list[Row] = field(default_factory=list)
    cp_rows: list[int] = field(default_factory=list)
    cp_i: list[int] = field(default_factory=list)
    cp_v: list[int] = field(default_factory=list)
    cp_skew: list[float] = field(default_factory=list)
    cp_keys: list[tuple[str, ...]] = field(default_factory=list)
    energy: list[tuple[float, float]] = field(default_factory=list)
    used_keys: set[str] = field(default_factory=set)
    totals: list[int] = field(default_factory=list)
    members: list[NDArray[np.intp]] = field(default_factory=list)
    unbalance: list[tuple[int, NDArray[np.intp]]] = field(default_factory=list)
    residual: list[tuple[int, NDArray[np.intp]]] = field(default_factory=list)

    def energy_for(self, keys: tuple[str, ...]) -> tuple[float, float]:
        for key in keys:
            if key in self.energy_start:
                self.used_keys.add(key)
                imp, exp = self.energy_start[key]
                if imp < 0 or exp < 0:
                    raise ValueError(
                        f"energy_start[{key!r}]: counters must be >= 0, got {(imp, exp)}"
                    )
                return float(imp), float(exp)
        return 0.0, 0.0

    def add_circuit(self, spec: Circuit, i_idx: list[int], v_idx: list[int]) -> None:
        chans = self.caps.channels
        n = len(i_idx)
        members: list[int] = []  # circuit phases that carry power (not the neutral)
        labels: list[str] = []
        for k, (ci, cv) in enumerate(zip(i_idx, v_idx, strict=True)):
            ich = chans[ci]
            vch = chans[cv] if cv >= 0 else None
            label = phase_label(k, n, ich.phase, vch.phase if vch else None)
            labels.append(label or "")
            if n == 1:
                keys: tuple[str, ...] = (spec.id, f"{spec.id}:{label}") if label else (spec.id,)
            else:
                keys = (f"{spec.id}:{label}",)
            if ich.phase is not Phase.N:
                members.append(len(self.cp_rows))
            self.cp_rows.append(len(self.rows))
            self.cp_i.append(ci)
            self.cp_v.append(cv)
            self.cp_skew.append((ich.skew_s - vch.skew_s) * 1e6 if vch else math.nan)
            self.cp_keys.append(keys)
            self.energy.append(self.energy_for(keys))
            cal = join_ids(vch.calibration_id if vch else None, ich.calibration_id)
            self.rows.append((RecordKind.CIRCUIT_PHASE, spec.id, label, cal, CIRCUIT_PHASE_FIELDS))
        if n > 1:
            self.add_total(spec, i_idx, members, labels)

    def add_total(
        self, spec: Circuit, i_idx: list[int], members: list[int], labels: list[str]
    ) -> None:
        """Total of a multi-phase circuit, or of one phase with its neutral."""
        chans = self.caps.channels
        row = len(self.rows)
        fields: tuple[str, ...] = CIRCUIT_TOTAL_FIELDS
        phase_labels = [str(self.rows[self.cp_rows[m]][2] or "") for m in members]
        if len(members) == 3:
            abc = sorted(phase_labels) == ["A", "B", "C"]
            order = [phase_labels.index(p) for p in "ABC"] if abc else [0, 1, 2]
            self.unbalance.append((row, _ix([members[o] for o in order])))
            fields = (*fields, "current_unbalance_neg_pct")
        neutral = [
            k
            for k, c in enumerate(chans)
            if c.quantity is Quantity.CURRENT
            and c.circuit == spec.id
            and c.phase is Phase.N
            and k not in i_idx
        ]
        has_neutral = bool(neutral) or any(chans[c].phase is Phase.N for c in i_idx)
        has_residual_channel = any(c.quantity is Quantity.RESIDUAL_CURRENT for c in chans)
        if not has_residual_channel and (len(members) == 3 or has_neutral):
            self.residual.append((row, _ix(i_idx + neutral)))
            fields = (*fields, "residual_current_a")
        cal = join_ids(*(self.rows[self.cp_rows[m]][3] for m in members))
        self.rows.append((RecordKind.CIRCUIT_TOTAL, spec.id, "".join(labels) or None, cal, fields))
        self.totals.append(row)
        self.members.append(_ix(members))


def channel_copies(
    layout: RecordLayout,
    n_channels: int,
    families: Sequence[tuple[Sequence[int], Sequence[int], Sequence[tuple[str, int]], str | None]],
) -> ChannelCopies:
    """Flat copy indices from (rows, channels, (field, quantity) pairs, first
    harmonic field or None) per record family; channel -1 copies NaN."""
    width = n_channels + 1
    fields = len(layout.fields)
    src: list[int] = []
    dst: list[int] = []
    group: list[int] = []
    for rows, chans, pairs, harmonics in families:
        cells = [
            (layout.index[f], q, q - GROUPS if q >= GROUPS else -1)
            for f, q in pairs
            if f in layout.index
        ]
        if harmonics in layout.index:
            first = layout.index[harmonics]
            cells += [(first + h, GROUPS + h, h) for h in range(len(VOLTAGE_HARMONICS))]
        for row, ch in zip(rows, chans, strict=True):
            col_ch = ch if ch >= 0 else n_channels
            for col, q, h in cells:
                src.append(q * width + col_ch)
                dst.append(row * fields + col)
                group.append(h)
    return ChannelCopies(_ix(src), _ix(dst), _ix(group))


def build_topology(
    caps: SourceCapabilities,
    circuits: Sequence[Circuit],
    energy_start: Mapping[str, tuple[float, float]],
) -> tuple[Topology, NDArray[np.float64]]:
    """Rows and channel indices for a source and its circuits.

    Returns
    -------
    topology : Topology
    energy : NDArray[np.float64]
        Initial (import, export) counters [Wh] per circuit phase, shape (P, 2).

    Raises
    ------
    ValueError
        For unknown or misused channels, duplicate circuit ids, negative or
        unknown ``energy_start`` entries.
    """
    chans = caps.channels
    b = _Builder(caps, energy_start)
    voltages = [k for k, c in enumerate(chans) if c.quantity is Quantity.VOLTAGE]
    for k in voltages:
        ch = chans[k]
        b.rows.append(
            (
                RecordKind.VOLTAGE,
                ch.id,
                phase_label(0, 1, ch.phase),
                ch.calibration_id,
                VOLTAGE_FIELDS,
            )
        )
    v_rows = list(range(len(voltages)))

    specs: list[Circuit] = list(circuits)
    in_circuits = {caps.index(c) for spec in circuits for c in spec.current_channels}
    specs += [
        _OwnChannel(ch.id, (ch.id,))
        for k, ch in enumerate(chans)
        if ch.quantity is Quantity.CURRENT and k not in in_circuits
    ]
    covered: set[int] = set()
    seen_ids: set[str] = set()
    for spec in specs:
        if spec.id in seen_ids:
            raise ValueError(f"circuits: duplicate circuit id {spec.id!r}")
        seen_ids.add(spec.id)
        b.add_circuit(spec, *circuit_channels(spec, caps, covered))

    unknown = set(energy_start) - b.used_keys
    if unknown:
        valid = sorted({k for keys in b.cp_keys for k in keys})
        raise ValueError(f"energy_start: unknown keys {sorted(unknown)}; expected some of {valid}")

    system = None
    abc = _three_phase_voltages(chans, voltages)
    if abc is not None:
        system = (len(b.rows), _ix(abc))
        cal = join_ids(*(chans[k].calibration_id for k in abc))
        b.rows.append((RecordKind.SYSTEM, "system", "ABC", cal, SYSTEM_FIELDS))

    residual = [k for k, ch in enumerate(chans) if ch.quantity is Quantity.RESIDUAL_CURRENT]
    residual_rows = []
    for k in residual:
        ch = chans[k]
        residual_rows.append(len(b.rows))
        phase = str(ch.phase) if ch.phase is not None else "G"
        b.rows.append((RecordKind.RESIDUAL, ch.id, phase, ch.calibration_id, RESIDUAL_FIELDS))

    layout = build_layout(b.rows)
    common = [("missing_samples", MISSING), ("clipped_samples", CLIPPED)]
    copies = channel_copies(
        layout,
        len(chans),
        [
            (
                v_rows,
                voltages,
                [("voltage_rms_v", RMS), ("voltage_peak_v", PEAK), *common,
                 ("voltage_fundamental_v", GROUPS)],
                VOLTAGE_HARMONICS[0],
            ),
            (b.cp_rows, b.cp_v, [("voltage_rms_v", RMS)], None),
            (
                b.cp_rows,
                b.cp_i,
                [("current_rms_a", RMS), ("current_peak_a", PEAK),
                 ("current_fundamental_a", GROUPS)],
                CURRENT_HARMONICS[0],
            ),
            (
                residual_rows,
                residual,
                [("residual_current_a", RMS), ("current_peak_a", PEAK), *common],
                None,
            ),
        ],
    )
    topology = Topology(
        layout=layout,
        v_rows=_ix(v_rows),
        v_ch=_ix(voltages),
        cp_rows=_ix(b.cp_rows),
        cp_i=_ix(b.cp_i),
        cp_v=_ix(b.cp_v),
        cp_skew_us=np.asarray(b.cp_skew, dtype=np.float64),
        cp_energy_keys=tuple(b.cp_keys),
        totals=Totals(tuple(b.totals), tuple(b.members), tuple(b.unbalance), tuple(b.residual)),
        system=system,
        residual_rows=_ix(residual_rows),
        residual_ch=_ix(residual),
        copies=copies,
    )
    return topology, np.asarray(b.energy, dtype=np.float64).reshape(-1, 2)
