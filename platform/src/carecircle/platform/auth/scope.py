"""The authorization rules of :mod:`.policy`, in SQL: list filters and resource facts.

List queries add ``scope.<kind>(principal, alias)`` to their WHERE clause, so rows
outside the caller's scope never leave the database.  Single-object reads load a
:class:`~.policy.Resource` with :func:`load` and decide with :func:`.policy.require`.
Both express the same rules; the authorization matrix test holds them together.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from carecircle.platform.auth.policy import Principal, Resource, Role

Conn = psycopg.Connection[Any]
Cond = sql.Composable
FALSE: Cond = sql.SQL("FALSE")


def _subtree_sites(place_id: str) -> Cond:
    return sql.SQL(
        "(SELECT s.id FROM sites s WHERE s.place_id IN (SELECT id FROM cc_place_subtree({})))"
    ).format(sql.Literal(place_id))


def _place_scope(p: Principal) -> str | None:
    """The place whose subtree the principal sees (admins, township staff)."""
    if p.role is Role.ADMIN or (p.role is Role.STAFF and p.site_id is None):
        return p.place_id
    return None


def _family_residents(p: Principal, consent: str | None) -> Cond:
    flag = (
        sql.SQL(" AND coalesce((consent->>{})::boolean, false)").format(sql.Literal(consent))
        if consent
        else sql.SQL("")
    )
    return sql.SQL("(SELECT resident_id FROM family_links WHERE family_member_id = {}{})").format(
        sql.Literal(p.family_member_id), flag
    )


def _responder_alerts(p: Principal) -> Cond:
    return sql.SQL("(SELECT alert_id FROM responder_alerts WHERE responder_id = {})").format(
        sql.Literal(p.responder_id)
    )


def places(p: Principal, id_col: str) -> Cond:
    place = _place_scope(p)
    if place is None:
        return FALSE
    return sql.SQL("{} IN (SELECT id FROM cc_place_subtree({}))").format(
        sql.SQL(id_col), sql.Literal(place)
    )


def sites(p: Principal, site_col: str) -> Cond:
    """Sites (and devices, gateways by their site column) the principal sees."""
    col = sql.SQL(site_col)
    place = _place_scope(p)
    if place is not None:
        return sql.SQL("{} IN {}").format(col, _subtree_sites(place))
    if p.role is Role.STAFF:
        return sql.SQL("{} = {}").format(col, sql.Literal(p.site_id))
    return FALSE


def residents(p: Principal, alias: str, consent: str | None = None) -> Cond:
    """Residents (row alias ``alias``) the principal sees; ``consent`` for family."""
    a = sql.Identifier(alias)
    place = _place_scope(p)
    if place is not None:
        return sql.SQL("{}.site_id IN {}").format(a, _subtree_sites(place))
    if p.role is Role.STAFF:
        s = sql.Literal(p.site_id)
        return sql.SQL("({a}.site_id = {s} OR {a}.day_care_site_id = {s})").format(a=a, s=s)
    if p.role is Role.RESPONDER:
        return sql.SQL("{}.id IN (SELECT al.resident_id FROM alerts al WHERE al.id IN {})").format(
            a, _responder_alerts(p)
        )
    return sql.SQL("{}.id IN {}").format(a, _family_residents(p, consent))


def alerts(p: Principal, alias: str) -> Cond:
    a = sql.Identifier(alias)
    place = _place_scope(p)
    if place is not None:
        return sql.SQL("{}.site_id IN {}").format(a, _subtree_sites(place))
    if p.role is Role.STAFF:
        s = sql.Literal(p.site_id)
        return sql.SQL(
            "({a}.site_id = {s} OR {a}.resident_id IN "
            "(SELECT id FROM residents WHERE site_id = {s} OR day_care_site_id = {s}))"
        ).format(a=a, s=s)
    if p.role is Role.RESPONDER:
        return sql.SQL("{}.id IN {}").format(a, _responder_alerts(p))
    return sql.SQL("{}.resident_id IN {}").format(a, _family_residents(p, "alerts"))


def responders(p: Principal, alias: str) -> Cond:
    a = sql.Identifier(alias)
    place = _place_scope(p)
    if place is not None:
        return sql.SQL(
            "({a}.place_id IN (SELECT id FROM cc_place_subtree({p})) OR {a}.site_id IN {s})"
        ).format(a=a, p=sql.Literal(place), s=_subtree_sites(place))
    if p.role is Role.STAFF:
        return sql.SQL("{}.site_id = {}").format(a, sql.Literal(p.site_id))
    return FALSE


# --- facts about one object -------------------------------------------------------

_FACTS: dict[str, str] = {
    "place": """
        SELECT cc_place_path(id) AS place_path, ARRAY[]::text[] AS site_ids,
               NULL::text AS resident_id, NULL::bigint AS alert_id
        FROM places WHERE id = %(id)s""",
    "site": """
        SELECT cc_place_path(place_id) AS place_path, ARRAY[id::text] AS site_ids,
               NULL::text AS resident_id, NULL::bigint AS alert_id
        FROM sites WHERE id = %(id)s""",
    "resident": """
        SELECT cc_place_path(s.place_id) AS place_path,
               array_remove(ARRAY[r.site_id::text, r.day_care_site_id::text], NULL) AS site_ids,
               r.id::text AS resident_id, NULL::bigint AS alert_id
        FROM residents r JOIN sites s ON s.id = r.site_id WHERE r.id = %(id)s""",
    "device": """
        SELECT cc_place_path(s.place_id) AS place_path, ARRAY[d.site_id::text] AS site_ids,
               NULL::text AS resident_id, NULL::bigint AS alert_id
        FROM devices d JOIN sites s ON s.id = d.site_id WHERE d.id = %(id)s""",
    "gateway": """
        SELECT cc_place_path(s.place_id) AS place_path, ARRAY[g.site_id::text] AS site_ids,
               NULL::text AS resident_id, NULL::bigint AS alert_id
        FROM gateways g JOIN sites s ON s.id = g.site_id WHERE g.id = %(id)s""",
    "alert": """
        SELECT cc_place_path(s.place_id) AS place_path,
               array_remove(ARRAY[a.site_id::text, r.site_id::text, r.day_care_site_id::text],
                            NULL) AS site_ids,
               a.resident_id::text AS resident_id, a.id AS alert_id
        FROM alerts a JOIN sites s ON s.id = a.site_id
        LEFT JOIN residents r ON r.id = a.resident_id
        WHERE a.id = %(alert_id)s""",
    "responder": """
        SELECT cc_place_path(coalesce(s.place_id, rp.place_id)) AS place_path,
               array_remove(ARRAY[rp.site_id::text], NULL) AS site_ids,
               NULL::text AS resident_id, NULL::bigint AS alert_id
        FROM responders rp LEFT JOIN sites s ON s.id = rp.site_id WHERE rp.id = %(id)s""",
}


def load(conn: Conn, kind: str, object_id: str | int) -> Resource | None:
    """The access facts of one object, or ``None`` if it does not exist."""
    params: dict[str, Any] = {"id": str(object_id), "alert_id": None}
    if kind == "alert":
        try:
            params["alert_id"] = int(object_id)
        except ValueError:
            return None
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_FACTS[kind], params).fetchone()
        if row is None:
            return None
        resident_id: str | None = row["resident_id"]
        consent: dict[str, dict[str, bool]] = {}
        responders_: set[str] = set()
        if resident_id is not None:
            for link in cur.execute(
                "SELECT family_member_id, consent FROM family_links WHERE resident_id = %s",
                (resident_id,),
            ).fetchall():
                consent[link["family_member_id"]] = {
                    str(k): bool(v) for k, v in dict(link["consent"]).items()
                }
        if kind == "alert":
            responders_ |= {
                r["responder_id"]
                for r in cur.execute(
                    "SELECT responder_id FROM responder_alerts WHERE alert_id = %s",
                    (row["alert_id"],),
                ).fetchall()
            }
        elif kind == "resident":
            responders_ |= {
                r["responder_id"]
                for r in cur.execute(
                    "SELECT ra.responder_id FROM responder_alerts ra "
                    "JOIN alerts a ON a.id = ra.alert_id WHERE a.resident_id = %s",
                    (resident_id,),
                ).fetchall()
            }
    return Resource(
        kind=kind,
        id=str(object_id),
        place_path=tuple(row["place_path"] or ()),
        site_ids=frozenset(row["site_ids"] or ()),
        family_consent=consent,
        responders=frozenset(responders_),
        has_resident=resident_id is not None,
    )
