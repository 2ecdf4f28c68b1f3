"""A physically honest simulated switchboard that stands in for sensors.

``SimulatedSource(panel, disturbances=..., seed=...)`` or
``SimulatedSource.from_scenario("config/scenarios/demo.yaml")`` yields blocks like a
real converter; ``truth_at(t_s)`` says what the model is doing. docs/simulation.md
describes the models, presets and the scenario format.
"""

from collector.sources.simulated.adc import AdcSpec, Sampling
from collector.sources.simulated.disturbances import (
    Arcing,
    Disturbance,
    DisturbanceType,
    FrequencyExcursion,
    GroundFault,
    HarmonicPollution,
    OpenNeutral,
    Overload,
    SensorFault,
    SensorFaultKind,
    VoltageChange,
)
from collector.sources.simulated.loads import LoadSpec, LoadType, PfSense
from collector.sources.simulated.mains import MainsSpec, SupplyImpedance, VoltageHarmonic
from collector.sources.simulated.panel import CircuitSpec, PanelSpec, Schedule
from collector.sources.simulated.presets import PRESETS, preset
from collector.sources.simulated.scenario import Scenario, load_scenario, parse_scenario
from collector.sources.simulated.source import (
    DEFAULT_BLOCK_DURATION_S,
    DEFAULT_START_NS,
    ScheduledDisturbance,
    SimulatedSource,
)
from collector.sources.simulated.truth import CircuitTruth, PanelTruth

__all__ = [
    "DEFAULT_BLOCK_DURATION_S",
    "DEFAULT_START_NS",
    "PRESETS",
    "AdcSpec",
    "Arcing",
    "CircuitSpec",
    "CircuitTruth",
    "Disturbance",
    "DisturbanceType",
    "FrequencyExcursion",
    "GroundFault",
    "HarmonicPollution",
    "LoadSpec",
    "LoadType",
    "MainsSpec",
    "OpenNeutral",
    "Overload",
    "PanelSpec",
    "PanelTruth",
    "PfSense",
    "Sampling",
    "Scenario",
    "Schedule",
    "ScheduledDisturbance",
    "SensorFault",
    "SensorFaultKind",
    "SimulatedSource",
    "SupplyImpedance",
    "VoltageChange",
    "VoltageHarmonic",
    "load_scenario",
    "parse_scenario",
    "preset",
]
