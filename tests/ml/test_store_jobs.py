"""Training from the store, the registry, promotion/rollback and live scoring (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from carecircle.common.cli import cli
from carecircle.common.errors import Conflict, StoreError
from carecircle.ml.features.hourly import HOUR, HourlyMatrix, band_heard, hourly_features
from carecircle.ml.features.store import load_room_kinds, read_hourly, read_rollups
from carecircle.ml.models.routine import RoutineModel
from carecircle.ml.registry.store import ModelRegistry
from carecircle.ml.scoring.live import score_hour
from carecircle.ml.synthetic import generate, population
from carecircle.ml.training.core import TrainConfig, split
from carecircle.ml.training.jobs import promote_if_not_worse, train
from carecircle.ml.training.schedule import SCORE_JOB, TRAIN_JOB, register_jobs
from carecircle.platform.alerts.lifecycle import Status
from carecircle.platform.alerts.repository import transition
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

from .conftest import Conn, load_rollups, provision

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 10, 5, tzinfo=TZ)
DAYS = 21
UNTIL = START + timedelta(days=DAYS)
CFG = TrainConfig(seed=42, window_days=DAYS, holdout_days=2, tz=TZ, forest_trees=20)


@pytest.fixture(scope="module")
def world(ml_database_url: str) -> dict[str, object]:
    import psycopg

    people = population(8, 55)
    for i, p in enumerate(people):  # make them steady risers, so a lie-in is unusual
        people[i] = type(p)(**{**p.__dict__, "wake": 6.0, "napper": False, "level": 10.0})
    data = generate(people, START, DAYS, 17, TZ)
    with psycopg.connect(ml_database_url, autocommit=True) as conn:
        provision(conn, data)
        load_rollups(conn, data)
    return {"people": people, "data": data}


@pytest.fixture
def registry(mldb: Conn, tmp_path: Path) -> ModelRegistry:
    """An empty registry: its own directory, and no rows left by other tests."""
    mldb.execute("DELETE FROM ml_models")
    mldb.execute("DELETE FROM alerts WHERE source = 'model'")
    return ModelRegistry(tmp_path / "registry")


def test_training_registers_promotes_and_is_reproducible(
    mldb: Conn, world: dict[str, object], registry: ModelRegistry
) -> None:
    report = train(mldb, registry, CFG, until=UNTIL)
    assert report.trained == 8 and report.priors.startswith("promoted")
    assert len(report.promoted) == 16 and not report.rejected
    active = registry.active(mldb, "routine")
    assert len(active) == 8
    rec = next(iter(active.values()))
    folder = registry.root / Path(rec.path).parent
    assert (folder / "model.joblib").is_file() and (folder / "meta.json").is_file()
    assert rec.metrics["holdout_nll"] > 0 and rec.detector == f"ml:routine@{rec.version}"
    assert rec.data_until == UNTIL - timedelta(days=2)
    model = registry.load(rec)
    assert isinstance(model, RoutineModel) and model.history_days == DAYS - 2
    # same data, same seed: new versions with identical learnt parameters (and bytes)
    again = train(mldb, registry, CFG, until=UNTIL)
    assert len(again.promoted) == 16  # equal is "not worse"
    for name in ("routine", "vitals"):
        versions = [r for r in registry.list(mldb, rec.owner) if r.model == name]
        assert [r.version for r in versions][:2] == [2, 1]
        assert versions[0].params_sha256 == versions[1].params_sha256
        assert versions[0].sha256 == versions[1].sha256
        assert [r.status for r in versions][:2] == ["active", "retired"]
    # incremental: nothing new in the window, nothing retrained
    nightly = train(mldb, registry, CFG, until=UNTIL, incremental=True)
    assert nightly.trained == 0 and len(nightly.skipped) == 8
    # rollback re-activates version 1, atomically and audited
    back = registry.rollback(mldb, rec.owner, "routine", at=UNTIL, actor="test")
    assert back.version == 1 and back.status == "active"
    assert registry.active(mldb, "routine", [rec.owner])[rec.owner].version == 1
    with pytest.raises(Conflict):
        registry.promote(mldb, back.id, at=UNTIL, actor="test")
    audit = mldb.execute(
        "SELECT action FROM audit_log WHERE object_type = 'ml_model' AND object_id = %s",
        (str(back.id),),
    ).fetchall()
    assert ("ml.rollback",) in audit


def test_a_worse_candidate_is_rejected(
    mldb: Conn, world: dict[str, object], registry: ModelRegistry
) -> None:
    train(mldb, registry, CFG, until=UNTIL)
    data = world["data"]
    people = world["people"]
    me, other = people[0].profile.resident_id, people[1].profile.resident_id  # type: ignore[index]
    mine = hourly_features(me, data.rows, data.room_kinds, START, UNTIL, TZ)  # type: ignore[attr-defined]
    _, holdout = split(mine, timedelta(days=2))
    # a "candidate" that learnt somebody else's week: worse on my held-out days
    theirs = hourly_features(
        other, data.rows, data.room_kinds, START, START + timedelta(days=7), TZ
    )  # type: ignore[attr-defined]
    bad = RoutineModel.fit(theirs, "independent", None)
    bad.resident_id = me
    record = registry.save(
        mldb,
        owner=me,
        resident_id=me,
        model="routine",
        obj=bad,
        params=bad.parameters(),
        data_since=START,
        data_until=START + timedelta(days=7),
        features=[],
        metrics={},
        seed=1,
    )
    before = registry.active(mldb, "routine", [me])[me]
    assert not promote_if_not_worse(mldb, registry, record, holdout, CFG, at=UNTIL, actor="t")
    assert registry.active(mldb, "routine", [me])[me].id == before.id
    assert registry.get(mldb, record.id).status == "rejected"
    assert "rejected" in registry.get(mldb, record.id).metrics


def test_registry_refuses_tampered_or_outside_files(
    mldb: Conn, world: dict[str, object], registry: ModelRegistry
) -> None:
    train(mldb, registry, CFG, until=UNTIL, residents=[world["people"][2].profile.resident_id])  # type: ignore[index]
    rec = next(
        r
        for r in registry.list(mldb)
        if r.model == "routine" and r.owner == world["people"][2].profile.resident_id
    )  # type: ignore[index]
    fresh = ModelRegistry(registry.root)  # no cache
    path = registry.root / rec.path
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(StoreError, match="SHA-256"):
        fresh.load(rec)
    outside = type(rec)(**{**rec.__dict__, "path": "../../elsewhere/model.joblib"})
    with pytest.raises(StoreError, match="outside the registry"):
        fresh.load(outside)


def test_live_scoring_raises_explained_model_alerts(
    mldb: Conn, world: dict[str, object], registry: ModelRegistry
) -> None:
    train(mldb, registry, CFG, until=UNTIL)
    people = world["people"]
    me = people[3].profile  # type: ignore[index]
    # the next morning: everyone goes on as usual, except that ``me`` does not get up
    day = generate(people, UNTIL, 1, 99, TZ)  # type: ignore[arg-type]
    late = [
        r
        for r in day.rows
        if not (
            r.resident_id == me.resident_id
            and r.code in ("motion", "door", "steps")
            and 4 <= r.bucket.astimezone(TZ).hour < 12
        )
    ]
    day.rows[:] = late
    load_rollups(mldb, day)
    raised = []
    for hour in range(5, 11):
        report = score_hour(mldb, registry, UNTIL + timedelta(hours=hour), TZ)
        assert report.scored == 8 and report.latency_ms and max(report.latency_ms) < 1000
        raised += [f for f in report.findings if f.resident_id == me.resident_id]
    assert any(f.kind == "missed_routine" for f in raised)
    row = mldb.execute(
        "SELECT source, detector, explanation, severity FROM alerts "
        "WHERE resident_id = %s AND kind = 'missed_routine'",
        (me.resident_id,),
    ).fetchone()
    assert row is not None
    source, detector, explanation, severity = row
    assert severity == "medium"
    assert source == "model" and str(detector).startswith("ml:routine@")
    assert explanation["feature"] == "first_activity_time"  # type: ignore[index]
    assert explanation["quantile"] > 0.95 and "expected" in explanation  # type: ignore[index, operator]
    others = mldb.execute(
        "SELECT count(*) FROM alerts WHERE source = 'model' AND kind = 'missed_routine' "
        "AND resident_id <> %s",
        (me.resident_id,),
    ).fetchone()
    assert others == (0,)


def test_jobs_register_on_an_apscheduler(tmp_path: Path) -> None:
    settings = PlatformSettings(ml_registry_dir=tmp_path / "reg", ml_train_hour=3)
    scheduler = BackgroundScheduler()
    register_jobs(scheduler, settings)
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert set(jobs) == {TRAIN_JOB, SCORE_JOB}
    assert "hour='3'" in str(jobs[TRAIN_JOB].trigger)
    assert (tmp_path / "reg").is_dir()


def test_cli_trains_and_lists_models(
    registry: ModelRegistry, ml_database_url: str, world: dict[str, object], tmp_path: Path
) -> None:
    runner = CliRunner()
    rid = world["people"][4].profile.resident_id  # type: ignore[index]
    common = ["--database-url", ml_database_url, "--registry-dir", str(tmp_path / "r")]
    out = runner.invoke(
        cli, ["ml", "train", *common, "--until", UNTIL.isoformat(), "--residents", rid]
    )
    assert out.exit_code == 0, out.output
    assert '"trained": 1' in out.output
    listing = runner.invoke(cli, ["ml", "models", *common, "--owner", rid])
    assert listing.exit_code == 0 and "routine" in listing.output and "active" in listing.output
    bad = runner.invoke(cli, ["ml", "rollback", *common, "nobody", "routine"])
    assert bad.exit_code != 0


def both_readers(
    conn: Conn, since: datetime, until: datetime, who: list[str]
) -> dict[str, HourlyMatrix]:
    """The SQL pivot's hourly features, checked equal to the pure function's on the
    same rollup rows; returns the pivot's."""
    rows = read_rollups(conn, since, until, who)
    rooms = load_room_kinds(conn, who)
    pivot = read_hourly(conn, since, until, who, TZ)
    for rid in who:
        pure = hourly_features(rid, rows[rid], rooms, since, until, TZ)
        assert np.allclose(pure.values, pivot[rid].values, equal_nan=True)
        assert (pure.local_hour == pivot[rid].local_hour).all()
    return pivot


