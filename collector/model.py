"""Messages that flow through the pipeline: channel descriptions, sample blocks, events.

Everything here is a frozen dataclass or an enum; nothing here does I/O.
Times are integer nanoseconds since the Unix epoch (UTC) unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

NS_PER_S = 1_000_000_000


class Quantity(StrEnum):
    """What a channel measures."""

    VOLTAGE = "voltage"
    CURRENT = "current"
    RESIDUAL_CURRENT = "residual_current"


class Phase(StrEnum):
    """Conductor a channel is on. ``N`` is the neutral, ``G`` an earth/residual path."""

    A = "A"
    B = "B"
    C = "C"
    N = "N"
    G = "G"


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One sampled channel and what the source can honestly deliver for it.

    Attributes
    ----------
    id : str
        Stable channel id (from the config or the recording).
    quantity : Quantity
        Voltage, current or residual current.
    phase : Phase | None
        Conductor, when known.
    circuit : str | None
        Circuit id a current channel belongs to (None for voltage channels).
    rate_hz : float
        Effective sample rate of this channel [Hz] (for a multiplexed ADC: the
        share of the converter's rate this channel gets).
    skew_s : float
        Sampling instant of this channel relative to the block timestamps [s]
        (multiplexer delay); 0 for simultaneous sampling.
    resolution : float | None
        Size of one ADC step in physical units [V or A]; None when unknown.
    full_scale : float | None
        Largest magnitude the chain can represent in physical units [V or A];
        samples at or beyond it are clipped. None when unknown.
    calibration_id : str | None
        Id of the calibration applied to this channel, recorded in quality fields.
    """

    id: str
    quantity: Quantity
    phase: Phase | None = None
    circuit: str | None = None
    rate_hz: float = 0.0
    skew_s: float = 0.0
    resolution: float | None = None
    full_scale: float | None = None
    calibration_id: str | None = None

    @property
    def unit(self) -> str:
        return "V" if self.quantity is Quantity.VOLTAGE else "A"


@dataclass(frozen=True, slots=True)
class SourceCapabilities:
    """What a source can deliver; the DSP never reports more than this allows.

    Attributes
    ----------
    channels : tuple[ChannelInfo, ...]
        Channels in the row order of every block's ``samples``.
    simultaneous : bool
        True when all channels are sampled at the same instants (skew 0).
    waveform : bool
        True for waveform sources; False for meters that deliver readings only.
    nominal_frequency_hz : float
        Nominal mains frequency [Hz] (50 or 60).
    nominal_voltage_v : float | None
        Nominal phase-to-neutral voltage [V] (IEC 61000-4-30 Udin), when known.
    """

    channels: tuple[ChannelInfo, ...]
    simultaneous: bool = True
    waveform: bool = True
    nominal_frequency_hz: float = 50.0
    nominal_voltage_v: float | None = None

    def index(self, channel_id: str) -> int:
        for k, ch in enumerate(self.channels):
            if ch.id == channel_id:
                return k
        raise KeyError(f"no channel {channel_id!r}; have {[c.id for c in self.channels]}")


@dataclass(frozen=True, slots=True, eq=False)
class Block:
    """Uniformly sampled samples of all channels of one source.

    Attributes
    ----------
    t0_ns : int
        Time of the first sample (column 0) [ns since epoch, UTC].
    fs_hz : float
        Sample rate of this block [Hz]; uniform within a block.
    samples : NDArray[np.float64]
        Shape (n_channels, n_samples), physical units (V, A), rows in the
        order of ``SourceCapabilities.channels``. NaN marks a missing sample.
    contiguous : bool
        False when this block does not directly follow the previous one
        (a gap, a rate change or the first block): streaming state must restart.
    """

    t0_ns: int
    fs_hz: float
    samples: NDArray[np.float64]
    contiguous: bool = True

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs_hz

    def time_ns(self, k: int | float) -> int:
        """Timestamp of sample index ``k`` (may be fractional) [ns]."""
        return self.t0_ns + round(k * NS_PER_S / self.fs_hz)


class Source(Protocol):
    """A waveform source: declares capabilities, then yields blocks until exhausted."""

    @property
    def capabilities(self) -> SourceCapabilities: ...

    def blocks(self) -> Iterator[Block]: ...

    def close(self) -> None: ...


