"""IEEE 1159-2019 categories of RMS variations (Table 2, "typical characteristics").

The category follows from the kind of variation and its duration; the table's
magnitude ranges are *typical* values, so a magnitude outside them does not change
the category but is reported by :func:`typical_magnitude`.

| category | duration | sag (pu) | swell (pu) | interruption (pu) |
|---|---|---|---|---|
| instantaneous | 0.5-30 cycles | 0.1-0.9 | 1.1-1.8 | (momentary from 0.5 cycle) |
| momentary | 30 cycles-3 s | 0.1-0.9 | 1.1-1.4 | < 0.1 |
| temporary | 3 s-1 min | 0.1-0.9 | 1.1-1.2 | < 0.1 |
| sustained (long duration) | > 1 min | undervoltage 0.8-0.9 | overvoltage 1.1-1.2 | 0.0 |
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Variation(StrEnum):
    """Kind of RMS variation."""

    SAG = "sag"
    SWELL = "swell"
    INTERRUPTION = "interruption"


MOMENTARY_MIN_CYCLES = 30.0
TEMPORARY_MIN_S = 3.0
SUSTAINED_MIN_S = 60.0

# (lowest, highest) typical magnitude [pu] per (variation, duration class).
_TYPICAL_PU = MappingProxyType[tuple[Variation, str], tuple[float, float]]({
    (Variation.SAG, "instantaneous"): (0.1, 0.9),
    (Variation.SAG, "momentary"): (0.1, 0.9),
    (Variation.SAG, "temporary"): (0.1, 0.9),
    (Variation.SAG, "sustained"): (0.8, 0.9),
    (Variation.SWELL, "instantaneous"): (1.1, 1.8),
    (Variation.SWELL, "momentary"): (1.1, 1.4),
    (Variation.SWELL, "temporary"): (1.1, 1.2),
    (Variation.SWELL, "sustained"): (1.1, 1.2),
    (Variation.INTERRUPTION, "momentary"): (0.0, 0.1),
    (Variation.INTERRUPTION, "temporary"): (0.0, 0.1),
    (Variation.INTERRUPTION, "sustained"): (0.0, 0.1),
})


def duration_class(variation: Variation, duration_s: float, f_hz: float) -> str:
    """IEEE 1159 duration class: instantaneous, momentary, temporary or sustained.

    Parameters
    ----------
    variation : Variation
        Sag, swell or interruption.
    duration_s : float
        Event duration [s].
    f_hz : float
        Power frequency used to convert the 30-cycle limit to seconds [Hz].

    Returns
    -------
    str
        The duration class. Interruptions have no instantaneous class: IEEE 1159
        counts them as momentary from half a cycle. Events shorter than half a cycle
        (below what a one-cycle RMS can resolve) fall in the shortest class.
    """
    if duration_s < 0:
        raise ValueError(f"duration_s: must be >= 0, got {duration_s}")
    if not f_hz > 0:
        raise ValueError(f"f_hz: must be > 0, got {f_hz}")
    if duration_s > SUSTAINED_MIN_S:
        return "sustained"
    if duration_s > TEMPORARY_MIN_S:
        return "temporary"
    if duration_s >= MOMENTARY_MIN_CYCLES / f_hz or variation is Variation.INTERRUPTION:
        return "momentary"
    return "instantaneous"


def category(variation: Variation, duration_s: float, f_hz: float) -> str:
    """IEEE 1159 category name, e.g. ``"momentary sag"`` or ``"sustained interruption"``.

    Long-duration (> 1 min) sags and swells are called undervoltage and overvoltage
    in IEEE 1159; those names are used here.
    """
    cls = duration_class(variation, duration_s, f_hz)
    if cls == "sustained" and variation is Variation.SAG:
        return "undervoltage"
    if cls == "sustained" and variation is Variation.SWELL:
        return "overvoltage"
    return f"{cls} {variation}"


def typical_magnitude(variation: Variation, duration_s: float, f_hz: float, pu: float) -> bool:
    """True when magnitude ``pu`` [per unit of the reference] lies in the table's typical range."""
    lo, hi = _TYPICAL_PU[(variation, duration_class(variation, duration_s, f_hz))]
    return lo <= pu <= hi
