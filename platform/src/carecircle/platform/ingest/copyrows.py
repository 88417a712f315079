"""Binary ``COPY`` data for ``readings`` and ``events``, built per batch in one buffer.

psycopg's ``Copy.write_row`` formats a row in Python per call (a type lookup and a
dumper per field, a UUID dumper in Python): about a tenth of an ingest worker's CPU.
The rows an ingest batch writes have a fixed shape, so this module writes PostgreSQL's
binary COPY format directly (https://www.postgresql.org/docs/current/sql-copy.html,
"Binary Format"): a signature, then per row the field count and each field as a
32-bit length and its binary value (-1 for NULL); psycopg adds the trailer.

The column types are those of ``READING_TYPES``/``EVENT_TYPES`` in :mod:`.writer`:
``timestamptz`` is microseconds since 2000-01-01 UTC as int64, ``uuid`` its 16 bytes,
``text`` UTF-8 (the writer's connection uses client_encoding UTF8), ``float8`` an IEEE
double, ``jsonb`` a version byte 1 and the JSON text.  The four text columns that are
the same for every row of a device (gateway, device, resident, site) are encoded once
per device and registry snapshot.  ``tests/platform/test_ingest_writer_copy.py`` checks
that rows read back equal what ``write_row`` stores.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta
from typing import Final

from carecircle.common.contract import Code, Kind

#: The binary COPY header: signature, flags (0), header extension length (0).
SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
#: The Unix minute (seconds // 60) of the PostgreSQL epoch: 946,684,800 s is a whole
#: number of minutes, so ``pg_micros(ts) // 60_000_000 + PG_EPOCH_MINUTE`` is ts's.
PG_EPOCH_MINUTE: Final = 946_684_800 // 60
_NULL: Final = b"\xff\xff\xff\xff"
# field count, then time, received_at (int64 µs) and msg_id (16 bytes) with their lengths
_HEAD: Final = struct.Struct(">hiqiqi16s").pack
_FLOAT: Final = struct.Struct(">id").pack
_LEN: Final = struct.Struct(">i").pack
READING_FIELDS: Final = 9
EVENT_FIELDS: Final = 11


def pg_micros(ts: datetime) -> int:
    """An aware datetime as binary ``timestamptz``: microseconds since 2000-01-01 UTC."""
    return (ts - _PG_EPOCH) // _US


def text(value: str | None) -> bytes:
    """One ``text`` field (length and UTF-8 bytes, or NULL)."""
    if value is None:
        return _NULL
    data = value.encode()
    return _LEN(len(data)) + data


def float8(value: float | None) -> bytes:
    """One ``float8`` field (or NULL)."""
    return _NULL if value is None else _FLOAT(8, value)


def jsonb(value: object) -> bytes:
    """One ``jsonb`` field: version 1 and the JSON text (as psycopg's ``Jsonb`` dumps it)."""
    data = b"\x01" + json.dumps(value).encode()
    return _LEN(len(data)) + data


def head(fields: int, time_us: int, received_us: int, msg_id: bytes) -> bytes:
    """Field count, ``time``, ``received_at`` and ``msg_id`` of one row."""
    return _HEAD(fields, 8, time_us, 8, received_us, 16, msg_id)


#: ``text`` fields of every code and kind, encoded once.
CODE_TEXT: Final[dict[Code, bytes]] = {c: text(c.value) for c in Code}
KIND_TEXT: Final[dict[Kind, bytes]] = {k: text(k.value) for k in Kind}
