"""Fault injection with real processes: each test drives native device readings through
``carecircle gateway run`` → a private Mosquitto → ``carecircle platform ingest`` →
PostgreSQL, injects one fault under load, and counts ground truth against the database:
``lost = 0`` and ``duplicates = 0`` (a ``RELIABILITY fault=… lost=… duplicates=…`` line is
printed for the report).  After the fault an SOS still opens an alert (no alert stuck).

Faults proven elsewhere and referenced from docs/reliability.md rather than duplicated:
the scheduler leader killed (tests/deploy/test_scheduler_leader.py), the gateway queue at
its bound (tests/gateway/test_outbox.py), uplink outage + gateway kill -9 with a collector
(tests/gateway/test_resilience.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.pgcluster import PgCluster
from tests.reliability.harness import (
    Circle,
    Native,
    alert_opened,
    circle,
    recent,
    safe_stored_count,
    tally,
    wait,
)

N = 300  # native readings per test (two stored readings each: temperature and humidity)


def prefix() -> str:
    return f"f{uuid.uuid4().hex[:6]}"


def load(dev: Native, n: int, pace_s: float = 0.01) -> threading.Thread:
    def run() -> None:
        for _ in range(n):
            dev.reading()
            time.sleep(pace_s)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def sos_opens_alert(c: Circle, dev: Native, db_url: str | None = None) -> None:
    """No alert stuck: an SOS pressed now goes through the whole pipeline to an alert."""
    dev.sos(at=datetime.now(UTC).replace(microsecond=0))
    dev.flush()
    url = db_url or c.database_url
    res = f"{c.prefix}r"

    def opened() -> bool:
        try:
            return alert_opened(url, res)
        except psycopg.Error:
            return False

    wait(opened, 30, "the SOS alert to open")


def finish(c: Circle, dev: Native, fault: str, db_url: str | None = None) -> None:
    dev.flush()
    expected = len(dev.produced)
    url = db_url or c.database_url
    try:
        c.wait_stored(expected, 30, url)
    finally:
        t = tally(url, dev.produced, c.gw)
        print("\n" + t.line(fault))
    assert (t.lost, t.duplicates) == (0, 0), t
    sos_opens_alert(c, dev, url)


def start(
    c: Circle, workers: int = 1, db_url: str | None = None, skew_hours: float | None = None
) -> Native:
    c.provision()
    for i in range(workers):
        c.worker(f"w{i}", db_url).start()
    c.wait_workers_running()
    c.gateway(skew_hours).start()
    c.wait_gateway_ready()
    return Native(c.mqtt_url, c.topic_root, c.gw, recent())


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_broker_restarted_under_load(
    tmp_path: Path, mqtt_url: str, topic_root: str, database_url: str
) -> None:
    with circle(tmp_path, mqtt_url, topic_root, database_url, prefix()) as c:
        dev = start(c, workers=2)
        sender = load(dev, N)
        wait(lambda: safe_stored_count(database_url, c.gw) > 100, 30, "load flowing")
        c.broker.restart()  # persistence on: the workers' sessions and the retained config survive
        sender.join(60)
        finish(c, dev, "broker_restart")
        assert all(w.alive() for w in c.workers) and c.gateways[0].alive()


def restart_broker_workers_late(c: Circle, dev: Native, late_s: float = 2.0) -> None:
    """The worst order after a broker restart: the gateway reconnects at once with its
    backlog, the ingest workers only ``late_s`` later (frozen with SIGSTOP meanwhile).
    Mosquitto 2.0.11 restores their sessions but not their *shared* subscriptions, so
    until they resubscribe the uplink topics have no subscriber at all."""
    sender = load(dev, N)
    wait(lambda: safe_stored_count(c.database_url, c.gw) > 100, 30, "load flowing")
    gateway = c.gateways[0]
    for w in c.workers:
        w.pause()
    try:
        c.broker.restart()
        wait(
            lambda: gateway.log_text().count("uplink connected") >= 2,
            20,
            "the gateway to reconnect",
        )
        sender.join(60)  # the rest of the load goes into the gateway while no worker runs
        time.sleep(late_s)
    finally:
        for w in c.workers:
            w.resume()


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_broker_restarted_and_the_gateway_back_before_the_ingest_workers(
    tmp_path: Path, mqtt_url: str, topic_root: str, database_url: str
) -> None:
    """The gateway holds its uplink (the rows stay in its SQLite queue) until a worker that
    has resubscribed answers on ``gw/{id}/ingest``; then it sends again, alarms first."""
    with circle(tmp_path, mqtt_url, topic_root, database_url, prefix()) as c:
        dev = start(c, workers=2)
        restart_broker_workers_late(c, dev)
        finish(c, dev, "broker_restart_workers_late")
        log = c.gateways[0].log_text()
        assert "until ingest answered" in log, "the gateway did not hold its uplink"
        assert all(w.alive() for w in c.workers) and c.gateways[0].alive()


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_without_the_hold_a_broker_restart_loses_readings(
    tmp_path: Path, mqtt_url: str, topic_root: str, database_url: str
) -> None:
    """The control experiment: the same fault with ``uplink_wait_for_ingest = false`` (a
    gateway that trusts the broker's PUBACK) loses what it sends before the workers are
    back.  Proves the test above can fail and why the hold exists."""
    with circle(tmp_path, mqtt_url, topic_root, database_url, prefix()) as c:
        c.provision()
        for i in range(2):
            c.worker(f"w{i}").start()
        c.wait_workers_running()
        c.gateway(wait_for_ingest=False).start()
        c.wait_gateway_ready()
        dev = Native(c.mqtt_url, c.topic_root, c.gw, recent())
        restart_broker_workers_late(c, dev)
        dev.flush()
        wait(lambda: c.gateways[0].log_text().count("uplink connected") >= 2, 10, "reconnected")
        time.sleep(3.0)  # whatever was going to arrive has arrived
        t = tally(database_url, dev.produced, c.gw)
        print("\n" + t.line("broker_restart_workers_late_without_hold"))
        assert t.lost > 0, t
        assert t.duplicates == 0, t


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_ingest_worker_killed_mid_work(
    tmp_path: Path, mqtt_url: str, topic_root: str, database_url: str
) -> None:
    with circle(tmp_path, mqtt_url, topic_root, database_url, prefix()) as c:
        dev = start(c, workers=1)
        victim = c.workers[0]
        sender = load(dev, N)
        wait(lambda: safe_stored_count(database_url, c.gw) > 100, 30, "load flowing")
        victim.kill9()  # mid-work: unacknowledged messages stay in its persistent session
        time.sleep(0.5)  # readings keep coming while no worker runs
        victim.start()  # same worker id → same MQTT session → redelivery
        sender.join(60)
        finish(c, dev, "ingest_kill9")


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_gateway_killed_mid_backlog(
    tmp_path: Path, mqtt_url: str, topic_root: str, database_url: str
) -> None:
    with circle(tmp_path, mqtt_url, topic_root, database_url, prefix()) as c:
        dev = start(c, workers=1)
        gateway = c.gateways[0]
        sender = load(dev, N)
        wait(lambda: safe_stored_count(database_url, c.gw) > 100, 30, "load flowing")
        gateway.kill9()  # mid-work: its SQLite queue and local MQTT session keep the rest
        time.sleep(0.5)
        gateway.start()
        sender.join(60)
        finish(c, dev, "gateway_kill9")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_postgresql_stopped_under_load(tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    """The private PostgreSQL is stopped for 20 s while readings flow (20 s, not a minute,
    to keep CI short: the workers' retry back-off caps at 1 s here, so every additional
    second is the same state)."""
    from carecircle.platform.store import connect, migrate
    from carecircle.platform.store.timeseries import Retention

    with PgCluster.create() as pg:
        url = pg.create_database("outage")
        with connect(url, autocommit=True) as conn:
            migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
        with circle(tmp_path, mqtt_url, topic_root, url, prefix()) as c:
            dev = start(c, workers=2)
            sender = load(dev, N, pace_s=0.05)
            wait(lambda: safe_stored_count(url, c.gw) > 50, 30, "load flowing")
            pg.stop("fast")
            down = time.monotonic()
            sender.join(60)  # the rest of the load arrives while the database is down
            time.sleep(max(0.0, 20.0 - (time.monotonic() - down)))
            pg.start()
            finish(c, dev, "postgresql_stopped_20s")
            assert all(w.alive() for w in c.workers)


Clock = Callable[[], datetime]


@pytest.mark.timeout(120)
def test_duplicates_and_out_of_order_batches(
    tmp_path: Path, mqtt_url: str, topic_root: str, database_url: str
) -> None:
    """The same canonical batch delivered twice, and batches delivered newest first:
    stored once each, device time and receive time both kept."""
    from tests.platform.ingest_support import Publisher, batch, item

    with circle(tmp_path, mqtt_url, topic_root, database_url, prefix()) as c:
        c.provision()
        c.worker("w0").start()
        c.worker("w1").start()
        c.wait_workers_running()
        pub = Publisher(c.broker.url, c.topics)
        base = recent(60)
        produced: set[tuple[str, str, datetime]] = set()
        batches = []
        for b in range(20):
            items = []
            for i in range(10):
                ts = base + timedelta(seconds=b * 10 + i)
                items.append(
                    item(
                        c.gw,
                        f"{c.gw}-th",
                        site=f"{c.prefix}hh",
                        res=f"{c.prefix}r",
                        ts=ts,
                        code="room_temperature",
                        value=20.5,
                    )
                )
                produced.add((f"{c.gw}-th", "room_temperature", ts))
            batches.append(batch(c.gw, items))
        for payload in reversed(batches):  # out of order: newest batch first
            pub.send(c.gw, payload)
        for payload in batches[::3]:  # duplicates: every third batch again
            pub.send(c.gw, payload)
        for payload in batches[::5]:  # and some a third time
            pub.send(c.gw, payload)
        pub.close()
        c.wait_stored(len(produced), 30)
        time.sleep(1.0)  # let any late duplicate land before counting
        t = tally(database_url, produced, c.gw)
        print("\n" + t.line("duplicates_out_of_order"))
        assert (t.lost, t.duplicates) == (0, 0), t
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM readings WHERE gateway_id = %s AND received_at >= time",
                (c.gw,),
            ).fetchone()
        assert row == (len(produced),)  # device time kept, receive time separate


@pytest.mark.timeout(120)
def test_gateway_clock_skewed_by_hours(
    tmp_path: Path, mqtt_url: str, topic_root: str, database_url: str
) -> None:
    """A gateway whose clock is 5 h fast.  Readings that carry the device's own time
    (zigbee2mqtt ``last_seen``) are stored; readings the gateway has to stamp itself get an
    implausible time and are dead-lettered at ingest with the reason (documented behaviour:
    refused, not re-stamped).  Nothing crashes and nothing is silently lost: every produced
    item is either stored or in ``dead_letters``."""
    with circle(tmp_path, mqtt_url, topic_root, database_url, prefix()) as c:
        dev = start(c, workers=1, skew_hours=5)
        for _ in range(100):
            dev.reading()  # device time from last_seen: plausible
        stamped = 50
        for i in range(stamped):  # no last_seen: the skewed gateway stamps them
            dev.client.publish(
                f"{dev.z2m}/bedroom_climate", f'{{"temperature": {18 + i / 100}}}', qos=1
            )
        dev.flush()
        c.wait_stored(len(dev.produced), 30)

        def implausible() -> int:
            with psycopg.connect(database_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM dead_letters WHERE gateway_id = %s"
                    " AND reason LIKE '%%implausible%%'",
                    (c.gw,),
                ).fetchone()
            return int(row[0]) if row else 0

        wait(lambda: implausible() >= stamped, 30, "the skewed items dead-lettered")
        t = tally(database_url, dev.produced, c.gw)
        t.extra["skewed_dead_lettered"] = implausible()
        print("\n" + t.line("clock_skew_5h"))
        assert (t.lost, t.duplicates) == (0, 0), t
        assert t.stored_distinct == len(dev.produced)  # none of the skewed ones stored
        assert all(g.alive() for g in c.gateways) and all(w.alive() for w in c.workers)
