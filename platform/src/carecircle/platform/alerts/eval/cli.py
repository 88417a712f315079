"""``carecircle eval --truth truth.jsonl --since … --until …``: score alerts, print, write JSON.

Other components add sections through the ``carecircle.eval_sections`` entry-point
group: each entry point is a callable ``(conn, since, until, incidents) -> dict``
whose result is added to the JSON under the entry point's name; a ``"table"`` string
in it is printed after the alerts table.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.errors import ContractError
from carecircle.platform.alerts.eval.matcher import (
    AlertRecord,
    Incident,
    format_table,
    score,
)
from carecircle.platform.alerts.repository import Conn
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect

log = logging.getLogger(__name__)
SECTIONS_GROUP = "carecircle.eval_sections"


def load_truth(path: Path) -> list[Incident]:
    """Read the ground-truth JSON Lines file; a bad line is an error naming the line."""
    out: list[Incident] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ContractError(f"cannot read ground truth {path}: {err.strerror}") from err
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Incident.model_validate_json(line))
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ContractError(f"{path}:{n}: {loc}: {first['msg']}") from err
    return out


def load_alerts(conn: Conn, since: datetime, until: datetime) -> list[AlertRecord]:
    rows = conn.execute(
        "SELECT id, kind, site_id, opened_at, last_seen_at, resident_id, device_id, subject "
        "FROM alerts WHERE opened_at >= %s AND opened_at < %s",
        (since, until),
    ).fetchall()
    return [AlertRecord(*r) for r in rows]


def served_sites(conn: Conn) -> set[str]:
    """Sites with a gateway in this database (a replay shard provisions only its own)."""
    return {str(r[0]) for r in conn.execute("SELECT DISTINCT site_id FROM gateways")}


def count_residents(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM residents").fetchone()
    return int(row[0]) if row else 0


def _when(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time") from err
    if dt.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a UTC offset, e.g. 2026-11-29T00:00:00+08:00")
    return dt


@click.command("eval")
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="ground-truth JSON Lines written by the simulator",
)
@click.option("--since", required=True, help="start of the scored range (RFC 3339)")
@click.option("--until", required=True, help="end of the scored range (RFC 3339)")
@click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")
@click.option(
    "--also-database-url",
    "also_urls",
    multiple=True,
    help="score the alerts and residents of these databases too (replay shards)",
)
@click.option(
    "--only-served-sites",
    is_flag=True,
    help="score only incidents at sites with a gateway in these databases (replay shards)",
)
@click.option(
    "--residents",
    type=click.IntRange(min=1),
    help="residents for false alerts per resident-day (default: count in the DB)",
)
@click.option(
    "--grace-minutes",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="an alert opened this long after an incident ends still detects it",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("eval.json"),
    show_default=True,
    help="where to write the JSON",
)
@pass_cli
def eval_cmd(
    cli: CliContext,
    truth_path: Path,
    since: str,
    until: str,
    database_url: str | None,
    also_urls: tuple[str, ...],
    only_served_sites: bool,
    residents: int | None,
    grace_minutes: int,
    out_path: Path,
) -> None:
    """Score alerts against the simulator's ground truth: recall and delay per kind,
    false alerts per resident-day."""
    t0, t1 = _when(since), _when(until)
    if t1 <= t0:
        raise click.BadParameter("--until must be after --since")
    settings = cli.settings(PlatformSettings, database_url=database_url)
    incidents = load_truth(truth_path)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        alerts = load_alerts(conn, t0, t1)
        n_res = count_residents(conn)
        served = served_sites(conn)
        for url in also_urls:
            with connect(url, timeout_s=settings.db_connect_timeout_s, autocommit=True) as other:
                alerts += load_alerts(other, t0, t1)
                n_res += count_residents(other)
                served |= served_sites(other)
        n_res = residents or n_res
        if only_served_sites:
            incidents = [i for i in incidents if i.site_id in served]
        result = score(
            incidents,
            alerts,
            since=t0,
            until=t1,
            residents=n_res,
            grace=timedelta(minutes=grace_minutes),
        )
        doc: dict[str, Any] = {"alerts": result.as_dict()}
        for ep in entry_points(group=SECTIONS_GROUP):
            section = ep.load()
            doc[ep.name] = section(conn, t0, t1, incidents)
    click.echo(format_table(result))
    for name, section_doc in doc.items():
        if name != "alerts" and isinstance(section_doc, dict) and "table" in section_doc:
            click.echo(f"\n[{name}]\n{section_doc['table']}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    click.echo(f"wrote {out_path}")
