"""The rule worker: stateful rules, alert routing, local alarm, load shedding, audit.

See docs/alerting.md. Modules: ``thermal`` (I²t), ``sensor_health``, ``alerts`` (state
machine), ``shedding``, ``outputs`` (GPIO / simulated), ``notify`` (email, SMS,
webhooks), ``server`` (Grafana webhook endpoint and local API), ``audit``,
``engine`` (ties them together), ``runner`` (threads), ``feed`` (metrics from
InfluxDB), ``ack`` (client of the local API).
"""
