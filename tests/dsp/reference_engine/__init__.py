"""Frozen copy of the metrics engine as of the optimisation pass: the oracle for
``tests/dsp/test_engine_equivalence.py``.  Do not edit (only imports were changed)."""
