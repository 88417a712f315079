"""Ingest survives a database outage and a worker restart without losing or doubling data."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from carecircle.common.contract import Topics
from carecircle.platform.registry import provision
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention
from tests.pgcluster import PgCluster
from tests.platform.ingest_support import (
    Publisher,
    batch,
    clear_session,
    count,
    population,
    readings_for,
    running_worker,
    wait_until,
)

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.mark.slow
def test_stopping_postgresql_under_load_loses_nothing(mqtt_url: str, topic_root: str) -> None:
    p = f"o{uuid.uuid4().hex[:6]}"
    topics = Topics(topic_root)
    with PgCluster.create() as pg:
        url = pg.create_database("outage")
        with connect(url, autocommit=True) as conn:
            migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
            provision(conn, population(p, gateways=2))
        start = datetime.now(UTC) - timedelta(minutes=60)
        messages = [
            (
                f"{p}gw{g}",
                batch(
                    f"{p}gw{g}",
                    readings_for(p, g, 20, start=start + timedelta(seconds=k * 20), step_s=1.0),
                ),
            )
            for k in range(150)
            for g in range(2)
        ]  # 300 messages, 6000 readings
        expected = 6000
        with running_worker(
            url, mqtt_url, topics, receive_maximum=50, retry_initial_s=0.2, retry_max_s=1.0
        ) as worker:
            pub = Publisher(mqtt_url, topics)

            def publish() -> None:
                for gw, payload in messages:
                    pub.send(gw, payload)
                    time.sleep(0.02)  # ~6 s of steady load

            sender = threading.Thread(target=publish)
            sender.start()
            with connect(url, autocommit=True) as conn:
                wait_until(
                    lambda: count(conn, "SELECT count(*) FROM readings") > 500, what="load flowing"
                )
            pg.stop("fast")  # under load
            down_at = time.monotonic()
            wait_until(lambda: worker.metrics.db_errors._value.get() >= 2, what="failures seen")
            time.sleep(max(0.0, 8.0 - (time.monotonic() - down_at)))  # keep it down ~8 s
            pg.start()
            sender.join(30)
            pub.close()
            with connect(url, autocommit=True) as conn:
                wait_until(
                    lambda: count(conn, "SELECT count(*) FROM readings") >= expected,
                    timeout_s=40,
                    what="every reading after the outage",
                )
                rows = conn.execute(
                    "SELECT count(*), count(DISTINCT msg_id) FROM readings"
                ).fetchone()
        assert rows == (expected, expected)
        assert worker.metrics.db_errors._value.get() >= 2
        assert worker.metrics.db_up._value.get() == 1


def test_a_restarted_worker_gets_its_unacknowledged_messages_back(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = f"s{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=1))
    topics = Topics(topic_root)
    client_id = f"ingest-{topic_root}-1"
    gw = f"{p}gw0"
    items = readings_for(p, 0, 200, start=datetime.now(UTC) - timedelta(minutes=10))
    dead_db = "postgresql://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1
    try:
        with running_worker(
            dead_db, mqtt_url, topics, client_id=client_id, retry_initial_s=0.2
        ) as w:
            pub = Publisher(mqtt_url, topics)
            for k in range(0, 200, 10):
                pub.send(gw, batch(gw, items[k : k + 10]))
            pub.close()
            wait_until(lambda: w.metrics.db_errors._value.get() >= 1, what="writes failing")
        assert count(db, "SELECT count(*) FROM readings WHERE gateway_id = %s", gw) == 0
        with running_worker(database_url, mqtt_url, topics, client_id=client_id):
            wait_until(
                lambda: count(db, "SELECT count(*) FROM readings WHERE gateway_id = %s", gw) == 200,
                what="redelivered messages stored",
            )
    finally:
        clear_session(mqtt_url, client_id)
