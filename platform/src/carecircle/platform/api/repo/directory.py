"""Places, sites, residents, devices, gateways and responders: scoped reads and
administrators' provisioning writes."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from carecircle.common.errors import Conflict, NotFound
from carecircle.platform.api.repo import Conn, eq, fetch_page
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Principal
from carecircle.platform.privacy.contacts import open_value, plain_or_none, seal_contacts
from carecircle.platform.privacy.crypto import PiiCipher

PLACE_SELECT = "SELECT id, parent_id, level, name, division_code, lat, lon FROM places"
#: ``address_enc``: the address when stored sealed only (privacy phase 2); see open_sites
SITE_SELECT = "SELECT id, kind, place_id, name, address, address_enc, lat, lon, capacity FROM sites"
RESIDENT_SELECT = (
    "SELECT r.id, r.site_id, r.room_id, r.day_care_site_id, r.display_name, r.birth_year, "
    "r.sex, r.lives_alone, r.care_level, r.conditions, r.presence, r.presence_until "
    "FROM residents r"
)
DEVICE_SELECT = (
    "SELECT id, gateway_id, site_id, room_id, resident_id, family, native_id, type, model, "
    "power, offline_timeout_s, status, last_seen, battery, retired_at FROM devices"
)
GATEWAY_SELECT = (
    "SELECT id, site_id, status, last_seen, config_version, software, created_at, retired_at "
    "FROM gateways"
)
_ACTIVE = sql.SQL("retired_at IS NULL")
RESPONDER_SELECT = (
    "SELECT rp.id, rp.display_name, rp.kind, rp.place_id, rp.site_id, rp.lat, rp.lon, "
    "rp.travel_mode, rp.skills, rp.availability FROM responders rp"
)

Page = tuple[list[dict[str, Any]], str | None]


def list_places(
    conn: Conn,
    p: Principal,
    *,
    level: str | None,
    parent_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page:
    where = [scope.places(p, "id")]
    if level:
        where.append(eq("level", level))
    if parent_id:
        where.append(eq("parent_id", parent_id))
    return fetch_page(conn, PLACE_SELECT, where, limit=limit, cursor=cursor, id_col="id")


def open_sites(rows: list[dict[str, Any]], cipher: PiiCipher | None) -> list[dict[str, Any]]:
    """Rows of ``SITE_SELECT`` (or ``resident_home``) with the address opened, the sealed
    column removed."""
    for row in rows:
        row["address"] = open_value(
            row.get("address"), row.pop("address_enc", None), "sites.address", cipher
        )
    return rows


def list_sites(
    conn: Conn,
    p: Principal,
    *,
    kinds: list[str] | None,
    place_id: str | None,
    limit: int,
    cursor: str | None,
    cipher: PiiCipher | None = None,
) -> Page:
    where = [scope.sites(p, "id")]
    if kinds:
        where.append(sql.SQL("kind = ANY({})").format(sql.Literal(kinds)))
    if place_id:
        where.append(
            sql.SQL("place_id IN (SELECT id FROM cc_place_subtree({}))").format(
                sql.Literal(place_id)
            )
        )
    rows, nxt = fetch_page(conn, SITE_SELECT, where, limit=limit, cursor=cursor, id_col="id")
    return open_sites(rows, cipher), nxt


def list_residents(
    conn: Conn, p: Principal, *, site_id: str | None, limit: int, cursor: str | None
) -> Page:
    where = [scope.residents(p, "r")]
    if site_id:
        where.append(
            sql.SQL("(r.site_id = {s} OR r.day_care_site_id = {s})").format(s=sql.Literal(site_id))
        )
    return fetch_page(conn, RESIDENT_SELECT, where, limit=limit, cursor=cursor, id_col="r.id")


def list_devices(
    conn: Conn,
    p: Principal,
    *,
    site_id: str | None,
    resident_id: str | None,
    status: str | None,
    include_retired: bool = False,
    limit: int,
    cursor: str | None,
) -> Page:
    where = [scope.sites(p, "site_id")]
    if not include_retired:
        where.append(_ACTIVE)
    for col, value in (("site_id", site_id), ("resident_id", resident_id), ("status", status)):
        if value:
            where.append(eq(col, value))
    return fetch_page(conn, DEVICE_SELECT, where, limit=limit, cursor=cursor, id_col="id")


def list_gateways(
    conn: Conn,
    p: Principal,
    *,
    site_id: str | None,
    status: str | None,
    include_retired: bool = False,
    limit: int,
    cursor: str | None,
) -> Page:
    where = [scope.sites(p, "site_id")]
    if not include_retired:
        where.append(_ACTIVE)
    for col, value in (("site_id", site_id), ("status", status)):
        if value:
            where.append(eq(col, value))
    return fetch_page(conn, GATEWAY_SELECT, where, limit=limit, cursor=cursor, id_col="id")


def list_responders(
    conn: Conn, p: Principal, *, availability: str | None, limit: int, cursor: str | None
) -> Page:
    where = [scope.responders(p, "rp")]
    if availability:
        where.append(eq("rp.availability", availability))
    return fetch_page(conn, RESPONDER_SELECT, where, limit=limit, cursor=cursor, id_col="rp.id")


def one(conn: Conn, select: str, id_col: str, object_id: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("{} WHERE {} = %s").format(sql.SQL(select), sql.SQL(id_col)),
            (object_id,),
        ).fetchone()
    if row is None:
        raise NotFound("not found")
    return row


def resident_home(conn: Conn, resident_id: str, cipher: PiiCipher | None = None) -> dict[str, Any]:
    """Where a resident lives: the home site's address and coordinates (sensitive)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT s.id AS site_id, s.name, s.address, s.address_enc, s.lat, s.lon "
            "FROM residents r "
            "JOIN sites s ON s.id = r.site_id WHERE r.id = %s",
            (resident_id,),
        ).fetchone()
    assert row is not None
    return open_sites([row], cipher)[0]


