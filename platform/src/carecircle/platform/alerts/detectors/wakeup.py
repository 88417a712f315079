"""The missed wake-up window of each resident, learned from their own mornings.

A fixed window (06:00–09:30) cannot serve everyone: it cannot see a 06:00 riser who
is still in bed at 09:00, and it would page every day about a resident who always
rises at 10:00.  Telecare practice is "not up well after her usual time".  So, per
resident and local day:

1. :func:`rise_times`: from the activity the check itself counts (motion or presence
   in the rooms the rule counts, getting out of bed, a rise of the band's step count),
   the time of each past day the resident *got up*: the first activation after which
   activity goes on — in at least ``RISE_SLOTS`` of the six 10-minute slots of the next
   hour.  A night-time trip to the toilet (5–10 minutes, then back to bed) is not a rise.
2. :func:`learn_window`: with at least ``learn_min_days`` rises in the last
   ``learn_days``: the usual rise time is their median; the window opens
   ``learn_lead_s`` before it and closes ``learn_spread_k`` robust standard deviations
   (1.4826 × median absolute deviation) after it, but never sooner than
   ``learn_margin_min_s`` nor later than ``learn_margin_max_s`` after it; everything
   within ``[learn_earliest, learn_latest]``.  With fewer days, the window of the
   usual wake-up time stated at intake (:func:`stated_window`, the prior: from
   ``learn_lead_s`` before it to ``prior_margin_s`` after it), else the rule's.
   Until ``learn_full_days`` rises are known the window closes no later than the rule's
   own ``end`` (or the stated window's, if later): a short history can bring the check
   forward, not push it back (two late mornings among four — perhaps missed wake-ups
   themselves — move a median by hours).
   :func:`usable_rises`: mornings on which a missed wake-up alert was raised are left
   out of the history — unless they are most of it (then the window, not the
   resident, is wrong: a stated 06:30 of someone who rises at 08:45).
3. :func:`rose_by`: today the resident is up only after a rise by the same definition
   (the check's own activations from the window's start), not after any one activation:
   a toilet trip inside the window is not "up".
4. A window set for the resident (``care_profile.missed_wakeup.start/end`` or a
   resident rule) is used as it is; ``learn: false`` turns learning off.

All pure: typed marks and dates in, a :class:`WakeWindow` out.  The history is read
once per local day by :mod:`..jobs` (``WakeupCache``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from statistics import median
from typing import Literal

from carecircle.platform.alerts.config import MissedWakeupRule

#: An hour after a rise is split into slots of this length ...
RISE_SLOT = timedelta(minutes=10)
RISE_SPAN = timedelta(hours=1)
#: ... and at least this many of them must show activity.
RISE_SLOTS = 3
_SPAN_SLOTS = int(RISE_SPAN / RISE_SLOT)
MOTION_CODES = frozenset({"motion", "bathroom_presence"})


@dataclass(frozen=True)
class Mark:
    """One stored activity reading of a device that counts for the resident."""

    at: datetime
    code: str
    value: float
    room_kind: str | None
    device_id: str
    own: bool  #: the resident's own device (band, bed mat)
    #: A presence sensor's held state (``kinds.is_presence``): only its changes count.
    presence: bool = False


def _moved(m: Mark, prev: float | None) -> bool:
    """Does a motion/presence mark show someone moving?  A PIR's every trigger; a
    presence sensor's change to occupied (its first mark, occupied, too: nothing says
    since when), not its re-sent "occupied" (someone lying on the floor is present)."""
    if m.value <= 0:
        return False
    return not m.presence or prev is None or prev <= 0


def moments(marks: Iterable[Mark]) -> list[tuple[datetime, str]]:
    """``(time, device)`` of every mark showing someone: a motion/presence trigger, a
    door or bed changing, the band's step count rising (a value re-sent is none)."""
    out: list[tuple[datetime, str]] = []
    last: dict[tuple[str, str], float] = {}
    for m in sorted(marks, key=lambda m: m.at):
        key = (m.device_id, m.code)
        prev = last.get(key)
        last[key] = m.value
        if m.code in MOTION_CODES:
            moved = _moved(m, prev)
        elif m.code == "steps":
            moved = prev is not None and m.value > prev
        else:  # door, bed: a change
            moved = prev is not None and m.value != prev
        if moved:
            out.append((m.at, m.device_id))
    return out


