"""Detection latency of the Flux fault rules, measured on a real influxd.

Two measurements (``python tests/benchmarks/bench_fault_latency.py [--quick]``):

1. **Live**: the rule tasks run on InfluxDB's own scheduler while a simulated
   collector writes one 150-cycle record every 3 s in real time (stamped with the
   interval start, written at its end, as the collector does). At a known instant
   the values become faulty; the latency is the wall time from that onset until
   the fault record can be read back. Done for overcurrent (10-s task) and, unless
   ``--quick``, undervoltage (1-min task), a few trials each.
2. **Per rule**: each task is forced over seeded data (the run-1 scenario of the
   end-to-end tests) to measure its execution time; the worst-case detection
   latency is then ``hold + record + every + offset + execution`` for sustained
   rules and ``window + every + offset + execution`` for windowed ones (a
   condition that starts just after a window boundary fills the next window;
   that window is judged by the first run at or after its end).

Prints Markdown tables for docs/faults.md. Needs influxd 2.7 (``$INFLUXD`` or the
cache of influx/dev/get-influxd.sh).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from collector.influx_admin.api import InfluxApi  # noqa: E402
from collector.model import Metrics  # noqa: E402
from collector.rules.faults import FaultType  # noqa: E402
from collector.rules.flux_rules import task_prefix, tasks_from_config  # noqa: E402
from collector.rules.rule_table import Input, Rule  # noqa: E402
from collector.rules.sync import sync_tasks  # noqa: E402
from tests.influxd_fixture import InfluxServer, find_influxd  # noqa: E402
from tests.rules.helpers import make_config, run_tasks, write_metrics  # noqa: E402
from tests.rules.scenarios import CASES, run_time  # noqa: E402

NS = 1_000_000_000
RECORD_S = 3


class LiveCollector:
    """Writes one record per 3 s for the live trials; values come from ``level``."""

    def __init__(self, api: InfluxApi, bucket: str, site: str) -> None:
        self.api, self.bucket, self.site = api, bucket, site
        self.level: dict[str, float] = {"current_rms_a": 5.0, "voltage_rms_v": 230.0}
        self.fault_from_ns: int | None = None  # records starting at/after this are faulty
        self.fault: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _values(self, t_ns: int) -> dict[str, float]:
        if self.fault_from_ns is not None and t_ns >= self.fault_from_ns:
            return {**self.level, **self.fault}
        return dict(self.level)

    def _loop(self) -> None:
        step = RECORD_S * NS
        next_end = (time.time_ns() // step + 1) * step
        while not self._stop.is_set():
            delay = (next_end - time.time_ns()) / NS
            if delay > 0 and self._stop.wait(delay):
                return
            start = next_end - step
            v = self._values(start)
            records = [Metrics(start, "150c", "kitchen", "A",
                               {"current_rms_a": v["current_rms_a"]}),
                       Metrics(start, "150c", "va", "A", {"voltage_rms_v": v["voltage_rms_v"]})]
            write_metrics(self.api, self.bucket, self.site, records)
            next_end += step


def _first_fault(api: InfluxApi, bucket: str, site: str, fault: str, since_ns: int) -> bool:
    flux = (f'from(bucket: "{bucket}") |> range(start: time(v: {since_ns}))\n'
            f'|> filter(fn: (r) => r._measurement == "faults" and r.site == "{site}" '
            f'and r.type == "{fault}" and r._field == "state" and r._value == "active")')
    return bool(api.query(flux))


def live_trials(api: InfluxApi, raw: str, events: str, fault: FaultType, trials: int,
                fault_values: dict[str, float]) -> list[float]:
    site = f"live-{fault.value.replace('_', '-')}"
    cfg = make_config(site, raw, events)
    task = next(t for t in tasks_from_config(cfg) if t.rule.type is fault)
    sync_tasks(api, [task], task_prefix(site))
    collector = LiveCollector(api, raw, site)
    collector.start()
    out: list[float] = []
    try:
        time.sleep(8)  # some normal records first
        for k in range(trials):
            # onsets spread over the task period: the latency depends on the phase
            period = task.rule.every_s
            base = (time.time_ns() // (RECORD_S * NS) + 2) * RECORD_S * NS
            onset = base + (k * RECORD_S * NS) % (period * NS)
            collector.fault = fault_values
            collector.fault_from_ns = onset
            # A run stamps its records with its scheduled time, which lies after the
            # onset for any run that saw the fault: look from the onset on.
            time.sleep(max(0.0, (onset - time.time_ns()) / NS) + 0.1)
            while True:
                time.sleep(0.25)
                if _first_fault(api, events, site, fault.value, onset):
                    out.append((time.time_ns() - onset) / NS)
                    break
                if time.time_ns() - onset > 10 * period * NS:
                    raise RuntimeError(f"{fault.value}: no fault within {10 * period} s")
            # back to normal until the fault resolved, then the next trial
            collector.fault_from_ns = None
            while True:
                time.sleep(0.5)
                rows = api.query(
                    f'from(bucket: "{events}") |> range(start: time(v: {onset}))\n'
                    f'|> filter(fn: (r) => r._measurement == "faults" and r.site == "{site}" '
                    f'and r._field == "state") |> last()')
                if rows and all(r["_value"] == "resolved" for r in rows):
                    break
    finally:
        collector.stop()
    return out


def bound_s(rule: Rule, exec_s: float, record_s: float = RECORD_S) -> float:
    """Worst-case onset-to-record latency [s] (see the module docstring)."""
    if rule.sustained:
        hold = max(lim.sustain_s for lim in rule.limits)
        return max(hold, record_s) + record_s + rule.every_s + rule.offset_s + exec_s
    if rule.input is Input.DEMAND:
        # a sliding mean crosses the limit within one window for any step above it
        return rule.window_s + rule.every_s + rule.offset_s + exec_s
    return rule.window_s + rule.every_s + rule.offset_s + exec_s


def per_rule(api: InfluxApi, raw: str, events: str) -> list[tuple[Rule, float]]:
    ids: dict[FaultType, str] = {}
    rules: dict[FaultType, Rule] = {}
    for case in CASES:
        site = "bench-" + case.type.value.replace("_", "-")
        cfg = make_config(site, raw, events)
        task = next(t for t in tasks_from_config(cfg) if t.rule.type is case.type)
        ids[case.type] = sync_tasks(api, [task], task_prefix(site)).task_ids[task.name]
        rules[case.type] = task.rule
        write_metrics(api, raw, site, case.seed(1, run_time(1)))
    durations: dict[FaultType, list[float]] = {t: [] for t in ids}
    for _ in range(3):
        # one at a time: the execution time of a task alone, not of a batch
        for fault, tid in ids.items():
            took = run_tasks(api, [tid], run_time(1))
            durations[fault].append(took[tid])
    return [(rules[f], statistics.median(d)) for f, d in durations.items()]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    binary, why = find_influxd()
    if binary is None:
        print(f"influxd 2.7 not found: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gridguard-bench-") as tmp:
        server = InfluxServer(binary, Path(tmp))
        server.start()
        api = InfluxApi(server.url, server.token, server.org)
        try:
            raw = server.create_bucket("raw").name
            events = server.create_bucket("events").name
            rows = per_rule(api, raw, events)
            print("| fault type | every | offset | window / hold | execution [s] "
                  "| worst-case latency [s] |")
            print("|---|---|---|---|---|---|")
            for rule, exec_s in rows:
                hold = (f"hold {max(lim.sustain_s for lim in rule.limits):g} s"
                        if rule.sustained else f"window {rule.window_s:g} s")
                print(f"| `{rule.type.value}` | {rule.every_s} s | {rule.offset_s} s | {hold} "
                      f"| {exec_s:.2f} | {bound_s(rule, exec_s):.0f} |")
            print()
            live = [(FaultType.OVERCURRENT, 4, {"current_rms_a": 20.0})]
            if not quick:
                live.append((FaultType.UNDERVOLTAGE, 2, {"voltage_rms_v": 190.0}))
            print("| fault type (live scheduler) | trials | min [s] | median [s] | max [s] |")
            print("|---|---|---|---|---|")
            for fault, trials, values in live:
                lat = live_trials(api, raw, events, fault, trials, values)
                print(f"| `{fault.value}` | {len(lat)} | {min(lat):.1f} | "
                      f"{statistics.median(lat):.1f} | {max(lat):.1f} |", flush=True)
        finally:
            api.close()
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
