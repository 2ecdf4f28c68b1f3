"""Frozen copy of the metrics DSP package, used as a test oracle."""
