"""Waveform-level event detection: dips, swells, interruptions, overcurrent, ground
fault, open neutral, frequency deviation, sensor faults and an advisory arc signature.

The pipeline uses :class:`EventEngine`; the modules hold one topic each (see
docs/events.md).
"""

from collector.events.engine import EventBatch, EventEngine, EventSettings
from collector.events.half_cycle_rms import HalfCycleRmsState, half_cycle_rms

__all__ = ["EventBatch", "EventEngine", "EventSettings", "HalfCycleRmsState", "half_cycle_rms"]