class EventType(StrEnum):
    """Event types of the command-line/JSON contract (docs/replay-output.md)."""

    VOLTAGE_DIP = "voltage_dip"
    VOLTAGE_SWELL = "voltage_swell"
    VOLTAGE_INTERRUPTION = "voltage_interruption"
    OVERCURRENT = "overcurrent"
    GROUND_FAULT = "ground_fault"
    OPEN_NEUTRAL = "open_neutral"
    FREQUENCY_DEVIATION = "frequency_deviation"
    ARC_FAULT_SUSPECTED = "arc_fault_suspected"
    SENSOR_FAULT = "sensor_fault"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Event:
    """A detected event.

    Attributes
    ----------
    type : EventType
    start_ns : int
        Start time [ns since epoch, UTC].
    duration_s : float | None
        Duration [s]; None while still in progress.
    phases : tuple[str, ...]
        Phases involved (after polyphase merging, all of them).
    severity : Severity
    channel : str | None
        Channel or circuit id the event was seen on (first one for merged events).
    residual_voltage_pct : float | None
        Dips/interruptions: lowest Urms(1/2) as % of the reference voltage.
    extreme_pct : float | None
        Swells and other excursions: extreme value as % of the reference.
    category : str | None
        IEEE 1159 category (e.g. ``"instantaneous sag"``).
    details : Mapping[str, float | str | int | bool]
        Type-specific extra values, units in the key names.
    """

    type: EventType
    start_ns: int
    duration_s: float | None
    phases: tuple[str, ...]
    severity: Severity = Severity.WARNING
    channel: str | None = None
    residual_voltage_pct: float | None = None
    extreme_pct: float | None = None
    category: str | None = None
    details: Mapping[str, float | str | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Metrics of one aggregation interval for one channel or circuit.

    Attributes
    ----------
    time_ns : int
        Start of the interval [ns since epoch, UTC].
    interval : str
        Aggregation: ``"basic"`` (10/12 cycles), ``"150c"``/``"180c"`` (~3 s),
        ``"10min"``, ``"2h"``.
    channel : str
        Circuit id, or voltage channel id for voltage-only records, or
        ``"system"`` for polyphase quantities (unbalance, residual current).
    phase : str | None
        Phase(s), e.g. ``"A"`` or ``"ABC"``.
    fields : Mapping[str, float | int | bool | str | None]
        Values keyed by the field names of ``collector.nomenclature``; None means
        "not available from this source" and is never written as a number.
    flagged : bool
        True when a dip, swell or interruption overlapped the interval
        (IEC 61000-4-30 flagging).
    """

    time_ns: int
    interval: str
    channel: str
    phase: str | None
    fields: Mapping[str, float | int | bool | str | None]
    flagged: bool = False


_new = object.__new__
# the slots' own setters: faster than object.__setattr__, which looks each one up
_SET_TIME, _SET_INTERVAL, _SET_CHANNEL, _SET_PHASE, _SET_FIELDS, _SET_FLAGGED = (
    getattr(Metrics, name).__set__
    for name in ("time_ns", "interval", "channel", "phase", "fields", "flagged")
)


def new_metrics(
    time_ns: int,
    interval: str,
    channel: str,
    phase: str | None,
    fields: Mapping[str, float | int | bool | str | None],
    flagged: bool,
) -> Metrics:
    """``Metrics(...)`` at half the cost, for the metrics engine's hot path.

    A frozen dataclass's generated ``__init__`` sets each field through a global
    lookup of ``object.__setattr__``, which finds the slot by name; this calls the
    slots' setters directly.  It must set every field of :class:`Metrics` (a test
    checks).
    """
    m = _new(Metrics)
    _SET_TIME(m, time_ns)
    _SET_INTERVAL(m, interval)
    _SET_CHANNEL(m, channel)
    _SET_PHASE(m, phase)
    _SET_FIELDS(m, fields)
    _SET_FLAGGED(m, flagged)
    return m


class Sink(Protocol):
    """Where metrics and events go (JSON Lines, InfluxDB, MQTT...).

    ``publish`` must return quickly and never raise for a downstream outage: a sink
    buffers, spools or drops-and-logs, but the sampler never waits on it.

    ``events`` holds events that ended (``duration_s`` set) and, announced once,
    events that started and are still running (``duration_s`` None, no
    ``details["open_ended"]``), so alarms can show a long fault from its start. The
    same event later arrives again, ended, with the same ``start_ns``.
    """

    def publish(self, metrics: Sequence[Metrics], events: Sequence[Event]) -> None: ...

    def close(self) -> None: ...


def is_announcement(event: Event) -> bool:
    """True for a started-and-still-running event (its end will be published later)."""
    return event.duration_s is None and not event.details.get("open_ended", False)


def as_float_array(x: object) -> NDArray[np.float64]:
    """Convert array-like to a contiguous float64 array (no copy when already one)."""
    return np.ascontiguousarray(x, dtype=np.float64)


def column_slice_of(x: NDArray[np.floating]) -> tuple[NDArray[np.float64], int] | None:
    """``(base, offset)`` when ``x`` is ``base[:, offset:offset + n]`` of a writeable
    C-ordered 2-D float64 array ``base`` (the array a view was made from); None
    otherwise. Lets compiled loops read a block in place, or write around it."""
    base = x.base
    if not (
        isinstance(base, np.ndarray)
        and base.dtype == np.float64
        and base.ndim == 2
        and base.flags.c_contiguous
        and base.flags.writeable
        and base.shape[0] == x.shape[0]
        and x.strides == base.strides
    ):
        return None
    skip = x.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    if skip < 0 or skip % base.itemsize:
        return None
    offset = skip // base.itemsize
    return (base, offset) if offset + x.shape[1] <= base.shape[1] else None


def c_ordered_rows(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], int]:
    """``(rows, offset)``: a C-ordered writeable float64 array holding ``x`` from column
    ``offset`` on, the one layout the compiled loops are built for.

    ``x`` itself when it is such an array; the array it is a column slice of (an
    engine's buffer) and the slice's first column, so that the loops read the rows in
    place with unit stride; otherwise a C-ordered copy and 0 (a read-only block of a
    replay is copied rather than compiled for once more).
    """
    if x.dtype == np.float64 and x.flags.writeable and x.flags.c_contiguous:
        return x, 0
    found = column_slice_of(x)
    if found is not None:
        return found
    return np.array(x, dtype=np.float64, order="C"), 0


def as_float_rows(x: object) -> NDArray[np.float64]:
    """Like :func:`as_float_array` for (rows, samples) arrays, but a float64 array whose
    rows are each contiguous (a column slice of a larger one) is taken as it is."""
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim == 2 and (
        x.strides[1] == x.itemsize or x.shape[1] <= 1
    ):
        return x
    return as_float_array(x)
