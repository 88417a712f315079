"""``carecircle replay --stream DIR``: a generated week through the pipeline in virtual time.

The gateway (a separate distribution) is imported only when this command runs.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.platform.settings import PlatformSettings

log = logging.getLogger(__name__)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time") from err
    if dt.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a UTC offset")
    return dt


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not I/N, e.g. 0/4") from err
    if not 0 <= i < n:
        raise click.BadParameter(f"{value!r}: I must be in 0..N-1")
    return i, n


@click.command("replay")
@click.option(
    "--stream",
    "stream_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="a `carecircle sim generate --out` directory",
)
@click.option("--database-url", help="a fresh PostgreSQL database [CARECIRCLE_DATABASE_URL]")
@click.option(
    "--population",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the population the stream was generated from [DIR/population.json]",
)
@click.option(
    "--base-template",
    default="sim/{gw}",
    show_default=True,
    help="prefix of the native bases given to `sim generate` ({gw}/<family>)",
)
@click.option(
    "--batch-s",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="routine gateway traffic reaches ingest every this many simulated seconds",
)
@click.option("--heartbeat-s", type=click.FloatRange(min=1), help="gateway heartbeats [30]")
@click.option("--until", help="run the jobs up to here (default: the stream's end)")
@click.option("--skip-job", "skip_jobs", multiple=True, help="registered but not run (job id)")
@click.option(
    "--shard",
    help="I/N: replay households I, I+N, … only (run N processes into N databases)",
)
@click.option(
    "--resolve-after-min",
    type=click.FloatRange(min=1),
    help="a simulated caregiver resolves every human-facing alert this long after it "
    "opened (default: nobody does)",
)
@click.option(
    "--score/--no-score",
    default=True,
    show_default=True,
    help="print the `carecircle eval` table for the stream's span afterwards",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the replay report (and the eval JSON) here",
)
@pass_cli
def replay_cmd(
    cli: CliContext,
    /,
    stream_dir: Path,
    database_url: str | None,
    population: Path | None,
    base_template: str,
    batch_s: float,
    heartbeat_s: float | None,
    until: str | None,
    skip_jobs: tuple[str, ...],
    shard: str | None,
    resolve_after_min: float | None,
    score: bool,
    out_path: Path | None,
) -> None:
    """Replay a generated simulator stream through gateway adapters, ingest, the alert
    engine and every scheduler job, in simulated time, into a fresh database."""
    from carecircle.platform.replay.harness import TRUTH_FILE, ReplayOptions, replay

    settings = cli.settings(PlatformSettings, database_url=database_url)
    options = ReplayOptions(
        bases={
            f: f"{base_template}/{f}"
            for f in ("zigbee2mqtt", "careband", "bedsensor", "homeassistant")
        },
        population=population,
        batch_s=batch_s,
        heartbeat_s=heartbeat_s,
        until=_when(until),
        skip_jobs=frozenset(skip_jobs),
        shard=_shard(shard),
        resolve_after_s=resolve_after_min * 60 if resolve_after_min is not None else None,
    )
    report = replay(stream_dir, settings, options)
    click.echo(
        f"replayed {report.messages} messages ({report.unrouted} unrouted) through "
        f"{report.gateways} gateways: {report.items_stored} items stored, "
        f"{report.dead_letters} dead letters, {report.liveness_offline} liveness offline, "
        f"{report.uplink_cuts} uplink cuts, in {report.wall_s:.0f} s"
    )
    for job, stats in sorted(report.jobs.items()):
        click.echo(f"  job {job:32s} runs={stats['runs']} failures={stats['failures']}")
    click.echo("alerts by kind: " + ", ".join(f"{k} {n}" for k, n in report.alerts_by_kind.items()))
    doc: dict[str, object] = {"replay": report.as_dict()}
    if score:
        from carecircle.platform.alerts.eval.cli import count_residents, load_alerts, load_truth
        from carecircle.platform.alerts.eval.matcher import format_table
        from carecircle.platform.alerts.eval.matcher import score as score_alerts
        from carecircle.platform.store import connect

        incidents = load_truth(stream_dir / TRUTH_FILE)
        with connect(
            settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
        ) as conn:
            alerts = load_alerts(conn, report.start, report.end)
            result = score_alerts(
                incidents,
                alerts,
                since=report.start,
                until=report.end,
                residents=count_residents(conn),
                grace=timedelta(minutes=30),
            )
        click.echo(format_table(result))
        doc["alerts"] = result.as_dict()
        click.echo(
            f"(same as: carecircle eval --truth {stream_dir / TRUTH_FILE} "
            f"--since {report.start.isoformat()} --until {report.end.isoformat()})"
        )
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
        click.echo(f"wrote {out_path}")
