"""``carecircle ml …`` commands: train, score, list, promote, roll back, evaluate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.clock import utcnow
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _options(func: Any) -> Any:
    func = click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")(func)
    func = click.option(
        "--registry-dir",
        "ml_registry_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="model registry directory [CARECIRCLE_ML_REGISTRY_DIR]",
    )(func)
    return func


def _settings(cli: CliContext, **flags: Any) -> PlatformSettings:
    return cli.settings(PlatformSettings, **flags)


def _conn(settings: PlatformSettings) -> Any:
    return connect(settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True)


@click.group("ml")
def ml() -> None:
    """Per-resident anomaly models: train, score, promote, roll back, evaluate."""


@ml.command("train")
@_options
@click.option("--since", help="start of the data window (ISO 8601; default until − window)")
@click.option("--until", help="end of the data window (ISO 8601; default now)")
@click.option("--residents", help="comma-separated resident ids (default: all with rollups)")
@click.option("--incremental", is_flag=True, help="skip residents whose model covers the window")
@pass_cli
def train_cmd(
    cli: CliContext,
    database_url: str | None,
    ml_registry_dir: Path | None,
    since: str | None,
    until: str | None,
    residents: str | None,
    incremental: bool,
) -> None:
    """Train candidates from rollup_1h and promote those not worse on the held-out days."""
    from carecircle.ml.training.jobs import train
    from carecircle.ml.training.schedule import registry_of, train_config

    settings = _settings(cli, database_url=database_url, ml_registry_dir=ml_registry_dir)
    who = [r for r in residents.split(",") if r] if residents else None
    with _conn(settings) as conn:
        report = train(
            conn,
            registry_of(settings),
            train_config(settings),
            until=_when(until) or utcnow(),
            since=_when(since),
            residents=who,
            incremental=incremental,
            actor="cli:ml-train",
        )
    click.echo(json.dumps(report.summary()))


@ml.command("score")
@_options
@click.option("--at", help="score the last complete hour before this time (default now)")
@click.option("--residents", help="comma-separated resident ids (default: all with models)")
@pass_cli
def score_cmd(
    cli: CliContext,
    database_url: str | None,
    ml_registry_dir: Path | None,
    at: str | None,
    residents: str | None,
) -> None:
    """Score one hour with the active models and raise alerts for what they find."""
    from carecircle.ml.scoring.live import score_hour
    from carecircle.ml.training.core import zone
    from carecircle.ml.training.schedule import registry_of

    settings = _settings(cli, database_url=database_url, ml_registry_dir=ml_registry_dir)
    who = [r for r in residents.split(",") if r] if residents else None
    with _conn(settings) as conn:
        report = score_hour(
            conn, registry_of(settings), _when(at) or utcnow(), zone(settings.timezone), who
        )
    click.echo(json.dumps(report.summary()))
    for f in report.findings:
        click.echo(f"  {f.resident_id} {f.kind} ({f.severity}): {f.message}")


@ml.command("models")
@_options
@click.option("--owner", help="a resident id, or 'population'")
@pass_cli
def models_cmd(
    cli: CliContext, database_url: str | None, ml_registry_dir: Path | None, owner: str | None
) -> None:
    """List registered model versions."""
    from carecircle.ml.training.schedule import registry_of

    settings = _settings(cli, database_url=database_url, ml_registry_dir=ml_registry_dir)
    with _conn(settings) as conn:
        records = registry_of(settings).list(conn, owner)
    for r in records:
        loss = r.metrics.get("holdout_nll", r.metrics.get("holdout_abs_z"))
        click.echo(
            f"{r.id:>6} {r.owner:<24} {r.model:<8} v{r.version:<4} {r.status:<9} "
            f"data {r.data_since:%Y-%m-%d}..{r.data_until:%Y-%m-%d} holdout {loss} "
            f"sha256 {r.sha256[:12]}"
        )


@ml.command("promote")
@_options
@click.argument("model_id", type=int)
@pass_cli
def promote_cmd(
    cli: CliContext, database_url: str | None, ml_registry_dir: Path | None, model_id: int
) -> None:
    """Make a model version active (retiring the current one) in one transaction."""
    from carecircle.ml.training.schedule import registry_of

    settings = _settings(cli, database_url=database_url, ml_registry_dir=ml_registry_dir)
    with _conn(settings) as conn:
        rec = registry_of(settings).promote(conn, model_id, at=utcnow(), actor="cli:ml-promote")
    click.echo(f"{rec.owner} {rec.model} v{rec.version} is active")


@ml.command("rollback")
@_options
@click.argument("owner")
@click.argument("model", type=click.Choice(["routine", "vitals", "priors"]))
@pass_cli
def rollback_cmd(
    cli: CliContext,
    database_url: str | None,
    ml_registry_dir: Path | None,
    owner: str,
    model: str,
) -> None:
    """Re-activate the version that was active before the current one."""
    from carecircle.ml.training.schedule import registry_of

    settings = _settings(cli, database_url=database_url, ml_registry_dir=ml_registry_dir)
    with _conn(settings) as conn:
        rec = registry_of(settings).rollback(
            conn, owner, model, at=utcnow(), actor="cli:ml-rollback"
        )
    click.echo(f"{rec.owner} {rec.model} rolled back to v{rec.version}")


@ml.command("eval")
@click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")
@click.option(
    "--truth",
    "truth_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="ground-truth JSON Lines written by the simulator",
)
@click.option("--since", required=True, help="start of the evaluated period (ISO 8601)")
@click.option("--until", required=True, help="end of the evaluated period (ISO 8601)")
@pass_cli
def eval_cmd(
    cli: CliContext, database_url: str | None, truth_file: Path, since: str, until: str
) -> None:
    """Rules vs rules + models on the alerts in the store, against labelled truth."""
    from carecircle.ml.evaluation.records import read_truth
    from carecircle.ml.evaluation.section import store_table

    settings = _settings(cli, database_url=database_url)
    start, end = _when(since), _when(until)
    assert start is not None and end is not None
    truth = read_truth(truth_file)
    residents = {t.resident_id for t in truth if t.resident_id}
    with _conn(settings) as conn:
        count = conn.execute("SELECT count(*) FROM residents").fetchone()
        n = max(len(residents), int(count[0]) if count else 0)
        table, withheld = store_table(conn, start, end, truth, n)
    click.echo(table.render())
    click.echo(f"rule findings withheld by a model gate: {withheld}")


@ml.command("eval-synthetic")
@click.option("--residents", default=40, show_default=True, type=int)
@click.option("--population-seed", default=7, show_default=True, type=int)
@click.option("--train-seed", default=11, show_default=True, type=int)
@click.option(
    "--eval-seed",
    default=9001,
    show_default=True,
    type=int,
    help="seed of the held-out month (never used for training)",
)
@click.option("--timezone", "tz_name", default="Asia/Shanghai", show_default=True)
def eval_synthetic_cmd(
    residents: int, population_seed: int, train_seed: int, eval_seed: int, tz_name: str
) -> None:
    """Train on a synthetic month, score a new month, print rules vs rules + models."""
    from carecircle.ml.evaluation.offline import evaluate_synthetic
    from carecircle.ml.training.core import zone

    tz = zone(tz_name)
    result = evaluate_synthetic(
        residents=residents,
        train_days=28,
        eval_days=28,
        population_seed=population_seed,
        train_seed=train_seed,
        eval_seed=eval_seed,
        start=datetime(2026, 10, 5, tzinfo=tz),
        tz=tz,
    )
    click.echo(result.table.render())
