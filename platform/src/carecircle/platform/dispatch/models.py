"""Typed data of dispatch: responders, shifts, alerts as dispatch sees them, tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from carecircle.common.errors import ContractError
from carecircle.platform.alerts.lifecycle import Outcome


class TravelMode(StrEnum):
    WALK = "walk"
    EBIKE = "ebike"
    CAR = "car"


class Availability(StrEnum):
    """A responder's own status: ``on_duty`` (available now, even off shift), ``off_duty``
    (follow the weekly shifts) or ``busy`` (not available)."""

    ON_DUTY = "on_duty"
    OFF_DUTY = "off_duty"
    BUSY = "busy"


class TaskStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    RELEASED = "released"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"


#: A task in one of these states holds the alert ("I go").
HOLDING: frozenset[TaskStatus] = frozenset(
    {TaskStatus.ACCEPTED, TaskStatus.EN_ROUTE, TaskStatus.ON_SCENE}
)


class TaskOutcome(StrEnum):
    """What the responder found, in their words; mapped to the alert's :class:`Outcome`."""

    HELPED = "helped"
    HOSPITAL = "hospital"
    RESIDENT_FINE = "resident_fine"
    FALSE_ALARM = "false_alarm"

    @property
    def alert_outcome(self) -> Outcome:
        return {
            TaskOutcome.HELPED: Outcome.REAL_INCIDENT,
            TaskOutcome.HOSPITAL: Outcome.REAL_INCIDENT,
            TaskOutcome.RESIDENT_FINE: Outcome.RESIDENT_FINE,
            TaskOutcome.FALSE_ALARM: Outcome.FALSE_ALARM,
        }[self]


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True)
class Shift:
    """A weekly window: on ``days`` (0 = Monday) from ``start`` to ``end`` local time.

    ``end <= start`` means the shift runs past midnight: a Friday 22:00–06:00 shift
    covers Saturday 03:00.
    """

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Shift:
        """From the provisioning form ``{"days": [0, 1], "start": "08:00", "end": "18:00"}``."""
        try:
            days = frozenset(int(d) for d in raw["days"])
            start = time.fromisoformat(str(raw["start"]))
            end = time.fromisoformat(str(raw["end"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ContractError(
                f"a shift needs days (0=Monday..6) and start/end as HH:MM, got {raw!r}"
            ) from err
        if not days or not days <= set(range(7)):
            raise ContractError(f"shift days must be 0 (Monday) to 6 (Sunday), got {raw!r}")
        return cls(days, start, end)

    def covers(self, local: datetime) -> bool:
        t = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= t < self.end
        # overnight (or 24 h when start == end)
        if weekday in self.days and t >= self.start:
            return True
        return (weekday - 1) % 7 in self.days and t < self.end


@dataclass(frozen=True)
class Responder:
    id: str
    kind: str  # volunteer | care_worker | facility_staff | family | doctor
    location: Location
    travel_mode: TravelMode = TravelMode.WALK
    skills: frozenset[str] = frozenset()
    availability: Availability = Availability.OFF_DUTY
    covers: frozenset[str] = frozenset()
    shifts: tuple[Shift, ...] = ()
    place_id: str | None = None
    site_id: str | None = None
    #: A phone number is on file (plain or sealed); SMS go to ``responder:<id>`` and the
    #: number is opened only at delivery (privacy.contacts.PhoneBook).
    has_phone: bool = False


def is_on_shift(responder: Responder, at: datetime, tz: ZoneInfo) -> bool:
    """Whether ``at`` falls in one of the responder's weekly shifts (local time ``tz``)."""
    local = at.astimezone(tz)
    return any(shift.covers(local) for shift in responder.shifts)


def is_available(responder: Responder, at: datetime, tz: ZoneInfo, *, holding: bool) -> bool:
    """Available for a new task: not busy, not holding a task, on duty or on shift."""
    if holding or responder.availability is Availability.BUSY:
        return False
    if responder.availability is Availability.ON_DUTY:
        return True
    return is_on_shift(responder, at, tz)


@dataclass(frozen=True)
class AlertInfo:
    """An alert as dispatch needs it: where, what, how urgent, which places it is in."""

    id: int
    kind: str
    severity: str
    site_id: str
    location: Location
    opened_at: datetime
    resident_id: str | None = None
    #: The site's place and its ancestors (village, township, county, prefecture).
    places: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Candidate:
    responder_id: str
    kind: str
    eta_s: float
    distance_m: float
    #: ETA plus skill and fairness penalties: what the ranking sorts by.
    score_s: float


@dataclass(frozen=True)
class TaskView:
    """The part of a task the state machine reasons about."""

    responder_id: str
    status: TaskStatus
    via: str  # offer | escalation
    offered_at: datetime
    deadline: datetime | None = None
    accepted_at: datetime | None = None
    eta_s: float | None = None


@dataclass(frozen=True)
class DispatchState:
    alert: AlertInfo
    tasks: tuple[TaskView, ...] = ()
    #: Current ranking of available responders (the service recomputes it on each event).
    candidates: tuple[Candidate, ...] = ()
    escalated: bool = False
    closed: bool = False
    started_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def holder(self) -> TaskView | None:
        return next((t for t in self.tasks if t.status in HOLDING), None)

    def asked(self) -> frozenset[str]:
        return frozenset(t.responder_id for t in self.tasks)

    def outstanding(self, via: str | None = None) -> tuple[TaskView, ...]:
        return tuple(
            t
            for t in self.tasks
            if t.status is TaskStatus.OFFERED and (via is None or t.via == via)
        )


def fmt_duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
