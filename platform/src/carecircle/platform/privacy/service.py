"""Right of access and right of erasure, per resident.

:func:`export_resident` gathers everything the platform holds about one resident;
:func:`delete_resident` erases it in one transaction and leaves an audit entry that
records the erasure without any personal data.  :func:`encrypt_existing` seals the
plaintext personal-data columns into their ``*_enc`` shadows (migration 0801).

Tables holding a ``resident_id`` column are discovered from the catalogue, so the
time series, rollups and model tables other domains add later are covered without
changing this module; only tables needing special treatment are named here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from carecircle.common.errors import NotFound
from carecircle.platform.privacy.contacts import SEALED_ONLY
from carecircle.platform.privacy.crypto import DecryptError, PiiCipher

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

#: Tables with a resident_id that are not simply "rows about the resident to delete".
_SPECIAL = frozenset({"residents", "devices", "alerts", "family_links"})
#: Time-series tables: exported time-bounded, in time order.
_SERIES = ("readings", "events")
#: Sealed / index columns are never exported raw; sealed ones are exported opened.
_HIDDEN_SUFFIXES = ("_enc", "_bidx")

#: (table, plaintext column, sealed column, blind-index column or None)
PII_COLUMNS: tuple[tuple[str, str, str, str | None], ...] = (
    ("residents", "display_name", "display_name_enc", None),
    ("responders", "display_name", "display_name_enc", None),
    ("responders", "phone", "phone_enc", "phone_bidx"),
    ("family_members", "display_name", "display_name_enc", None),
    ("family_members", "phone", "phone_enc", "phone_bidx"),
    ("sites", "address", "address_enc", None),
)


def resident_tables(conn: Conn) -> list[str]:
    """Base tables of the current schema with a ``resident_id`` column (not partitions)."""
    rows = conn.execute(
        """
        SELECT c.relname
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE a.attname = 'resident_id' AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname = current_schema()
        ORDER BY c.relname
        """
    ).fetchall()
    return [str(r[0]) for r in rows]


def _rows(conn: Conn, query: sql.Composable | str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)  # type: ignore[arg-type]
        return [_clean(row) for row in cur.fetchall()]


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.endswith(_HIDDEN_SUFFIXES)}


def _open_sealed(
    conn: Conn, table: str, key: str, key_value: str, out: dict[str, Any], cipher: PiiCipher | None
) -> None:
    """Add the opened values of ``table``'s sealed columns to ``out`` (``<col>_sealed``)."""
    if cipher is None:
        return
    sealed_cols = [(plain, enc) for t, plain, enc, _ in PII_COLUMNS if t == table]
    if table == "residents":
        sealed_cols.append(("id_number", "id_number_enc"))
    for plain, enc in sealed_cols:
        row = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
                sql.Identifier(enc), sql.Identifier(table), sql.Identifier(key)
            ),
            (key_value,),
        ).fetchone()
        if row is not None and row[0] is not None:
            try:
                opened = cipher.decrypt(bytes(row[0]), f"{table}.{plain}")
                out[plain if plain == "id_number" else f"{plain}_sealed"] = opened
                if out.get(plain) is None:  # stored sealed only (phase 2)
                    out[plain] = opened
            except DecryptError as err:
                out[f"{plain}_sealed"] = f"<cannot open: {err}>"


def iter_series(
    conn: Conn,
    table: str,
    resident_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 5000,
) -> Iterator[dict[str, Any]]:
    """Stream one resident's rows of a time-series table in time order (server-side cursor)."""
    where = [sql.SQL("resident_id = %s")]
    params: list[Any] = [resident_id]
    if since is not None:
        where.append(sql.SQL("time >= %s"))
        params.append(since)
    if until is not None:
        where.append(sql.SQL("time < %s"))
        params.append(until)
    query = sql.SQL("SELECT * FROM {} WHERE {} ORDER BY time").format(
        sql.Identifier(table), sql.SQL(" AND ").join(where)
    )
    with conn.cursor(name=f"cc_export_{table}", row_factory=dict_row) as cur:
        cur.itersize = batch
        cur.execute(query, params)
        for row in cur:
            yield _clean(row)


