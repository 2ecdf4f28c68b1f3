"""Grafana webhook notifications (unified alerting) -> alert signals.

Grafana's webhook contact point POSTs JSON with ``status``, ``alerts[]`` (each with
``status`` firing/resolved, ``labels``, ``annotations``, ``fingerprint``,
``startsAt``, ``values``...), ``groupLabels``, ``commonLabels`` and more. Only what
the worker needs is read; everything else is ignored so a newer Grafana with extra
keys keeps working.

Labels the GridGuard alert rules set (grafana/ provisioning): ``type`` (fault type),
``circuit``, ``phase``, ``severity`` (info/warning/critical). With a ``type`` label
the alert is keyed like a fault (``fault:<type>:<circuit>:<phase>``) and merges with
the worker's own alert for the same fault; without one it is keyed by Grafana's
fingerprint. Annotations ``summary`` (or ``description``), ``value`` and
``threshold`` fill the message.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from collector.model import Severity
from collector.worker.alerts import AlertSignal, AlertSource, fault_key

MAX_ALERTS = 1000
_MAX_TEXT = 2000


class PayloadError(ValueError):
    """The body is JSON but not a Grafana notification; the message says what is wrong."""


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object of strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise PayloadError(f"{where}.{k}: expected a string, got {type(v).__name__}")
        out[str(k)] = v
    return out


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _single_value(values: Any) -> float | None:
    if not isinstance(values, dict) or len(values) != 1:
        return None
    (v,) = values.values()
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(float(v)) else None


def _severity(text: str | None) -> Severity:
    try:
        return Severity((text or "").strip().lower())
    except ValueError:
        return Severity.WARNING  # an unlabelled Grafana alert still deserves a look


def _fingerprint(labels: Mapping[str, str]) -> str:
    text = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_notification(payload: Any) -> list[AlertSignal]:
    """Signals of one Grafana webhook body (already JSON-decoded)."""
    if not isinstance(payload, dict):
        raise PayloadError(f"body: expected a JSON object, got {type(payload).__name__}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts: expected a list of alerts")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError(f"alerts: at most {MAX_ALERTS} per notification, got {len(alerts)}")
    out: list[AlertSignal] = []
    for k, item in enumerate(alerts):
        where = f"alerts[{k}]"
        if not isinstance(item, dict):
            raise PayloadError(f"{where}: expected an object, got {type(item).__name__}")
        status = item.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f"{where}.status: expected 'firing' or 'resolved', got {status!r}")
        labels = _str_map(item.get("labels"), f"{where}.labels")
        annotations = _str_map(item.get("annotations"), f"{where}.annotations")
        fingerprint = item.get("fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise PayloadError(f"{where}.fingerprint: expected a string")
        alertname = labels.get("alertname", "grafana_alert")
        fault_type = labels.get("type")
        circuit = labels.get("circuit") or None
        phase = labels.get("phase") or None
        if fault_type:
            key = fault_key(fault_type, circuit, phase)
        else:
            key = f"grafana:{fingerprint or _fingerprint(labels)}"
        summary = (annotations.get("summary") or annotations.get("description")
                   or alertname)[:_MAX_TEXT]
        value = _number(annotations.get("value"))
        if value is None:
            value = _single_value(item.get("values"))
        out.append(AlertSignal(
            key=key, firing=status == "firing", severity=_severity(labels.get("severity")),
            type=(fault_type or alertname)[:200], source=AlertSource.GRAFANA, circuit=circuit,
            phase=phase, summary=summary, value=value,
            threshold=_number(annotations.get("threshold")),
        ))
    return out
