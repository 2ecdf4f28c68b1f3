"""The converter: quantisation, clipping, gain/offset errors, noise, multiplexer skew.

A bipolar converter of ``bits`` bits maps ±full_scale (physical units at the sensor,
peak) onto codes; one LSB is full_scale / 2^(bits-1). Codes saturate symmetrically
at ±(2^(bits-1) - 1), so the largest value a channel reports is
``(2^(bits-1) - 1)·LSB``, and that is the ``full_scale`` its ChannelInfo declares:
a clipped sample has |x| equal to it on either side. (A two's-complement converter
also has the code -2^(bits-1); saturating symmetrically keeps "|x| >= full_scale
means clipped" true for both polarities.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collector.sources.simulated.spectra import FloatArray


class Sampling(StrEnum):
    """All channels converted at once, or one after the other through a multiplexer."""

    SIMULTANEOUS = "simultaneous"
    MULTIPLEXED = "multiplexed"


@dataclass(frozen=True, slots=True)
class AdcSpec:
    """Converter parameters.

    Attributes
    ----------
    bits : int
        Resolution, 8..24.
    sampling : Sampling
        Simultaneous sample-and-hold, or a multiplexer scanning channels in row order
        evenly within each sample period (channel k is sampled k/(n·fs) late).
    noise_lsb : float
        RMS input-referred noise [LSB] (thermal + reference noise).
    gain_error_pct : float
        Bound of the per-channel gain error [%]; each channel draws a fixed error
        uniformly from ±bound (seeded). 0 = ideal.
    offset_lsb : float
        Bound of the per-channel offset [LSB], drawn like the gain error.
    """

    bits: int = 16
    sampling: Sampling = Sampling.SIMULTANEOUS
    noise_lsb: float = 0.5
    gain_error_pct: float = 0.0
    offset_lsb: float = 0.0

    def __post_init__(self) -> None:
        if not 8 <= self.bits <= 24:
            raise ValueError(f"bits: must be between 8 and 24, got {self.bits}")
        for name in ("noise_lsb", "gain_error_pct", "offset_lsb"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be >= 0, got {value}")

    @property
    def code_max(self) -> int:
        """Largest code magnitude; codes saturate at ±code_max."""
        return int(2 ** (self.bits - 1) - 1)


def lsb(full_scale: float, bits: int) -> float:
    """Size of one code step [V or A] for a bipolar range ±``full_scale`` of ``bits`` bits."""
    if not full_scale > 0:
        raise ValueError(f"full_scale: must be > 0, got {full_scale}")
    return full_scale / 2.0 ** (bits - 1)


def representable_full_scale(full_scale: float, bits: int) -> float:
    """Largest magnitude the converter reports (the saturation value) [V or A]."""
    # the same float64 product the samples are scaled with, so clipped samples equal it
    return (2.0 ** (bits - 1) - 1.0) * lsb(full_scale, bits)


def multiplexer_skew_s(n_channels: int, fs_hz: float, sampling: Sampling) -> FloatArray:
    """Sampling delay of each channel after the block timestamps [s]."""
    if sampling is Sampling.SIMULTANEOUS:
        return np.zeros(n_channels)
    # one conversion every 1/(n·fs): channel k waits k conversions
    return np.arange(n_channels) / (n_channels * fs_hz)


def quantise_counts(
    x_counts: NDArray[np.floating[Any]], code_max: int, *, clip: bool = True
) -> None:
    """Round values in LSB units to codes in place, saturating at ±``code_max``."""
    np.rint(x_counts, out=x_counts)
    if clip:
        np.clip(x_counts, -code_max, code_max, out=x_counts)


def channel_errors(
    rng: np.random.Generator, n_channels: int, spec: AdcSpec
) -> tuple[FloatArray, FloatArray]:
    """Fixed per-channel gain factors and offsets [LSB] drawn within the spec's bounds."""
    gains = 1.0 + rng.uniform(-1.0, 1.0, n_channels) * spec.gain_error_pct / 100.0
    offsets = rng.uniform(-1.0, 1.0, n_channels) * spec.offset_lsb
    return gains, offsets


def noise_table(
    rng: np.random.Generator, length: int, sigma_counts: FloatArray, offsets_counts: FloatArray
) -> NDArray[np.float64]:
    """Gaussian noise [LSB] of ``length`` samples per channel, shape (length, n_channels).

    The channel offsets are folded in (each sample gets exactly one table value).
    """
    table = rng.standard_normal((length, sigma_counts.shape[0]))
    table *= sigma_counts
    table += offsets_counts
    return table
