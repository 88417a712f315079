"""Users, refresh tokens and API keys in PostgreSQL (the auth domain's repository)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from carecircle.common.errors import Conflict, NotFound, StoreError
from carecircle.platform.auth.passwords import hash_password
from carecircle.platform.auth.policy import Principal, Role, expand_scopes

Conn = psycopg.Connection[Any]

_USER_COLS = (
    "id, username, password_hash, role, place_id, site_id, responder_id, family_member_id, "
    "display_name, locale, disabled"
)


@dataclass(frozen=True)
class User:
    id: str
    username: str
    password_hash: str
    role: Role
    place_id: str | None
    site_id: str | None
    responder_id: str | None
    family_member_id: str | None
    display_name: str
    locale: str
    disabled: bool

    def principal(self, key_scopes: list[str] | None = None) -> Principal:
        return Principal(
            user_id=self.id,
            role=self.role,
            place_id=self.place_id,
            site_id=self.site_id,
            responder_id=self.responder_id,
            family_member_id=self.family_member_id,
            key_actions=expand_scopes(key_scopes) if key_scopes is not None else None,
            username=self.username,
        )


def _user(row: dict[str, Any] | None) -> User | None:
    if row is None:
        return None
    return User(**{**row, "role": Role(row["role"])})


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_user(
    conn: Conn,
    *,
    user_id: str,
    username: str,
    password: str,
    role: Role,
    place_id: str | None = None,
    site_id: str | None = None,
    responder_id: str | None = None,
    family_member_id: str | None = None,
    display_name: str = "",
    locale: str = "zh",
) -> User:
    """Create a user; the scope columns must match the role (the table checks it)."""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"INSERT INTO users (id, username, password_hash, role, place_id, site_id, "  # noqa: S608
                "responder_id, family_member_id, display_name, locale) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                f"RETURNING {_USER_COLS}",
                (
                    user_id,
                    username,
                    hash_password(password),
                    role.value,
                    place_id,
                    site_id,
                    responder_id,
                    family_member_id,
                    display_name,
                    locale,
                ),
            ).fetchone()
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"a user with id {user_id!r} or username {username!r} exists") from err
    except psycopg.errors.CheckViolation as err:
        raise StoreError(
            "the scope does not fit the role: admin needs a place; staff a township place "
            "or a facility site; responder a responder id; family a family member id"
        ) from err
    except psycopg.errors.ForeignKeyViolation as err:
        raise NotFound(f"the scope object does not exist: {err.diag.message_detail}") from err
    user = _user(row)
    assert user is not None
    return user


def by_username(conn: Conn, username: str) -> User | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return _user(
            cur.execute(
                f"SELECT {_USER_COLS} FROM users WHERE lower(username) = lower(%s)",  # noqa: S608
                (username,),
            ).fetchone()
        )


def by_id(conn: Conn, user_id: str) -> User | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return _user(
            cur.execute(
                f"SELECT {_USER_COLS} FROM users WHERE id = %s",  # noqa: S608
                (user_id,),
            ).fetchone()
        )


# --- refresh tokens -----------------------------------------------------------------


@dataclass(frozen=True)
class RefreshOutcome:
    user_id: str | None
    token: str | None
    reason: str = ""  # why it was refused


def issue_refresh(
    conn: Conn, user_id: str, now: datetime, lifetime: timedelta, family: uuid.UUID | None = None
) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO refresh_tokens (family_id, user_id, token_hash, issued_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        (family or uuid.uuid4(), user_id, sha256(token), now, now + lifetime),
    )
    return token


def rotate_refresh(conn: Conn, token: str, now: datetime, lifetime: timedelta) -> RefreshOutcome:
    """Exchange a refresh token for a new one of the same family.

    A token presented twice means it leaked: the whole family is revoked, so both the
    thief and the user must sign in again.
    """
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT t.id, t.family_id, t.user_id, t.expires_at, t.used_at, t.revoked_at, "
            "u.disabled FROM refresh_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = %s FOR UPDATE OF t",
            (sha256(token),),
        ).fetchone()
        if row is None:
            return RefreshOutcome(None, None, "unknown refresh token")
        if row["used_at"] is not None or row["revoked_at"] is not None:
            cur.execute(
                "UPDATE refresh_tokens SET revoked_at = %s "
                "WHERE family_id = %s AND revoked_at IS NULL",
                (now, row["family_id"]),
            )
            reused = row["used_at"] is not None
            return RefreshOutcome(
                None,
                None,
                "refresh token reused: every session of this sign-in is revoked"
                if reused
                else "refresh token revoked",
            )
        if row["expires_at"] <= now or row["disabled"]:
            return RefreshOutcome(None, None, "refresh token expired")
        cur.execute("UPDATE refresh_tokens SET used_at = %s WHERE id = %s", (now, row["id"]))
        new = issue_refresh(conn, row["user_id"], now, lifetime, row["family_id"])
        return RefreshOutcome(row["user_id"], new)


def revoke_refresh(conn: Conn, token: str, now: datetime) -> None:
    """Sign out: revoke the token's whole family."""
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = %s WHERE revoked_at IS NULL AND family_id = "
        "(SELECT family_id FROM refresh_tokens WHERE token_hash = %s)",
        (now, sha256(token)),
    )


# --- API keys -------------------------------------------------------------------------

KEY_PREFIX = "cck_"


def create_api_key(
    conn: Conn,
    user_id: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> tuple[dict[str, Any], str]:
    """Create a key; returns its row and the key itself (shown once, stored hashed)."""
    expand_scopes(scopes)  # ValueError for an unknown scope
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "RETURNING id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at",
            (user_id, name, key[:12], sha256(key), scopes, expires_at),
        ).fetchone()
    assert row is not None
    return row, key


def list_api_keys(conn: Conn, user_id: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at "
            "FROM api_keys WHERE user_id = %s ORDER BY id",
            (user_id,),
        ).fetchall()


def revoke_api_key(conn: Conn, user_id: str, key_id: int, now: datetime) -> None:
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s AND user_id = %s",
        (now, key_id, user_id),
    )
    if cur.rowcount == 0:
        raise NotFound("API key not found")


def principal_for_key(conn: Conn, key: str, now: datetime) -> Principal | None:
    if not key.startswith(KEY_PREFIX):
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE api_keys SET last_used_at = %s WHERE key_hash = %s AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > %s) RETURNING user_id, scopes",
            (now, sha256(key), now),
        ).fetchone()
    if row is None:
        return None
    user = by_id(conn, row["user_id"])
    if user is None or user.disabled:
        return None
    return user.principal(list(row["scopes"]))