def export_resident(
    conn: Conn,
    resident_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    cipher: PiiCipher | None = None,
) -> dict[str, Any]:
    """Everything held about one resident, as JSON-ready data (times and UUIDs as objects).

    ``since``/``until`` bound the readings and events (the bulk); everything else is
    exported whole.  Raises :class:`NotFound` for an unknown resident.
    """
    fresh = conn.autocommit
    with conn.transaction():
        if fresh:  # one consistent snapshot of everything exported
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        residents = _rows(conn, "SELECT * FROM residents WHERE id = %s", (resident_id,))
        if not residents:
            raise NotFound(f"no resident {resident_id!r}")
        resident = residents[0]
        _open_sealed(conn, "residents", "id", resident_id, resident, cipher)
        site_ids = [s for s in (resident["site_id"], resident["day_care_site_id"]) if s]
        sites = _rows(conn, "SELECT * FROM sites WHERE id = ANY(%s)", (site_ids,))
        for site in sites:
            _open_sealed(conn, "sites", "id", str(site["id"]), site, cipher)
        home_site = resident["site_id"]
        alerts = _rows(
            conn, "SELECT * FROM alerts WHERE resident_id = %s ORDER BY opened_at", (resident_id,)
        )
        alert_ids = [a["id"] for a in alerts]
        for name, query in (
            ("transitions", "SELECT * FROM alert_transitions WHERE alert_id = %s ORDER BY at"),
            ("dispatch", "SELECT * FROM dispatches WHERE alert_id = %s"),
            ("tasks", "SELECT * FROM tasks WHERE alert_id = %s ORDER BY offered_at"),
            ("escalations", "SELECT * FROM escalations WHERE alert_id = %s ORDER BY at"),
            ("notifications", "SELECT * FROM notifications WHERE alert_id = %s ORDER BY id"),
        ):
            for alert in alerts:
                rows = _rows(conn, query, (alert["id"],))
                alert[name] = (rows[0] if rows else None) if name == "dispatch" else rows
        data: dict[str, Any] = {
            "resident": resident,
            "care_profile": resident.get("care_profile", {}),
            "sites": sites,
            "room": _rows(conn, "SELECT * FROM rooms WHERE id = %s", (resident["room_id"],)),
            "rooms_of_household": _rows(
                conn,
                "SELECT r.* FROM rooms r JOIN sites s ON s.id = r.site_id "
                "WHERE s.id = %s AND s.kind = 'household' ORDER BY r.id",
                (home_site,),
            ),
            "devices": _rows(
                conn, "SELECT * FROM devices WHERE resident_id = %s ORDER BY id", (resident_id,)
            ),
            "family_links": _rows(
                conn,
                "SELECT family_member_id, relationship, consent FROM family_links "
                "WHERE resident_id = %s ORDER BY family_member_id",
                (resident_id,),
            ),
            "alert_rules": _rows(
                conn,
                "SELECT * FROM alert_rules WHERE scope = 'resident' AND scope_id = %s",
                (resident_id,),
            ),
            "alerts": alerts,
            "audit_log": _rows(
                conn,
                "SELECT * FROM audit_log WHERE (object_type = 'resident' AND object_id = %s) "
                "OR (object_type = 'alert' AND object_id = ANY(%s)) ORDER BY at, id",
                (resident_id, [str(i) for i in alert_ids]),
            ),
            "bounds": {"since": since, "until": until},
        }
        for table in _SERIES:
            data[table] = list(iter_series(conn, table, resident_id, since, until))
        for table in resident_tables(conn):
            if table in _SPECIAL or table in _SERIES:
                continue
            data.setdefault("other", {})[table] = _rows(
                conn,
                sql.SQL("SELECT * FROM {} WHERE resident_id = %s").format(sql.Identifier(table)),
                (resident_id,),
            )
    return data


@dataclass(frozen=True)
class DeletionReport:
    resident_id: str
    existed: bool
    #: rows deleted (or, for devices, unbound) per table
    counts: dict[str, int] = field(default_factory=dict)
    household_scrubbed: bool = False
    audit_id: int | None = None


def _count(cur: psycopg.Cursor[Any]) -> int:
    return max(cur.rowcount, 0)


