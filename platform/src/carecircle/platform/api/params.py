"""Shared request parameters: object ids, and times normalised to UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query

from carecircle.platform.api.errors import InvalidInput

#: The id format of every CareCircle object (the ``cc_id`` domain in the database).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
IdQ = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
KindQ = Annotated[str, Query(pattern=r"^[a-z_]{1,64}$")]


def utc(t: datetime | None) -> datetime | None:
    """``t`` in UTC (naive times are taken as UTC); refuses times PostgreSQL cannot hold."""
    if t is None:
        return None
    try:
        out = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as err:
        raise InvalidInput(f"time {t.isoformat()} is out of range") from err
    if not 1900 <= out.year <= 2200:
        raise InvalidInput(f"time {t.isoformat()} is out of range")
    return out
