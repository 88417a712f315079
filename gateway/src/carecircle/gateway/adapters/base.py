"""What every device adapter returns, and small helpers for reading native payloads.

An adapter is a pure function ``(topic, payload, registry, received_at) -> AdapterResult``.
It never raises on bad input: anything it cannot read becomes a dead letter with a reason.
It does not make message ids or envelopes; the pipeline does that once, after validation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from carecircle.common.contract import Code, DeviceBinding, Kind
from carecircle.gateway.registry.registry import HaEntity as HaEntity

AttrValue = str | int | float | bool | None

#: ``always``: emit every time.  ``rise``: emit only when the value becomes 1 (the
#: pipeline remembers the last value per device and code, durably).
Trigger = Literal["always", "rise"]


@dataclass(frozen=True)
class Draft:
    """A canonical message before it gets an id: what the device said, mapped to the vocabulary."""

    binding: DeviceBinding
    kind: Kind
    code: Code
    value: float | None
    ts: datetime
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    trigger: Trigger = "always"
    #: The device itself spoke (counts for per-sensor liveness); availability reports
    #: relayed by a bridge do not.
    device_spoke: bool = True


@dataclass(frozen=True)
class DeadLetter:
    """Input the gateway could not turn into canonical messages, with the reason."""

    reason: str
    topic: str
    payload: bytes
    device_id: str | None = None


@dataclass
class AdapterResult:
    drafts: list[Draft] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: Home Assistant discovery: entities learned (or, with ``forget``, removed).
    learned: list[HaEntity] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    #: Known devices that spoke even if nothing in the message maps to a code
    #: (e.g. only ``illuminance``), for per-sensor liveness.
    spoke: list[str] = field(default_factory=list)
    #: Why the message was deliberately ignored (bridge chatter, commands), for debugging.
    ignored: str | None = None

    def dead(self, reason: str, topic: str, payload: bytes, device_id: str | None = None) -> None:
        self.dead_letters.append(DeadLetter(reason, topic, payload, device_id))


def ignored(why: str) -> AdapterResult:
    return AdapterResult(ignored=why)


def dead(reason: str, topic: str, payload: bytes, device_id: str | None = None) -> AdapterResult:
    result = AdapterResult()
    result.dead(reason, topic, payload, device_id)
    return result


class Unreadable(ValueError):
    """A native value cannot be read; the message (or field) becomes a dead letter."""


def parse_json(payload: bytes) -> Any:
    """JSON without NaN/Infinity (which Python's json accepts and the contract does not)."""

    def _no_constants(name: str) -> Any:
        raise Unreadable(f"{name} is not a number")

    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError as err:
        raise Unreadable("payload is not UTF-8 text") from err
    except RecursionError as err:
        raise Unreadable("payload is nested too deeply") from err
    except json.JSONDecodeError as err:
        raise Unreadable(f"not JSON: {err.msg} at position {err.pos}") from err


def parse_object(payload: bytes) -> dict[str, Any]:
    doc = parse_json(payload)
    if not isinstance(doc, dict):
        raise Unreadable(f"expected a JSON object, got {type(doc).__name__}")
    return doc


def as_number(value: Any, name: str) -> float:
    """A finite number (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unreadable(f"{name} must be a number, got {type(value).__name__}")
    try:
        out = float(value)
    except OverflowError as err:
        raise Unreadable(f"{name} is too large") from err
    if not math.isfinite(out):
        raise Unreadable(f"{name} is not a finite number")
    return out


def as_bool(value: Any, name: str) -> float:
    """1.0/0.0 from a JSON boolean (zigbee2mqtt and the wearables send real booleans)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    raise Unreadable(f"{name} must be true or false, got {value!r:.40}")


def epoch_ms(value: Any, name: str) -> datetime:
    ms = as_number(value, name)
    try:
        return datetime.fromtimestamp(ms / 1000.0, UTC)
    except (OverflowError, OSError, ValueError) as err:
        raise Unreadable(f"{name} {ms:g} is not a possible epoch time in ms") from err


def iso_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise Unreadable(f"{name} must be an RFC 3339 string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        out = datetime.fromisoformat(text)
    except ValueError as err:
        raise Unreadable(f"{name} {value!r:.40} is not an RFC 3339 time") from err
    if out.tzinfo is None:
        raise Unreadable(f"{name} {value!r:.40} has no UTC offset")
    return out.astimezone(UTC)


def device_time(value: Any, name: str) -> datetime:
    """An ISO string or epoch milliseconds (zigbee2mqtt's ``last_seen`` may be either)."""
    if isinstance(value, str):
        return iso_time(value, name)
    return epoch_ms(value, name)


def scalar_attr(value: Any) -> AttrValue:
    """A value fit for ``payload.attrs`` (small scalars only), else its truncated text."""
    if value is None or isinstance(value, bool | str):
        return value if not isinstance(value, str) else value[:128]
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)[:64]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return json.dumps(value, default=str)[:128]


def split_topic(topic: str, base: str) -> list[str] | None:
    """The segments of ``topic`` under ``base`` (``None`` when it is not under it)."""
    if not topic.startswith(base + "/"):
        return None
    return topic[len(base) + 1 :].split("/")
