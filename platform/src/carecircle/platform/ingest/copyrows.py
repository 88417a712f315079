"""Binary ``COPY`` data for ``readings`` and ``events``, built per batch in one buffer.

psycopg's ``Copy.write_row`` formats a row in Python per call (a type lookup and a
dumper per field, a UUID dumper in Python): about a tenth of an ingest worker's CPU.
The rows an ingest batch writes have a fixed shape, so this module writes PostgreSQL's
binary COPY format directly (https://www.postgresql.org/docs/current/sql-copy.html,
"Binary Format"): a signature, then per row the field count and each field as a
32-bit length and its binary value (-1 for NULL); psycopg adds the trailer.

The column types are those of the tables (``store/migrations``): ``timestamptz`` is
microseconds since 2000-01-01 UTC as int64, ``uuid`` its 16 bytes, ``text`` UTF-8 (the
writer's connection uses client_encoding UTF8), ``float8`` an IEEE double, ``jsonb`` a
version byte 1 and the JSON text.  The four text columns that are the same for every
row of a device (gateway, device, resident, site) are encoded once per device and
registry snapshot (:func:`device_fields`).  ``tests/platform/test_ingest_writer_copy.py``
reads every stored field back.  The writer and ``bench/ml_month.py`` both COPY through
:func:`copy_in`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from carecircle.common.contract import Code, Kind

#: The columns in the order the rows below hold them: the fixed-size ones first, so
#: that one ``struct`` call writes them all.
READING_COLUMNS: Final = (
    "time",
    "received_at",
    "msg_id",
    "value",
    "gateway_id",
    "device_id",
    "resident_id",
    "site_id",
    "code",
)
EVENT_COLUMNS: Final = (*READING_COLUMNS, "kind", "attrs")

#: The binary COPY header: signature, flags (0), header extension length (0).
SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
#: The Unix minute (seconds // 60) of the PostgreSQL epoch: 946,684,800 s is a whole
#: number of minutes, so ``pg_micros(ts) // 60_000_000 + PG_EPOCH_MINUTE`` is ts's.
PG_EPOCH_MINUTE: Final = 946_684_800 // 60
_NULL: Final = b"\xff\xff\xff\xff"
_LEN: Final = struct.Struct(">i").pack
# field count; time and received_at (int64 µs), msg_id (16 bytes), value (float8 or
# NULL), each after its length
_FIXED: Final = struct.Struct(">hiqiqi16sid").pack
_FIXED_NULL: Final = struct.Struct(">hiqiqi16si").pack


def copy_in(
    cur: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: Sequence[bytes]
) -> None:
    """COPY binary ``rows`` (built by :func:`reading` / :func:`event`) into ``table``."""
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(SIGNATURE + b"".join(rows))


def pg_micros(ts: datetime) -> int:
    """An aware datetime as binary ``timestamptz``: microseconds since 2000-01-01 UTC."""
    return (ts - _PG_EPOCH) // _US


def text(value: str | None) -> bytes:
    """One ``text`` field (length and UTF-8 bytes, or NULL)."""
    if value is None:
        return _NULL
    data = value.encode()
    return _LEN(len(data)) + data


def device_fields(gateway_id: str, device_id: str, resident_id: str | None, site_id: str) -> bytes:
    """``gateway_id, device_id, resident_id, site_id``: the same in every row of a device."""
    return text(gateway_id) + text(device_id) + text(resident_id) + text(site_id)


_CODE: Final[dict[Code, bytes]] = {c: text(c.value) for c in Code}
_KIND: Final[dict[Kind, bytes]] = {k: text(k.value) for k in Kind}


def reading(
    time_us: int, received_us: int, msg_id: int, value: float | None, device: bytes, code: Code
) -> bytes:
    """One ``readings`` row (``READING_COLUMNS``); ``device`` from :func:`device_fields`."""
    if value is None:
        fixed = _FIXED_NULL(9, 8, time_us, 8, received_us, 16, msg_id.to_bytes(16), -1)
    else:
        fixed = _FIXED(9, 8, time_us, 8, received_us, 16, msg_id.to_bytes(16), 8, value)
    return fixed + device + _CODE[code]


def event(
    time_us: int,
    received_us: int,
    msg_id: int,
    value: float | None,
    device: bytes,
    code: Code,
    kind: Kind,
    attrs: Mapping[str, object],
) -> bytes:
    """One ``events`` row (``EVENT_COLUMNS``); ``attrs`` as psycopg's ``Jsonb`` dumps it."""
    if value is None:
        fixed = _FIXED_NULL(11, 8, time_us, 8, received_us, 16, msg_id.to_bytes(16), -1)
    else:
        fixed = _FIXED(11, 8, time_us, 8, received_us, 16, msg_id.to_bytes(16), 8, value)
    doc = b"\x01" + json.dumps(attrs).encode()  # jsonb: version 1, then the JSON text
    return fixed + device + _CODE[code] + _KIND[kind] + _LEN(len(doc)) + doc