# --- provisioning (administrators) ---------------------------------------------------


def create_site(conn: Conn, data: dict[str, Any], seal: PiiCipher | None = None) -> dict[str, Any]:
    """Insert a site; with ``seal`` (``pii_encryption`` on) its address is stored sealed only."""
    address = data.get("address")
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO sites (id, kind, place_id, name, address, lat, lon, capacity) "
                "VALUES (%(id)s, %(kind)s, %(place_id)s, %(name)s, %(address)s, %(lat)s, "
                "%(lon)s, %(capacity)s) "
                "RETURNING id, kind, place_id, name, address, lat, lon, capacity",
                {**data, "address": plain_or_none(address, seal)},
            ).fetchone()
            if seal is not None and address is not None:
                seal_contacts(conn, seal, "sites", "address", {str(data["id"]): address})
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"site {data['id']} exists") from err
    assert row is not None
    return {**row, "address": address}


def _new_secret() -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return secret, "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def create_gateway(
    conn: Conn, gateway_id: str, site_id: str, software: str | None
) -> tuple[dict[str, Any], str]:
    secret, hashed = _new_secret()
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO gateways (id, site_id, secret_hash, software) VALUES (%s, %s, %s, %s) "
                "RETURNING id, site_id, status, last_seen, config_version, software, created_at, "
                "retired_at",
                (gateway_id, site_id, hashed, software),
            ).fetchone()
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"gateway {gateway_id} exists") from err
    assert row is not None
    return row, secret


def rotate_gateway_secret(conn: Conn, gateway_id: str) -> str:
    secret, hashed = _new_secret()
    cur = conn.execute("UPDATE gateways SET secret_hash = %s WHERE id = %s", (hashed, gateway_id))
    if cur.rowcount == 0:
        raise NotFound("gateway not found")
    return secret


def create_device(conn: Conn, gateway_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Bind a device to a gateway and bump the gateway's config version."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        gw = cur.execute(
            "SELECT site_id, retired_at FROM gateways WHERE id = %s FOR UPDATE", (gateway_id,)
        ).fetchone()
        if gw is None:
            raise NotFound("gateway not found")
        if gw["retired_at"] is not None:
            raise Conflict("the gateway is retired")
        if gw["site_id"] != data["site_id"]:
            raise Conflict("a device must be at its gateway's site")
        if (
            data["room_id"]
            and not cur.execute(
                "SELECT 1 FROM rooms WHERE id = %s AND site_id = %s",
                (data["room_id"], gw["site_id"]),
            ).fetchone()
        ):
            raise NotFound("room not found at this site")
        if (
            data["resident_id"]
            and not cur.execute(
                "SELECT 1 FROM residents WHERE id = %s AND (site_id = %s OR day_care_site_id = %s)",
                (data["resident_id"], gw["site_id"], gw["site_id"]),
            ).fetchone()
        ):
            raise NotFound("resident not found at this site")
        try:
            with conn.transaction():
                row = cur.execute(
                    "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family, "
                    "native_id, type, model, power, offline_timeout_s) VALUES (%(id)s, "
                    "%(gateway_id)s, %(site_id)s, %(room_id)s, %(resident_id)s, %(family)s, "
                    "%(native_id)s, %(type)s, %(model)s, %(power)s, %(offline_timeout_s)s) "
                    "RETURNING id",
                    {**data, "gateway_id": gateway_id},
                ).fetchone()
        except psycopg.errors.UniqueViolation as err:
            raise Conflict("a device with this id or native id exists") from err
        except psycopg.errors.ForeignKeyViolation as err:
            raise NotFound(f"room or resident not found: {err.diag.message_detail}") from err
        assert row is not None
        cur.execute(
            "UPDATE gateways SET config_version = config_version + 1 WHERE id = %s", (gateway_id,)
        )
    return one(conn, DEVICE_SELECT, "id", data["id"])
