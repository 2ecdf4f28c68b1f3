"""Timestamped samples per channel: what a converter delivered, instant by instant.

Waveform sources deliver uniform :class:`~collector.model.Block` s; a multiplexed
converter on a shared bus (ADS1115) delivers each channel's samples at their own,
irregular instants. :class:`SampleSet` holds both kinds the same way, so the
diagnostics, the calibration and the slow-ADC metrics need one code path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from collector.clock import Clock
from collector.model import NS_PER_S, Block, ChannelInfo, SourceCapabilities


@dataclass(frozen=True, slots=True, eq=False)
class ChannelSamples:
    """One channel's samples over a window.

    Attributes
    ----------
    info : ChannelInfo
    t_ns : NDArray[np.int64]
        Sampling instants [ns since epoch, UTC] (multiplexer skew included).
    values : NDArray[np.float64]
        Samples in physical units [V or A]; NaN for a failed read.
    clipped : NDArray[np.bool_]
        True where the converter sat at a rail (the value is then a bound).
    codes : NDArray[np.int64] | None
        Raw converter codes, when the source has them.
    """

    info: ChannelInfo
    t_ns: NDArray[np.int64]
    values: NDArray[np.float64]
    clipped: NDArray[np.bool_]
    codes: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        n = self.t_ns.shape
        if (
            self.values.shape != n
            or self.clipped.shape != n
            or (self.codes is not None and self.codes.shape != n)
        ):
            raise ValueError(
                f"{self.info.id}: t_ns, values, clipped (and codes) need one length, got "
                f"{self.t_ns.shape}, {self.values.shape}, {self.clipped.shape}"
            )

    @property
    def n(self) -> int:
        return int(self.t_ns.shape[0])

    def t_s(self, origin_ns: int) -> NDArray[np.float64]:
        """Sampling instants relative to ``origin_ns`` [s]."""
        return (self.t_ns - origin_ns).astype(np.float64) / NS_PER_S

    def rate_hz(self) -> float:
        """Achieved mean sample rate [Hz] (0 with fewer than two samples)."""
        if self.n < 2:
            return 0.0
        span = float(self.t_ns[-1] - self.t_ns[0]) / NS_PER_S
        return (self.n - 1) / span if span > 0 else 0.0


@dataclass(frozen=True, slots=True, eq=False)
class SampleSet:
    """All channels of a source over one window ``[start_ns, end_ns)``."""

    start_ns: int
    end_ns: int
    channels: tuple[ChannelSamples, ...]

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S

    def channel(self, channel_id: str) -> ChannelSamples:
        for c in self.channels:
            if c.info.id == channel_id:
                return c
        raise KeyError(f"no channel {channel_id!r}; have {[c.info.id for c in self.channels]}")


def sample_set_from_blocks(blocks: Iterable[Block], caps: SourceCapabilities) -> SampleSet:
    """Uniform blocks as a sample set: instants from the block time plus each skew.

    A sample counts as clipped when ``|x|`` reaches the channel's ``full_scale``.
    """
    chunks = list(blocks)
    if not chunks:
        raise ValueError("blocks: need at least one block, got none")
    out: list[ChannelSamples] = []
    for k, ch in enumerate(caps.channels):
        t_parts: list[NDArray[np.int64]] = []
        v_parts: list[NDArray[np.float64]] = []
        for b in chunks:
            idx = np.arange(b.n_samples, dtype=np.float64)
            t = b.t0_ns + np.rint((idx / b.fs_hz + ch.skew_s) * NS_PER_S).astype(np.int64)
            t_parts.append(t)
            v_parts.append(np.asarray(b.samples[k], dtype=np.float64))
        values = np.concatenate(v_parts)
        fs = np.inf if ch.full_scale is None else ch.full_scale
        out.append(
            ChannelSamples(
                info=ch,
                t_ns=np.concatenate(t_parts),
                values=values,
                clipped=np.abs(np.nan_to_num(values)) >= fs,
            )
        )
    first, last = chunks[0], chunks[-1]
    end = last.t0_ns + round(last.n_samples * NS_PER_S / last.fs_hz)
    return SampleSet(start_ns=first.t0_ns, end_ns=end, channels=tuple(out))


class Sampler(Protocol):
    """A converter source that can deliver raw or calibrated samples for a while."""

    @property
    def capabilities(self) -> SourceCapabilities: ...

    @property
    def clock(self) -> Clock: ...

    def acquire(self, duration_s: float, *, calibrated: bool = True) -> SampleSet: ...

    def close(self) -> object: ...
