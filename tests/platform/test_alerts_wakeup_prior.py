"""Missed wake-up, session 4 (pure): the stated usual wake-up time as the window's
prior, mornings that raised a missed wake-up left out of the history, and a resident
who went out and has not come back."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from carecircle.common.contract.provisioning import ResidentSpec, parse_usual_wake
from carecircle.platform.alerts.config import MissedWakeupRule
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.detectors.wakeup import (
    Mark,
    learn_window,
    presumed_out,
    stated_window,
    usable_rises,
    wakeup_window,
)
from carecircle.platform.alerts.jobs import stated_wake

TZ = ZoneInfo("Asia/Shanghai")
RULE = MissedWakeupRule()
MON = date(2026, 1, 12)


def local(d: int, h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 1, d, h, m, s, tzinfo=TZ)


def motion(at: datetime, room: str = "living_room") -> Mark:
    return Mark(at, "motion", 1, room, f"pir-{room}", own=False)


def door(at: datetime, value: float = 1) -> Mark:
    return Mark(at, "door", value, "entrance", "door-ent", own=False)


def going_out(at: datetime) -> list[Mark]:
    """Kitchen, living room, then out of the front door at ``at`` (closed behind her)."""
    return [
        motion(at - timedelta(minutes=9), "kitchen"),
        motion(at - timedelta(minutes=2)),
        door(at),
        door(at + timedelta(seconds=8), 0),
    ]


def busy_hour(start: datetime) -> list[Mark]:
    return [motion(start + timedelta(minutes=10 * i + 2), "kitchen") for i in range(6)]


# -- the stated usual wake-up time --------------------------------------------------------


def test_stated_time_is_checked_at_provisioning() -> None:
    assert parse_usual_wake("06:30") == time(6, 30)
    for bad in ("6:30", "18:30", "02:00", "25:00", "06:61", 630, "about half six"):
        with pytest.raises(ValueError, match="usual_wake_time"):
            parse_usual_wake(bad)
    base = {"id": "r-1", "site_id": "hh-1", "display_name": "x"}
    ok = ResidentSpec.model_validate({**base, "care_profile": {"usual_wake_time": "05:30"}})
    assert ok.care_profile["usual_wake_time"] == "05:30"
    ResidentSpec.model_validate({**base, "care_profile": {"usual_wake_time": None}})
    with pytest.raises(ValidationError, match="not a plausible getting-up time"):
        ResidentSpec.model_validate({**base, "care_profile": {"usual_wake_time": "18:30"}})


def test_a_stored_stated_time_that_is_not_valid_is_ignored() -> None:
    assert stated_wake(ResidentCtx("r-1", "hh-1", care_profile={"usual_wake_time": "06:30"})) == (
        time(6, 30)
    )
    assert stated_wake(ResidentCtx("r-1", "hh-1", care_profile={"usual_wake_time": "x"})) is None
    assert stated_wake(ResidentCtx("r-1", "hh-1")) is None


def test_stated_time_is_the_window_until_own_rises_are_learned() -> None:
    # "about half past six": 06:00-08:30 on the first day, not the rule's 06:00-09:30
    w = wakeup_window(RULE, {}, MON, stated=time(6, 30))
    assert (w.start, w.end, w.source, w.usual) == (time(6, 0), time(8, 30), "stated", time(6, 30))
    assert w.explanation() == {"window_source": "stated", "stated_wake": "06:30", "learned_days": 0}
    two = {MON - timedelta(days=i): time(6, 40) for i in (1, 2)}
    assert wakeup_window(RULE, two, MON, stated=time(6, 30)).source == "stated"
    # from learn_min_days own rises, learning takes over as before
    three = {MON - timedelta(days=i): time(6, 40) for i in (1, 2, 3)}
    learned = wakeup_window(RULE, three, MON, stated=time(6, 30))
    assert learned.source == "learned" and learned.end == time(8, 10)  # 06:40 + 90 min
    # without a stated time: the rule's window, as before
    assert wakeup_window(RULE, two, MON).source == "rule"
    # a window set for the resident or learning off: the stated time is not used
    assert wakeup_window(RULE, {}, MON, stated=time(6, 30), fixed_for_resident=True).source == (
        "resident"
    )
    off = RULE.model_copy(update={"learn": False})
    assert wakeup_window(off, {}, MON, stated=time(6, 30)).source == "rule"


def test_stated_window_bounds() -> None:
    late = stated_window(time(10, 30), RULE)
    assert (late.start, late.end) == (time(10, 0), time(12, 0))  # a late riser, to 12:00
    early = stated_window(time(3, 0), RULE)
    assert (early.start, early.end) == (time(4, 0), time(5, 0))  # within 04:00-12:00
    wide = stated_window(time(6, 30), RULE.model_copy(update={"prior_margin_s": 3 * 3600}))
    assert wide.end == time(9, 30)


def test_a_late_stated_time_lets_a_short_history_reach_its_window() -> None:
    # a 10:00 riser who said so: her short learned history is not cut back to 09:30
    rises = [time(10, 0), time(10, 5), time(9, 55)]
    assert learn_window(rises, RULE).end == RULE.end
    assert learn_window(rises, RULE, stated=time(10, 0)).end == time(11, 30)
    # an early stated time does not move the cap before the rule's end
    assert learn_window(rises, RULE, stated=time(6, 0)).end == RULE.end


# -- mornings that raised a missed wake-up -------------------------------------------------


def test_alerted_mornings_are_left_out_of_the_history() -> None:
    # r-000016 of the held-out week: four mornings, two of them missed wake-ups
    days = [MON - timedelta(days=i) for i in (4, 3, 2, 1)]
    rises = dict(zip(days, [time(7, 20), time(7, 40), time(10, 12), time(11, 32)], strict=True))
    alerted = {days[2], days[3]}
    assert usable_rises(rises, alerted) == {days[0]: time(7, 20), days[1]: time(7, 40)}
    polluted = wakeup_window(RULE, rises, MON)
    assert polluted.usual == time(8, 56)
    clean = wakeup_window(RULE, rises, MON, alerted=alerted, stated=time(7, 0))
    assert clean.source == "stated" and clean.end == time(9, 0)
    # with enough clean mornings left, the learned window is the clean one
    more = {**rises, MON - timedelta(days=5): time(7, 30)}
    w = wakeup_window(RULE, more, MON, alerted=alerted)
    assert w.source == "learned" and w.usual == time(7, 30)


def test_when_most_mornings_alerted_the_window_was_wrong_and_learning_corrects_it() -> None:
    # said 06:30, rises at 08:45: every morning raised an alert until her own are known
    days = [MON - timedelta(days=i) for i in (3, 2, 1)]
    rises = dict.fromkeys(days, time(8, 45))
    assert usable_rises(rises, set(days)) == rises
    assert usable_rises(rises, {days[0], days[1]}) == rises  # two of three: still most
    w = wakeup_window(RULE, rises, MON, alerted=set(days), stated=time(6, 30))
    assert w.source == "learned" and w.end == RULE.end  # 09:30, past her 08:45


# -- went out and not back ------------------------------------------------------------------


def test_went_out_in_the_evening_and_not_back() -> None:
    marks = [*busy_hour(local(12, 17, 0)), *going_out(local(12, 18, 40))]
    assert presumed_out(marks, local(13, 8, 10)) == local(12, 18, 40)
    # a ghost trigger in the night and a neighbour at the door in the morning: still out
    noise = [motion(local(13, 2, 17), "kitchen"), door(local(13, 7, 50)), door(local(13, 7, 51), 0)]
    assert presumed_out(marks + noise, local(13, 8, 10)) == local(12, 18, 40)


def test_came_back_or_never_left() -> None:
    out = [*busy_hour(local(12, 17, 0)), *going_out(local(12, 18, 40))]
    now = local(13, 8, 10)
    # came home at 21:00: the door, then someone moving inside
    back = [door(local(12, 21, 0)), motion(local(12, 21, 3), "bathroom")]
    assert presumed_out(out + back, now) is None
    # home without the door seen: activity going on, the bed mat, the band's steps
    assert presumed_out(out + busy_hour(local(12, 21, 0)), now) is None
    bed = [
        Mark(local(12, 22, 0), "bed_occupancy", 0, "bedroom", "mat", own=True),
        Mark(local(12, 22, 5), "bed_occupancy", 1, "bedroom", "mat", own=True),
    ]
    assert presumed_out(out + bed, now) is None
    steps = [
        Mark(local(12, 18, 0), "steps", 800, None, "band", own=True),
        Mark(local(12, 22, 0), "steps", 950, None, "band", own=True),
    ]
    assert presumed_out(out + steps, now) is None
    # the rubbish out: activity inside right after the door
    rubbish = [*going_out(local(12, 19, 0)), motion(local(12, 19, 10), "kitchen")]
    assert presumed_out(busy_hour(local(12, 17, 0)) + rubbish, now) is None
    # a caller at the door of someone in bed: nobody moved inside before it
    caller = [motion(local(12, 22, 0), "bedroom"), door(local(13, 7, 30))]
    assert presumed_out(caller, now) is None
    # not yet: the door opens after ``now``
    assert presumed_out(out, local(12, 18, 30)) is None
    assert presumed_out([], now) is None
