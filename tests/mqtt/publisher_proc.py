"""A collector stand-in for the last-will test: run it, then kill -9 it.

``python -m tests.mqtt.publisher_proc HOST PORT SITE`` connects an MqttSink, publishes
one reading, prints ``ready`` once the broker has it and then waits to be killed.
"""

from __future__ import annotations

import sys
import time

from collector.model import Metrics
from collector.sinks.mqtt import MqttSink
from tests.mqtt.helpers import settings, site


def main() -> int:
    host, port, site_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sink = MqttSink(settings(host, port, keepalive_s=60), site(site_id=site_id))
    if not sink.wait_connected(30):
        print("no connection", flush=True)
        return 1
    sink.publish([Metrics(time.time_ns(), "150c", "kitchen", "A", {"power_active_w": 1.0})], [])
    deadline = time.monotonic() + 30
    while sink.stats().readings_published == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    print("ready", flush=True)
    time.sleep(600)  # killed by the test long before
    return 0


if __name__ == "__main__":
    sys.exit(main())
