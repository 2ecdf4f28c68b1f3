"""The audit trail and the worker's fault records, stored in InfluxDB.

Every action of the worker — each notification attempt (one record per recipient,
with its outcome), escalation, acknowledgement, resolution, relay switching,
local alarm change and rejected webhook call — becomes one point of the ``audit``
measurement; the worker's own rule results (I²t, sensor health) become points of
the ``faults`` measurement in the same shape the Flux tasks write. Both go to the
events bucket through the one writer of :mod:`collector.sinks.influx` (batching,
retries, crash-safe spool), encoded by its line-protocol encoder.

``audit`` point: tags ``site``, ``circuit``, ``type`` (the action), ``severity``;
fields ``outcome`` (ok / failed / suppressed), ``detail``, ``channel``, ``target``,
``alert_id``, ``value``, ``threshold``.
``faults`` point: the record of :mod:`collector.rules.faults` (tags ``site``,
``circuit``, ``phase``, ``type``, ``severity``; fields ``value``, ``threshold``,
``state`` active / resolved, ``unit``), one point per transition.

Points of one series are never given the same millisecond (InfluxDB would keep only
the last): a record that would collide is moved 1 ms later.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from collector.model import Severity
from collector.nomenclature import Measurement, Tag
from collector.rules.faults import (
    STATE_FIELD,
    THRESHOLD_FIELD,
    UNIT_FIELD,
    VALUE_FIELD,
    FaultState,
)
from collector.sinks.influx.line_protocol import NS_PER_MS, FieldValue, encode_line
from collector.sinks.influx.writer import InfluxWriter

log = logging.getLogger(__name__)


def _measurement(member: str, fallback: str) -> str:
    # "audit" is not in collector.nomenclature yet (requested); use it once it is.
    try:
        return Measurement[member].value
    except KeyError:
        return fallback


AUDIT_MEASUREMENT = _measurement("AUDIT", "audit")
FAULTS_MEASUREMENT = Measurement.FAULTS.value


class AuditAction(StrEnum):
    ALERT_OPENED = "alert_opened"
    NOTIFY = "notify"
    ESCALATE = "escalate"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    RELAY_OPEN = "relay_open"
    RELAY_CLOSE = "relay_close"
    ALARM = "alarm"
    WEBHOOK_REJECTED = "webhook_rejected"
    TEST = "test"


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited action at ``time_ns`` [ns since epoch, UTC]."""

    time_ns: int
    action: AuditAction
    outcome: Outcome
    detail: str
    circuit: str | None = None
    severity: Severity | None = None
    channel: str | None = None
    target: str | None = None
    alert_id: str | None = None
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault found by the worker, in the schema of the ``faults`` measurement."""

    time_ns: int
    type: str
    severity: Severity
    state: FaultState
    circuit: str | None = None
    phase: str | None = None
    value: float | None = None
    threshold: float | None = None
    unit: str = ""


class AuditLog(Protocol):
    """Where audit and fault records go; never raises, never blocks on the network."""

    def record(self, rec: AuditRecord) -> None: ...

    def fault(self, rec: FaultRecord) -> None: ...


class MemoryAudit:
    """Keeps records in memory (tests, ``test-alerts`` without InfluxDB)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[AuditRecord] = []
        self.faults: list[FaultRecord] = []

    def record(self, rec: AuditRecord) -> None:
        with self._lock:
            self.records.append(rec)

    def fault(self, rec: FaultRecord) -> None:
        with self._lock:
            self.faults.append(rec)

    def actions(self, action: AuditAction) -> list[AuditRecord]:
        with self._lock:
            return [r for r in self.records if r.action is action]


def audit_line(rec: AuditRecord, site: str, time_ns: int | None = None) -> str | None:
    """Line protocol of one audit record (None if nothing could be encoded)."""
    tags: dict[str, str | None] = {
        Tag.SITE.value: site,
        Tag.CIRCUIT.value: rec.circuit,
        Tag.TYPE.value: rec.action.value,
        Tag.SEVERITY.value: rec.severity.value if rec.severity is not None else None,
    }
    fields: dict[str, FieldValue] = {
        "outcome": rec.outcome.value,
        "detail": rec.detail.replace("\n", " ").replace("\r", " "),
        "channel": rec.channel,
        "target": rec.target,
        "alert_id": rec.alert_id,
        "value": rec.value,
        "threshold": rec.threshold,
    }
    line, dropped = encode_line(AUDIT_MEASUREMENT, tags, fields,
                                rec.time_ns if time_ns is None else time_ns)
    for d in dropped:
        log.warning("audit: not stored: %s: %s", d.what, d.reason)
    return line


