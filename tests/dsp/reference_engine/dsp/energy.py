"""Import and export energy counters, kept apart (never netted).

Each basic interval adds ``P * T`` to the import counter when its active power
is positive and ``-P * T`` to the export counter when it is negative (a
rooftop PV site must see both).  ``T`` is the interval's true duration, so
the counters integrate the measured power without gaps while the stream is
contiguous; nothing is added for time without samples.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

SECONDS_PER_HOUR = 3600.0


def accumulate_energy_wh(
    import_wh: NDArray[np.float64],
    export_wh: NDArray[np.float64],
    p_w: NDArray[np.float64],
    duration_s: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Counter values after each of a run of intervals.

    Parameters
    ----------
    import_wh, export_wh : NDArray[np.float64]
        Counters before the first interval [Wh], shape (R,).
    p_w : NDArray[np.float64]
        Active power per interval [W], shape (W, R); NaN adds nothing.
    duration_s : NDArray[np.float64]
        Interval durations [s], shape (W,).

    Returns
    -------
    import_wh, export_wh : NDArray[np.float64]
        Counter values after each interval [Wh], shape (W, R).
    """
    p = np.nan_to_num(np.asarray(p_w, dtype=np.float64), nan=0.0)
    e = p * (np.asarray(duration_s, dtype=np.float64)[:, None] / SECONDS_PER_HOUR)
    imp = import_wh[None, :] + np.cumsum(np.maximum(e, 0.0), axis=0)
    exp = export_wh[None, :] + np.cumsum(np.maximum(-e, 0.0), axis=0)
    return imp, exp
