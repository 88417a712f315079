"""Fast, equivalent decoding of gateway batches.

The contract's :func:`~carecircle.common.contract.decode_batch` parses the JSON with
the standard library and validates item by item with the pydantic :class:`Envelope`
model, so that one bad item can be rejected with its reason.  On the hot path almost
every batch is valid, and building two pydantic models per item was ~45 % of an
ingest worker's time.  So this module first tries a **fast path** that can only say
"this whole batch is certainly valid":

* msgspec decodes the JSON straight into small typed structs (UUID, ``Kind`` and
  ``Code`` enums, floats, attribute maps; unknown keys refused, as ``extra="forbid"``);
* the remaining rules of the contract are checked in plain Python, each one at
  least as strictly as pydantic does: identifier pattern (with a per-worker cache of
  identifiers already seen valid), aware ISO 8601 timestamps in the one strict form
  gateways send (``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)``: in that form Python and
  pydantic read the same instant), the vocabulary (kind, unit, value range of the
  code), the batch's gateway, and the plausibility window;
* what is handed on are :class:`~carecircle.platform.ingest.items.Item` structs
  holding the decoded values (the payload is the very struct msgspec made): no
  pydantic object is built per reading; the writer and the alert engine work on
  those, and :meth:`Item.to_envelope` gives the equal :class:`Envelope` when one is
  needed.

Anything the fast path does not accept — a broken item, an unusual but legal form
such as a string ``"72"`` for a number, a timestamp with 7 fraction digits — sends
the whole message to ``decode_batch``, which gives the per-item result and reasons.
The fast path is therefore only ever *stricter* than the model, never looser, and
for what it accepts it yields items equal to the reference's envelopes
(``tests/platform/test_ingest_decode.py`` checks both with hypothesis).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal

import msgspec

from carecircle.common.contract import (
    MAX_BATCH_ITEMS,
    VOCABULARY,
    Code,
    Kind,
    Rejected,
    decode_batch,
)
from carecircle.common.contract.envelope import MAX_BATCH_BYTES
from carecircle.common.contract.vocabulary import ValueType
from carecircle.platform.ingest.items import Item, ItemPayload

MAX_FUTURE = timedelta(minutes=10)
MAX_PAST = timedelta(days=30)


class _Item(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    id: uuid.UUID
    kind: Kind
    gw: str
    dev: str
    site: str
    ts: str
    gw_ts: str
    payload: ItemPayload
    v: Literal[1] = 1
    res: str | None = None
    room: str | None = None


class _Batch(msgspec.Struct, gc=False):
    # extra keys at batch level are ignored, as decode_batch ignores them
    v: Literal[1]
    gw: str
    items: Annotated[list[_Item], msgspec.Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


_decoder: Final = msgspec.json.Decoder(_Batch)

# -- identifiers -------------------------------------------------------------------------
# The contract's Ident pattern is ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$ under pydantic-core's
# Rust regex, where $ is the end of the text; fullmatch is the same (Python's $ would
# also accept a trailing newline, so it is not used).
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}").fullmatch
_IDENT_CACHE_MAX = 100_000


class _Idents:
    """Identifiers already seen valid (a worker sees the same few thousand all day)."""

    def __init__(self) -> None:
        self.valid: set[str] = set()

    def check(self, s: str) -> bool:
        if _IDENT(s) is None:
            return False
        if len(self.valid) >= _IDENT_CACHE_MAX:
            self.valid.clear()
        self.valid.add(s)
        return True


_idents = _Idents()

# -- timestamps ------------------------------------------------------------------------
# [0-9], not \d: Python's \d also matches other scripts' digits
_TS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
).fullmatch
_fromiso: Final = datetime.fromisoformat


def _aware(s: str) -> datetime | None:
    """``s`` as pydantic's AwareDatetime reads it, or ``None`` (not in the strict form)."""
    if _TS(s) is None:
        return None
    try:
        return _fromiso(s)
    except ValueError:  # e.g. month 13, offset ≥ 24 h: pydantic refuses those too
        return None


# -- vocabulary ------------------------------------------------------------------------
_INF = math.inf