def test_sql_pivot_reader_gives_the_same_features_as_the_pure_function(
    mldb: Conn, world: dict[str, object]
) -> None:
    people = world["people"]
    who = [p.profile.resident_id for p in people[:3]]  # type: ignore[index]
    pivot = both_readers(mldb, START + timedelta(days=3), START + timedelta(days=5), who)
    assert pivot[who[0]].column("activity").sum() > 0


def test_cli_eval_compares_rule_and_model_alerts_from_the_store(
    mldb: Conn, ml_database_url: str, world: dict[str, object], tmp_path: Path
) -> None:
    from carecircle.ml.evaluation.records import TruthIncident, write_truth
    from carecircle.platform.alerts.lifecycle import Severity
    from carecircle.platform.alerts.repository import AlertDraft, open_or_refresh

    p = world["people"][5].profile  # type: ignore[index]
    t0 = datetime(2027, 3, 1, 9, tzinfo=TZ)
    truth = [
        TruthIncident(
            "i1",
            p.resident_id,
            p.site_id,
            "prolonged_inactivity",
            False,
            t0,
            t0 + timedelta(hours=4),
        ),
    ]
    write_truth(tmp_path / "truth.jsonl", truth)
    open_or_refresh(
        mldb,
        AlertDraft(
            subject=p.resident_id,
            site_id=p.site_id,
            kind="unusual_inactivity",
            severity=Severity.MEDIUM,
            detector="ml:routine@1",
            at=t0 + timedelta(hours=2),
            resident_id=p.resident_id,
            source="model",
            explanation={"feature": "activity"},
        ),
    )
    out = CliRunner().invoke(
        cli,
        [
            "ml",
            "eval",
            "--database-url",
            ml_database_url,
            "--truth",
            str(tmp_path / "truth.jsonl"),
            "--since",
            "2027-03-01T00:00:00+08:00",
            "--until",
            "2027-03-02T00:00:00+08:00",
        ],
    )
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith("prolonged_inactivity")]
    assert len(lines) == 3
    assert "rules+models" in lines[2] and "100%" in lines[2] and "0%" in lines[0]


