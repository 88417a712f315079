"""Ingest workers against the real broker and database: exactly once, dead letters, hand-off."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from carecircle.common.contract import Topics, Uplink
from carecircle.platform.ingest.items import EnvelopeView
from carecircle.platform.registry import provision
from tests.platform.ingest_support import (
    Publisher,
    batch,
    count,
    item,
    population,
    readings_for,
    running_worker,
    wait_until,
)

Conn = psycopg.Connection[tuple[object, ...]]


class Recorder:
    def __init__(self) -> None:
        self.items: list[EnvelopeView] = []
        self.lock = threading.Lock()

    def on_committed(self, items: Sequence[EnvelopeView]) -> None:
        with self.lock:
            self.items.extend(items)


def prefix() -> str:
    return f"i{uuid.uuid4().hex[:6]}"


def test_two_workers_on_one_shared_subscription_store_every_message_once(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = prefix()
    provision(db, population(p, gateways=4))
    topics = Topics(topic_root)
    start = datetime.now(UTC) - timedelta(hours=1)
    rec1, rec2 = Recorder(), Recorder()
    sent: set[str] = set()
    with (
        running_worker(database_url, mqtt_url, topics, receive_maximum=20) as w1,
        running_worker(database_url, mqtt_url, topics, receive_maximum=20) as w2,
    ):
        w1.register(rec1)
        w2.register(rec2)
        pub = Publisher(mqtt_url, topics)
        for g in range(4):
            items = readings_for(p, g, 500, start=start)
            sent |= {i["id"] for i in items}
            for k in range(0, 500, 25):  # 20 messages of 25 readings per gateway
                pub.send(f"{p}gw{g}", batch(f"{p}gw{g}", items[k : k + 25]))
        pub.close()
        wait_until(
            lambda: (
                count(db, "SELECT count(*) FROM readings WHERE site_id LIKE %s", f"{p}%") >= 2000
            ),
            what="2000 readings",
        )
        wait_until(lambda: len(rec1.items) + len(rec2.items) >= 2000, what="hand-off")
        assert w1.batches_committed > 0 and w2.batches_committed > 0, "both workers took load"
    stored = db.execute(
        "SELECT msg_id::text, count(*) FROM readings WHERE site_id LIKE %s GROUP BY 1",
        (f"{p}%",),
    ).fetchall()
    assert len(stored) == 2000 and all(n == 1 for _, n in stored)
    assert {m for m, _ in stored} == sent
    handed = [str(e.id) for e in rec1.items + rec2.items]
    assert len(handed) == 2000 and set(handed) == sent


def test_duplicates_and_redeliveries_are_stored_once_and_not_handed_off_again(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = prefix()
    provision(db, population(p, gateways=1))
    topics = Topics(topic_root)
    gw = f"{p}gw0"
    items = readings_for(p, 0, 30, start=datetime.now(UTC) - timedelta(minutes=5))
    rec = Recorder()
    with running_worker(database_url, mqtt_url, topics) as w:
        w.register(rec)
        pub = Publisher(mqtt_url, topics)
        pub.send(gw, batch(gw, items[:20]))
        pub.flush()
        wait_until(lambda: len(rec.items) == 20, what="first batch handed off")
        # a redelivered message, an overlapping one, and an item twice in one batch
        pub.send(gw, batch(gw, items[:20]))
        pub.send(gw, batch(gw, items[10:30] + items[25:26]))
        pub.close()
        wait_until(
            lambda: w.metrics.duplicates._value.get() >= 31,  # 20 + 10 + 1
            what="duplicates counted",
        )
    assert count(db, "SELECT count(*) FROM readings WHERE gateway_id = %s", gw) == 30
    assert sorted(str(e.id) for e in rec.items) == sorted(i["id"] for i in items)


def test_malformed_message_goes_to_dead_letters_and_the_worker_carries_on(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = prefix()
    provision(db, population(p, gateways=1))
    topics = Topics(topic_root)
    gw = f"{p}gw0"
    now = datetime.now(UTC)
    good = item(gw, f"{gw}-d0", site=f"{p}hh0", res=f"{p}r0", ts=now)
    bad_value = item(gw, f"{gw}-d0", site=f"{p}hh0", res=f"{p}r0", ts=now, value=900)
    unknown = item(gw, f"{gw}-nope", site=f"{p}hh0", res=f"{p}r0", ts=now)
    after = item(gw, f"{gw}-d1", site=f"{p}hh0", res=f"{p}r0", ts=now)
    with running_worker(database_url, mqtt_url, topics):
        pub = Publisher(mqtt_url, topics)
        pub.send(gw, b"{not json")
        pub.send(gw, batch(f"{p}gw9", [good]))  # claims another gateway
        pub.send(gw, batch(gw, [good, bad_value, unknown]))
        pub.send(gw, batch(gw, [after]), Uplink.ALARM)
        pub.close()
        wait_until(
            lambda: count(db, "SELECT count(*) FROM readings WHERE gateway_id = %s", gw) == 2,
            what="good readings",
        )
        wait_until(
            lambda: (
                count(
                    db, "SELECT count(*) FROM dead_letters WHERE source LIKE %s", f"{topic_root}/%"
                )
                == 4
            ),
            what="dead letters",
        )
    rows = db.execute(
        "SELECT stage, reason, payload FROM dead_letters WHERE source LIKE %s ORDER BY id",
        (f"{topic_root}/%",),
    ).fetchall()
    reasons = [str(r[1]) for r in rows]
    assert all(r[0] == "ingest" for r in rows)
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("claims gateway" in r for r in reasons)
    assert any("above the possible maximum" in r for r in reasons)
    assert any("is not provisioned" in r for r in reasons)
    raw = next(bytes(r[2]) for r in rows if str(r[1]).startswith("not JSON"))  # type: ignore[arg-type]
    assert raw == b"{not json"
    assert (
        json.loads(next(bytes(r[2]) for r in rows if "maximum" in str(r[1])))["payload"][  # type: ignore[arg-type]
            "value"
        ]
        == 900
    )


def test_late_and_out_of_order_readings_keep_device_and_receive_time(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = prefix()
    provision(db, population(p, gateways=1))
    topics = Topics(topic_root)
    gw = f"{p}gw0"
    now = datetime.now(UTC)
    late = item(gw, f"{gw}-d0", site=f"{p}hh0", res=f"{p}r0", ts=now - timedelta(days=3))
    newer = item(gw, f"{gw}-d0", site=f"{p}hh0", res=f"{p}r0", ts=now - timedelta(minutes=1))
    with running_worker(database_url, mqtt_url, topics):
        pub = Publisher(mqtt_url, topics)
        pub.send(gw, batch(gw, [newer]))
        pub.flush()
        pub.send(gw, batch(gw, [late]))  # arrives after a newer one
        pub.close()
        wait_until(
            lambda: count(db, "SELECT count(*) FROM readings WHERE gateway_id = %s", gw) == 2,
            what="both readings",
        )
    rows = {
        str(r[0]): (r[1], r[2])
        for r in db.execute(
            "SELECT msg_id::text, time, received_at FROM readings WHERE gateway_id = %s", (gw,)
        ).fetchall()
    }
    t_late, recv_late = rows[late["id"]]
    assert isinstance(t_late, datetime) and isinstance(recv_late, datetime)
    assert abs((t_late - (now - timedelta(days=3))).total_seconds()) < 0.001
    assert recv_late >= now - timedelta(seconds=5)
    # the device's last_seen follows the newest device time, not the late arrival
    last_seen = db.execute("SELECT last_seen FROM devices WHERE id = %s", (f"{gw}-d0",)).fetchone()
    assert last_seen is not None and last_seen[0] is not None
    assert abs((last_seen[0] - (now - timedelta(minutes=1))).total_seconds()) < 0.001  # type: ignore[operator]


def test_device_and_gateway_state_follow_status_items_and_the_retained_state(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = prefix()
    provision(db, population(p, gateways=1))
    topics = Topics(topic_root)
    gw = f"{p}gw0"
    now = datetime.now(UTC)
    status = [
        item(
            gw,
            f"{gw}-d0",
            site=f"{p}hh0",
            res=f"{p}r0",
            ts=now - timedelta(seconds=5),
            kind="status",
            code="battery",
            value=37,
        ),
        item(
            gw,
            f"{gw}-d1",
            site=f"{p}hh0",
            res=f"{p}r0",
            ts=now,
            kind="status",
            code="availability",
            value=0,
        ),
        item(
            gw,
            f"{gw}-d2",
            site=f"{p}hh0",
            res=f"{p}r0",
            ts=now,
            kind="event",
            code="sos",
            value=1,
            attrs={"action": "emergency"},
        ),
        # the gateway's own heartbeat: its device id is the gateway id
        item(gw, gw, site=f"{p}hh0", res=None, ts=now, kind="heartbeat", code="heartbeat", value=4),
    ]
    rec = Recorder()
    pub = Publisher(mqtt_url, topics)
    try:
        with running_worker(database_url, mqtt_url, topics) as w:
            w.register(rec)
            pub.send(gw, batch(gw, status), Uplink.STATUS)
            pub.flush()
            wait_until(lambda: len(rec.items) == 4, what="status items and the heartbeat")
            wait_until(
                lambda: (
                    db.execute("SELECT status FROM gateways WHERE id = %s", (gw,)).fetchone()
                    == ("online",)
                ),
                what="gateway online from its batch",
            )
            pub.raw(topics.gateway_state(gw), b'{"state":"offline"}', retain=True)
            pub.flush()
            wait_until(
                lambda: (
                    db.execute("SELECT status FROM gateways WHERE id = %s", (gw,)).fetchone()
                    == ("offline",)
                ),
                what="gateway offline from its retained state",
            )
    finally:
        pub.raw(topics.gateway_state(gw), b"", retain=True)  # clear the retained message
        pub.close()
    devs = dict(
        (str(r[0]), (r[1], r[2]))
        for r in db.execute(
            "SELECT id, battery, status FROM devices WHERE gateway_id = %s", (gw,)
        ).fetchall()
    )
    assert devs[f"{gw}-d0"] == (37.0, "online")
    assert devs[f"{gw}-d1"] == (None, "offline")
    assert devs[f"{gw}-d2"] == (None, "online")
    # a heartbeat is the gateway's liveness, stored as its event, never a dead letter
    assert count(db, "SELECT count(*) FROM dead_letters WHERE gateway_id = %s", gw) == 0
    assert (
        count(db, "SELECT count(*) FROM events WHERE device_id = %s AND code = 'heartbeat'", gw)
        == 1
    )
    ev = db.execute(
        "SELECT kind, code, value, attrs FROM events WHERE device_id = %s", (f"{gw}-d2",)
    ).fetchone()
    assert ev == ("event", "sos", 1.0, {"action": "emergency"})


def test_a_subscribed_worker_answers_gateways_that_say_online(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    """Gateways send nothing until a worker answers on ``gw/{id}/ingest``
    (tests/gateway/test_runtime_mqtt.py): a gateway already waiting (its retained
    ``online`` state) is answered when the worker has subscribed; one connecting later is
    answered at once; an ``offline`` state gets no answer; answers are never retained."""
    from tests.gateway.conftest import Collector

    p = prefix()
    provision(db, population(p, gateways=3))
    topics = Topics(topic_root)
    waiting, later, gone = f"{p}gw0", f"{p}gw1", f"{p}gw2"
    answers = Collector(mqtt_url, f"{topics.base}/gw/+/ingest")
    pub = Publisher(mqtt_url, topics)

    def answered(gw: str) -> list[dict[str, object]]:
        return [json.loads(b) for t, b, _ in answers.snapshot() if t == topics.gateway_ingest(gw)]

    try:
        pub.raw(topics.gateway_state(waiting), b'{"state":"online"}', retain=True)
        pub.raw(topics.gateway_state(gone), b'{"state":"offline"}', retain=True)
        pub.flush()
        with running_worker(database_url, mqtt_url, topics, client_id=f"ingest-{p}") as w:
            wait_until(lambda: len(answered(waiting)) == 1, what="the waiting gateway answered")
            assert answered(waiting)[0]["worker"] == f"ingest-{p}"
            assert answered(later) == []
            pub.raw(topics.gateway_state(later), b'{"state":"online","ts":"x"}', retain=True)
            pub.flush()
            wait_until(lambda: len(answered(later)) == 1, what="the connecting gateway answered")
            assert answered(gone) == [] and w.answers_sent == 2
        fresh = Collector(mqtt_url, f"{topics.base}/gw/+/ingest")
        try:
            time.sleep(0.5)
            assert fresh.snapshot() == [], "an answer must never be retained"
        finally:
            fresh.close()
    finally:
        for gw in (waiting, later, gone):
            pub.raw(topics.gateway_state(gw), b"", retain=True)
        pub.close()
        answers.close()
