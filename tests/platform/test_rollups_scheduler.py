"""The scheduler: one leader among replicas (advisory lock); the leader's rollup and
config-push jobs run."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from carecircle.common.contract import Topics, Uplink
from carecircle.platform.ingest import BatchWriter, Inbound
from carecircle.platform.registry import provision
from carecircle.platform.scheduler import run_scheduler
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect
from tests.platform.ingest_support import (
    batch,
    clear_retained,
    count,
    population,
    readings_for,
    wait_until,
)

Conn = psycopg.Connection[tuple[object, ...]]


def test_one_leader_runs_the_rollup_job_and_a_standby_takes_over(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = f"l{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=1))
    gw = f"{p}gw0"
    topics = Topics("sched")
    writer = BatchWriter(lambda: connect(database_url), topics, clock=lambda: datetime.now(UTC))
    items = readings_for(p, 0, 50, start=datetime.now(UTC) - timedelta(minutes=30))
    writer.write([Inbound(topics.uplink(gw, Uplink.BATCH), batch(gw, items), datetime.now(UTC))])
    writer.close()

    settings = PlatformSettings(
        database_url=database_url, mqtt_url=mqtt_url, topic_root=topic_root, rollup_interval_s=1
    )  # type: ignore[arg-type]
    leaders: list[str] = []
    stops = {"a": threading.Event(), "b": threading.Event()}

    def run(name: str) -> None:
        def on_leader(_s: BackgroundScheduler) -> None:
            leaders.append(name)

        run_scheduler(settings, stops[name], check_interval_s=0.2, on_leader=on_leader)

    threads = {n: threading.Thread(target=run, args=(n,), daemon=True) for n in stops}
    for t in threads.values():
        t.start()
    try:
        wait_until(lambda: len(leaders) == 1, what="a leader")
        wait_until(
            lambda: (
                count(
                    db,
                    "SELECT coalesce(sum(n), 0) FROM rollup_1m WHERE device_id LIKE %s",
                    f"{gw}-%",
                )
                == 50
            ),
            what="rollups by the leader's job",
        )
        wait_until(
            lambda: count(db, "SELECT config_pushed_version FROM gateways WHERE id = %s", gw) == 1,
            what="the provisioned gateway's config pushed by the leader's job",
        )
        first = leaders[0]
        threading.Event().wait(0.5)
        assert leaders == [first], "only one leader at a time"
        stops[first].set()
        threads[first].join(15)
        wait_until(lambda: len(leaders) == 2, what="the standby taking over")
        assert leaders[1] != first
    finally:
        for s in stops.values():
            s.set()
        for t in threads.values():
            t.join(15)
        # the job pushed every gateway of the run's database under this test's topic root
        clear_retained(
            mqtt_url,
            Topics(topic_root),
            [
                str(r[0])
                for r in db.execute(
                    "SELECT id FROM gateways WHERE config_pushed_version > 0"
                ).fetchall()
            ],
        )
