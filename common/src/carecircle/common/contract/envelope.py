"""The canonical envelope every gateway sends to the platform, and its batch.

See ``docs/contract.md`` for the rules in prose.  Decoding is per item: one bad
item in a batch is rejected with its reason while the rest are kept.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from carecircle.common.contract.vocabulary import Code, Kind, spec
from carecircle.common.errors import ContractError

SCHEMA_VERSION: Final = 1
#: Upper bound of items in one batch; a gateway splits larger backlogs.
MAX_BATCH_ITEMS = 5000
#: Upper bound of an encoded batch, in bytes.
MAX_BATCH_BYTES = 4 * 1024 * 1024

#: Identifier of a gateway, device, resident, site or room: safe in MQTT topics and logs.
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
AttrValue = str | int | float | bool | None


class Payload(BaseModel):
    """What was measured or what happened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    value: float | None = None
    #: UCUM unit; optional on the wire, but when present it must be the code's unit.
    unit: str | None = None
    #: Small free-form details: the button action, zigbee2mqtt fall_status, a room hint.
    attrs: dict[Annotated[str, StringConstraints(max_length=64)], AttrValue] = Field(
        default_factory=dict, max_length=16
    )


class Envelope(BaseModel):
    """One canonical message from a gateway (schema version 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = SCHEMA_VERSION
    #: Message id, made once by the gateway; the platform stores each id once.
    id: uuid.UUID
    kind: Kind
    gw: Ident
    dev: Ident
    res: Ident | None = None
    site: Ident
    room: Ident | None = None
    #: When the device measured it (device clock, or gateway receive time if the
    #: device sends none).
    ts: AwareDatetime
    #: When the gateway received it from the device.
    gw_ts: AwareDatetime
    payload: Payload

    @model_validator(mode="after")
    def _check_vocabulary(self) -> Envelope:
        s = spec(self.payload.code)
        if self.kind not in s.kinds:
            allowed = ", ".join(sorted(k.value for k in s.kinds))
            raise ValueError(
                f"code {s.code.value!r} is not allowed in a {self.kind.value}: use {allowed}"
            )
        if self.payload.unit is not None and self.payload.unit != s.unit:
            raise ValueError(f"unit of {s.code.value} is {s.unit!r}, not {self.payload.unit!r}")
        problem = s.check_value(self.payload.value)
        if problem is None and self.kind is Kind.READING and self.payload.value is None:
            # A sampled state with no value says nothing (the readings table has no
            # room for one): "motion" must be 1 or 0. Events may carry no value.
            problem = "a reading needs a value (booleans are 0 or 1)"
        if problem:
            raise ValueError(f"{s.code.value}: {problem}")
        return self

    @property
    def is_alarm(self) -> bool:
        return spec(self.payload.code).alarm

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Batch(BaseModel):
    """What a gateway publishes upstream: one or more envelopes from that gateway."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = SCHEMA_VERSION
    gw: Ident
    sent_at: AwareDatetime
    items: list[Envelope] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)

    @model_validator(mode="after")
    def _same_gateway(self) -> Batch:
        for item in self.items:
            if item.gw != self.gw:
                raise ValueError(
                    f"item {item.id} claims gateway {item.gw!r} inside a batch from {self.gw!r}"
                )
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


_envelope = TypeAdapter(Envelope)


@dataclass(frozen=True)
class Rejected:
    """An item (or whole message) that broke the contract, kept for the dead-letter store."""

    reason: str
    raw: Any


@dataclass(frozen=True)
class Decoded:
    gateway_id: str | None
    items: list[Envelope]
    rejected: list[Rejected]


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else str(e["msg"]))
    return "; ".join(parts)


def decode_batch(
    raw: bytes,
    *,
    topic_gateway: str | None = None,
    now: datetime | None = None,
    max_future: timedelta = timedelta(minutes=10),
    max_past: timedelta = timedelta(days=30),
) -> Decoded:
    """Decode a batch published by a gateway, item by item.

    ``topic_gateway`` is the gateway id taken from the MQTT topic: a batch or item
    claiming another gateway is refused (one gateway may not speak for another).
    When ``now`` is given, timestamps further than ``max_future`` ahead or
    ``max_past`` behind are refused as impossible.  Never raises on bad input.
    """
    if len(raw) > MAX_BATCH_BYTES:
        return Decoded(
            None,
            [],
            [Rejected(f"message of {len(raw)} bytes exceeds {MAX_BATCH_BYTES}", raw[:1024])],
        )
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return Decoded(None, [], [Rejected(f"not JSON: {err}", raw)])
    if not isinstance(doc, dict):
        return Decoded(None, [], [Rejected("a batch is a JSON object", doc)])
    gw = doc.get("gw")
    items = doc.get("items")
    problem = None
    if doc.get("v") != SCHEMA_VERSION:
        problem = f"unsupported schema version {doc.get('v')!r}; this platform speaks v1"
    elif not isinstance(gw, str):
        problem = "batch has no gateway id 'gw'"
    elif topic_gateway is not None and gw != topic_gateway:
        problem = f"batch claims gateway {gw!r} but was published on {topic_gateway!r}'s topic"
    elif not isinstance(items, list) or not items:
        problem = "batch has no 'items' list"
    elif len(items) > MAX_BATCH_ITEMS:
        problem = f"batch has {len(items)} items; at most {MAX_BATCH_ITEMS} are allowed"
    if problem:
        return Decoded(gw if isinstance(gw, str) else None, [], [Rejected(problem, doc)])
    assert isinstance(gw, str) and isinstance(items, list)
    good: list[Envelope] = []
    bad: list[Rejected] = []
    for item in items:
        try:
            env = _envelope.validate_python(item)
        except ValidationError as err:
            bad.append(Rejected(_reason(err), item))
            continue
        if env.gw != gw:
            bad.append(Rejected(f"item claims gateway {env.gw!r} inside a batch from {gw!r}", item))
            continue
        if now is not None and not (now - max_past <= env.ts <= now + max_future):
            bad.append(
                Rejected(
                    f"timestamp {env.ts.isoformat()} is implausible "
                    f"(received at {now.isoformat()})",
                    item,
                )
            )
            continue
        good.append(env)
    return Decoded(gw, good, bad)


def decode_envelope(raw: bytes | str | dict[str, Any]) -> Envelope:
    """Decode one envelope, raising :class:`ContractError` with the reason."""
    try:
        if isinstance(raw, dict):
            return _envelope.validate_python(raw)
        return _envelope.validate_json(raw)
    except ValidationError as err:
        raise ContractError(_reason(err)) from err
