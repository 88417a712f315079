"""``carecircle alerts …``: rule configuration, one-shot checks and alert listing for operators.

The API exposes the same service functions to staff; this is for administrators,
demos and debugging on the command line.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.clock import utcnow
from carecircle.common.errors import ConfigError
from carecircle.platform.alerts import coverage, service
from carecircle.platform.alerts.config import Scope
from carecircle.platform.alerts.coverage_store import MonitoringReport, monitoring_report
from carecircle.platform.alerts.jobs import run_absence_checks
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect

SCOPES = click.Choice(["global", "site", "resident"])


def _settings(cli: CliContext, database_url: str | None) -> PlatformSettings:
    return cli.settings(PlatformSettings, database_url=database_url)


def _scope_id(scope: str, scope_id: str | None) -> str | None:
    if scope == "global":
        if scope_id:
            raise click.BadParameter("a global rule takes no --id")
        return None
    if not scope_id:
        raise click.BadParameter(f"a {scope} rule needs --id")
    return scope_id


def _scope(scope: str) -> Scope:
    return cast(Scope, scope)


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


db_option = click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")


@click.group("alerts")
def alerts_cli() -> None:
    """Alert rules, absence checks and alerts."""


@alerts_cli.command("rules")
@click.option("--scope", type=SCOPES, default="global", show_default=True)
@click.option("--id", "scope_id", help="site or resident id")
@db_option
@pass_cli
def rules_cmd(cli: CliContext, scope: str, scope_id: str | None, database_url: str | None) -> None:
    """Show the effective rules at a scope, and where each comes from."""
    s = _settings(cli, database_url)
    with connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True) as conn:
        _echo(service.effective_rules(conn, _scope(scope), _scope_id(scope, scope_id)))


@alerts_cli.command("rule-put")
@click.argument("kind")
@click.option("--scope", type=SCOPES, required=True)
@click.option("--id", "scope_id", help="site or resident id")
@click.option("--params", default="{}", show_default=True, help="JSON object of parameters")
@click.option("--disabled", is_flag=True, help="store the rule switched off")
@click.option("--actor", default="cli", show_default=True, help="who makes the change (audit)")
@db_option
@pass_cli
def rule_put_cmd(
    cli: CliContext,
    kind: str,
    scope: str,
    scope_id: str | None,
    params: str,
    disabled: bool,
    actor: str,
    database_url: str | None,
) -> None:
    """Validate and store a rule; a rule that cannot fire or contradicts itself is refused."""
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as err:
        raise click.BadParameter(f"--params is not JSON: {err}") from err
    if not isinstance(parsed, dict):
        raise click.BadParameter("--params must be a JSON object")
    s = _settings(cli, database_url)
    with connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True) as conn:
        _echo(
            service.put_rule(
                conn,
                _scope(scope),
                _scope_id(scope, scope_id),
                kind,
                parsed,
                enabled=not disabled,
                actor=actor,
                at=utcnow(),
            )
        )


@alerts_cli.command("rule-delete")
@click.argument("kind")
@click.option("--scope", type=SCOPES, required=True)
@click.option("--id", "scope_id", help="site or resident id")
@click.option("--actor", default="cli", show_default=True)
@db_option
@pass_cli
def rule_delete_cmd(
    cli: CliContext,
    kind: str,
    scope: str,
    scope_id: str | None,
    actor: str,
    database_url: str | None,
) -> None:
    """Remove a stored rule (the next less specific one applies again)."""
    s = _settings(cli, database_url)
    with connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True) as conn:
        service.delete_rule(
            conn,
            _scope(scope),
            _scope_id(scope, scope_id),
            kind,
            actor=actor,
            at=utcnow(),
        )
    click.echo(f"deleted the {scope} {kind} rule")


def _at_or_now(at_time: str | None) -> datetime:
    """``--at`` (RFC 3339 with an offset), or now."""
    if not at_time:
        return utcnow()
    try:
        at = datetime.fromisoformat(at_time)
    except ValueError as err:
        raise click.BadParameter(f"{at_time!r} is not an RFC 3339 time") from err
    if at.tzinfo is None:
        raise ConfigError("--at needs a UTC offset")
    return at


@alerts_cli.command("check")
@click.option("--at", "at_time", help="judge at this time (RFC 3339); default now")
@click.option("--site", "sites", multiple=True, help="only these sites (repeatable)")
@db_option
@pass_cli
def check_cmd(
    cli: CliContext, at_time: str | None, sites: tuple[str, ...], database_url: str | None
) -> None:
    """Run the absence, device and gateway checks once (the scheduler runs them every minute)."""
    s = _settings(cli, database_url)
    now = _at_or_now(at_time)
    with connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True) as conn:
        report = run_absence_checks(conn, now, ZoneInfo(s.timezone), site_ids=list(sites) or None)
    _echo(report.__dict__)


@alerts_cli.command("list")
@click.option("--site", "sites", multiple=True, help="only these sites (repeatable)")
@click.option("--resident", help="only this resident")
@click.option("--active", is_flag=True, help="only open/acknowledged/dispatched/on scene")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@db_option
@pass_cli
def list_cmd(
    cli: CliContext,
    sites: tuple[str, ...],
    resident: str | None,
    active: bool,
    limit: int,
    database_url: str | None,
) -> None:
    """List alerts, newest first."""
    s = _settings(cli, database_url)
    with connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True) as conn:
        rows = service.list_alerts(
            conn,
            site_ids=list(sites) or None,
            resident_id=resident,
            active_only=active,
            limit=limit,
        )
    for r in rows:
        click.echo(
            f"{r['id']:>7}  {r['opened_at']:%Y-%m-%d %H:%M:%S}  {r['status']:<12} "
            f"{r['severity']:<8} {r['kind']:<22} {r['subject']}  {r['message']}"
        )


#: Column heads of the coverage table, in the order of ``coverage.KINDS``.
_COVERAGE_HEADS = {
    "sos": "sos",
    "fall": "fall",
    "smoke": "smoke",
    "gas": "gas",
    "carbon_monoxide": "co",
    "water_leak": "leak",
    "tachycardia": "tachy",
    "bradycardia": "brady",
    "low_spo2": "spo2",
    "fever": "fever",
    "cold_room": "cold",
    "heat": "heat",
    "prolonged_inactivity": "inact",
    "missed_wakeup": "wake",
    "night_wandering": "night",
    "bed_exit_not_returned": "bedx",
}
_MARKS = {"watched": "+", "partial": "~", "not_watched": "X", "off": "."}


def coverage_lines(report: MonitoringReport, *, gaps: bool = True) -> list[str]:
    """The monitoring-coverage report as text: a table (one row per resident, one
    column per detection), the gaps with why and fix, and the summary per township and
    site (residents not watched / partly watched per kind)."""
    heads = [_COVERAGE_HEADS[k.value] for k in coverage.KINDS]
    width = max([len(r.resident_id) for r in report.residents] + [8])
    swidth = max([len(r.site_id) for r in report.residents] + [4])
    out = [
        f"monitoring coverage at {report.at.isoformat()}: {len(report.residents)} residents",
        "  + watched   ~ partial   X not watched   . rule off",
        f"{'resident':<{width}}  {'site':<{swidth}}  " + " ".join(f"{h:>5}" for h in heads),
    ]
    for r in report.residents:
        marks = " ".join(f"{_MARKS[d.status.value]:>5}" for d in r.detections)
        out.append(f"{r.resident_id:<{width}}  {r.site_id:<{swidth}}  {marks}")
    if gaps:
        out.append("gaps:")
        for r in report.residents:
            found = r.gaps()
            if found:
                out.append(f"  {r.resident_id} ({r.site_id}, housemates {r.housemates}):")
            for d in found:
                fix = f" -> fix: {d.fix}" if d.fix else ""
                mark = _MARKS[d.status.value]
                out.append(f"    {mark} {_COVERAGE_HEADS[d.kind.value]:<5} {d.why}{fix}")
    out.append("summary (residents not watched X / partly watched ~, per kind):")
    for g in report.summary:
        kinds = [
            f"{_COVERAGE_HEADS[k]} {g.not_watched.get(k, 0)}X/{g.partial.get(k, 0)}~"
            for k in _COVERAGE_HEADS
            if g.not_watched.get(k) or g.partial.get(k)
        ]
        out.append(
            f"  {g.level:<8} {g.id:<{swidth}} {g.residents:>4} residents  " + " ".join(kinds)
        )
    return out


@alerts_cli.command("coverage")
@click.option("--site", "sites", multiple=True, help="only these sites (repeatable)")
@click.option("--at", "at_time", help="judge device health at this time (RFC 3339); default now")
@click.option("--no-gaps", is_flag=True, help="only the table and the summary")
@click.option("--json", "as_json", is_flag=True, help="the full report as JSON")
@db_option
@pass_cli
def coverage_cmd(
    cli: CliContext,
    sites: tuple[str, ...],
    at_time: str | None,
    no_gaps: bool,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Which detections each resident's devices can support, and the gaps to fix."""
    s = _settings(cli, database_url)
    now = _at_or_now(at_time)
    with connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True) as conn:
        if sites:
            known = {
                r[0]
                for r in conn.execute(
                    "SELECT id FROM sites WHERE id = ANY(%s)", (list(sites),)
                ).fetchall()
            }
            missing = sorted(set(sites) - known)
            if missing:
                raise click.BadParameter(f"no such site: {', '.join(missing)}", param_hint="--site")
        report = monitoring_report(conn, now, site_ids=list(sites) or None)
    if as_json:
        _echo(report.as_dict())
        return
    for line in coverage_lines(report, gaps=not no_gaps):
        click.echo(line)
