"""Frozen copy of ``collector.events`` as it was before the speed work (test oracle).

The optimised engine must give identical events, started announcements and
disturbed ranges for the same blocks; ``tests/events/test_equivalence.py`` checks
that against this copy. Do not edit these files to follow later changes of
behaviour: a deliberate behaviour change retires the oracle instead.
"""
