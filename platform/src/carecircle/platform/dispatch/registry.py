"""Reading responders and alerts from the database for dispatch; saving responders.

``save_responder`` writes a :class:`ResponderSpec` (row, covered places, weekly
shifts); the provisioning loader should call it for every responder.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, time
from typing import Any

import psycopg

from carecircle.common.contract.provisioning import ResponderSpec
from carecircle.common.errors import NotFound
from carecircle.platform.dispatch.models import (
    HOLDING,
    AlertInfo,
    Availability,
    Location,
    Responder,
    Shift,
    TravelMode,
)
from carecircle.platform.privacy.contacts import plain_or_none, seal_contacts
from carecircle.platform.privacy.crypto import PiiCipher

Conn = psycopg.Connection[Any]


def save_responder(conn: Conn, spec: ResponderSpec, cipher: PiiCipher | None = None) -> None:
    """Insert or update a responder with its covered places and shifts (one transaction).

    With a ``cipher`` the phone number is stored sealed only (docs/privacy.md)."""
    shifts = [Shift.parse(raw) for raw in spec.shifts]  # validate before writing
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO responders (id, display_name, kind, place_id, site_id, lat, lon,
                                    travel_mode, skills, availability, phone)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name,
                kind = EXCLUDED.kind, place_id = EXCLUDED.place_id, site_id = EXCLUDED.site_id,
                lat = EXCLUDED.lat, lon = EXCLUDED.lon, travel_mode = EXCLUDED.travel_mode,
                skills = EXCLUDED.skills, availability = EXCLUDED.availability,
                phone = EXCLUDED.phone
            """,
            (
                spec.id,
                spec.display_name,
                spec.kind,
                spec.place_id,
                spec.site_id,
                spec.lat,
                spec.lon,
                spec.travel_mode,
                list(spec.skills),
                spec.availability,
                plain_or_none(spec.phone, cipher),
            ),
        )
        if cipher is not None:
            seal_contacts(conn, cipher, "responders", "phone", {spec.id: spec.phone})
        conn.execute("DELETE FROM responder_coverage WHERE responder_id = %s", (spec.id,))
        for place in spec.covers:
            conn.execute(
                "INSERT INTO responder_coverage (responder_id, place_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (spec.id, place),
            )
        conn.execute("DELETE FROM responder_shifts WHERE responder_id = %s", (spec.id,))
        for shift in shifts:
            conn.execute(
                "INSERT INTO responder_shifts (responder_id, days, start_time, end_time) "
                "VALUES (%s, %s, %s, %s)",
                (spec.id, sorted(shift.days), shift.start, shift.end),
            )


def load_responders(conn: Conn, ids: Iterable[str] | None = None) -> list[Responder]:
    where, params = ("", ()) if ids is None else ("WHERE r.id = ANY(%s)", (list(ids),))
    rows = conn.execute(
        f"""
        SELECT r.id, r.kind, r.lat, r.lon, r.travel_mode, r.skills, r.availability,
               r.place_id, r.site_id, (r.phone IS NOT NULL OR r.phone_enc IS NOT NULL),
               COALESCE((SELECT array_agg(c.place_id::text) FROM responder_coverage c
                         WHERE c.responder_id = r.id), '{{}}'::text[])
        FROM responders r {where} ORDER BY r.id
        """,  # noqa: S608 - fixed fragments only
        params,
    ).fetchall()
    shifts: dict[str, list[Shift]] = defaultdict(list)
    for rid, days, start, end in conn.execute(
        "SELECT responder_id, days, start_time, end_time FROM responder_shifts ORDER BY id"
    ).fetchall():
        assert isinstance(start, time) and isinstance(end, time)
        shifts[str(rid)].append(Shift(frozenset(int(d) for d in days), start, end))
    return [
        Responder(
            id=str(r[0]),
            kind=str(r[1]),
            location=Location(float(r[2]), float(r[3])),
            travel_mode=TravelMode(r[4]),
            skills=frozenset(r[5] or ()),
            availability=Availability(r[6]),
            place_id=r[7],
            site_id=r[8],
            has_phone=bool(r[9]),
            covers=frozenset(r[10] or ()),
            shifts=tuple(shifts.get(str(r[0]), ())),
        )
        for r in rows
    ]


def holders(conn: Conn) -> set[str]:
    """Responders holding a task right now (accepted, en route or on scene)."""
    rows = conn.execute(
        "SELECT DISTINCT responder_id FROM tasks WHERE status = ANY(%s)",
        ([s.value for s in HOLDING],),
    ).fetchall()
    return {str(r[0]) for r in rows}


def recent_load(conn: Conn, since: datetime) -> dict[str, int]:
    rows = conn.execute(
        "SELECT responder_id, count(*) FROM tasks WHERE accepted_at >= %s GROUP BY responder_id",
        (since,),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def alert_info(conn: Conn, alert_id: int) -> tuple[AlertInfo, str]:
    """The alert as dispatch sees it, and its status."""
    row = conn.execute(
        """
        SELECT a.id, a.kind, a.severity, a.site_id, s.lat, s.lon, a.opened_at, a.resident_id,
               a.status,
               (WITH RECURSIVE chain(id, parent_id) AS (
                    SELECT p.id, p.parent_id FROM places p WHERE p.id = s.place_id
                    UNION ALL
                    SELECT p.id, p.parent_id FROM places p JOIN chain c ON p.id = c.parent_id)
                SELECT array_agg(id::text) FROM chain)
        FROM alerts a JOIN sites s ON s.id = a.site_id WHERE a.id = %s
        """,
        (alert_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
    info = AlertInfo(
        id=int(row[0]),
        kind=str(row[1]),
        severity=str(row[2]),
        site_id=str(row[3]),
        location=Location(float(row[4]), float(row[5])),
        opened_at=row[6],
        resident_id=row[7],
        places=frozenset(row[9] or ()),
    )
    return info, str(row[8])


def family_contacts(conn: Conn, resident_id: str | None) -> list[tuple[str, bool]]:
    """``(family_member_id, has a phone number)`` of family linked to the resident who
    consented to alerts (the number itself is opened only at delivery: ``PhoneBook``)."""
    if resident_id is None:
        return []
    rows = conn.execute(
        "SELECT f.id, (f.phone IS NOT NULL OR f.phone_enc IS NOT NULL) "
        "FROM family_links l JOIN family_members f "
        "ON f.id = l.family_member_id WHERE l.resident_id = %s "
        "AND COALESCE((l.consent ->> 'alerts')::boolean, false) ORDER BY f.id",
        (resident_id,),
    ).fetchall()
    return [(str(r[0]), bool(r[1])) for r in rows]
