"""``gridguard worker``, ``gridguard alerts list|ack`` and ``gridguard test-alerts``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from collector.cli.common import err_console, fail, setup_logging, stop_on_signals
from collector.clock import SystemClock
from collector.config.base import is_email, is_phone
from collector.config.errors import ConfigError
from collector.config.load import load_config
from collector.config.models import GridGuardConfig
from collector.model import NS_PER_S
from collector.worker.ack import WorkerApiError, WorkerClient, endpoint_from_config
from collector.worker.alerts import AlertBook
from collector.worker.assembly import (
    build_audit,
    build_feed,
    build_manual_relays,
    build_mqtt_control,
    build_notifiers,
    build_outputs,
    state_path,
    worker_influx_token,
)
from collector.worker.audit import AuditAction, AuditRecord, Outcome
from collector.worker.engine import WorkerEngine
from collector.worker.mqtt_control import MqttControl
from collector.worker.notify.base import Channel, Delivery, Notifier, channel_test_message
from collector.worker.outputs import ALARM_OUTPUTS, SimulatedOutputs
from collector.worker.runner import WorkerRunner
from collector.worker.server import ServerSettings, WebhookServer
from collector.worker.settings import worker_settings
from collector.worker.state_file import load_state, read_alerts

ConfigOpt = Annotated[Path, typer.Option("--config", help="Configuration file.",
                                         exists=True, dir_okay=False)]
WebhookOpt = Annotated[list[str] | None, typer.Option(
    "--notify-webhook", envvar="GRIDGUARD_NOTIFY_WEBHOOKS",
    help="Outgoing webhook URL for notifications (repeatable).")]
StateOpt = Annotated[Path | None, typer.Option(
    "--state-file", help="Alert state file (default: <spool dir>/../worker/alerts.json).")]


def _load(config: Path) -> GridGuardConfig:
    try:
        return load_config(config)
    except ConfigError as exc:
        fail(str(exc))


def worker(
    config: ConfigOpt,
    state_file: StateOpt = None,
    notify_webhook: WebhookOpt = None,
    simulate_outputs: Annotated[bool, typer.Option(
        "--simulate-outputs", help="Do not touch GPIO even on a Raspberry Pi.")] = False,
    poll_s: Annotated[float, typer.Option(help="Read new metrics this often [s].")] = 5.0,
    manual_hold_min: Annotated[float, typer.Option(
        "--manual-hold-min", min=0,
        help="A relay switched on from Home Assistant is not shed for this long [min].")]
    = 60.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the rule worker: I²t, sensor health, escalation, load shedding, Grafana webhooks,
    and (with mqtt.control) relays and acknowledgements from Home Assistant."""
    setup_logging(verbose)
    cfg = _load(config)
    clock = SystemClock()
    settings = worker_settings(cfg)
    try:
        token = worker_influx_token(cfg)
    except ValueError as exc:
        fail(str(exc))
    try:
        outputs, outputs_kind = build_outputs(cfg, clock, simulate=simulate_outputs)
    except RuntimeError as exc:
        fail(str(exc))
    audit, influx_audit = build_audit(cfg, clock, token)
    book = AlertBook(settings.alert_policy)
    path = state_file or state_path(cfg)
    try:
        if load_state(book, path):
            err_console.print(f"restored {len(book.alerts(open_only=True))} open alert(s) "
                              f"from {path}", highlight=False)
    except (OSError, ValueError) as exc:
        fail(f"--state-file: {exc}")
    # with MQTT control, manual commands and load shedding meet in one relay layer
    relays = build_manual_relays(cfg, settings, outputs, clock, audit,
                                 on_hold_s=manual_hold_min * 60.0)
    engine = WorkerEngine(settings, clock=clock, outputs=relays or outputs,
                          notifiers=build_notifiers(cfg, notify_webhook or ()),
                          audit=audit, book=book)
    feed = build_feed(cfg, settings.intervals, token)
    server: WebhookServer | None = None
    hook = cfg.alerts.webhook
    if hook.enabled and hook.bearer_token is not None:
        server = WebhookServer(ServerSettings(hook.bearer_token.get_secret_value(),
                                              hook.bind_host, hook.port), engine)
        try:
            server.start()
        except OSError as exc:
            fail(f"alerts.webhook: cannot listen on {hook.bind_host}:{hook.port}: {exc}")
    control: MqttControl | None = None
    if relays is not None:
        try:
            control = build_mqtt_control(cfg, relays, engine, audit, clock)
        except ValueError as exc:
            fail(f"mqtt: {exc}")
    err_console.print(
        f"worker for site {cfg.site.id}: outputs {outputs_kind}; "
        f"metrics {'from InfluxDB' if feed else 'none (influx disabled)'}; "
        f"endpoint {server.url if server else 'off'}; "
        f"MQTT control {cfg.mqtt.host if control else 'off'}; state {path}", highlight=False)
    runner = WorkerRunner(engine, clock=clock, feed=feed, poll_s=poll_s, state_path=path,
                          periodic=(relays.tick,) if relays else (),
                          on_stop=(relays.release,) if relays else ())
    try:
        with stop_on_signals() as stop:
            runner.run(stop)
    finally:
        if server is not None:
            server.stop()
        engine.deliver_pending()
        if control is not None:
            control.close()  # after the release: the final states are retained
        outputs.close()
        if influx_audit is not None:
            influx_audit.flush(10.0)
            influx_audit.close()


def _client(config: Path) -> WorkerClient:
    try:
        return WorkerClient(endpoint_from_config(_load(config)))
    except WorkerApiError as exc:
        fail(str(exc))