def _rules() -> dict[tuple[Kind, Code], tuple[str, int, float, float]]:
    """(kind, code) allowed → (unit, value type, min, max); bounds are inclusive."""
    out = {}
    for code, s in VOCABULARY.items():
        vtype = {ValueType.NUMBER: 0, ValueType.BOOLEAN: 1, ValueType.COUNT: 2}[s.value_type]
        lo = -_INF if s.minimum is None else float(s.minimum)
        hi = _INF if s.maximum is None else float(s.maximum)
        for kind in s.kinds:
            out[(kind, code)] = (s.unit, vtype, lo, hi)
    return out


_RULES: Final = _rules()


def _value_ok(vtype: int, lo: float, hi: float, value: float | None) -> bool:
    """As ``CodeSpec.check_value(value) is None``, for the fast path."""
    if value is None:
        return vtype == 1
    if not (-_INF < value < _INF and lo <= value <= hi):  # NaN fails every comparison
        return False
    if vtype == 1:
        return value == 0.0 or value == 1.0
    if vtype == 2:
        return value >= 0 and value.is_integer()
    return True


@dataclass(frozen=True)
class DecodedItems:
    """:class:`~carecircle.common.contract.Decoded`, with light items for the good ones."""

    gateway_id: str | None
    items: list[Item]
    rejected: list[Rejected]


def fast_decode(
    raw: bytes, topic_gateway: str | None, now: datetime
) -> tuple[str, list[Item]] | None:
    """The gateway and every item of ``raw``, or ``None`` if anything needs a closer look.

    ``None`` is not a verdict: :func:`decode` then asks ``decode_batch``.
    """
    try:
        batch = _decoder.decode(raw)
    except msgspec.DecodeError:  # also msgspec.ValidationError, its subclass
        return None
    gw = batch.gw
    if topic_gateway is not None and gw != topic_gateway:
        return None
    valid = _idents.valid
    check = _idents.check
    rules = _RULES
    lo_ts, hi_ts = now - MAX_PAST, now + MAX_FUTURE
    if gw not in valid and not check(gw):
        return None
    out: list[Item] = []
    append = out.append
    last_s: str | None = None
    last_dt: datetime | None = None
    for it in batch.items:
        if it.gw != gw:
            return None
        dev, site, res, room = it.dev, it.site, it.res, it.room
        if (
            (dev not in valid and not check(dev))
            or (site not in valid and not check(site))
            or (res is not None and res not in valid and not check(res))
            or (room is not None and room not in valid and not check(room))
        ):
            return None
        ts = _aware(it.ts)
        if ts is None or not lo_ts <= ts <= hi_ts:
            return None
        if it.gw_ts == it.ts:
            gw_ts: datetime | None = ts
        elif it.gw_ts == last_s:
            gw_ts = last_dt
        else:
            gw_ts = last_dt = _aware(it.gw_ts)
            last_s = it.gw_ts
        if gw_ts is None:
            return None
        p = it.payload
        rule = rules.get((it.kind, p.code))
        if rule is None:
            return None
        unit, vtype, lo, hi = rule
        if (p.unit is not None and p.unit != unit) or not _value_ok(vtype, lo, hi, p.value):
            return None
        if p.value is None and it.kind is Kind.READING:  # refused by the contract
            return None
        append(Item(it.id, it.kind, gw, dev, res, site, room, ts, gw_ts, p))
    return gw, out


def decode(raw: bytes, *, topic_gateway: str | None, now: datetime) -> DecodedItems:
    """Decode one uplink message; never raises on bad input (see ``decode_batch``)."""
    if len(raw) <= MAX_BATCH_BYTES:
        fast = fast_decode(raw, topic_gateway, now)
        if fast is not None:
            return DecodedItems(fast[0], fast[1], [])
    slow = decode_batch(
        raw, topic_gateway=topic_gateway, now=now, max_future=MAX_FUTURE, max_past=MAX_PAST
    )
    return DecodedItems(slow.gateway_id, [Item.of(env) for env in slow.items], slow.rejected)