def test_training_without_rollups_table_says_what_is_missing(
    fresh_database: object, tmp_path: Path
) -> None:
    import psycopg

    url = fresh_database()  # type: ignore[operator]
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
        exists = conn.execute("SELECT to_regclass('rollup_1h') IS NOT NULL").fetchone()
    if exists and exists[0]:
        pytest.skip("the ingest migration provides rollup_1h on this branch")
    with (
        psycopg.connect(url, autocommit=True) as conn,
        pytest.raises(StoreError, match="rollup_1h does not exist"),
    ):
        train(conn, ModelRegistry(tmp_path), CFG, until=UNTIL)


def test_job_bodies_train_nightly_and_score_hourly_with_an_injected_clock(
    ml_database_url: str, world: dict[str, object], registry: ModelRegistry, mldb: Conn
) -> None:
    from carecircle.common.clock import ManualClock
    from carecircle.ml.training.schedule import hourly_scoring, nightly_training

    settings = PlatformSettings(
        database_url=ml_database_url,  # type: ignore[arg-type]
        ml_registry_dir=registry.root,
        ml_window_days=DAYS,
        ml_seed=42,
    )
    clock = ManualClock(UNTIL)
    first = nightly_training(settings, clock, registry)
    assert first.trained == 8 and len(registry.active(mldb, "routine")) == 8
    again = nightly_training(settings, clock, registry)  # incremental: nothing new
    assert again.trained == 0
    assert {r.version for r in registry.list(mldb) if r.model == "routine"} == {1}
    clock.advance(timedelta(hours=3))
    report = hourly_scoring(settings, clock, registry)
    assert report.scored == 8 and report.hour == UNTIL + timedelta(hours=2)