def fault_line(rec: FaultRecord, site: str, time_ns: int | None = None) -> str | None:
    """Line protocol of one fault record in the ``faults`` measurement."""
    tags: dict[str, str | None] = {
        Tag.SITE.value: site,
        Tag.CIRCUIT.value: rec.circuit,
        Tag.PHASE.value: rec.phase,
        Tag.TYPE.value: rec.type,
        Tag.SEVERITY.value: rec.severity.value,
    }
    fields: dict[str, FieldValue] = {
        VALUE_FIELD: rec.value,
        THRESHOLD_FIELD: rec.threshold,
        STATE_FIELD: rec.state.value,
        UNIT_FIELD: rec.unit,
    }
    line, dropped = encode_line(FAULTS_MEASUREMENT, tags, fields,
                                rec.time_ns if time_ns is None else time_ns)
    for d in dropped:
        log.warning("faults: not stored: %s: %s", d.what, d.reason)
    return line


class InfluxAudit:
    """Writes audit and fault records to ``bucket`` through an :class:`InfluxWriter`."""

    def __init__(self, writer: InfluxWriter, site: str, bucket: str) -> None:
        self._writer = writer
        self._site = site
        self._bucket = bucket
        self._lock = threading.Lock()
        self._last_ms: dict[tuple[str, ...], int] = {}

    def _unique_ns(self, series: tuple[str, ...], time_ns: int) -> int:
        with self._lock:
            ms = time_ns // NS_PER_MS
            last = self._last_ms.get(series)
            if last is not None and ms <= last:
                ms = last + 1
            self._last_ms[series] = ms
            if len(self._last_ms) > 10_000:  # bounded: only recent series matter
                self._last_ms.clear()
                self._last_ms[series] = ms
            return ms * NS_PER_MS

    def record(self, rec: AuditRecord) -> None:
        try:
            series = (AUDIT_MEASUREMENT, rec.circuit or "", rec.action.value,
                      rec.severity.value if rec.severity else "")
            line = audit_line(rec, self._site, self._unique_ns(series, rec.time_ns))
            if line is not None:
                self._writer.submit(self._bucket, [line])
        except Exception:
            log.exception("audit record not stored: %s", rec)

    def fault(self, rec: FaultRecord) -> None:
        try:
            series = (FAULTS_MEASUREMENT, rec.circuit or "", rec.phase or "", rec.type,
                      rec.severity.value)
            line = fault_line(rec, self._site, self._unique_ns(series, rec.time_ns))
            if line is not None:
                self._writer.submit(self._bucket, [line])
        except Exception:
            log.exception("fault record not stored: %s", rec)

    def flush(self, timeout_s: float = 30.0) -> bool:
        return self._writer.flush(timeout_s)

    def close(self) -> None:
        self._writer.close()


class TeeAudit:
    """Sends every record to several logs (e.g. InfluxDB and the process log)."""

    def __init__(self, *logs: AuditLog) -> None:
        self._logs = logs

    def record(self, rec: AuditRecord) -> None:
        for a in self._logs:
            a.record(rec)

    def fault(self, rec: FaultRecord) -> None:
        for a in self._logs:
            a.fault(rec)


class LoggingAudit:
    """Writes records to the Python log (always on: the journal keeps a copy)."""

    def record(self, rec: AuditRecord) -> None:
        level = logging.WARNING if rec.outcome is Outcome.FAILED else logging.INFO
        log.log(level, "audit %s %s%s%s: %s", rec.action.value, rec.outcome.value,
                f" {rec.channel}" if rec.channel else "",
                f" -> {rec.target}" if rec.target else "", rec.detail)

    def fault(self, rec: FaultRecord) -> None:
        log.info("fault %s %s on %s/%s value=%s threshold=%s", rec.type, rec.state.value,
                 rec.circuit, rec.phase, rec.value, rec.threshold)
