"""Which fields each metrics record carries, how each aggregates, and the ratios.

The engine computes one 2-D array per basic interval: a row per record (a
voltage channel, a circuit phase, a circuit total, the polyphase system, a
residual-current channel) and a column per field name of
``collector.nomenclature``.  NaN means "not available" and becomes None in
:class:`collector.model.Metrics`.  Keeping every record in one array lets the
aggregators work on all of them with a handful of numpy operations.

Ratios (crest factor, THD, power factors, frequency) are *derived*: they are
recomputed from the aggregated primary columns by :func:`derive`, for the
basic interval and for every aggregate alike, so an aggregated power factor
is ``mean(P) / mean(S)`` and an aggregated frequency is whole cycles over
their total duration.  Columns whose name starts with ``_`` are hidden
helpers of those ratios and are never emitted.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass
from enum import StrEnum

import numba
import numpy as np
from numpy.typing import NDArray

from collector.dsp.aggregation import AggKind, AggregationPlan, aggregation_plan
from collector.dsp.harmonics import THD_MIN_ORDER
from collector.model import Metrics, new_metrics
from collector.nomenclature import HARMONIC_MAX_ORDER, harmonic_field

# Quality fields this module adds beyond collector.nomenclature (proposed for
# the nomenclature table; see docs/measurement.md).
FREQUENCY_LOCKED = "frequency_locked"  # window synchronised to measured cycles
SKEW_CORRECTION_US = "skew_correction_us"  # current-vs-voltage timing correction applied
INTERVAL_COMPLETE = "interval_complete"  # aggregate covers its nominal length
BASIC_INTERVALS = "basic_intervals"  # basic intervals in an aggregate

# hidden helper columns
P1 = "_p1_w"  # fundamental active power, for the displacement power factor
CYCLES = "_cycles"  # measured whole cycles (0 for windows that were not locked)
LOCKED_S = "_locked_s"  # duration of the locked windows [s]
COUNT = "_basic_intervals"

VOLTAGE_HARMONICS = tuple(harmonic_field("voltage", n) for n in range(1, HARMONIC_MAX_ORDER + 1))
CURRENT_HARMONICS = tuple(harmonic_field("current", n) for n in range(1, HARMONIC_MAX_ORDER + 1))

_COMMON_HIDDEN = (CYCLES, LOCKED_S, COUNT)

VOLTAGE_FIELDS: tuple[str, ...] = (
    "voltage_rms_v",
    "voltage_peak_v",
    "voltage_crest_factor",
    "voltage_fundamental_v",
    "voltage_thd_pct",
    *VOLTAGE_HARMONICS,
    "frequency_hz",
    "samples_per_cycle",
    "missing_samples",
    "clipped_samples",
    "harmonics_max_order",
    FREQUENCY_LOCKED,
)

_POWER_FIELDS = (
    "power_active_w",
    "power_apparent_va",
    "power_reactive_var",
    "power_nonactive_var",
    "power_factor",
    "power_factor_displacement",
    "energy_import_wh",
    "energy_export_wh",
)

CIRCUIT_PHASE_FIELDS: tuple[str, ...] = (
    "voltage_rms_v",
    "current_rms_a",
    "current_peak_a",
    "current_crest_factor",
    "current_fundamental_a",
    "current_thd_pct",
    *CURRENT_HARMONICS,
    *_POWER_FIELDS,
    "frequency_hz",
    "samples_per_cycle",
    "missing_samples",
    "clipped_samples",
    "harmonics_max_order",
    FREQUENCY_LOCKED,
    SKEW_CORRECTION_US,
)

CIRCUIT_TOTAL_FIELDS: tuple[str, ...] = (
    *_POWER_FIELDS,
    "frequency_hz",
    "missing_samples",
    "clipped_samples",
    FREQUENCY_LOCKED,
)

SYSTEM_FIELDS: tuple[str, ...] = (
    "voltage_unbalance_neg_pct",
    "voltage_unbalance_zero_pct",
    "neutral_voltage_divergence_pct",
    "frequency_hz",
    "missing_samples",
    FREQUENCY_LOCKED,
)

RESIDUAL_FIELDS: tuple[str, ...] = (
    "residual_current_a",
    "current_peak_a",
    "frequency_hz",
    "samples_per_cycle",
    "missing_samples",
    "clipped_samples",
    FREQUENCY_LOCKED,
)

_AGG: dict[str, AggKind] = {
    "voltage_rms_v": AggKind.RMS,
    "voltage_peak_v": AggKind.MAX,
    "voltage_crest_factor": AggKind.DERIVED,
    "voltage_fundamental_v": AggKind.RMS,
    "voltage_thd_pct": AggKind.DERIVED,
    "current_rms_a": AggKind.RMS,
    "current_peak_a": AggKind.MAX,
    "current_crest_factor": AggKind.DERIVED,
    "current_fundamental_a": AggKind.RMS,
    "current_thd_pct": AggKind.DERIVED,
    "power_active_w": AggKind.MEAN,
    "power_apparent_va": AggKind.MEAN,
    "power_reactive_var": AggKind.MEAN,
    "power_nonactive_var": AggKind.MEAN,
    "power_factor": AggKind.DERIVED,
    "power_factor_displacement": AggKind.DERIVED,
    "energy_import_wh": AggKind.LAST,
    "energy_export_wh": AggKind.LAST,
    "frequency_hz": AggKind.DERIVED,
    "samples_per_cycle": AggKind.MEAN,
    "missing_samples": AggKind.SUM,
    "clipped_samples": AggKind.SUM,
    "harmonics_max_order": AggKind.MIN,
    FREQUENCY_LOCKED: AggKind.MIN,
    SKEW_CORRECTION_US: AggKind.MEAN,
    "voltage_unbalance_neg_pct": AggKind.RMS,
    "voltage_unbalance_zero_pct": AggKind.RMS,
    "current_unbalance_neg_pct": AggKind.RMS,
    "residual_current_a": AggKind.RMS,
    "neutral_voltage_divergence_pct": AggKind.MEAN,
    P1: AggKind.MEAN,
    CYCLES: AggKind.SUM,
    LOCKED_S: AggKind.SUM,
    COUNT: AggKind.SUM,
}
_AGG.update({name: AggKind.RMS for name in VOLTAGE_HARMONICS + CURRENT_HARMONICS})

INT_FIELDS = frozenset(
    {"missing_samples", "clipped_samples", "harmonics_max_order", BASIC_INTERVALS}
)
BOOL_FIELDS = frozenset({FREQUENCY_LOCKED})


class RecordKind(StrEnum):
    """What a row of the values array describes."""

    VOLTAGE = "voltage"
    CIRCUIT_PHASE = "circuit_phase"
    CIRCUIT_TOTAL = "circuit_total"
    SYSTEM = "system"
    RESIDUAL = "residual"


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One row: identity, constant fields and the columns it emits."""

    kind: RecordKind
    channel: str
    phase: str | None
    calibration_id: str | None
    names: tuple[str, ...]
    columns: tuple[int, ...]
    pick: Callable[[Sequence[object]], tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class RecordLayout:
    """All rows and columns of the per-interval values array."""

    fields: tuple[str, ...]
    index: dict[str, int]
    records: tuple[RecordSpec, ...]
    plan: AggregationPlan
    int_columns: NDArray[np.intp]
    bool_columns: NDArray[np.intp]
    # Every record's emitted cells in record order, as flat indices into a
    # (records, fields) array, and the record boundaries in that sequence; the
    # int and bool cells among them (positions in the sequence).  to_metrics
    # converts only these cells to Python objects.
    emitted_flat: NDArray[np.intp]
    emitted_bounds: tuple[int, ...]
    emitted_int: NDArray[np.intp]
    emitted_bool: NDArray[np.intp]
    # The columns derive() reads and writes, in the order of _DERIVE_COLUMNS;
    # -1 where the layout has no such column.
    derive_columns: NDArray[np.intp]

    def col(self, name: str) -> int:
        return self.index[name]

    def cols(self, names: Sequence[str]) -> NDArray[np.intp]:
        return np.asarray([self.index[n] for n in names], dtype=np.intp)

    def empty(self, n_windows: int) -> NDArray[np.float64]:
        """All-NaN values, shape (n_windows, records, fields)."""
        return np.full((n_windows, len(self.records), len(self.fields)), np.nan)


def build_layout(
    rows: Sequence[tuple[RecordKind, str, str | None, str | None, tuple[str, ...]]],
) -> RecordLayout:
    """Layout from (kind, channel, phase, calibration_id, field names) per row."""
    order: dict[str, None] = {}
    for *_, names in rows:
        order.update(dict.fromkeys(names))
    order.update(dict.fromkeys((P1, *_COMMON_HIDDEN)))
    fields = tuple(order)
    unknown = [f for f in fields if f not in _AGG]
    if unknown:
        raise ValueError(f"rows: no aggregation rule for fields {unknown}")
    index = {name: k for k, name in enumerate(fields)}
    for group in (VOLTAGE_HARMONICS, CURRENT_HARMONICS):
        if group[0] in index and [index[n] for n in group] != list(
            range(index[group[0]], index[group[0]] + len(group))
        ):
            raise ValueError(
                f"rows: harmonic fields {group[0]}.. must be listed together, in order"
            )
    specs = []
    for kind, channel, phase, cal, names in rows:
        columns = tuple(index[n] for n in names)
        pick: Callable[[Sequence[object]], tuple[object, ...]]
        if len(columns) == 1:
            col = columns[0]

            def pick(row: Sequence[object], col: int = col) -> tuple[object, ...]:
                return (row[col],)

        else:
            pick = operator.itemgetter(*columns)
        specs.append(RecordSpec(kind, channel, phase, cal, names, columns, pick))
    plan = aggregation_plan([_AGG[f] for f in fields])
    flat: list[int] = []
    bounds = [0]
    for r, spec in enumerate(specs):
        flat.extend(r * len(fields) + col for col in spec.columns)
        bounds.append(len(flat))
    return RecordLayout(
        fields=fields,
        index=index,
        records=tuple(specs),
        plan=plan,
        int_columns=np.asarray([index[f] for f in fields if f in INT_FIELDS], dtype=np.intp),
        bool_columns=np.asarray([index[f] for f in fields if f in BOOL_FIELDS], dtype=np.intp),
        emitted_flat=np.asarray(flat, dtype=np.intp),
        emitted_bounds=tuple(bounds),
        emitted_int=np.asarray(
            [k for k, i in enumerate(flat) if fields[i % len(fields)] in INT_FIELDS], dtype=np.intp
        ),
        emitted_bool=np.asarray(
            [k for k, i in enumerate(flat) if fields[i % len(fields)] in BOOL_FIELDS], dtype=np.intp
        ),
        derive_columns=np.asarray([index.get(f, -1) for f in _DERIVE_COLUMNS], dtype=np.intp),
    )


# The columns derive() uses, by position in RecordLayout.derive_columns.
_DERIVE_COLUMNS = (
    "voltage_peak_v", "voltage_rms_v", "voltage_crest_factor",
    "current_peak_a", "current_rms_a", "current_crest_factor",
    harmonic_field("voltage", 1), "voltage_thd_pct",
    harmonic_field("current", 1), "current_thd_pct",
    "power_active_w", "power_apparent_va", "power_factor",
    P1, "power_reactive_var", "power_factor_displacement",
    CYCLES, LOCKED_S, "frequency_hz",
)


def derive(values: NDArray[np.float64], layout: RecordLayout, harmonic_orders: int) -> None:
    """Fill the DERIVED columns of ``values`` (..., records, fields) in place.

    ``harmonic_orders`` is the highest supported order; THD is left NaN when
    it is below 40.  Crest factors are peak / RMS, THD is
    ``100 sqrt(G_2^2 + ... + G_n^2) / G_1`` over the reported orders, the
    power factor P / S, the displacement power factor ``P1 / hypot(P1, Q1)``,
    the frequency whole cycles over their duration; NaN where the divisor is
    not positive.
    """
    if values.size == 0:
        return
    flat = values.reshape(-1, values.shape[-1])
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    _derive(flat, layout.derive_columns, harmonic_orders, harmonic_orders >= THD_MIN_ORDER)
    if not np.may_share_memory(flat, values):
        values[...] = flat.reshape(values.shape)


@numba.njit(cache=True)
def _derive(v: NDArray[np.float64], cols: NDArray[np.intp], orders: int, thd: bool) -> None:
    """The ratios of :func:`derive` for every row of ``v`` (rows, fields), in place."""
    nan = np.nan
    for r in range(v.shape[0]):
        row = v[r]
        for k in (0, 3):  # crest factors: peak, rms, crest
            if cols[k + 2] >= 0:
                rms_ = row[cols[k + 1]]
                row[cols[k + 2]] = row[cols[k]] / rms_ if rms_ > 0 else nan
        for k in (6, 8):  # THD: first harmonic, thd
            if cols[k + 1] < 0:
                continue
            if not thd:
                row[cols[k + 1]] = nan
                continue
            first = cols[k]
            squares = 0.0
            for n in range(first + 1, first + orders):
                squares += row[n] * row[n]
            g1 = row[first]
            row[cols[k + 1]] = 100.0 * math.sqrt(squares) / g1 if g1 > 0 else nan
        if cols[12] >= 0:
            p, s = row[cols[10]], row[cols[11]]
            row[cols[12]] = p / s if s > 0 else nan
            p1 = row[cols[13]]
            s1 = math.hypot(p1, row[cols[14]])
            row[cols[15]] = p1 / s1 if s1 > 0 else nan
        seconds = row[cols[17]]
        row[cols[18]] = row[cols[16]] / seconds if seconds > 0 else nan


def compile_loops() -> None:
    """Compile this module's numba loop now, or load it from numba's cache: at
    start-up rather than at the first block."""
    _derive(np.zeros((1, 2)), np.full(len(_DERIVE_COLUMNS), -1, dtype=np.intp), 0, False)
    _derive(np.ones((1, 2)), np.concatenate(
        [np.full(len(_DERIVE_COLUMNS) - 3, -1), [0, 0, 1]]).astype(np.intp), 0, False)


FieldValue = float | int | bool | str | None


class _Cells:
    """The emitted cells of one (records, fields) array, as Python objects on demand.

    Most basic-interval records are never read field by field (the InfluxDB sink
    stores the ~3 s aggregates, the MQTT book prefers them), so converting ~2000
    cells per interval up front was a fifth of the metrics engine's time.  The first
    record of the array that is read converts all of them at once, which is as
    cheap as converting them eagerly.
    """

    __slots__ = ("_cells", "_values", "extra", "layout")

    def __init__(
        self, values: NDArray[np.float64], layout: RecordLayout,
        extra: Mapping[str, FieldValue] | None,
    ) -> None:
        # Only the emitted cells (about half the array) are kept, gathered into a
        # new array now, so the records do not change if ``values`` does later.
        self._values: NDArray[np.float64] = values.ravel()[layout.emitted_flat]
        self.layout = layout
        self.extra = extra  # fields every record of the array has as well
        self._cells: list[float | int | bool | None] | None = None

    def cells(self) -> list[float | int | bool | None]:
        # Safe when two threads read one record: both may convert, each from the
        # gathered floats, which stay; the list assignment is atomic.
        cells = self._cells
        if cells is None:
            cells = self._cells = _convert(self._values, self.layout)
        return cells


def _convert(flat: NDArray[np.float64], layout: RecordLayout) -> list[float | int | bool | None]:
    # One tolist(); the int/bool and NaN cells are then patched in place.  Casts
    # as numpy's astype: int truncates, bool is "nonzero".
    nan = np.isnan(flat)
    cells: list[float | int | bool | None] = flat.tolist()
    for pos, kind in ((layout.emitted_int, np.int64), (layout.emitted_bool, np.bool_)):
        if pos.size:
            typed = np.where(nan[pos], 0, flat[pos]).astype(kind).tolist()
            for k, v in zip(pos.tolist(), typed, strict=True):
                cells[k] = v
    for k in np.flatnonzero(nan).tolist():
        cells[k] = None
    return cells


class RecordFields(Mapping[str, FieldValue]):
    """``Metrics.fields`` of one record: a read-only mapping filled on first use."""

    __slots__ = ("_cells", "_dict", "_row")

    def __init__(self, cells: _Cells, row: int) -> None:
        self._cells = cells
        self._row = row
        self._dict: dict[str, FieldValue] | None = None

    def _fields(self) -> dict[str, FieldValue]:
        if self._dict is None:
            layout = self._cells.layout
            bounds = layout.emitted_bounds
            spec = layout.records[self._row]
            d: dict[str, FieldValue] = dict(zip(
                spec.names, self._cells.cells()[bounds[self._row] : bounds[self._row + 1]],
                strict=True,
            ))
            d["calibration_id"] = spec.calibration_id
            if self._cells.extra:
                d.update(self._cells.extra)
            self._dict = d
        return self._dict

    def __getitem__(self, key: str) -> FieldValue:
        return self._fields()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())

    def __contains__(self, key: object) -> bool:
        return key in self._fields()

    def __repr__(self) -> str:
        return repr(self._fields())

    # The dict's own views and lookups: Mapping's generic ones would go through
    # __getitem__ once per field, which sinks that encode every field notice.
    def items(self) -> ItemsView[str, FieldValue]:
        return self._fields().items()

    def keys(self) -> KeysView[str]:
        return self._fields().keys()

    def values(self) -> ValuesView[FieldValue]:
        return self._fields().values()

    def get(self, key: str, default: FieldValue = None) -> FieldValue:  # type: ignore[override]
        return self._fields().get(key, default)


def to_metrics(
    values: NDArray[np.float64],
    layout: RecordLayout,
    time_ns: int,
    interval: str,
    flagged: bool,
    extra: dict[str, float | int | bool | str | None] | None = None,
) -> list[Metrics]:
    """One Metrics per record from a (records, fields) array; NaN becomes None.

    The fields are converted to Python objects when first read (:class:`RecordFields`).
    """
    cells = _Cells(values, layout, dict(extra) if extra else None)
    return [
        new_metrics(time_ns, interval, spec.channel, spec.phase, RecordFields(cells, r), flagged)
        for r, spec in enumerate(layout.records)
    ]
