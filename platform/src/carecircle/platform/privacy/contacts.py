"""Phone numbers and addresses stored sealed only (privacy phase 2, docs/privacy.md).

With ``pii_encryption`` on, writers call :func:`seal_contacts` instead of writing the
plaintext column: the plaintext column is set to NULL and the value goes, sealed, into
its ``*_enc`` shadow (plus the blind index for phone numbers).  A value that has not
changed keeps its sealed token, so provisioning the same document again changes nothing.

Readers never need the number until a message is sent: dispatch addresses SMS to a
*reference* (``responder:<id>``, ``family:<id>``), so neither ``notifications`` nor the
dispatch code holds a number, and :class:`PhoneBook` opens the number at delivery.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from carecircle.common.errors import ConfigError
from carecircle.platform.privacy.crypto import DecryptError, PiiCipher
from carecircle.platform.settings import PlatformSettings

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

#: (table, plaintext column) → (sealed column, blind-index column or None)
SEALED_ONLY: dict[tuple[str, str], tuple[str, str | None]] = {
    ("responders", "phone"): ("phone_enc", "phone_bidx"),
    ("family_members", "phone"): ("phone_enc", "phone_bidx"),
    ("sites", "address"): ("address_enc", None),
}

#: SMS targets that name a person instead of carrying their number.
_REFERENCE = re.compile(r"^(responder|family):(.+)$")
_TABLE = {"responder": "responders", "family": "family_members"}


def writing_cipher(settings: PlatformSettings) -> PiiCipher | None:
    """The cipher writers seal with: only when ``pii_encryption`` is on."""
    if not settings.pii_encryption:
        return None
    return reading_cipher(settings)


def reading_cipher(settings: PlatformSettings) -> PiiCipher | None:
    """The cipher readers open with: whenever keys are configured."""
    if settings.pii_keys is None or settings.pii_index_key is None:
        return None
    return PiiCipher.from_settings(
        settings.pii_keys.get_secret_value(), settings.pii_index_key.get_secret_value()
    )


def plain_or_none(value: str | None, cipher: PiiCipher | None) -> str | None:
    """What goes into the plaintext column: nothing when the value is sealed."""
    return None if cipher is not None else value


def seal_contacts(
    conn: Conn,
    cipher: PiiCipher,
    table: str,
    column: str,
    values: Mapping[str, str | None],
) -> list[str]:
    """Seal ``values`` (row id → plaintext) into ``table``'s shadow of ``column`` and
    blank the plaintext column; returns the ids of the rows changed.  Rows must exist."""
    enc, bidx = SEALED_ONLY[(table, column)]
    field = f"{table}.{column}"
    if not values:
        return []
    current = {
        str(r[0]): (r[1], None if r[2] is None else bytes(r[2]))
        for r in conn.execute(
            sql.SQL("SELECT id, {}, {} FROM {} WHERE id = ANY(%s)").format(
                sql.Identifier(column), sql.Identifier(enc), sql.Identifier(table)
            ),
            (list(values),),
        ).fetchall()
    }
    changed: list[str] = []
    for row_id, value in values.items():
        plain, token = current.get(row_id, (None, None))
        if plain is None and _same(cipher, token, value, field):
            continue
        sealed = None if value is None else cipher.encrypt(value, field)
        index = None if value is None or bidx is None else cipher.blind_index(value, field)
        sets = [sql.SQL("{} = NULL").format(sql.Identifier(column))]
        params: list[object] = []
        sets.append(sql.SQL("{} = %s").format(sql.Identifier(enc)))
        params.append(sealed)
        if bidx is not None:
            sets.append(sql.SQL("{} = %s").format(sql.Identifier(bidx)))
            params.append(index)
        conn.execute(
            sql.SQL("UPDATE {} SET {} WHERE id = %s").format(
                sql.Identifier(table), sql.SQL(", ").join(sets)
            ),
            (*params, row_id),
        )
        changed.append(row_id)
    return changed


def _same(cipher: PiiCipher, token: bytes | None, value: str | None, field: str) -> bool:
    if token is None or value is None:
        return token is None and value is None
    if cipher.needs_rotation(token):
        return False
    try:
        return cipher.decrypt(token, field) == value
    except DecryptError:
        return False


def open_value(
    plain: str | None, token: bytes | memoryview | None, field: str, cipher: PiiCipher | None
) -> str | None:
    """A column's value from its plaintext or its sealed shadow."""
    if plain is not None:
        return plain
    if token is None:
        return None
    if cipher is None:
        raise ConfigError(
            f"{field} is stored sealed: set CARECIRCLE_PII_KEYS and CARECIRCLE_PII_INDEX_KEY"
        )
    return cipher.decrypt(bytes(token), field)


def responder_target(responder_id: str) -> str:
    return f"responder:{responder_id}"


def family_target(member_id: str) -> str:
    return f"family:{member_id}"


class PhoneBook:
    """Turns an SMS target into a number at delivery (references are opened here only)."""

    def __init__(self, cipher: PiiCipher | None) -> None:
        self._cipher = cipher

    def __call__(self, conn: Conn, target: str) -> str | None:
        match = _REFERENCE.match(target)
        if match is None:
            return target  # a literal number (the emergency number)
        table = _TABLE[match.group(1)]
        row = conn.execute(
            sql.SQL("SELECT phone, phone_enc FROM {} WHERE id = %s").format(sql.Identifier(table)),
            (match.group(2),),
        ).fetchone()
        if row is None:
            return None
        return open_value(row[0], row[1], f"{table}.phone", self._cipher)