def _band_reports(conn: Conn, rid: str, since: datetime, until: datetime, worn: bool) -> None:
    """The band's battery status every 2 minutes, with its worn flag, as ingest stores
    it (``events``, kind ``status``, ``attrs.worn``)."""
    import uuid

    from psycopg.types.json import Jsonb

    dev, site = conn.execute(
        "SELECT d.id, d.site_id FROM devices d JOIN rollup_1h r ON r.device_id = d.id "
        "WHERE r.resident_id = %s AND r.code = 'heart_rate' LIMIT 1",
        (rid,),
    ).fetchone()  # type: ignore[misc]
    at = since
    while at < until:
        conn.execute(
            "INSERT INTO events (time, received_at, msg_id, gateway_id, device_id, resident_id, "
            "site_id, kind, code, value, attrs) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'status', 'battery', 80, %s)",
            (at, at, uuid.uuid4(), f"gw-{rid}", dev, rid, site, Jsonb({"worn": worn})),
        )
        at += timedelta(minutes=2)


def test_both_readers_hear_a_band_off_the_wrist_from_its_worn_flag(
    mldb: Conn, world: dict[str, object]
) -> None:
    """The rollups hold no trace of a band off the wrist (the gateway drops its vitals
    and steps); its battery status every 2 minutes carries ``worn``: the features read
    it from ``events`` — pure reader and SQL pivot alike."""
    people = world["people"]
    who = [p.profile.resident_id for p in people[4:6]]  # type: ignore[index]
    rid = who[0]
    off = START + timedelta(days=9, hours=10)
    _band_reports(mldb, rid, off, off + HOUR, worn=False)
    _band_reports(mldb, rid, off + HOUR, off + 2 * HOUR, worn=True)
    pivot = both_readers(mldb, START + timedelta(days=9), START + timedelta(days=10), who)
    m = pivot[rid]
    i = m.index_of(off)
    assert m.column("band_reports")[i] == 30 and m.column("off_wrist")[i] == 1.0
    assert m.column("band_reports")[i + 1] == 30 and m.column("off_wrist")[i + 1] == 0.0
    assert m.column("band_reports").sum() == 60  # nothing else, and not in ``rows``
    assert band_heard(m)[i] and not pivot[who[1]].column("band_reports").any()


