"""Fault rules on stored metrics: Flux tasks generated from the config, and their sync.

* :mod:`collector.rules.faults` - the ``faults`` record (tags, fields, states, types);
* :mod:`collector.rules.rule_table` - which rules a config asks for, with thresholds;
* :mod:`collector.rules.flux_rules` - one Flux task per rule;
* :mod:`collector.rules.sync` - idempotent install / update / removal of those tasks.
"""
