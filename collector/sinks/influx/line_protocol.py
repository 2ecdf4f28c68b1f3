"""Metrics and events as InfluxDB line protocol, with names only from the nomenclature.

Policy (documented in influx/README.md and docs/storage.md):

* Precision is milliseconds (``PRECISION``). The finest record is the basic
  interval (10/12 cycles, ~200 ms) and events are refreshed every half cycle
  (10 ms at 50 Hz), so 1 ms keeps every record distinct in its series while
  shortening every line by six digits and letting TSM's timestamp encoding pack
  the (synchronised, hence irregular) times tighter. Times are floored to the
  millisecond, so a stored time never lies after the instant it labels.
* A field whose value is None is omitted: "not available" is never a number.
* NaN and +/-inf are dropped field by field, each drop reported as a
  :class:`Dropped` (the sink logs and counts them); the other fields of the point
  are written.
* Every number is written as a float field (``3`` becomes ``3.0``): the type of a
  field then depends on its name only, never on whether the DSP happened to hand
  over an ``int`` or a ``float``, so a field type conflict (which makes InfluxDB
  reject points) cannot arise from our own data.
* Booleans are boolean fields, strings (``calibration_id``) string fields.
* Field names must be in :mod:`collector.nomenclature`; unknown names are dropped
  with a reason, so a typo can never create a new field. Each field goes to the
  measurement the nomenclature assigns it (harmonic groups to ``harmonics``,
  unbalance to ``polyphase``, writer statistics to ``health``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from collector.model import Event, Metrics
from collector.nomenclature import (
    FIELDS,
    HARMONIC_MAX_ORDER,
    Measurement,
    Tag,
    field_spec,
    harmonic_field,
)

PRECISION = "ms"
"""Timestamp precision of every line we write (the ``precision`` write parameter)."""

NS_PER_MS = 1_000_000

FieldValue = float | int | bool | str | None

# Interval records: the measurements a Metrics record may feed. Events and faults
# have their own messages (Event) or writers (Flux tasks, rule worker).
_METRICS_MEASUREMENTS = (
    Measurement.ELECTRICAL,
    Measurement.HARMONICS,
    Measurement.POLYPHASE,
    Measurement.HEALTH,
)
_INTERVAL_MEASUREMENTS = frozenset(
    {Measurement.ELECTRICAL, Measurement.HARMONICS, Measurement.POLYPHASE}
)
def _field_measurements() -> Mapping[str, Measurement]:
    names = [f.name for f in FIELDS] + [
        harmonic_field(q, n) for q in ("voltage", "current")
        for n in range(1, HARMONIC_MAX_ORDER + 1)
    ]
    for name in names:
        # Nomenclature names are identifiers, so the encoder can skip escaping them.
        assert escape_key(name) == name, name
    return MappingProxyType({name: field_spec(name).measurement for name in names})


FLAGGED_FIELD = "flagged"
CATEGORY_FIELD = "category"


@dataclass(frozen=True, slots=True)
class Dropped:
    """A field or point that was not written, and why."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class Encoded:
    """Lines ready to send (no trailing newline) and what was left out."""

    lines: tuple[str, ...]
    dropped: tuple[Dropped, ...] = ()


def timestamp_ms(time_ns: int) -> int:
    """Integer nanoseconds since the epoch floored to milliseconds."""
    return int(time_ns) // NS_PER_MS


def _escape(text: str, specials: str) -> str:
    # InfluxDB 2.7 keeps backslashes in names and tag values literally (it does not
    # read "\\" as one backslash), so only the separators are escaped; text with a
    # backslash is refused before it gets here (see _tag_value_problem).
    out = text
    for ch in specials:
        out = out.replace(ch, "\\" + ch)
    return out


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas and spaces)."""
    return _escape(name, ", ")


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces)."""
    return _escape(text, ",= ")


