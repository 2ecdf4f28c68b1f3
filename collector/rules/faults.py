"""The ``faults`` record shared by the Flux rule tasks, the rule worker and Grafana.

One point per state *transition* (never one per evaluation) in the events bucket::

    faults,site=<site>,circuit=<circuit>,phase=<phase>,type=<type>,severity=<severity>
        value=<float>,threshold=<float>,state="active"|"resolved",unit="<unit>" <time>

* ``circuit`` is a circuit id, a voltage channel id, or ``system`` for site-wide
  faults (frequency, demand, voltage unbalance);
* ``value`` is the worst value of the evaluation period at the reported level, in
  ``unit``; ``threshold`` the limit it was compared with, in the same unit;
* a series (site, circuit, phase, type, severity) is *active* while its last
  record has ``state="active"``; a change of severity writes ``resolved`` for the
  old severity and ``active`` for the new one at the same time.

The field names are proposed for ``collector.nomenclature`` (measurement
``faults``); until they are there they are defined here.
"""

from __future__ import annotations

from enum import StrEnum

from collector.nomenclature import Measurement, Tag

MEASUREMENT = Measurement.FAULTS.value
TAGS: tuple[str, ...] = (
    Tag.SITE.value, Tag.CIRCUIT.value, Tag.PHASE.value, Tag.TYPE.value, Tag.SEVERITY.value,
)

VALUE_FIELD = "value"
THRESHOLD_FIELD = "threshold"
STATE_FIELD = "state"
UNIT_FIELD = "unit"
FIELDS: tuple[str, ...] = (VALUE_FIELD, THRESHOLD_FIELD, STATE_FIELD, UNIT_FIELD)

SYSTEM_CIRCUIT = "system"
"""``circuit`` tag of site-wide faults (reserved: no circuit may have this id)."""


class FaultState(StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"


class FaultType(StrEnum):
    """Fault types written by the Flux rule tasks (the ``type`` tag).

    The rule worker writes its own types (thermal overload, sensor faults...); a
    type is written by one kind of writer only, since each task compares with the
    last state it finds for its type.
    """

    UNDERVOLTAGE = "undervoltage"
    OVERVOLTAGE = "overvoltage"
    OVERCURRENT = "overcurrent"
    POWER_LIMIT = "power_limit"
    LOW_POWER_FACTOR = "low_power_factor"
    UNDERFREQUENCY = "underfrequency"
    OVERFREQUENCY = "overfrequency"
    VOLTAGE_THD = "voltage_thd"
    CURRENT_THD = "current_thd"
    VOLTAGE_UNBALANCE = "voltage_unbalance"
    CURRENT_UNBALANCE = "current_unbalance"
    DEMAND = "demand"
    UNDERCURRENT = "undercurrent"
    VOLTAGE_FLUCTUATION = "voltage_fluctuation"
