"""Generated artefacts are current: the README schema table and the rollup task files."""

from __future__ import annotations

import re

from collector.influx_admin import schema_doc, tasks
from collector.nomenclature import FIELDS, Measurement


def test_readme_schema_is_up_to_date() -> None:
    text = schema_doc.README.read_text(encoding="utf-8")
    assert schema_doc.render(text) == text, "run: python -m collector.influx_admin.schema_doc"
    for f in FIELDS:  # every field of the one table is documented
        assert f"| `{f.name}` | `{f.measurement.value}` |" in text


def test_task_files_are_up_to_date() -> None:
    for task in tasks.ROLLUPS:
        path = tasks.TASKS_DIR / f"{task.key}.flux"
        assert path.read_text(encoding="utf-8") == tasks.generate(task), (
            "run: python -m collector.influx_admin.tasks")


def test_every_field_is_rolled_up_exactly_once() -> None:
    for task in tasks.ROLLUPS:
        text = (tasks.TASKS_DIR / f"{task.key}.flux").read_text(encoding="utf-8")
        seen: list[str] = []
        for group in re.findall(r"contains\(value: r\._field, set: \[([^\]]*)\]\)", text):
            seen += re.findall(r'"([^"]+)"', group)
        # records of things that happened (events, faults, audit) are not rolled up
        wanted = [f.name for f in FIELDS if f.measurement not in (
            Measurement.EVENTS, Measurement.FAULTS, Measurement.AUDIT)]
        assert sorted(seen) == sorted(wanted), task.key
        assert 'r._measurement == "harmonics"' in text  # harmonic groups: mean
        assert text.count("|> to(bucket:") == 7  # mean, max, min, sum, last, any, all


def test_rendering_fills_every_placeholder() -> None:
    template = (tasks.TASKS_DIR / "rollup_1m.flux").read_text(encoding="utf-8")
    flux = tasks.render(template, {"task_name": "t", "raw_bucket": "r",
                                   "rollup_1m_bucket": "m", "rollup_1h_bucket": "h"})
    assert "{{" not in flux
    assert 'from(bucket: "r")' in flux
    assert 'to(bucket: "m")' in flux
    query = tasks.backfill_query(flux, 60_000_000_000, 120_000_000_000)
    assert "option task" not in query
    assert "range(start: time(v: 60000000000), stop: time(v: 120000000000))" in query
