"""The alerts domain's reads and its one table write (``activity_state``).

Alert rows themselves are written only by :mod:`.repository`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from psycopg.types.json import Jsonb

from carecircle.common.contract import MOTION_TYPES, PRESENCE_TYPES
from carecircle.platform.alerts.config import RuleRow
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.detectors.absence import ActivityEntry, DeviceState, GatewayState
from carecircle.platform.alerts.detectors.fall import HeldFall, WornReport
from carecircle.platform.alerts.detectors.threshold import Sample
from carecircle.platform.alerts.detectors.wakeup import Mark
from carecircle.platform.alerts.kinds import is_presence
from carecircle.platform.alerts.repository import Conn

_RESIDENT_COLS = "id, site_id, presence, presence_until, care_level, conditions, care_profile"


def _resident(row: Sequence[Any]) -> ResidentCtx:
    return ResidentCtx(
        id=row[0],
        site_id=row[1],
        presence=row[2],
        presence_until=row[3],
        care_level=row[4],
        conditions=tuple(row[5] or ()),
        care_profile=dict(row[6] or {}),
    )


def load_rules(conn: Conn) -> list[RuleRow]:
    rows = conn.execute("SELECT scope, scope_id, kind, params, enabled FROM alert_rules").fetchall()
    return [
        RuleRow(scope=r[0], scope_id=r[1], kind=r[2], params=dict(r[3]), enabled=r[4]) for r in rows
    ]


def residents(
    conn: Conn, ids: Iterable[str] | None = None, *, site_ids: Sequence[str] | None = None
) -> dict[str, ResidentCtx]:
    if site_ids is not None:
        rows = conn.execute(
            f"SELECT {_RESIDENT_COLS} FROM residents WHERE site_id = ANY(%s)",  # noqa: S608
            (list(site_ids),),
        ).fetchall()
    elif ids is None:
        rows = conn.execute(f"SELECT {_RESIDENT_COLS} FROM residents").fetchall()  # noqa: S608
    else:
        rows = conn.execute(
            f"SELECT {_RESIDENT_COLS} FROM residents WHERE id = ANY(%s)",  # noqa: S608
            (list(ids),),
        ).fetchall()
    return {r[0]: _resident(r) for r in rows}


def residents_of_sites(conn: Conn, site_ids: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for site, rid in conn.execute(
        "SELECT site_id, id FROM residents WHERE site_id = ANY(%s) ORDER BY id", (list(site_ids),)
    ).fetchall():
        out.setdefault(site, []).append(rid)
    return out


def device_types(conn: Conn, device_ids: Iterable[str]) -> dict[str, str]:
    rows = conn.execute(
        "SELECT id, type FROM devices WHERE id = ANY(%s)", (list(device_ids),)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def room_kinds(conn: Conn, room_ids: Iterable[str]) -> dict[str, str]:
    rows = conn.execute(
        "SELECT id, kind FROM rooms WHERE id = ANY(%s)", (list(room_ids),)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def resident_samples(
    conn: Conn, resident_id: str, code: str, since: datetime, until: datetime
) -> list[Sample]:
    """Readings of one resident and code in ``(since, until]`` (resident/code/time index)."""
    rows = conn.execute(
        "SELECT time, value FROM readings WHERE resident_id = %s AND code = %s "
        "AND time > %s AND time <= %s ORDER BY time",
        (resident_id, code, since, until),
    ).fetchall()
    return [Sample(r[0], r[1]) for r in rows]


def device_samples(
    conn: Conn, device_id: str, code: str, since: datetime, until: datetime
) -> list[Sample]:
    rows = conn.execute(
        "SELECT time, value FROM readings WHERE device_id = %s AND code = %s "
        "AND time > %s AND time <= %s ORDER BY time",
        (device_id, code, since, until),
    ).fetchall()
    return [Sample(r[0], r[1]) for r in rows]


#: ``activity_state`` code of a band's worn flag (1 on the wrist, 0 off; from the
#: ``attrs.worn`` of its battery status): ``last_change_at`` is since when.
WORN = "worn"


@dataclass(frozen=True)
class ActivityUpdate:
    device_id: str
    code: str
    site_id: str
    resident_id: str | None
    room_id: str | None
    at: datetime
    value: float | None
    activation: bool


def upsert_activity(conn: Conn, updates: Sequence[ActivityUpdate]) -> None:
    """Fold activity into ``activity_state``; order-independent, so safe across workers."""
    if not updates:
        return
    # one row per key per statement (ON CONFLICT cannot touch a row twice)
    latest: dict[tuple[str, str], ActivityUpdate] = {}
    active: dict[tuple[str, str], datetime] = {}
    run_start: dict[tuple[str, str], datetime] = {}  # first time of the final equal-value run
    # keys whose value changed inside the batch: a change even when the batch ends on
    # the stored value (a bathroom visit in and out within one batch)
    changed: set[str] = set()
    for u in sorted(updates, key=lambda u: u.at):
        key = (u.device_id, u.code)
        prev = latest.get(key)
        if prev is None or prev.value != u.value:
            run_start[key] = u.at
            if prev is not None:
                changed.add(f"{u.device_id}|{u.code}")
        latest[key] = u
        if u.activation:
            active[key] = u.at
    # One statement with rows in key order: row locks are always taken in the same
    # order, so concurrent ingest workers cannot deadlock, and are held only briefly.
    rows = [
        (
            key[0],
            key[1],
            u.site_id,
            u.resident_id,
            u.room_id,
            active.get(key),
            u.value,
            u.at,
            run_start[key],
        )
        for key, u in sorted(latest.items())
    ]
    cols = [list(c) for c in zip(*rows, strict=True)]
    conn.execute(
        """
        INSERT INTO activity_state AS s (device_id, code, site_id, resident_id, room_id,
            last_active_at, last_value, last_value_at, last_change_at)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                             %s::timestamptz[], %s::float8[], %s::timestamptz[],
                             %s::timestamptz[])
        ON CONFLICT (device_id, code) DO UPDATE SET
            site_id = EXCLUDED.site_id,
            resident_id = EXCLUDED.resident_id,
            room_id = EXCLUDED.room_id,
            last_active_at = GREATEST(s.last_active_at, EXCLUDED.last_active_at),
            last_change_at = CASE
                WHEN EXCLUDED.last_value_at > s.last_value_at
                     AND (EXCLUDED.last_value IS DISTINCT FROM s.last_value
                          OR (EXCLUDED.last_change_at > s.last_value_at
                              AND EXCLUDED.device_id || '|' || EXCLUDED.code = ANY(%s::text[])))
                THEN EXCLUDED.last_change_at ELSE s.last_change_at END,
            last_value = CASE WHEN EXCLUDED.last_value_at > s.last_value_at
                THEN EXCLUDED.last_value ELSE s.last_value END,
            last_value_at = GREATEST(s.last_value_at, EXCLUDED.last_value_at)
        """,
        [*cols, sorted(changed)],
    )


def activity_entries(
    conn: Conn, site_ids: Sequence[str] | None = None
) -> dict[str, list[ActivityEntry]]:
    """Activity per resident: their own devices, plus their site's shared sensors.

    A shared sensor in a room that is some resident's own room (``residents.room_id``)
    counts only for the residents of that room.
    """
    rows = conn.execute(
        """
        WITH r AS (
            SELECT id, site_id, room_id FROM residents
            WHERE %(sites)s::text[] IS NULL OR site_id = ANY(%(sites)s)
        ), a AS (
            SELECT r.id AS rid, a.* FROM r JOIN activity_state a ON a.resident_id = r.id
            UNION ALL
            -- a shared sensor in someone's own room (nursing home) belongs to the people
            -- of that room; elsewhere (bathroom, corridor, a household) to everyone there
            SELECT r.id, a.* FROM r JOIN activity_state a
                ON a.site_id = r.site_id AND a.resident_id IS NULL
            WHERE a.room_id IS NULL OR a.room_id IS NOT DISTINCT FROM r.room_id
               OR NOT EXISTS (SELECT 1 FROM residents o WHERE o.room_id = a.room_id)
        )
        SELECT a.rid, a.device_id, rm.kind, a.code, a.last_active_at, a.last_value,
               a.last_change_at, a.resident_id IS NOT DISTINCT FROM a.rid, a.last_value_at,
               dv.type
        FROM a LEFT JOIN rooms rm ON rm.id = a.room_id
        LEFT JOIN devices dv ON dv.id = a.device_id
        """,
        {"sites": list(site_ids) if site_ids is not None else None},
    ).fetchall()
    out: dict[str, list[ActivityEntry]] = {}
    for rid, dev, room_kind, code, active_at, value, change_at, own, value_at, typ in rows:
        out.setdefault(rid, []).append(
            ActivityEntry(
                dev,
                room_kind,
                code,
                active_at,
                value,
                change_at,
                own,
                value_at,
                presence=is_presence(code, typ),
            )
        )
    return out


#: Codes the missed wake-up check reads (``with_door``: and the front door's).
WAKE_CODES = ("motion", "bathroom_presence", "bed_occupancy", "steps")


def wake_marks(
    conn: Conn,
    resident_ids: Sequence[str],
    since: datetime,
    until: datetime,
    *,
    with_door: bool = False,
) -> dict[str, list[Mark]]:
    """Stored readings the missed wake-up check counts, per resident, in ``[since, until)``
    (``with_door``: door readings too, for ``wakeup.presumed_out``).

    The same devices as :func:`activity_entries`: the resident's own and the site's
    shared sensors (a shared sensor in another resident's own room excepted).  Read by
    device (``readings_device_time_idx``); once per local day (``jobs.WakeupCache``).
    """
    rows = conn.execute(
        """
        WITH r AS (SELECT id, site_id, room_id FROM residents WHERE id = ANY(%(res)s)),
        d AS (
            SELECT r.id AS rid, dv.id AS device_id, rm.kind AS room_kind,
                   dv.resident_id IS NOT DISTINCT FROM r.id AS own, dv.type
            FROM r JOIN devices dv ON dv.site_id = r.site_id
                 AND (dv.resident_id = r.id OR dv.resident_id IS NULL)
            LEFT JOIN rooms rm ON rm.id = dv.room_id
            WHERE dv.retired_at IS NULL
              AND (dv.resident_id = r.id OR dv.room_id IS NULL
                   OR dv.room_id IS NOT DISTINCT FROM r.room_id
                   OR NOT EXISTS (SELECT 1 FROM residents o WHERE o.room_id = dv.room_id))
        )
        SELECT d.rid, x.time, x.code, x.value, d.room_kind, d.device_id, d.own, d.type
        FROM d JOIN readings x ON x.device_id = d.device_id
        WHERE x.time >= %(since)s AND x.time < %(until)s
          AND x.code = ANY(%(codes)s)
        """,
        {
            "res": list(resident_ids),
            "since": since,
            "until": until,
            "codes": [*WAKE_CODES, "door"] if with_door else list(WAKE_CODES),
        },
    ).fetchall()
    out: dict[str, list[Mark]] = {rid: [] for rid in resident_ids}
    for rid, at, code, value, room_kind, dev, own, typ in rows:
        out[rid].append(Mark(at, code, value, room_kind, dev, own, is_presence(code, typ)))
    return out


def wakeup_alert_days(
    conn: Conn, resident_ids: Sequence[str], since: datetime, tz: tzinfo
) -> dict[str, set[date]]:
    """Local days on which a missed wake-up alert of each resident was opened or (an
    alert left open, refreshed by a later morning's finding) last seen, from ``since``."""
    rows = conn.execute(
        "SELECT resident_id, opened_at, last_seen_at FROM alerts "
        "WHERE kind = 'missed_wakeup' AND resident_id = ANY(%s) AND last_seen_at >= %s",
        (list(resident_ids), since),
    ).fetchall()
    out: dict[str, set[date]] = {}
    for rid, opened, seen in rows:
        out.setdefault(rid, set()).update(
            t.astimezone(tz).date() for t in (opened, seen) if t is not None and t >= since
        )
    return out


def home_activations(
    conn: Conn, site_id: str, since: datetime, until: datetime, enough: int
) -> int | None:
    """Activations of the site's shared motion/presence sensors in ``(since, until]``,
    counted up to ``enough``; ``None`` when the site has no such sensor.

    A PIR's every ``occupancy: true`` is one; a presence sensor's (``PRESENCE_TYPES``)
    only a change to occupied (its first reading in the range included when occupied):
    its re-sent "occupied" is one person staying, not more people moving about.
    """
    rows = conn.execute(
        "SELECT id, type = ANY(%s) FROM devices WHERE site_id = %s AND resident_id IS NULL "
        "AND retired_at IS NULL AND type = ANY(%s)",
        (sorted(PRESENCE_TYPES), site_id, sorted(MOTION_TYPES)),
    ).fetchall()
    if not rows:
        return None
    row = conn.execute(
        """
        SELECT count(*) FROM (
            SELECT 1 FROM (
                SELECT x.value, d.presence,
                       lag(x.value) OVER (PARTITION BY x.device_id ORDER BY x.time) AS prev
                FROM readings x
                JOIN unnest(%s::text[], %s::bool[]) AS d(id, presence) ON d.id = x.device_id
                WHERE x.time > %s AND x.time <= %s
                  AND x.code IN ('motion', 'bathroom_presence')
            ) y
            WHERE y.value > 0 AND (NOT y.presence OR y.prev IS NULL OR y.prev <= 0)
            LIMIT %s
        ) z
        """,
        ([r[0] for r in rows], [bool(r[1]) for r in rows], since, until, enough),
    ).fetchone()
    return int(row[0]) if row else 0


def device_states(conn: Conn, site_ids: Sequence[str] | None = None) -> list[DeviceState]:
    rows = conn.execute(
        "SELECT id, site_id, gateway_id, resident_id, power, offline_timeout_s, status, "
        "last_seen, battery, type FROM devices WHERE retired_at IS NULL "
        "AND (%(sites)s::text[] IS NULL OR site_id = ANY(%(sites)s))",
        {"sites": list(site_ids) if site_ids is not None else None},
    ).fetchall()
    return [DeviceState(*r) for r in rows]


def gateway_states(conn: Conn, site_ids: Sequence[str] | None = None) -> list[GatewayState]:
    rows = conn.execute(
        "SELECT id, site_id, status, last_seen FROM gateways WHERE retired_at IS NULL "
        "AND (%(sites)s::text[] IS NULL OR site_id = ANY(%(sites)s))",
        {"sites": list(site_ids) if site_ids is not None else None},
    ).fetchall()
    return [GatewayState(*r) for r in rows]


def low_confidence_falls(
    conn: Conn, resident_ids: Sequence[str], since: datetime, until: datetime, below: float
) -> list[HeldFall]:
    """Residents' fall alarms in ``(since, until]`` whose ``attrs.confidence`` is below
    ``below`` (the highest floor of any rule: each is judged against its own rule later).
    Read by resident (``events_resident_time_idx``): a band belongs to its wearer."""
    rows = conn.execute(
        """
        SELECT msg_id::text, device_id, site_id, resident_id, time,
               (attrs->>'confidence')::float8
        FROM events
        WHERE resident_id = ANY(%(res)s) AND time > %(since)s AND time <= %(until)s
          AND code = 'fall' AND kind = 'event' AND coalesce(value, 1) >= 1
          AND jsonb_typeof(attrs->'confidence') = 'number'
          AND (attrs->>'confidence')::float8 < %(below)s
        ORDER BY time
        """,
        {"res": list(resident_ids), "since": since, "until": until, "below": below},
    ).fetchall()
    return [HeldFall(*r) for r in rows]


def worn_reports(conn: Conn, device_id: str, after: datetime, until: datetime) -> list[WornReport]:
    """The band's reports in ``(after, until]``: vitals (worn) and its battery status,
    which carries ``attrs.worn`` (the gateway drops vitals of a band off the wrist)."""
    rows = conn.execute(
        """
        (SELECT time, true FROM readings WHERE device_id = %(dev)s
             AND code IN ('heart_rate', 'spo2', 'skin_temperature')
             AND time > %(after)s AND time <= %(until)s ORDER BY time LIMIT 5)
        UNION ALL
        (SELECT time, (attrs->>'worn')::boolean FROM events WHERE device_id = %(dev)s
             AND code = 'battery' AND jsonb_typeof(attrs->'worn') = 'boolean'
             AND time > %(after)s AND time <= %(until)s ORDER BY time LIMIT 5)
        """,
        {"dev": device_id, "after": after, "until": until},
    ).fetchall()
    return [WornReport(r[0], bool(r[1])) for r in rows]


def fall_alert_since(conn: Conn, subject: str, since: datetime) -> bool:
    """Has a fall alert of ``subject`` been active since ``since``?"""
    row = conn.execute(
        "SELECT 1 FROM alerts WHERE subject = %s AND kind = 'fall' AND last_seen_at >= %s LIMIT 1",
        (subject, since),
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class AlertMark:
    id: int
    status: str
    opened_at: datetime
    last_seen_at: datetime


def latest_alerts(
    conn: Conn, kinds: Sequence[str], since: datetime
) -> dict[tuple[str, str], AlertMark]:
    """Per (subject, kind): the active alert, else the latest one opened since ``since``."""
    rows = conn.execute(
        """
        SELECT DISTINCT ON (subject, kind) subject, kind, id, status, opened_at, last_seen_at
        FROM alerts
        WHERE kind = ANY(%s) AND (status NOT IN ('resolved', 'cancelled') OR opened_at >= %s)
        ORDER BY subject, kind, (status NOT IN ('resolved', 'cancelled')) DESC, opened_at DESC
        """,
        (list(kinds), since),
    ).fetchall()
    return {(r[0], r[1]): AlertMark(r[2], r[3], r[4], r[5]) for r in rows}


def recent_closures(conn: Conn, subject: str, kind: str, since: datetime) -> list[datetime]:
    """When alerts of (subject, kind) closed since ``since`` (flapping damping)."""
    rows = conn.execute(
        "SELECT closed_at FROM alerts WHERE subject = %s AND kind = %s "
        "AND status IN ('resolved', 'cancelled') AND closed_at >= %s ORDER BY closed_at",
        (subject, kind, since),
    ).fetchall()
    return [r[0] for r in rows]


def put_rule(
    conn: Conn,
    scope: str,
    scope_id: str | None,
    kind: str,
    params: dict[str, Any],
    enabled: bool,
    actor: str,
    at: datetime,
) -> None:
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO alert_rules (scope, scope_id, kind, params, enabled, updated_at, updated_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (scope, scope_id, kind) DO UPDATE SET params = EXCLUDED.params,
                enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at,
                updated_by = EXCLUDED.updated_by
            """,
            (scope, scope_id, kind, Jsonb(params), enabled, at, actor),
        )
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, object_type, object_id, detail) "
            "VALUES (%s, %s, 'alert_rule.put', 'alert_rule', %s, %s)",
            (
                at,
                actor,
                f"{scope}:{scope_id or '*'}:{kind}",
                Jsonb({"params": params, "enabled": enabled}),
            ),
        )


def delete_rule(
    conn: Conn, scope: str, scope_id: str | None, kind: str, actor: str, at: datetime
) -> bool:
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM alert_rules WHERE scope = %s AND scope_id IS NOT DISTINCT FROM %s "
            "AND kind = %s",
            (scope, scope_id, kind),
        )
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, object_type, object_id, detail) "
            "VALUES (%s, %s, 'alert_rule.delete', 'alert_rule', %s, '{}')",
            (at, actor, f"{scope}:{scope_id or '*'}:{kind}"),
        )
        return cur.rowcount > 0
