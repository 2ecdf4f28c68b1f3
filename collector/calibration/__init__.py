"""Channel calibration: the versioned file, the fits with their uncertainties, applying.

docs/calibration.md describes the procedure (`gridguard calibrate`) and the format.
"""
