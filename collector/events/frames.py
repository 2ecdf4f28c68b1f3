"""Cutting a sample stream into consecutive half-cycle frames, with history.

Detectors that look at the waveform itself (arc signature, sensor health) work on
half-cycle frames. The cycle is generally a fractional number of samples; frame
edges are the fractional positions rounded to the nearest sample, so frames are
contiguous and differ in length by at most one sample. Samples before the current
frame are kept (``history_samples``) so a detector can compare with earlier cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, column_slice_of


@dataclass(frozen=True, slots=True, eq=False)
class Frames:
    """Frames completed by one push.

    Attributes
    ----------
    data : NDArray[np.float64]
        Retained history followed by the new samples, shape (n_channels, m).
    edges : NDArray[np.int64]
        Column of each frame edge in ``data``, shape (k + 1,): frame ``i`` is
        ``[edges[i], edges[i + 1])``.
    fs_hz : float
        Sample rate [Hz].
    t0_ns : int
        Time of the first new sample, column ``history`` of ``data`` [ns since epoch].
    history : int
        Columns of ``data`` retained from earlier pushes.

    The edge times are computed on demand (:meth:`times_ns`): most blocks need none.
    """

    data: NDArray[np.float64]
    edges: NDArray[np.int64]
    fs_hz: float
    t0_ns: int
    history: int

    @property
    def count(self) -> int:
        """Number of frames."""
        return self.edges.size - 1

    def times_ns(self) -> NDArray[np.int64]:
        """Time of the sample at each edge, shape (k + 1,) [ns since epoch]."""
        times: NDArray[np.int64] = np.rint(
            (self.edges - self.history) * (NS_PER_S / self.fs_hz)
        ).astype(np.int64)
        times += self.t0_ns
        return times


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

    @property
    def room_wanted(self) -> int:
        """Columns of history the next :meth:`push` puts before its samples: a caller
        that leaves exactly this many free columns before them in its own array
        saves the copy (see :meth:`push`)."""
        return int(self._buf.shape[1])

    def push(
        self, x: NDArray[np.float64], t0_ns: int, fs_hz: float, frame_samples: float
    ) -> Frames:
        """Append samples ``x`` (n_channels, n) from ``t0_ns``; frames of ``frame_samples``.

        When ``x`` is the tail of a C-ordered float64 array whose only other columns
        are :attr:`room_wanted` free ones before it, the history is written there
        and that array becomes the frames' data: no copy of ``x``.
        """
        if x.shape[0] != self.n_channels:
            raise ValueError(f"x: expected {self.n_channels} rows, got {x.shape[0]}")
        if not frame_samples >= 1:
            raise ValueError(f"frame_samples: must be >= 1, got {frame_samples}")
        m_old = self._buf.shape[1]
        data = _with_room(x, m_old)
        if data is not None:
            data[:, :m_old] = self._buf
        else:
            # a new float64 array, one row after another (as the compiled screens expect)
            data = np.concatenate((self._buf, x), axis=1)
        n = data.shape[1]
        nxt = self._next
        count = math.floor((n - nxt) / frame_samples + 1e-9)
        # the same IEEE arithmetic as nxt + frame_samples * i, rounded half to even
        edges = nxt + frame_samples * np.arange(count + 1)
        idx = np.rint(edges).astype(np.int64)
        if idx[-1] > n:  # only the last edge can reach beyond the samples
            idx[-1] = n
        self._next = float(edges[-1])
        cut = max(0, min(math.floor(self._next) - self.history_samples, n))
        self._buf = data[:, cut:].copy()
        self._next -= cut
        return Frames(data, idx, fs_hz, t0_ns, m_old)


def _with_room(x: NDArray[np.float64], room: int) -> NDArray[np.float64] | None:
    """The writeable C-ordered float64 array of which ``x`` is the last columns, with
    exactly ``room`` columns before them; None when ``x`` is not such a view."""
    found = column_slice_of(x)
    if found is None:
        return None
    base, offset = found
    return base if offset == room and base.shape[1] == room + x.shape[1] else None