def delete_resident(
    conn: Conn, resident_id: str, actor: str, reason: str, *, household: bool = True
) -> DeletionReport:
    """Erase one resident, in one transaction.

    Deletes their readings, events and every other row carrying their ``resident_id``,
    their alerts (with transitions, dispatches, tasks, escalations, notifications),
    family links and resident-scoped rules; unbinds their devices; deletes the
    resident.  With ``household`` (default) and a household nobody else lives in, the
    household's own sensor data goes too, its address is blanked, its name replaced by
    its id and its coordinates coarsened to about 1 km.  Writes one ``audit_log`` row
    ``resident.erase`` naming the resident by id only, with the reason and counts.

    Idempotent: erasing a resident that no longer exists removes any stray rows and
    reports ``existed=False`` without writing a second audit entry.
    """
    counts: dict[str, int] = {}
    scrubbed = False
    with conn.transaction():
        row = conn.execute(
            "SELECT site_id FROM residents WHERE id = %s FOR UPDATE", (resident_id,)
        ).fetchone()
        existed = row is not None
        site_id = str(row[0]) if row is not None else None
        cur = conn.execute("DELETE FROM alerts WHERE resident_id = %s", (resident_id,))
        counts["alerts"] = _count(cur)
        cur = conn.execute(
            "UPDATE devices SET resident_id = NULL WHERE resident_id = %s", (resident_id,)
        )
        counts["devices_unbound"] = _count(cur)
        cur = conn.execute("DELETE FROM family_links WHERE resident_id = %s", (resident_id,))
        counts["family_links"] = _count(cur)
        cur = conn.execute(
            "DELETE FROM alert_rules WHERE scope = 'resident' AND scope_id = %s", (resident_id,)
        )
        counts["alert_rules"] = _count(cur)
        for table in resident_tables(conn):
            if table in _SPECIAL:
                continue
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE resident_id = %s").format(sql.Identifier(table)),
                (resident_id,),
            )
            counts[table] = _count(cur)
        if existed:
            cur = conn.execute("DELETE FROM residents WHERE id = %s", (resident_id,))
            counts["residents"] = _count(cur)
        if household and site_id is not None:
            scrubbed = _scrub_household(conn, site_id, counts)
        audit_id = None
        if existed:
            audit = conn.execute(
                "INSERT INTO audit_log (actor, action, object_type, object_id, detail) "
                "VALUES (%s, 'resident.erase', 'resident', %s, %s) RETURNING id",
                (
                    actor,
                    resident_id,
                    Jsonb({"reason": reason, "counts": counts, "household_scrubbed": scrubbed}),
                ),
            ).fetchone()
            audit_id = int(audit[0]) if audit else None
    log.info("resident %s erased by %s (%s)", resident_id, actor, counts)
    return DeletionReport(resident_id, existed, counts, scrubbed, audit_id)


def _scrub_household(conn: Conn, site_id: str, counts: dict[str, int]) -> bool:
    """Remove personal traces of a household nobody lives in any more."""
    row = conn.execute(
        "SELECT kind = 'household' AND NOT EXISTS (SELECT 1 FROM residents WHERE site_id = s.id) "
        "FROM sites s WHERE id = %s",
        (site_id,),
    ).fetchone()
    if row is None or not row[0]:
        return False
    for table in (*_SERIES, "activity_state"):
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE site_id = %s").format(sql.Identifier(table)), (site_id,)
        )
        counts[f"{table}_of_household"] = _count(cur)
    conn.execute(
        "UPDATE sites SET address = NULL, address_enc = NULL, name = id, "
        "lat = round(lat::numeric, 2)::float8, lon = round(lon::numeric, 2)::float8 "
        "WHERE id = %s",
        (site_id,),
    )
    return True


@dataclass(frozen=True)
class EncryptionReport:
    sealed: dict[str, int]
    rotated: dict[str, int]
    #: plaintext values removed (``drop_plaintext``: phones and addresses)
    dropped: dict[str, int] = field(default_factory=dict)
    #: sealed-only values no configured key opens (left alone; add the old key)
    unreadable: dict[str, int] = field(default_factory=dict)


