"""``carecircle platform dispatcher``, ``carecircle coverage``, ``carecircle timebank``
and ``carecircle dispatch-eval``."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime
from types import FrameType
from typing import Any

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.clock import SystemClock, utcnow
from carecircle.common.security import refuse_default_credentials
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect

log = logging.getLogger(__name__)


def _settings(cli: CliContext, **flags: Any) -> PlatformSettings:
    return cli.settings(PlatformSettings, **flags)


def _database_option(func: Any) -> Any:
    return click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")(func)


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        at = datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint="--at") from err
    if at.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-12-01T20:00+08:00", param_hint="--at")
    return at


@click.command("dispatcher")
@_database_option
@click.option("--mqtt-url", help="MQTT broker URL [CARECIRCLE_MQTT_URL]")
@pass_cli
def dispatcher_cmd(cli: CliContext, database_url: str | None, mqtt_url: str | None) -> None:
    """Dispatch responders to new alerts: offers, timeouts, escalation, notifications."""
    from carecircle.platform.dispatch.dispatcher import Dispatcher
    from carecircle.platform.dispatch.setup import build_notifiers, build_service, retry_of
    from carecircle.platform.privacy.contacts import PhoneBook, reading_cipher

    settings = _settings(cli, database_url=database_url, mqtt_url=mqtt_url)
    refuse_default_credentials(settings, settings.demo_mode)  # security: docs/privacy.md
    service = build_service(settings)
    dispatcher = Dispatcher(
        str(settings.database_url),
        service,
        SystemClock(),
        build_notifiers(settings),
        retry=retry_of(settings),
        connect_timeout_s=settings.db_connect_timeout_s,
        phone_book=PhoneBook(reading_cipher(settings)),  # sealed numbers opened at delivery
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("dispatcher starting (k=%s)", service.policy.k)
    try:
        dispatcher.run(stop, poll_s=settings.dispatch_poll_s)
    finally:
        dispatcher.close()
    log.info("dispatcher stopped")


@click.command("coverage")
@_database_option
@click.option("--at", "at_text", help="moment to evaluate (ISO 8601 with zone); default now")
@click.option("--by-hour", is_flag=True, help="also the share covered for each hour of that day")
@click.option("--json", "as_json", is_flag=True, help="full report as JSON, per resident")
@pass_cli
def coverage_cmd(
    cli: CliContext, database_url: str | None, at_text: str | None, by_hour: bool, as_json: bool
) -> None:
    """How much of the population a responder can reach within the 15-minute circle."""
    from carecircle.platform.dispatch.coverage import coverage_report
    from carecircle.platform.dispatch.setup import build_service

    settings = _settings(cli, database_url=database_url)
    service = build_service(settings)
    at = _parse_at(at_text)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        report = coverage_report(
            conn, service.estimator, service.tz, at, policy=service.policy, by_hour=by_hour
        )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
        return
    minutes = round(report.circle_s / 60)
    click.echo(
        f"{len(report.residents)} residents at {at.isoformat()}: "
        f"{report.share:.1%} covered within {minutes} min"
    )
    for place in report.places:
        line = f"  {place.level:<8} {place.place_id:<24} {place.covered:>5}/{place.residents:<5} "
        line += f"{place.share:.1%}"
        if by_hour:
            line += "  by hour: " + " ".join(f"{round(s * 100):>3}" for s in place.share_by_hour)
        click.echo(line)
    if report.uncovered_sites:
        click.echo(f"uncovered sites now ({len(report.uncovered_sites)}):")
        for site in report.uncovered_sites:
            eta = (
                "nobody available"
                if site["eta_s"] is None
                else f"best {site['eta_s'] / 60:.0f} min"
            )
            click.echo(f"  {site['site_id']} (village {site['village_id']}): {eta}")


@click.command("timebank")
@_database_option
@click.option("--responder", "responder_id", help="one volunteer's account (default: all balances)")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def timebank_cmd(
    cli: CliContext, database_url: str | None, responder_id: str | None, as_json: bool
) -> None:
    """Time bank (时间银行): service minutes credited to volunteers."""
    from carecircle.platform.dispatch import timebank

    settings = _settings(cli, database_url=database_url)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        if responder_id:
            account = timebank.account(conn, responder_id)
            if as_json:
                click.echo(json.dumps(account.as_dict(), indent=2))
                return
            click.echo(
                f"{responder_id}: {account.total_minutes} min "
                f"({account.total_minutes / 60:.1f} h) over {account.tasks} tasks"
            )
            for e in account.entries:
                click.echo(f"  {e.credited_at:%Y-%m-%d %H:%M}  {e.minutes:>4} min  {e.note}")
            return
        rows = timebank.balances(conn)
    if as_json:
        click.echo(json.dumps([{"responder_id": r, "minutes": m, "tasks": n} for r, m, n in rows]))
        return
    if not rows:
        click.echo("no time credited yet")
    for rid, minutes, tasks in rows:
        click.echo(f"{rid:<24} {minutes:>6} min  {tasks:>4} tasks")


@click.command("dispatch-eval")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--alerts", type=click.IntRange(1, 100_000), default=150, show_default=True)
@click.option("--per-alert", is_flag=True, help="list time to accept / arrive for every alert")
@click.option("--json", "as_json", is_flag=True)
@click.option("--check", is_flag=True, help="exit 1 unless dispatcher ≥ 0.9 × oracle")
@pass_cli
def dispatch_eval_cmd(
    cli: CliContext, seed: int, alerts: int, per_alert: bool, as_json: bool, check: bool
) -> None:
    """Simulate a week of alerts with seeded responders; compare with an oracle."""
    from carecircle.platform.dispatch.evaluation import simulate_week
    from carecircle.platform.dispatch.setup import build_service

    settings = _settings(cli)
    service = build_service(settings)
    result = simulate_week(
        seed, policy=service.policy, estimator=service.estimator, tz=service.tz, alerts=alerts
    )
    if as_json:
        click.echo(json.dumps(result.as_dict(per_alert=per_alert), indent=2))
    else:
        if per_alert:
            click.echo("alert  kind                   accept_s  arrive_s  ≤15min  responder")
            for r in result.records:
                acc, arr = r.time_to_accept_s, r.time_to_arrive_s
                click.echo(
                    f"{r.alert_id:>5}  {r.kind:<22} {'-' if acc is None else f'{acc:.0f}':>8}  "
                    f"{'-' if arr is None else f'{arr:.0f}':>8}  "
                    f"{'yes' if arr is not None and arr <= 900 else 'no':>6}  "
                    f"{r.responder_id or '-'}"
                )
        for name, k in (("dispatcher", result.dispatcher), ("oracle", result.oracle)):
            click.echo(
                f"{name:<10} on scene ≤15 min {k.share_within_circle:.1%} "
                f"({k.within_circle}/{k.alerts}); accept median {k.median_time_to_accept_s} s "
                f"p90 {k.p90_time_to_accept_s} s; arrive median {k.median_time_to_arrive_s} s "
                f"p90 {k.p90_time_to_arrive_s} s; escalated {k.escalated}"
            )
        click.echo(f"dispatcher / oracle = {result.ratio:.3f} (goal ≥ 0.9)")
    if check and result.ratio < 0.9:
        raise SystemExit(1)
