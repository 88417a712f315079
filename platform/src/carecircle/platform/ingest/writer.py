"""The batch writer: decoded MQTT messages → readings/events/dead_letters, once each.

One call of :meth:`BatchWriter.write` is one database transaction for a batch of
MQTT messages:

1. every message is decoded (:mod:`.decode`); bad items and bad messages become
   ``dead_letters`` rows (stage ``ingest``) with their reason;
2. every good item is checked against the device registry (policy below);
3. readings and events are written with binary ``COPY``.  The fast path copies
   straight into the tables inside a savepoint; if a message id is already stored
   (a redelivery after a crash or an outage) the savepoint is rolled back and the
   rows go through a temporary staging table and
   ``INSERT … SELECT … ON CONFLICT (msg_id, time) DO NOTHING RETURNING msg_id``,
   so only new rows are stored and handed off;
4. on plain PostgreSQL the minute buckets that received readings are marked in
   ``rollup_dirty`` (same transaction), for the rollup job;
5. the transaction commits; then, in a second short transaction, devices' and
   gateways' ``last_seen``/``battery``/``status`` are brought up to date (at most one
   UPDATE statement per table per batch, skipped when nothing changed recently).

Registry policy: an item from a device that is not provisioned, or that is
provisioned on another gateway, is dead-lettered with the reason (the gateway will
resend nothing; the dead letter keeps the payload for replay after provisioning).
Resident and site are taken from the registry; when the envelope disagrees, the
registry wins, the stored row and the handed-off item carry the registry's values,
and ``cc_ingest_registry_corrections`` counts it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg

from carecircle.common.contract import Code, Kind, Topics
from carecircle.common.errors import StoreError, StoreUnavailable
from carecircle.platform.ingest import copyrows
from carecircle.platform.ingest.decode import decode
from carecircle.platform.ingest.items import Item

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

#: Device/gateway state is written again only when it moved by more than this.
TOUCH_INTERVAL = timedelta(seconds=30)
#: Bound of the writer's cache of encoded device fields (cleared when reached).
_SEGMENT_CACHE_MAX = 100_000


@dataclass(frozen=True)
class Inbound:
    """One MQTT message as the network thread saw it."""

    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 1
    #: Which MQTT connection delivered it (acks of older connections are skipped).
    generation: int = 0


@dataclass(frozen=True)
class DeadLetter:
    source: str
    gateway_id: str | None
    reason: str
    payload: bytes


@dataclass
class BatchOutcome:
    messages: int = 0
    items: int = 0
    new_items: list[Item] = field(default_factory=list)
    readings_written: int = 0
    events_written: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    corrections: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceInfo:
    gateway_id: str
    site_id: str
    resident_id: str | None


class DeviceDirectory:
    """Cached view of ``devices`` for the registry checks (reloaded periodically and on a miss)."""

    def __init__(self, ttl_s: float = 60.0, miss_reload_s: float = 2.0) -> None:
        self._devices: dict[str, DeviceInfo] = {}
        self._loaded_at = float("-inf")
        self._ttl_s = ttl_s
        self._miss_reload_s = miss_reload_s

    def _load(self, conn: Conn) -> None:
        # A gateway speaks for itself too (its heartbeats carry dev = its own id): it is
        # a device of its own gateway and site.  A real device of the same id wins.
        # Retired devices and gateways are unknown here: what they still send is dead-lettered.
        gateways = conn.execute(
            "SELECT id, site_id FROM gateways WHERE retired_at IS NULL"
        ).fetchall()
        rows = conn.execute(
            "SELECT id, gateway_id, site_id, resident_id FROM devices WHERE retired_at IS NULL"
        ).fetchall()
        devices = {str(g[0]): DeviceInfo(str(g[0]), str(g[1]), None) for g in gateways}
        devices.update({str(r[0]): DeviceInfo(str(r[1]), str(r[2]), r[3]) for r in rows})
        self._devices = devices
        self._loaded_at = time.monotonic()

    def refresh_if_stale(self, conn: Conn) -> None:
        if time.monotonic() - self._loaded_at > self._ttl_s:
            self._load(conn)

    def resolve(self, conn: Conn, device_ids: Iterable[str]) -> dict[str, DeviceInfo]:
        """Look up ``device_ids``; unknown ones trigger one (rate-limited) reload."""
        ids = set(device_ids)
        if ids - self._devices.keys() and (
            time.monotonic() - self._loaded_at > self._miss_reload_s
        ):
            self._load(conn)
        return {d: self._devices[d] for d in ids if d in self._devices}

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")


@dataclass
class _Touch:
    seen: datetime
    battery: float | None = None
    status: str | None = None


class BatchWriter:
    """Writes batches of uplink messages; one instance per worker thread (owns a connection)."""

    def __init__(
        self,
        connect: Callable[[], Conn],
        topics: Topics,
        *,
        clock: Callable[[], datetime],
        directory: DeviceDirectory | None = None,
    ) -> None:
        self._connect = connect
        self._topics = topics
        self._clock = clock
        self._conn: Conn | None = None
        self._directory = directory or DeviceDirectory()
        self._backend: str | None = None
        self._touched_devices: dict[str, _Touch] = {}
        self._touch_written_at: dict[str, float] = {}
        self._touched_gateways: dict[str, tuple[datetime, str]] = {}
        self._segments: dict[str, tuple[DeviceInfo, bytes]] = {}
        self._deadletter_prefix = f"{topics.base}/gw/"

    # -- connection -------------------------------------------------------------------------

    def _connection(self) -> Conn:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self.close()
        conn = self._connect()
        try:
            # Autocommit: every write is an explicit ``conn.transaction()`` block.
            if not conn.autocommit:
                conn.rollback()
                conn.autocommit = True
            # the COPY data is built here, its text fields in UTF-8 (see .copyrows)
            conn.execute("SET client_encoding TO 'UTF8'")
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS ingest_readings_stage "
                "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS ingest_events_stage "
                "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            row = conn.execute(
                "SELECT value FROM carecircle_meta WHERE key = 'timeseries_backend'"
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        self._backend = str(row[0]) if row else "plain"
        self._conn = conn
        self._directory.invalidate()
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                log.debug("closing a broken connection failed", exc_info=True)
            self._conn = None

    # -- the batch --------------------------------------------------------------------------

    def write(self, messages: Sequence[Inbound]) -> BatchOutcome:
        """Store a batch in one transaction; raises :class:`StoreError` (retry the same batch)."""
        try:
            return self._write(messages)
        except psycopg.OperationalError as err:
            self.close()
            raise StoreUnavailable(f"database unavailable while writing a batch: {err}") from err
        except psycopg.Error as err:
            raise StoreError(f"writing a batch failed: {err}") from err

    def _write(self, messages: Sequence[Inbound]) -> BatchOutcome:
        conn = self._connection()
        out = BatchOutcome(messages=len(messages))
        now = self._clock()
        self._directory.refresh_if_stale(conn)
        decoded: list[tuple[Inbound, list[Item]]] = []  # each message with its good items
        gateway_states: dict[str, tuple[datetime, str]] = {}
        for msg in messages:
            parsed = self._topics.parse_uplink(msg.topic)
            if parsed is not None:
                result = decode(msg.payload, topic_gateway=parsed[0], now=now)
                for rej in result.rejected:
                    out.dead_letters.append(
                        DeadLetter(
                            msg.topic,
                            result.gateway_id or parsed[0],
                            rej.reason,
                            _raw_bytes(rej.raw, msg.payload),
                        )
                    )
                if result.items:
                    decoded.append((msg, result.items))
                continue
            gw_topic = self._gateway_topic(msg.topic)
            if gw_topic is not None and gw_topic[1] == "state":
                state = _parse_state(msg.payload)
                if state is None:
                    out.dead_letters.append(
                        DeadLetter(
                            msg.topic,
                            gw_topic[0],
                            'gateway state is not {"state": "online"|"offline"}',
                            msg.payload,
                        )
                    )
                else:
                    gateway_states[gw_topic[0]] = (msg.received_at, state)
            elif gw_topic is not None and gw_topic[1] == "deadletter":
                out.dead_letters.append(
                    DeadLetter(msg.topic, gw_topic[0], _gateway_reason(msg.payload), msg.payload)
                )
            else:
                out.dead_letters.append(
                    DeadLetter(msg.topic, None, "not a CareCircle uplink topic", msg.payload)
                )
        out.items = sum(len(items) for _, items in decoded)
        devices = self._directory.resolve(conn, {env.dev for _, items in decoded for env in items})
        segments = self._device_segments(devices)
        # binary COPY data (see .copyrows), one list of byte strings per table
        readings: list[bytes] = []
        events: list[bytes] = []
        reading_ids: list[uuid.UUID] = []
        event_ids: list[uuid.UUID] = []
        # keyed by the id's integer: UUID.__hash__ is a Python-level call, int's is not
        envs: dict[int, Item] = {}
        minutes: set[int] = set()
        kinds: dict[Kind, int] = {}
        last_ts: dict[str, datetime] = {}  # per device, for last_seen
        reporting: set[str] = set()  # devices with battery or availability reports
        reading_row, event_row, micros = copyrows.reading, copyrows.event, copyrows.pg_micros
        for msg, items in decoded:
            received_us = micros(msg.received_at)
            for env in items:
                dev = env.dev
                info = devices.get(dev)
                if info is None or info.gateway_id != env.gw:
                    reason = (
                        f"device {dev!r} is not provisioned"
                        if info is None
                        else f"device {dev!r} belongs to gateway {info.gateway_id!r}, "
                        f"not {env.gw!r}"
                    )
                    out.dead_letters.append(
                        DeadLetter(msg.topic, env.gw, reason, env.to_envelope().to_json())
                    )
                    continue
                key = env.id.int
                if key in envs:
                    out.duplicates += 1
                    continue
                if env.res != info.resident_id or env.site != info.site_id:
                    env = msgspec.structs.replace(env, res=info.resident_id, site=info.site_id)
                    out.corrections += 1
                envs[key] = env
                ts = env.ts
                if dev not in last_ts or last_ts[dev] < ts:
                    last_ts[dev] = ts
                ts_us = micros(ts)
                kind = env.kind
                p = env.payload
                code = p.code
                if code is Code.BATTERY or code is Code.AVAILABILITY:
                    reporting.add(dev)
                if kind is Kind.READING:
                    readings.append(
                        reading_row(ts_us, received_us, key, p.value, segments[dev], code)
                    )
                    reading_ids.append(env.id)
                    minutes.add(ts_us // 60_000_000)
                else:
                    kinds[kind] = kinds.get(kind, 0) + 1
                    events.append(
                        event_row(
                            ts_us, received_us, key, p.value, segments[dev], code, kind, p.attrs
                        )
                    )
                    event_ids.append(env.id)
        if reading_ids:
            kinds[Kind.READING] = len(reading_ids)
        out.kinds.update((k._value_, n) for k, n in kinds.items())
        buckets = sorted(m + copyrows.PG_EPOCH_MINUTE for m in minutes)
        with conn.transaction():
            new_readings = self._store(conn, "readings", copyrows.READING_COLUMNS, readings)
            new_events = self._store(conn, "events", copyrows.EVENT_COLUMNS, events)
            if out.dead_letters:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO dead_letters (stage, source, gateway_id, reason, payload) "
                        "VALUES ('ingest', %s, %s, %s, %s)",
                        [(d.source, d.gateway_id, d.reason, d.payload) for d in out.dead_letters],
                    )
            if buckets and self._backend == "plain":
                conn.execute(
                    "INSERT INTO rollup_dirty (bucket) "
                    "SELECT to_timestamp(b * 60) FROM unnest(%s::bigint[]) AS b ORDER BY 1 "
                    "ON CONFLICT DO NOTHING",
                    (buckets,),
                )
        n_readings, n_events = len(reading_ids), len(event_ids)
        out.readings_written = n_readings if new_readings is None else len(new_readings)
        out.events_written = n_events if new_events is None else len(new_events)
        out.duplicates += n_readings + n_events - out.readings_written - out.events_written
        if new_readings is None and new_events is None:
            out.new_items = list(envs.values())
        else:
            fresh = {
                u.int
                for ids in (
                    reading_ids if new_readings is None else new_readings,
                    event_ids if new_events is None else new_events,
                )
                for u in ids
                if isinstance(u, uuid.UUID)
            }
            out.new_items = [e for i, e in envs.items() if i in fresh]
        try:
            self._touch(conn, envs.values(), last_ts, reporting, messages, gateway_states)
        except psycopg.Error as err:
            # The batch is committed; state columns catch up with the next batch.
            log.warning("updating device/gateway state failed: %s", err)
        return out

    def _device_segments(self, devices: dict[str, DeviceInfo]) -> dict[str, bytes]:
        """The COPY ``text`` fields gateway, device, resident, site of each device, encoded.

        Cached per registry snapshot: a reload of the directory makes new ``DeviceInfo``
        objects, and a changed object is encoded again.
        """
        cache = self._segments
        out: dict[str, bytes] = {}
        for dev, info in devices.items():
            hit = cache.get(dev)
            if hit is None or hit[0] is not info:
                seg = copyrows.device_fields(info.gateway_id, dev, info.resident_id, info.site_id)
                if len(cache) >= _SEGMENT_CACHE_MAX:
                    cache.clear()
                hit = cache[dev] = (info, seg)
            out[dev] = hit[1]
        return out

    def _store(
        self, conn: Conn, table: str, columns: Sequence[str], data: list[bytes]
    ) -> set[object] | None:
        """COPY ``data`` (binary rows) into ``table``; ``None`` = all new, else the new msg_ids."""
        if not data:
            return None
        try:
            with conn.transaction(), conn.cursor() as cur:
                copyrows.copy_in(cur, table, columns, data)
            return None
        except psycopg.errors.UniqueViolation:
            log.info("%s: batch holds already stored message ids; deduplicating", table)
        stage = f"ingest_{table}_stage"
        cols = ", ".join(columns)
        with conn.cursor() as cur:
            copyrows.copy_in(cur, stage, columns, data)
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "  # noqa: S608
                "ON CONFLICT (msg_id, time) DO NOTHING RETURNING msg_id"
            )
            new = {r[0] for r in cur.fetchall()}
            cur.execute(f"TRUNCATE {stage}")
        return new

    # -- device and gateway state -----------------------------------------------------------

    def _touch(
        self,
        conn: Conn,
        items: Iterable[Item],
        last_ts: dict[str, datetime],
        reporting: set[str],
        messages: Sequence[Inbound],
        gateway_states: dict[str, tuple[datetime, str]],
    ) -> None:
        """Bring devices' and gateways' state columns up to date after a batch.

        ``last_ts`` is each device's latest ``ts`` in the batch; ``reporting`` the devices
        that sent battery or availability reports, whose items are replayed in order.
        """
        latest: dict[str, _Touch] = {}
        received = max((m.received_at for m in messages), default=self._clock())
        # the writer's clock, not the wall's: a replay in simulated time must write
        # last_seen as often (in simulated time) as a live worker does
        now_s = self._clock().timestamp()
        fresh_after = now_s - TOUCH_INTERVAL.total_seconds()
        written_at = self._touch_written_at
        for dev, ts in last_ts.items():
            # nothing but "seen" to say: skipped if written < 30 s ago, else the latest
            # time seen (min(ts, received) is monotonic in ts)
            if dev not in reporting and written_at.get(dev, float("-inf")) <= fresh_after:
                latest[dev] = _Touch(min(ts, received), status="online")
        for env in items if reporting else ():
            if env.dev not in reporting:
                continue
            code = env.payload.code
            if (
                code is not Code.BATTERY
                and code is not Code.AVAILABILITY
                and written_at.get(env.dev, float("-inf")) > fresh_after
                and env.dev not in latest
            ):
                continue  # written < 30 s ago and nothing but "seen" to say yet
            seen = min(env.ts, received)
            t = latest.get(env.dev)
            if t is None:
                t = latest[env.dev] = _Touch(seen, status="online")
            newer = seen >= t.seen
            if newer:
                t.seen = seen
            if code is Code.BATTERY and (newer or t.battery is None):
                t.battery = env.payload.value
            elif code is Code.AVAILABILITY and newer:
                t.status = "online" if env.payload.value == 1 else "offline"
        dev_rows = []
        for dev, t in sorted(latest.items()):
            prev = self._touched_devices.get(dev)
            if (
                prev is not None
                and t.seen - prev.seen < TOUCH_INTERVAL
                and (t.battery is None or t.battery == prev.battery)
                and t.status == prev.status
            ):
                continue
            dev_rows.append((dev, t))
        gws: dict[str, datetime] = {}
        for m in messages:
            parsed = self._topics.parse_uplink(m.topic)
            if parsed is not None:
                gws[parsed[0]] = max(m.received_at, gws.get(parsed[0], m.received_at))
        gw_rows = []
        for gw, at in sorted(gws.items()):
            prev_gw = self._touched_gateways.get(gw)
            if prev_gw is not None and at - prev_gw[0] < TOUCH_INTERVAL and prev_gw[1] == "online":
                continue
            gw_rows.append((gw, at, "online"))
        state_rows = sorted((gw, status) for gw, (_, status) in gateway_states.items())
        if not dev_rows and not gw_rows and not state_rows:
            return
        with conn.transaction():
            if dev_rows:
                ids = [d for d, _ in dev_rows]
                conn.execute(
                    "SELECT 1 FROM devices WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,)
                )
                conn.execute(
                    """
                    UPDATE devices AS d SET
                        last_seen = GREATEST(d.last_seen, v.seen),
                        battery = CASE WHEN v.seen >= COALESCE(d.last_seen, '-infinity')
                                       THEN COALESCE(v.battery, d.battery) ELSE d.battery END,
                        status = CASE WHEN v.seen >= COALESCE(d.last_seen, '-infinity')
                                      THEN v.status ELSE d.status END
                    FROM unnest(%s::text[], %s::timestamptz[], %s::real[], %s::text[])
                         AS v(id, seen, battery, status)
                    WHERE d.id = v.id
                    """,
                    (
                        ids,
                        [t.seen for _, t in dev_rows],
                        [t.battery for _, t in dev_rows],
                        [t.status for _, t in dev_rows],
                    ),
                )
            if gw_rows:
                conn.execute(
                    "SELECT 1 FROM gateways WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                    ([g for g, _, _ in gw_rows],),
                )
                conn.execute(
                    """
                    UPDATE gateways AS g SET
                        last_seen = GREATEST(g.last_seen, v.at),
                        status = CASE WHEN v.at >= COALESCE(g.last_seen, '-infinity')
                                      THEN v.status ELSE g.status END
                    FROM unnest(%s::text[], %s::timestamptz[], %s::text[]) AS v(id, at, status)
                    WHERE g.id = v.id
                    """,
                    (
                        [g for g, _, _ in gw_rows],
                        [a for _, a, _ in gw_rows],
                        [s for _, _, s in gw_rows],
                    ),
                )
            if state_rows:
                # The retained state (online / offline by the will) sets the status only:
                # a retained message re-read on subscribe says nothing about last_seen.
                conn.execute(
                    "UPDATE gateways AS g SET status = v.status "
                    "FROM unnest(%s::text[], %s::text[]) AS v(id, status) WHERE g.id = v.id",
                    ([g for g, _ in state_rows], [s for _, s in state_rows]),
                )
        for dev, t in dev_rows:
            if t.status == "online":
                self._touch_written_at[dev] = now_s
            else:  # an offline device's next sign of life must be written at once
                self._touch_written_at.pop(dev, None)
            prev = self._touched_devices.get(dev)
            battery = t.battery if t.battery is not None else (prev.battery if prev else None)
            self._touched_devices[dev] = _Touch(t.seen, battery, t.status)
        for gw, at, status in gw_rows:
            self._touched_gateways[gw] = (at, status)
        for gw, status in state_rows:
            prev_at = self._touched_gateways.get(gw, (datetime.min.replace(tzinfo=UTC), ""))[0]
            self._touched_gateways[gw] = (prev_at, status)

    def _gateway_topic(self, topic: str) -> tuple[str, str] | None:
        if not topic.startswith(self._deadletter_prefix):
            return None
        rest = topic[len(self._deadletter_prefix) :].split("/")
        if len(rest) != 2:
            return None
        return rest[0], rest[1]


def _raw_bytes(raw: object, message: bytes) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, dict) and "items" in raw:
        return message  # the whole message was refused: keep it exactly as received
    try:
        return json.dumps(raw, default=str, ensure_ascii=False).encode()
    except (TypeError, ValueError):
        return repr(raw).encode()


def _parse_state(payload: bytes) -> str | None:
    text = payload.decode("utf-8", "replace").strip()
    if text in ("online", "offline"):
        return text
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    state = doc.get("state") if isinstance(doc, dict) else None
    return state if state in ("online", "offline") else None


def _gateway_reason(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except ValueError:
        return "gateway dead letter (unreadable)"
    reason = doc.get("reason") if isinstance(doc, dict) else None
    return f"gateway: {reason}" if isinstance(reason, str) else "gateway dead letter"