def encrypt_existing(
    conn: Conn, cipher: PiiCipher, *, batch: int = 500, drop_plaintext: bool = False
) -> EncryptionReport:
    """Seal every plaintext personal-data column into its ``*_enc`` shadow.

    Idempotent: a row is (re)sealed only when its shadow is missing, sealed with an
    old key (rotation), or no longer matches the plaintext (the row was edited).  Values
    stored sealed only (no plaintext) are re-sealed when under an old key.  With
    ``drop_plaintext`` the plaintext of phone numbers and addresses (``SEALED_ONLY``) is
    removed once sealed — phase 2; names stay (every reader still needs them).
    Each table is done in its own transaction.
    """
    sealed: dict[str, int] = {}
    rotated: dict[str, int] = {}
    dropped: dict[str, int] = {}
    unreadable: dict[str, int] = {}
    for table, plain, enc, bidx in PII_COLUMNS:
        name = f"{table}.{plain}"
        sealed[name] = rotated[name] = dropped[name] = unreadable[name] = 0
        drop = drop_plaintext and (table, plain) in SEALED_ONLY
        with conn.transaction():
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, {}, {} FROM {} WHERE {} IS NOT NULL OR {} IS NOT NULL FOR UPDATE"
                ).format(
                    sql.Identifier(plain),
                    sql.Identifier(enc),
                    sql.Identifier(table),
                    sql.Identifier(plain),
                    sql.Identifier(enc),
                )
            ).fetchall()
            updates: list[tuple[bytes, bytes | None, str]] = []
            blank: list[str] = []
            for row_id, value, token in rows:
                token = None if token is None else bytes(token)
                if value is None:  # stored sealed only: rotate if needed
                    assert token is not None
                    try:
                        value = cipher.decrypt(token, name)
                    except DecryptError:
                        unreadable[name] += 1
                        continue
                    if cipher.needs_rotation(token):
                        rotated[name] += 1
                        index = cipher.blind_index(value, name) if bidx else None
                        updates.append((cipher.encrypt(value, name), index, str(row_id)))
                    continue
                if drop:
                    blank.append(str(row_id))
                if token is not None:
                    try:
                        same = cipher.decrypt(token, name) == value
                    except DecryptError:
                        same = False
                    if same and not cipher.needs_rotation(token):
                        continue
                    if same:
                        rotated[name] += 1
                    else:
                        sealed[name] += 1
                else:
                    sealed[name] += 1
                index = cipher.blind_index(str(value), name) if bidx else None
                updates.append((cipher.encrypt(str(value), name), index, str(row_id)))
            if updates:
                set_bidx = (
                    sql.SQL(", {} = %s").format(sql.Identifier(bidx)) if bidx else sql.SQL("")
                )
                query = sql.SQL("UPDATE {} SET {} = %s{} WHERE id = %s").format(
                    sql.Identifier(table), sql.Identifier(enc), set_bidx
                )
                params = [(t, i, r) if bidx else (t, r) for t, i, r in updates]
                with conn.cursor() as cur:
                    for start in range(0, len(params), batch):
                        cur.executemany(query, params[start : start + batch])
            if blank:
                conn.execute(
                    sql.SQL("UPDATE {} SET {} = NULL WHERE id = ANY(%s)").format(
                        sql.Identifier(table), sql.Identifier(plain)
                    ),
                    (blank,),
                )
                dropped[name] = len(blank)
    if any(unreadable.values()):
        log.warning("sealed values no configured key opens (add the old key): %s", unreadable)
    log.info(
        "personal data sealed %s, re-sealed with the current key %s, plaintext dropped %s",
        sealed,
        rotated,
        dropped,
    )
    return EncryptionReport(sealed, rotated, dropped, unreadable)


def find_by_phone(conn: Conn, cipher: PiiCipher, table: str, phone: str) -> list[str]:
    """Ids of responders or family members with this phone number, via the blind index."""
    if table not in ("responders", "family_members"):
        raise ValueError(f"no phone blind index on {table!r}")
    rows = conn.execute(
        sql.SQL("SELECT id FROM {} WHERE phone_bidx = %s ORDER BY id").format(
            sql.Identifier(table)
        ),
        (cipher.blind_index(phone, f"{table}.phone"),),
    ).fetchall()
    return [str(r[0]) for r in rows]


def set_id_number(conn: Conn, cipher: PiiCipher, resident_id: str, id_number: str) -> None:
    """Store a resident's national ID number, sealed and blind-indexed (never in plaintext)."""
    name = "residents.id_number"
    cur = conn.execute(
        "UPDATE residents SET id_number_enc = %s, id_number_bidx = %s WHERE id = %s",
        (cipher.encrypt(id_number, name), cipher.blind_index(id_number, name), resident_id),
    )
    if cur.rowcount == 0:
        raise NotFound(f"no resident {resident_id!r}")


def find_by_id_number(conn: Conn, cipher: PiiCipher, id_number: str) -> str | None:
    """The resident with this ID number, via the blind index."""
    row = conn.execute(
        "SELECT id FROM residents WHERE id_number_bidx = %s",
        (cipher.blind_index(id_number, "residents.id_number"),),
    ).fetchone()
    return str(row[0]) if row else None