def test_a_model_alert_is_not_raised_again_for_the_same_episode(
    mldb: Conn, world: dict[str, object], registry: ModelRegistry
) -> None:
    """A caregiver closes the missed-routine alert; the same morning, still nobody up,
    raises no second one; the next morning's does (as the rules' absence checks)."""
    train(mldb, registry, CFG, until=UNTIL)
    people = world["people"]
    me = people[5].profile  # type: ignore[index]
    for d in (1, 2):
        day = generate(people, UNTIL + timedelta(days=d), 1, 100 + d, TZ)  # type: ignore[arg-type]
        day.rows[:] = [
            r
            for r in day.rows
            if not (
                r.resident_id == me.resident_id
                and r.code in ("motion", "door", "steps")
                and 4 <= r.bucket.astimezone(TZ).hour < 12
            )
        ]
        load_rollups(mldb, day)

    def missed() -> list[tuple[int, str, datetime]]:
        rows = mldb.execute(
            "SELECT id, status, opened_at FROM alerts WHERE resident_id = %s "
            "AND kind = 'missed_routine' ORDER BY id",
            (me.resident_id,),
        ).fetchall()
        return [(int(r[0]), str(r[1]), r[2]) for r in rows]

    handled = 0
    for d in (1, 2):
        morning = UNTIL + timedelta(days=d)
        for hour in range(5, 12):
            at = morning + timedelta(hours=hour)
            report = score_hour(mldb, registry, at, TZ, residents=[me.resident_id])
            handled += report.already_handled
            for alert_id, status, _ in missed():
                if status == "open":  # the caregiver closes it at once
                    transition(mldb, alert_id, Status.RESOLVED, actor="test:carer", at=at)
        alerts = missed()
        assert len(alerts) == d, alerts  # one per morning, however many hours it went on
        assert alerts[-1][2] > morning
    assert handled >= 2
    explanation = mldb.execute(
        "SELECT explanation FROM alerts WHERE id = %s", (missed()[-1][0],)
    ).fetchone()
    assert explanation is not None
    began = datetime.fromisoformat(explanation[0]["episode_start"])  # type: ignore[index]
    assert began == UNTIL + timedelta(days=2, hours=4)  # that morning


def test_models_trained_on_other_features_are_not_used_and_are_replaced(
    mldb: Conn, world: dict[str, object], registry: ModelRegistry
) -> None:
    train(mldb, registry, CFG, until=UNTIL)
    old = world["people"][0].profile.resident_id  # type: ignore[index]
    # as if trained by the code before session 5 (without the band's worn flag)
    mldb.execute(
        "UPDATE ml_models SET features = array_remove(array_remove(features, 'band_reports'), "
        "'off_wrist') WHERE owner = %s",
        (old,),
    )
    report = score_hour(mldb, registry, UNTIL + timedelta(hours=3), TZ)
    assert report.scored == 7
    nightly = train(mldb, registry, CFG, until=UNTIL, incremental=True)
    assert nightly.trained == 1 and old not in nightly.skipped
    assert f"{old}/routine@2" in nightly.promoted  # no comparison with the stale one
    assert score_hour(mldb, registry, UNTIL + timedelta(hours=4), TZ).scored == 8