def _age(ns: object) -> str:
    if not isinstance(ns, int):
        return "-"
    return datetime.fromtimestamp(ns / NS_PER_S, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _alerts_table(alerts: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("id", "state", "severity", "type", "circuit", "phase", "since (UTC)",
                "acked by", "summary"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        table.add_row(str(a.get("id")), str(a.get("state")), str(a.get("severity")),
                      str(a.get("type")), str(a.get("circuit") or "-"),
                      str(a.get("phase") or "-"), _age(a.get("opened_ns")),
                      str(a.get("acked_by") or "-"), str(a.get("summary") or ""))
    return table


def alerts_list(
    config: ConfigOpt,
    include_resolved: Annotated[bool, typer.Option("--all", help="Include resolved.")] = False,
    state_file: StateOpt = None,
) -> None:
    """List alerts of the running worker (or, if it is down, from its state file)."""
    console = Console()
    try:
        alerts = _client(config).list(include_resolved)
        title = "alerts (live)"
    except WorkerApiError as exc:
        path = state_file or state_path(_load(config))
        if exc.status is not None or not path.exists():
            fail(str(exc))
        stored = read_alerts(path)
        alerts = [a.to_dict() for a in stored if include_resolved or a.is_open]
        title = f"alerts (worker not running; saved state {path})"
    console.print(_alerts_table(alerts, title))


def alerts_ack(
    alert_id: Annotated[str, typer.Argument(help="Alert id (see `gridguard alerts list`).")],
    config: ConfigOpt,
    by: Annotated[str | None, typer.Option(help="Who acknowledges (default: login name).")]
    = None,
) -> None:
    """Acknowledge an alert: stops its escalation and silences the buzzer."""
    import getpass

    who = by or getpass.getuser()
    try:
        result = _client(config).ack(alert_id, who)
    except WorkerApiError as exc:
        fail(str(exc))
    Console().print(str(result.get("message", "")), highlight=False)


def _escalation_targets(cfg: GridGuardConfig, notifiers: list[Notifier]
                        ) -> list[tuple[Notifier, str]]:
    by_channel = {n.channel: n for n in notifiers}
    out: list[tuple[Notifier, str]] = []
    if not cfg.alerts.escalation.enabled:
        return out
    for contact in cfg.alerts.escalation.contacts:
        channel = Channel.SMS if is_phone(contact) else Channel.EMAIL if is_email(contact) \
            else None
        n = by_channel.get(channel) if channel is not None else None
        if n is not None and contact not in n.recipients:
            out.append((n, contact))
    return out


def send_test_alerts(
    config: ConfigOpt,
    notify_webhook: WebhookOpt = None,
) -> None:
    """Send a test through every configured channel; exit 1 if any failed."""
    setup_logging(False)
    cfg = _load(config)
    clock = SystemClock()
    notifiers = build_notifiers(cfg, notify_webhook or ())
    message = channel_test_message(cfg.site.id, clock.now_ns())
    targets = [(n, to) for n in notifiers for to in n.recipients]
    targets += _escalation_targets(cfg, notifiers)
    results: list[Delivery] = []
    for notifier, to in targets:
        results.append(notifier.send(message, to))
    local = _test_local(cfg, clock)
    try:
        token = worker_influx_token(cfg)
    except ValueError as exc:
        fail(str(exc))
    audit, store = build_audit(cfg, clock, token)
    for d in results:
        audit.record(AuditRecord(clock.now_ns(), AuditAction.TEST,
                                 Outcome.OK if d.ok else Outcome.FAILED, d.detail,
                                 channel=d.channel.value, target=d.target))
    if store is not None:
        store.flush(10.0)
        store.close()

    table = Table(title=f"test-alerts for site {cfg.site.id}")
    for col in ("channel", "target", "result", "detail"):
        table.add_column(col, overflow="fold")
    for d in results:
        table.add_row(d.channel.value, d.target,
                      "[green]ok[/]" if d.ok else "[bold red]FAILED[/]", d.detail)
    table.add_row(Channel.LOCAL.value, "buzzer, LEDs", local[0], local[1])
    console = Console()
    console.print(table)
    failed = [d for d in results if not d.ok]
    if not results:
        console.print("[bold red]no notification channel is configured[/] (alerts.email, "
                      "alerts.sms, --notify-webhook)")
        raise typer.Exit(1)
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(results)} deliveries failed[/]")
        raise typer.Exit(1)
    console.print(f"[bold green]all {len(results)} deliveries worked[/]")


def _test_local(cfg: GridGuardConfig, clock: SystemClock) -> tuple[str, str]:
    """Beep and blink for 0.3 s on the Pi; report 'skipped' elsewhere."""
    try:
        outputs, kind = build_outputs(cfg, clock, simulate=False)
    except RuntimeError as exc:
        return "[bold red]FAILED[/]", str(exc)
    if isinstance(outputs, SimulatedOutputs):
        return "skipped", f"no GPIO ({kind})"
    try:
        for name in ALARM_OUTPUTS:
            outputs.set(name, True)
        time.sleep(0.3)
        for name in ALARM_OUTPUTS:
            outputs.set(name, False)
    except Exception as exc:
        return "[bold red]FAILED[/]", f"{type(exc).__name__}: {exc}"
    finally:
        outputs.close()
    return "[green]ok[/]", kind


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    alerts = typer.Typer(help="Alerts of the rule worker: list and acknowledge.",
                         no_args_is_help=True)
    alerts.command("list")(alerts_list)
    alerts.command("ack")(alerts_ack)
    app.add_typer(alerts, name="alerts")
    app.command("test-alerts")(send_test_alerts)