def escape_string_field(text: str) -> str:
    """Escape the inside of a quoted string field value (double quotes, backslashes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


_FIELD_MEASUREMENT: Mapping[str, Measurement] = _field_measurements()
"""Field name -> measurement for every nomenclature name (harmonics included); immutable."""


def format_field_value(value: float | int | bool | str) -> str:
    """Line-protocol text of one field value; raises ValueError for what cannot be stored."""
    if type(value) is float and value - value == 0.0:
        # Hot path (finite Python float: inf - inf and nan - nan are nan).
        return repr(value)
    if isinstance(value, bool | np.bool_):
        return "true" if bool(value) else "false"
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise ValueError(f"string contains a line break: {value!r}")
        return '"' + escape_string_field(value) + '"'
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"non-finite number {number!r}")
        # repr is the shortest text that parses back to the same double.
        return repr(number)
    raise ValueError(f"unsupported value type {type(value).__name__}")


def _tag_value_problem(value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return f"tag value {value!r} contains a line break"
    if "\\" in value:
        # A trailing backslash escapes the separator after it and InfluxDB 2.7
        # answers "invalid tag format"; no escape sequence stores one reliably.
        return f"tag value {value!r} contains a backslash"
    return None


def encode_line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue],
    time_ns: int,
) -> tuple[str | None, list[Dropped]]:
    """One point as a line (None when no field is left), plus the dropped fields.

    Tags whose value is None or empty are omitted (line protocol has no empty tag
    values); tags are written sorted by key, as InfluxDB recommends.
    """
    dropped: list[Dropped] = []
    tag_parts: list[str] = []
    for key in sorted(tags):
        tag = tags[key]
        if tag is None or tag == "":
            continue
        problem = _tag_value_problem(tag)
        if problem is not None:
            return None, [Dropped(f"{measurement} point", problem)]
        tag_parts.append(f"{escape_key(key)}={escape_key(tag)}")
    field_parts: list[str] = []
    for name, value in fields.items():
        if value is None:
            continue
        if type(value) is float and value - value == 0.0:
            text = repr(value)  # hot path, inlined: a finite Python float
        else:
            try:
                text = format_field_value(value)
            except ValueError as exc:
                dropped.append(Dropped(f"{measurement}.{name}", str(exc)))
                continue
        key = name if name in _FIELD_MEASUREMENT else escape_key(name)
        field_parts.append(f"{key}={text}")
    if not field_parts:
        return None, dropped
    head = escape_measurement(measurement)
    if tag_parts:
        head += "," + ",".join(tag_parts)
    return f"{head} {','.join(field_parts)} {timestamp_ms(time_ns)}", dropped


def _measurement_of(name: str) -> Measurement | None:
    found = _FIELD_MEASUREMENT.get(name)
    if found is not None:
        return found
    try:  # a name added to the nomenclature after this table was built
        return field_spec(name).measurement
    except KeyError:
        return None


def _describe(m: Metrics) -> str:
    return f"circuit={m.channel} interval={m.interval}"


def encode_metrics(m: Metrics, site: str) -> Encoded:
    """Lines for one Metrics record: one per measurement its fields belong to.

    The interval flag (IEC 61000-4-30) goes to ``electrical`` as the boolean field
    ``flagged`` for every interval record (``m.flagged`` or a true ``flagged``
    field), so a flagged polyphase or harmonics record is findable too.
    """
    dropped: list[Dropped] = []
    grouped: dict[Measurement, dict[str, FieldValue]] = {}
    for name, value in m.fields.items():
        if value is None:
            continue
        measurement = _measurement_of(name)
        if measurement is None:
            dropped.append(
                Dropped(f"{name} ({_describe(m)})", "field name not in collector.nomenclature")
            )
            continue
        if measurement not in _METRICS_MEASUREMENTS:
            dropped.append(
                Dropped(
                    f"{name} ({_describe(m)})",
                    f"field belongs to measurement {measurement.value!r}, "
                    "which Metrics records do not feed",
                )
            )
            continue
        grouped.setdefault(measurement, {})[name] = value
    if _INTERVAL_MEASUREMENTS.intersection(grouped):
        electrical = grouped.setdefault(Measurement.ELECTRICAL, {})
        given = electrical.get(FLAGGED_FIELD)
        electrical[FLAGGED_FIELD] = bool(m.flagged) or (
            isinstance(given, bool | np.bool_) and bool(given)
        )
    tags: dict[str, str | None] = {
        Tag.SITE.value: site,
        Tag.CIRCUIT.value: m.channel,
        Tag.PHASE.value: m.phase,
        Tag.INTERVAL.value: m.interval,
    }
    lines: list[str] = []
    for measurement in _METRICS_MEASUREMENTS:
        fields = grouped.get(measurement)
        if not fields:
            continue
        line, lost = encode_line(measurement.value, tags, fields, m.time_ns)
        dropped.extend(Dropped(f"{d.what} ({_describe(m)})", d.reason) for d in lost)
        if line is not None:
            lines.append(line)
    return Encoded(tuple(lines), tuple(dropped))


def _known_field(name: str) -> bool:
    return _measurement_of(name) is not None


def encode_event(e: Event, site: str) -> Encoded:
    """The line of one event in the ``events`` measurement.

    Tags: site, circuit (``e.channel``), phase (the phases joined, e.g. ``ABC``),
    type, severity. Fields: ``duration_s``, ``residual_voltage_pct``,
    ``extreme_pct``, the IEEE 1159 ``category`` and the ``details`` entries whose
    keys are nomenclature names; anything else is dropped with a reason. An event
    still in progress (``duration_s`` None) is stored without a duration; when it
    is published again at its end, the point with the same series and start time
    is overwritten.
    """
    what = f"event {e.type.value} at {e.start_ns} ns"
    dropped: list[Dropped] = []
    fields: dict[str, FieldValue] = {
        "duration_s": e.duration_s,
        "residual_voltage_pct": e.residual_voltage_pct,
        "extreme_pct": e.extreme_pct,
    }
    if e.category is not None:
        if _known_field(CATEGORY_FIELD):
            fields[CATEGORY_FIELD] = e.category
        else:
            dropped.append(
                Dropped(f"{what}: {CATEGORY_FIELD}", "field name not in collector.nomenclature")
            )
    for key, value in e.details.items():
        if key in fields:
            continue
        if _known_field(key):
            fields[key] = value
        else:
            dropped.append(Dropped(f"{what}: {key}", "field name not in collector.nomenclature"))
    tags: dict[str, str | None] = {
        Tag.SITE.value: site,
        Tag.CIRCUIT.value: e.channel,
        Tag.PHASE.value: "".join(e.phases),
        Tag.TYPE.value: e.type.value,
        Tag.SEVERITY.value: e.severity.value,
    }
    line, lost = encode_line(Measurement.EVENTS.value, tags, fields, e.start_ns)
    dropped.extend(Dropped(f"{what}: {d.what}", d.reason) for d in lost)
    if line is None and not lost:
        dropped.append(Dropped(what, "no field with a value"))
    return Encoded((line,) if line is not None else (), tuple(dropped))


def encode_all(
    metrics: Sequence[Metrics], events: Sequence[Event], site: str
) -> tuple[list[str], list[str], list[Dropped]]:
    """Encode a publish call: (metric lines, event lines, everything dropped)."""
    metric_lines: list[str] = []
    event_lines: list[str] = []
    dropped: list[Dropped] = []
    for m in metrics:
        enc = encode_metrics(m, site)
        metric_lines.extend(enc.lines)
        dropped.extend(enc.dropped)
    for e in events:
        enc = encode_event(e, site)
        event_lines.extend(enc.lines)
        dropped.extend(enc.dropped)
    return metric_lines, event_lines, dropped
