"""From native MQTT messages to validated canonical envelopes and dead letters.

``Normaliser.process`` never raises on input: the adapter's drafts are validated one by
one against the contract (vocabulary, units, ranges, timestamps), get their message id
here — once, kept through every retry — and anything refused becomes a dead letter
with the reason.  Alarm *events* that fire on the rise (smoke, leak, fall radar) are
decided against the last value per device and code, which the caller persists.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from carecircle.common.contract import Envelope, Kind, new_id
from carecircle.gateway.adapters import AdapterResult, Bases, DeadLetter, Draft, HaEntity, route
from carecircle.gateway.registry.registry import Registry

log = logging.getLogger(__name__)

#: Same bounds as the platform (docs/contract.md §2.2): further off is impossible.
MAX_FUTURE = timedelta(minutes=10)
MAX_PAST = timedelta(days=30)
#: Dead letters carry the payload as text up to this size, else base64 of the first bytes.
MAX_DEAD_PAYLOAD = 4096


@dataclass
class Outcome:
    envelopes: list[Envelope] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    learned: list[HaEntity] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    #: Device ids that spoke (for per-sensor liveness).
    seen: set[str] = field(default_factory=set)
    #: Last values for rise-triggered events, to persist with the envelopes.
    memory: dict[str, float] = field(default_factory=dict)


def dead_letter_record(
    gateway_id: str, letter: DeadLetter, received_at: datetime
) -> dict[str, Any]:
    """The JSON published on ``…/gw/{gw}/deadletter``."""
    raw = letter.payload
    record: dict[str, Any] = {
        "id": str(new_id()),
        "gw": gateway_id,
        "reason": letter.reason[:500],
        "topic": letter.topic[:512],
        "received_at": received_at.isoformat(),
    }
    if letter.device_id:
        record["dev"] = letter.device_id
    try:
        text = raw.decode("utf-8")
        if len(raw) <= MAX_DEAD_PAYLOAD:
            record["payload"] = text
            record["encoding"] = "text"
        else:
            raise ValueError("too long")
    except (UnicodeDecodeError, ValueError):
        record["payload"] = base64.b64encode(raw[:MAX_DEAD_PAYLOAD]).decode()
        record["encoding"] = "base64"
        if len(raw) > MAX_DEAD_PAYLOAD:
            record["truncated_from"] = len(raw)
    return record


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


class Normaliser:
    def __init__(
        self, gateway_id: str, bases: Bases, memory: Mapping[str, float] | None = None
    ) -> None:
        self.gateway_id = gateway_id
        self.bases = bases
        self.memory: dict[str, float] = dict(memory or {})

    def process(
        self, topic: str, payload: bytes, registry: Registry, received_at: datetime
    ) -> Outcome:
        out = Outcome()
        try:
            result = route(topic, payload, registry, received_at, self.bases)
        except Exception as err:  # an adapter bug must not stop the gateway or lose input
            log.exception("adapter failed on topic %.120s", topic)
            result = AdapterResult()
            result.dead(f"adapter error: {type(err).__name__}: {err}", topic, payload)
        out.learned, out.forget = result.learned, result.forget
        out.seen.update(result.spoke)
        for letter in result.dead_letters:
            out.dead_letters.append(dead_letter_record(self.gateway_id, letter, received_at))
        for draft in result.drafts:
            if draft.trigger == "rise" and not self._rises(draft, out):
                continue
            env_or_reason = self._envelope(draft, received_at)
            if isinstance(env_or_reason, str):
                letter = DeadLetter(env_or_reason, topic, payload, draft.binding.id)
                out.dead_letters.append(dead_letter_record(self.gateway_id, letter, received_at))
                continue
            out.envelopes.append(env_or_reason)
            if draft.device_spoke:
                out.seen.add(draft.binding.id)
        return out

    def _rises(self, draft: Draft, out: Outcome) -> bool:
        key = f"{draft.binding.id}|{draft.code.value}"
        before = out.memory.get(key, self.memory.get(key))
        value = draft.value if draft.value is not None else 0.0
        if before != value:
            out.memory[key] = value
            self.memory[key] = value
        return value == 1.0 and before != 1.0

    def _envelope(self, draft: Draft, received_at: datetime) -> Envelope | str:
        b = draft.binding
        if not (received_at - MAX_PAST <= draft.ts <= received_at + MAX_FUTURE):
            return (
                f"{draft.code.value}: device time {draft.ts.isoformat()} is implausible "
                f"(received at {received_at.isoformat()})"
            )
        doc = {
            "id": new_id(),
            "kind": draft.kind,
            "gw": self.gateway_id,
            "dev": b.id,
            "res": b.res,
            "site": b.site,
            "room": b.room,
            "ts": draft.ts,
            "gw_ts": received_at,
            "payload": {"code": draft.code, "value": draft.value, "attrs": draft.attrs},
        }
        try:
            return Envelope.model_validate(doc)
        except ValidationError as err:
            return _reason(err)


def make_status(
    gateway_id: str,
    *,
    device_id: str,
    site: str,
    kind: Kind,
    code: Any,
    value: float,
    at: datetime,
    res: str | None = None,
    room: str | None = None,
    attrs: dict[str, Any] | None = None,
) -> Envelope:
    """A gateway-made envelope (heartbeat, liveness availability)."""
    return Envelope.model_validate(
        {
            "id": new_id(),
            "kind": kind,
            "gw": gateway_id,
            "dev": device_id,
            "res": res,
            "site": site,
            "room": room,
            "ts": at,
            "gw_ts": at,
            "payload": {"code": code, "value": value, "attrs": attrs or {}},
        }
    )


def to_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