@dataclass(frozen=True)
class WakeWindow:
    start: time
    end: time
    source: Literal["rule", "resident", "learned", "stated"]
    days: int = 0  #: days of history the window was learned from
    usual: time | None = None  #: median rise time (``stated``: the stated time)
    spread_min: float | None = None  #: robust standard deviation of the rise time

    def explanation(self) -> dict[str, object]:
        out: dict[str, object] = {"window_source": self.source}
        if self.source == "learned":
            out["learned_days"] = self.days
            out["usual_rise"] = self.usual.isoformat(timespec="minutes") if self.usual else None
            out["rise_spread_min"] = round(self.spread_min or 0.0, 1)
        elif self.source == "stated":
            out["stated_wake"] = self.usual.isoformat(timespec="minutes") if self.usual else None
            out["learned_days"] = self.days
        return out


def activations(
    marks: Iterable[Mark], rule: MissedWakeupRule, *, own_only: bool = False
) -> list[datetime]:
    """When the resident showed activity the check counts as being up, in time order.

    Motion/presence in a counted room (``rule.rooms``, default every room but the
    bedroom); getting out of bed (``count_bed_exit``); a rise of the band's cumulative
    step count.  Doors are left out: opened by callers too, and an occupant walking to
    a door shows on motion anyway.  ``own_only``: the resident's own devices only (a
    housemate moves the shared sensors).
    """
    out: list[datetime] = []
    last: dict[tuple[str, str], float] = {}
    for m in sorted(marks, key=lambda m: m.at):
        if own_only and not m.own:
            continue
        key = (m.device_id, m.code)
        prev = last.get(key)
        last[key] = m.value
        if m.code in MOTION_CODES:
            counted = m.room_kind != "bedroom" if rule.rooms is None else m.room_kind in rule.rooms
            if counted and _moved(m, prev):
                out.append(m.at)
        elif m.code == "bed_occupancy":
            if rule.count_bed_exit and m.value == 0 and prev is not None and prev > 0:
                out.append(m.at)
        elif m.code == "steps" and prev is not None and m.value > prev:
            out.append(m.at)
    return out


def rise_times(
    times: Sequence[datetime], tz: tzinfo, days: Iterable[date], earliest: time, latest: time
) -> dict[date, time]:
    """Per local day: when the resident got up (see the module docstring), if seen."""
    ordered = sorted(times)
    out: dict[date, time] = {}
    for day in days:
        lo = datetime.combine(day, earliest, tzinfo=tz)
        hi = datetime.combine(day, latest, tzinfo=tz)
        for i, t in enumerate(ordered):
            if t < lo:
                continue
            if t > hi:
                break
            slots = set()
            for u in ordered[i:]:
                if u >= t + RISE_SPAN:
                    break
                slots.add(int((u - t) / RISE_SLOT))
            if len(slots) >= RISE_SLOTS:
                out[day] = t.astimezone(tz).time()
                break
    return out


