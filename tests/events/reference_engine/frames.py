"""Cutting a sample stream into consecutive half-cycle frames, with history.

Detectors that look at the waveform itself (arc signature, sensor health) work on
half-cycle frames. The cycle is generally a fractional number of samples; frame
edges are the fractional positions rounded to the nearest sample, so frames are
contiguous and differ in length by at most one sample. Samples before the current
frame are kept (``history_samples``) so a detector can compare with earlier cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S


@dataclass(frozen=True, slots=True, eq=False)
class Frames:
    """Frames completed by one push.

    Attributes
    ----------
    data : NDArray[np.float64]
        Retained history followed by the new samples, shape (n_channels, m).
    bounds : NDArray[np.int64]
        Shape (k, 2): ``[i0, i1)`` column range of each frame in ``data``.
    start_ns, end_ns : NDArray[np.int64]
        Shape (k,): time of sample ``i0`` and of sample ``i1`` [ns since epoch].
    fs_hz : float
        Sample rate [Hz].
    """

    data: NDArray[np.float64]
    bounds: NDArray[np.int64]
    start_ns: NDArray[np.int64]
    end_ns: NDArray[np.int64]
    fs_hz: float


class FrameCutter:
    """Streaming half-cycle framer; ``reset()`` after a gap."""

    def __init__(self, n_channels: int, history_samples: int) -> None:
        if n_channels < 1 or history_samples < 0:
            raise ValueError(
                f"n_channels/history_samples: need >= 1 and >= 0, got {n_channels}, "
                f"{history_samples}"
            )
        self.n_channels = n_channels
        self.history_samples = history_samples
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros((self.n_channels, 0))
        self._next = 0.0  # start of the next frame, samples relative to _buf[:, 0]

    def push(
        self, x: NDArray[np.float64], t0_ns: int, fs_hz: float, frame_samples: float
    ) -> Frames:
        """Append samples ``x`` (n_channels, n) from ``t0_ns``; frames of ``frame_samples``."""
        if x.shape[0] != self.n_channels:
            raise ValueError(f"x: expected {self.n_channels} rows, got {x.shape[0]}")
        if not frame_samples >= 1:
            raise ValueError(f"frame_samples: must be >= 1, got {frame_samples}")
        m_old = self._buf.shape[1]
        data = np.concatenate([self._buf, x], axis=1)
        n = data.shape[1]
        count = int(np.floor((n - self._next) / frame_samples + 1e-9))
        edges = self._next + frame_samples * np.arange(count + 1)
        idx = np.round(edges).astype(np.int64)
        idx = np.minimum(idx, n)
        bounds = np.stack([idx[:-1], idx[1:]], axis=1) if count > 0 else np.zeros((0, 2), np.int64)
        scale = NS_PER_S / fs_hz
        start_ns = t0_ns + np.round((bounds[:, 0] - m_old) * scale).astype(np.int64)
        end_ns = t0_ns + np.round((bounds[:, 1] - m_old) * scale).astype(np.int64)
        self._next = float(edges[-1])
        cut = max(0, min(int(np.floor(self._next)) - self.history_samples, n))
        self._buf = data[:, cut:].copy()
        self._next -= cut
        return Frames(data, bounds, start_ns, end_ns, fs_hz)
