"""Cursor pagination: ``?limit=&cursor=``; a page says where the next one starts."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from carecircle.platform.api.errors import InvalidInput

T = TypeVar("T")

MAX_LIMIT = 500
LimitQ = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
CursorQ = Annotated[str | None, Query(max_length=512, description="`next` of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    #: Pass as ``cursor`` to get the next page; ``null`` on the last page.
    next: str | None = None


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidInput("cursor is not one this API gave out") from err
    if not isinstance(key, list) or len(key) != arity:
        raise InvalidInput("cursor is not one this API gave out")
    return key


def page_of(rows: list[dict[str, Any]], limit: int, key: list[str]) -> tuple[list[Any], str | None]:
    """Split the ``limit + 1`` rows a query fetched into a page and the next cursor."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([last[k] for k in key])
