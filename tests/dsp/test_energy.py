"""Import and export energy kept apart."""

from __future__ import annotations

import numpy as np

from collector.dsp.energy import accumulate_energy_wh


def test_import_and_export_are_never_netted() -> None:
    p = np.array([[3600.0, -100.0], [-1800.0, np.nan], [0.0, -100.0]])
    imp, exp = accumulate_energy_wh(
        np.array([10.0, 0.0]), np.array([1.0, 0.0]), p, np.array([1.0, 2.0, 1.0])
    )
    np.testing.assert_allclose(imp[:, 0], [11.0, 11.0, 11.0])
    np.testing.assert_allclose(exp[:, 0], [1.0, 2.0, 2.0])
    np.testing.assert_allclose(imp[:, 1], 0.0)
    np.testing.assert_allclose(exp[:, 1], [100 / 3600, 100 / 3600, 200 / 3600])