def rose_by(times: Sequence[datetime], start: datetime, now: datetime) -> bool | None:
    """Whether the resident got up at or after ``start``, as seen at ``now``.

    ``True``: an activation in ``[start, now]`` after which activity went on in at least
    ``RISE_SLOTS`` of the six 10-minute slots of the next hour (:func:`rise_times`).
    ``None``: not known yet — an activation whose hour is still running could still
    become a rise (judge again later).  ``False``: none did (one trip to the toilet).
    """
    ordered = sorted(t for t in times if start <= t <= now)
    pending = False
    for i, t in enumerate(ordered):
        slots = {int((u - t) / RISE_SLOT) for u in ordered[i:] if u < t + RISE_SPAN}
        if len(slots) >= RISE_SLOTS:
            return True
        if t + RISE_SPAN > now:
            running = int((now - t) / RISE_SLOT)  # slots before it are over
            if len(slots | set(range(running, _SPAN_SLOTS))) >= RISE_SLOTS:
                pending = True
    return None if pending else False


def _minutes(t: time) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def _clock(minutes: float) -> time:
    m = max(0, min(round(minutes), 24 * 60 - 1))
    return time(m // 60, m % 60)


def stated_window(stated: time, rule: MissedWakeupRule, days: int = 0) -> WakeWindow:
    """The window of a usual wake-up time stated at intake: ``learn_lead_s`` before it
    to ``prior_margin_s`` after it, within ``[learn_earliest, learn_latest]``."""
    lo, hi = _minutes(rule.learn_earliest), _minutes(rule.learn_latest)
    said = _minutes(stated)
    end = min(max(said + rule.prior_margin_s / 60, lo + 60), hi)
    start = max(min(said - rule.learn_lead_s / 60, end - 60), lo)
    return WakeWindow(_clock(start), _clock(end), "stated", days, usual=stated)


def learn_window(
    rises: Sequence[time], rule: MissedWakeupRule, stated: time | None = None
) -> WakeWindow:
    """The window from past rise times; with too few of them the stated time's window
    (``stated``: ``care_profile.usual_wake_time``), else the rule's own."""
    if not rule.learn:
        return WakeWindow(rule.start, rule.end, "rule", days=len(rises))
    prior = stated_window(stated, rule, len(rises)) if stated is not None else None
    if len(rises) < rule.learn_min_days:
        return prior or WakeWindow(rule.start, rule.end, "rule", days=len(rises))
    mins = [_minutes(t) for t in rises]
    usual = median(mins)
    spread = 1.4826 * median(abs(m - usual) for m in mins)
    margin = min(
        max(rule.learn_spread_k * spread, rule.learn_margin_min_s / 60),
        rule.learn_margin_max_s / 60,
    )
    lo, hi = _minutes(rule.learn_earliest), _minutes(rule.learn_latest)
    if len(rises) < min(rule.learn_full_days, rule.learn_days):
        cap = max(_minutes(rule.end), _minutes(prior.end) if prior else 0.0)
        hi = min(hi, max(cap, lo + 60))  # a short history: never later
    end = min(max(usual + margin, lo + 60), hi)
    start = max(min(usual - rule.learn_lead_s / 60, end - 60), lo)
    return WakeWindow(_clock(start), _clock(end), "learned", len(rises), _clock(usual), spread)


def usable_rises(rises: dict[date, time], alerted: Collection[date]) -> dict[date, time]:
    """The history without the mornings on which a missed wake-up alert was raised.

    Such a morning is not her usual one (she rose at 10:30 because she was unwell) and
    would pull a short history's median late.  But when most of the mornings raised an
    alert the window is what was wrong (a stated 06:30 of someone who rises at 08:45
    every day): then all are kept, so that learning corrects it.
    """
    kept = {d: t for d, t in rises.items() if d not in alerted}
    if 2 * (len(rises) - len(kept)) > len(rises):
        return dict(rises)
    return kept


def wakeup_window(
    rule: MissedWakeupRule,
    rises: dict[date, time],
    today: date,
    *,
    fixed_for_resident: bool = False,
    stated: time | None = None,
    alerted: Collection[date] = frozenset(),
) -> WakeWindow:
    """Today's window: the resident's own if set, else learned from the ``learn_days``
    before ``today`` (less the mornings in ``alerted``, :func:`usable_rises`), else the
    ``stated`` usual wake-up time's, else the rule's."""
    if fixed_for_resident:
        return WakeWindow(rule.start, rule.end, "resident")
    first = today - timedelta(days=rule.learn_days)
    recent = usable_rises({d: t for d, t in rises.items() if first <= d < today}, alerted)
    return learn_window([t for _, t in sorted(recent.items())], rule, stated)


#: Someone going out walks to the door: indoor activity this long before it opens ...
WALK_TO_DOOR = timedelta(minutes=15)
#: ... and the home stays quiet for this long after it (she left; not the rubbish out).
LEFT_QUIET = timedelta(minutes=30)
#: Activations this soon after the door opened are her on the way out (a PIR by the hall).
LEAVING = timedelta(minutes=2)
#: The door opened and someone moving inside within this long after it: back home.
COME_IN = timedelta(minutes=15)
#: How far back :func:`presumed_out` looks for the resident going out (two nights away).
OUT_LOOKBACK = timedelta(hours=48)


def _goes_on(ordered: Sequence[datetime], i: int) -> bool:
    """Activity goes on after ``ordered[i]``: at least ``RISE_SLOTS`` of the six
    10-minute slots of the next hour show some (as :func:`rise_times`)."""
    t = ordered[i]
    slots = {int((u - t) / RISE_SLOT) for u in ordered[i:] if u < t + RISE_SPAN}
    return len(slots) >= RISE_SLOTS


def presumed_out(marks: Iterable[Mark], now: datetime) -> datetime | None:
    """When the resident left through the front door and has not come back, if the
    devices show it so; ``None`` otherwise.

    ``marks``: the home's readings (the resident's own devices and the shared sensors,
    front door included) of the last :data:`OUT_LOOKBACK`.  *Went out*: the front door
    opened after indoor activity (within :data:`WALK_TO_DOOR`) and nothing moved inside
    for :data:`LEFT_QUIET` after it.  *Came back* (or never left) — any of, after it:
    the door opened and someone moved inside within :data:`COME_IN`; the bed mat
    changed; the band's step count rose; indoor activity went on (as a rise: at least
    ``RISE_SLOTS`` of the six 10-minute slots of an hour).  Single activations — a
    motion sensor's ghost trigger, a neighbour at the door — are not a return.  Only for
    a resident the shared sensors judge (living alone, or the housemates' band silent):
    a partner at home moves the sensors anyway.
    """
    ordered = sorted((m for m in marks if m.at <= now), key=lambda m: m.at)
    opens: list[datetime] = []
    inside: list[datetime] = []
    own: list[datetime] = []
    last: dict[tuple[str, str], float] = {}
    for m in ordered:
        key = (m.device_id, m.code)
        prev = last.get(key)
        last[key] = m.value
        if m.code == "door":
            if m.room_kind == "entrance" and m.value > 0 and not (prev is not None and prev > 0):
                opens.append(m.at)
        elif m.code in MOTION_CODES:
            # a presence sensor's every "occupied", re-sent too, is someone inside
            if m.value > 0 and m.room_kind != "entrance":
                inside.append(m.at)
        elif m.code == "bed_occupancy":
            if prev is not None and m.value != prev:
                own.append(m.at)
        elif m.code == "steps" and prev is not None and m.value > prev:
            own.append(m.at)
    left = next(
        (
            o
            for o in reversed(opens)
            if any(o - WALK_TO_DOOR <= t <= o for t in inside)
            and not any(o + LEAVING < t <= o + LEFT_QUIET for t in inside)
            and not any(o < t <= o + LEFT_QUIET for t in own)
        ),
        None,
    )
    if left is None:
        return None
    if any(t > left for t in own):
        return None
    for o in opens:
        if o > left and any(o < t <= o + COME_IN for t in inside):
            return None
    after = [t for t in inside if t > left + LEAVING]
    if any(_goes_on(after, i) for i in range(len(after))):
        return None
    return left
