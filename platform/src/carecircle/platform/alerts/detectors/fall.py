"""The worn check of a low-confidence fall alarm (held by the engine, judged on a schedule).

A band that is dropped or knocked off a table sends a fall alarm of low confidence,
then reports itself off the wrist (``worn: false``, no vitals).  A wrist that falls with
its wearer stays on the wrist: the band keeps sending vitals.  The engine holds a fall
alarm below :attr:`FallRule.min_confidence`; this check decides on it from the band's
first report after the alarm (docs/alerts.md, "Fall: confidence and the worn check").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from carecircle.platform.alerts.config import FallRule
from carecircle.platform.alerts.kinds import SEVERITY, AlertKind
from carecircle.platform.alerts.repository import AlertDraft

Decision = Literal["raise", "drop", "wait"]


@dataclass(frozen=True)
class HeldFall:
    """A stored fall alarm whose confidence was below the rule's floor."""

    msg_id: str
    device_id: str
    site_id: str
    resident_id: str | None
    at: datetime  #: device time of the alarm
    confidence: float


@dataclass(frozen=True)
class WornReport:
    """One report of the band after the alarm: on the wrist (vitals, ``worn: true``) or not."""

    at: datetime
    worn: bool


def judge_held_fall(
    fall: HeldFall, reports: Sequence[WornReport], rule: FallRule, now: datetime
) -> tuple[Decision, str]:
    """Raise, drop or keep waiting, with the reason.

    The band's first report within ``worn_check_s`` after the alarm decides: worn →
    raise (a real fall the band was unsure of), off the wrist → drop (the band fell).
    No report by then → raise: a silent band after a fall alarm is no reason to stay
    quiet.  A held alarm is never dropped for lack of evidence.
    """
    limit = fall.at + timedelta(seconds=rule.worn_check_s)
    after = sorted((r for r in reports if fall.at < r.at <= limit), key=lambda r: r.at)
    if after:
        first = after[0]
        if first.worn:
            return "raise", "band still on the wrist after the alarm"
        return "drop", "band off the wrist after the alarm: the band fell, not its wearer"
    if now >= limit:
        return "raise", f"no report of the band within {rule.worn_check_s} s of the alarm"
    return "wait", "no report of the band yet"


def held_fall_draft(fall: HeldFall, reason: str, now: datetime) -> AlertDraft:
    kind = AlertKind.FALL
    return AlertDraft(
        subject=fall.resident_id or fall.site_id,
        site_id=fall.site_id,
        kind=kind.value,
        severity=SEVERITY[kind],
        detector="rule:fall",
        at=now,  # opened when judged: the detection delay includes the worn check
        resident_id=fall.resident_id,
        device_id=fall.device_id,
        message=f"fall detected (low confidence {fall.confidence:.2f}; {reason})",
        explanation={
            "code": "fall",
            "msg_id": fall.msg_id,
            "device_id": fall.device_id,
            "confidence": fall.confidence,
            "worn_check": reason,
            "alarm_at": fall.at.isoformat(),
        },
    )
