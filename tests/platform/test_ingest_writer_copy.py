"""The writer's binary COPY data (``ingest.copyrows``) stores exactly the decoded values.

Readings and events go through the fast path (COPY into the tables) and, redelivered,
through the staging table; what is read back must equal the items field by field:
instants to the microsecond whatever the offset, NULL values, text outside ASCII in
``attrs``, the minute buckets marked for the rollups.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg

from carecircle.common.contract import Topics, Uplink
from carecircle.platform.ingest import BatchWriter, Inbound
from carecircle.platform.registry import provision
from carecircle.platform.store import connect
from tests.platform.ingest_support import batch, item, population

Conn = psycopg.Connection[tuple[object, ...]]

RECEIVED = datetime(2026, 12, 3, 9, 15, 30, 123456, tzinfo=UTC)


def test_copied_rows_read_back_equal_to_the_items(
    db: Conn, database_url: str, topic_root: str
) -> None:
    p = f"c{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=1, devices=2))
    gw, site, res = f"{p}gw0", f"{p}hh0", f"{p}r0"
    east = timezone(timedelta(hours=8))
    base = datetime.now(UTC).replace(microsecond=654321) - timedelta(minutes=5)
    d0, d1 = f"{gw}-d0", f"{gw}-d1"

    def at(seconds: float) -> datetime:
        return base + timedelta(seconds=seconds)

    docs: list[dict[str, Any]] = [
        item(gw, d0, site=site, res=res, ts=base, value=72),
        item(gw, d0, site=site, res=res, ts=at(61).astimezone(east), value=72.5),
        item(gw, d1, site=site, res=res, ts=at(120), code="motion", value=1),
        item(gw, d1, site=site, res=None, ts=at(-3 * 86_400), code="steps", value=0),
        item(
            gw,
            d1,
            site=site,
            res=res,
            ts=at(3),
            code="fall",
            value=1,
            kind="event",
            attrs={"note": "跌倒 ü", "confidence": 0.5, "n": 3, "worn": True, "x": None},
        ),
        item(gw, d0, site=site, res=res, ts=at(4), code="sos", value=None, kind="event"),
    ]
    topics = Topics(topic_root)
    writer = BatchWriter(lambda: connect(database_url), topics, clock=lambda: datetime.now(UTC))
    msg = Inbound(topics.uplink(gw, Uplink.BATCH), batch(gw, docs), RECEIVED, 1)
    try:
        out = writer.write([msg])
        assert (out.readings_written, out.events_written, out.duplicates) == (4, 2, 0)
        assert out.corrections == 1  # the registry's resident for the item that named none
        assert out.kinds == {"reading": 4, "event": 2}

        def shared_columns(d: dict[str, Any]) -> tuple[Any, ...]:
            """The columns both tables share, as the writer must have stored them."""
            value = d["payload"]["value"]
            return (
                uuid.UUID(d["id"]),
                datetime.fromisoformat(d["ts"]),
                RECEIVED,
                gw,
                d["dev"],
                res,
                site,
                None if value is None else float(value),
            )

        readings = db.execute(
            "SELECT msg_id, time, received_at, gateway_id, device_id, resident_id, site_id, "
            "value, code FROM readings WHERE gateway_id = %s ORDER BY time",
            (gw,),
        ).fetchall()
        want = [
            (*shared_columns(d), d["payload"]["code"])
            for d in sorted(
                (d for d in docs if d["kind"] == "reading"),
                key=lambda d: datetime.fromisoformat(d["ts"]),
            )
        ]
        assert readings == want
        events = db.execute(
            "SELECT msg_id, time, received_at, gateway_id, device_id, resident_id, site_id, "
            "value, kind, code, attrs FROM events WHERE gateway_id = %s ORDER BY time",
            (gw,),
        ).fetchall()
        assert events == [
            (*shared_columns(d), "event", d["payload"]["code"], d["payload"].get("attrs", {}))
            for d in docs[4:]
        ]
        minutes = {
            datetime.fromisoformat(d["ts"]).astimezone(UTC).replace(second=0, microsecond=0)
            for d in docs
            if d["kind"] == "reading"
        }
        marked = {
            r[0]
            for r in db.execute(
                "SELECT bucket FROM rollup_dirty WHERE bucket = ANY(%s)", (sorted(minutes),)
            )
        }
        assert marked == minutes

        # redelivered with one new reading: through the staging table, only that one stored
        extra = item(gw, f"{gw}-d0", site=site, res=res, ts=base + timedelta(seconds=9), value=99)
        again = Inbound(topics.uplink(gw, Uplink.BATCH), batch(gw, [*docs, extra]), RECEIVED, 2)
        out = writer.write([again])
        assert (out.readings_written, out.events_written, out.duplicates) == (1, 0, 6)
        assert [str(i.id) for i in out.new_items] == [extra["id"]]
        row = db.execute(
            "SELECT value, time FROM readings WHERE msg_id = %s", (uuid.UUID(extra["id"]),)
        ).fetchone()
        assert row == (99.0, datetime.fromisoformat(extra["ts"]))
        stored = db.execute("SELECT count(*) FROM readings WHERE gateway_id = %s", (gw,)).fetchone()
        assert stored == (5,)
    finally:
        writer.close()
