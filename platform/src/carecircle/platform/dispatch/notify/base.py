"""The notifier interface and the short text used by SMS and e-mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Notification:
    """One message to one target on one channel (a row of the ``notifications`` outbox)."""

    id: int
    channel: str  # mqtt | webhook | email | sms
    #: responder id (mqtt), URL (webhook), address (email); sms: ``responder:<id>`` /
    #: ``family:<id>`` in the outbox, the number only in memory at delivery
    target: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    error: str | None = None
    #: A failure worth retrying (timeouts, 5xx); a 4xx or a bad address is not.
    retryable: bool = True
    detail: str | None = None


class Notifier(Protocol):
    channel: str

    def send(self, notification: Notification) -> DeliveryResult:
        """Deliver one notification; never raises for delivery failures."""
        ...

    def close(self) -> None: ...


_TYPE_TEXT = {
    "offer": "Task offered",
    "escalation": "ESCALATION",
    "taken": "Task taken by another responder",
    "released": "Task no longer needed",
    "expired": "Offer expired",
    "cancelled": "Task cancelled",
}


def render_text(payload: dict[str, Any]) -> str:
    """A one-paragraph text for SMS and e-mail; ids only, never residents' names."""
    kind = payload.get("kind", "alert")
    head = _TYPE_TEXT.get(str(payload.get("type")), str(payload.get("type", "notice")))
    parts = [f"[CareCircle] {head}: {kind} alert #{payload.get('alert_id')}"]
    if payload.get("site_id"):
        parts.append(f"at site {payload['site_id']}")
    if payload.get("address"):
        parts.append(f"({payload['address']})")
    if payload.get("reason"):
        parts.append(f"- reason: {payload['reason']}")
    if payload.get("eta_s") is not None:
        parts.append(f"- your ETA {round(float(payload['eta_s']) / 60)} min")
    if payload.get("lat") is not None and payload.get("lon") is not None:
        parts.append(f"- location {payload['lat']:.5f},{payload['lon']:.5f}")
    return " ".join(parts)
