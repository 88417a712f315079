"""Connections to PostgreSQL, with library errors translated at the boundary."""

from __future__ import annotations

import logging

import psycopg
from pydantic import AnyUrl

from carecircle.common.errors import StoreUnavailable

log = logging.getLogger(__name__)


def redact(url: AnyUrl | str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = AnyUrl(str(url))
    user = f"{parsed.username}@" if parsed.username else ""
    port = f":{parsed.port}" if parsed.port else ""
    path = parsed.path or ""
    return f"{parsed.scheme}://{user}{parsed.host or ''}{port}{path}"


def connect(
    url: AnyUrl | str, *, timeout_s: int = 5, autocommit: bool = False
) -> psycopg.Connection[tuple[object, ...]]:
    """Open one connection, or raise :class:`StoreUnavailable` saying what to fix."""
    try:
        return psycopg.connect(str(url), connect_timeout=timeout_s, autocommit=autocommit)
    except psycopg.OperationalError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL at {redact(url)}: {reason}; "
            "check CARECIRCLE_DATABASE_URL (or --database-url) and that the server is running"
        ) from err
