"""Volts at the ADC pin -> volts or amperes on the wire, and back.

The sensor maths lives in :mod:`collector.config.sensors` (every sensor model has
``units_per_volt`` and ``zero_v``: ``physical = (v_pin - zero_v) * units_per_volt``);
this module only adds what the sources need around it: the channel's polarity, the
inverse (for emulators and headroom checks), and the converter's range and step
expressed in physical units for :class:`~collector.model.ChannelInfo`.
Calibration (offset, gain, phase) is applied afterwards, see
:mod:`collector.calibration.apply`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from collector.config.channels import AnyChannel, Polarity
from collector.model import Quantity


@dataclass(frozen=True, slots=True)
class ChannelTransfer:
    """Linear transfer of one channel's sensor, polarity included.

    Attributes
    ----------
    channel_id : str
    quantity : Quantity
    units_per_volt : float
        Physical units per volt at the pin [V/V or A/V], > 0.
    zero_v : float
        Pin voltage at zero input [V] (the sensor's bias).
    sign : float
        +1, or -1 for a channel whose sensor sits the wrong way round.
    """

    channel_id: str
    quantity: Quantity
    units_per_volt: float
    zero_v: float
    sign: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.units_per_volt) and self.units_per_volt > 0):
            raise ValueError(
                f"{self.channel_id}: units_per_volt must be finite and > 0, "
                f"got {self.units_per_volt}"
            )
        if self.sign not in (1.0, -1.0):
            raise ValueError(f"{self.channel_id}: sign must be +1 or -1, got {self.sign}")

    @property
    def unit(self) -> str:
        return "V" if self.quantity is Quantity.VOLTAGE else "A"


def transfer_of(channel: AnyChannel) -> ChannelTransfer:
    """The transfer of a configured channel; its ``sensor`` must be set."""
    if channel.sensor is None:
        raise ValueError(
            f"channel {channel.id!r}: sensor is required to convert ADC volts, got none"
        )
    return ChannelTransfer(
        channel_id=channel.id,
        quantity=channel.quantity,
        units_per_volt=float(channel.sensor.units_per_volt),
        zero_v=float(channel.sensor.zero_v),
        sign=-1.0 if channel.polarity is Polarity.REVERSED else 1.0,
    )


def pin_to_physical(v_pin_v: ArrayLike, transfer: ChannelTransfer) -> NDArray[np.float64]:
    """Physical value [V or A] of pin voltages ``v_pin_v`` [V] (before calibration)."""
    v = np.asarray(v_pin_v, dtype=np.float64)
    return (v - transfer.zero_v) * (transfer.units_per_volt * transfer.sign)


def physical_to_pin(x: ArrayLike, transfer: ChannelTransfer) -> NDArray[np.float64]:
    """Pin voltage [V] that an ideal sensor outputs for physical values ``x`` [V or A]."""
    v = np.asarray(x, dtype=np.float64)
    return v / (transfer.units_per_volt * transfer.sign) + transfer.zero_v


def physical_range(
    transfer: ChannelTransfer, pin_low_v: float, pin_high_v: float
) -> tuple[float, float]:
    """Lowest and highest physical value [V or A] the pin range maps to."""
    if not pin_high_v > pin_low_v:
        raise ValueError(f"pin range: need pin_high_v > pin_low_v, got {pin_low_v}..{pin_high_v}")
    a, b = (float(v) for v in pin_to_physical([pin_low_v, pin_high_v], transfer))
    return (min(a, b), max(a, b))


def full_scale_physical(transfer: ChannelTransfer, pin_low_v: float, pin_high_v: float) -> float:
    """Largest magnitude [V or A] representable on both sides of zero.

    A biased single-ended input (an ACS712 at 2.5 V on a 0..4.096 V range) is
    asymmetric; the smaller side is what :attr:`ChannelInfo.full_scale` may promise,
    because ``|x| >= full_scale`` is how clipping is recognised downstream.
    """
    lo, hi = physical_range(transfer, pin_low_v, pin_high_v)
    if lo >= 0 or hi <= 0:
        raise ValueError(
            f"{transfer.channel_id}: zero input (pin {transfer.zero_v} V) lies outside the "
            f"pin range {pin_low_v}..{pin_high_v} V: the bias zero_v does not fit the ADC input"
        )
    return min(-lo, hi)


def resolution_physical(transfer: ChannelTransfer, lsb_v: float) -> float:
    """One converter step [V] at the pin expressed in physical units [V or A]."""
    return lsb_v * transfer.units_per_volt
