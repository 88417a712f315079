"""Pure parts of the held-out-week fixes: the per-resident wake-up window, the worn
check of low-confidence falls, and the band's offline / low-battery rules."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from carecircle.common.contract import Code, Envelope, Kind, Payload
from carecircle.platform.alerts.config import (
    DeviceOfflineRule,
    FallRule,
    LowBatteryRule,
    MissedWakeupRule,
    RuleBook,
    RuleInvalid,
    RuleRow,
    validate_rule,
)
from carecircle.platform.alerts.detectors.absence import DeviceState, evaluate_device
from carecircle.platform.alerts.detectors.fall import (
    HeldFall,
    WornReport,
    held_fall_draft,
    judge_held_fall,
)
from carecircle.platform.alerts.detectors.immediate import held_for_worn_check
from carecircle.platform.alerts.detectors.wakeup import (
    Mark,
    activations,
    learn_window,
    rise_times,
    rose_by,
    wakeup_window,
)
from carecircle.platform.alerts.kinds import AlertKind

TZ = ZoneInfo("Asia/Shanghai")
RULE = MissedWakeupRule()


def local(d: int, h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 1, d, h, m, s, tzinfo=TZ)


def motion(at: datetime, room: str = "bathroom", value: float = 1) -> Mark:
    return Mark(at, "motion", value, room, f"pir-{room}", own=False)


def morning(d: int, h: int, m: int) -> list[Mark]:
    """Up at h:m: bathroom, then kitchen and living room for the next hour."""
    t0 = local(d, h, m)
    rooms = ["bathroom", "kitchen", "kitchen", "living_room", "living_room", "kitchen"]
    return [motion(t0 + timedelta(minutes=10 * i + 1), rooms[i]) for i in range(6)]


# -- the wake-up window -----------------------------------------------------------------


def test_a_night_trip_to_the_toilet_is_not_a_rise() -> None:
    marks = [motion(local(12, 4, 40)), motion(local(12, 4, 44)), *morning(12, 6, 20)]
    acts = activations(marks, RULE)
    rises = rise_times(acts, TZ, [date(2026, 1, 12)], time(4), time(12))
    assert rises == {date(2026, 1, 12): time(6, 21)}


def test_what_counts_as_being_up() -> None:
    bed = [
        Mark(local(12, 6, 0), "bed_occupancy", 1, "bedroom", "mat", own=True),
        Mark(local(12, 6, 30), "bed_occupancy", 0, "bedroom", "mat", own=True),
    ]
    steps = [
        Mark(local(12, 7, 0), "steps", 10, None, "band", own=True),
        Mark(local(12, 7, 2), "steps", 10, None, "band", own=True),  # re-sent: no step
        Mark(local(12, 7, 4), "steps", 30, None, "band", own=True),
    ]
    marks = [motion(local(12, 5, 0), "bedroom"), motion(local(12, 5, 1), value=0), *bed, *steps]
    assert activations(marks, RULE) == [local(12, 6, 30), local(12, 7, 4)]
    # a housemate's movements on the shared sensors do not count for the resident
    assert activations([*morning(12, 6, 0), *steps], RULE, own_only=True) == [local(12, 7, 4)]
    no_bed = RULE.model_copy(update={"count_bed_exit": False})
    assert activations(bed, no_bed) == []


def test_too_little_history_keeps_the_rules_window() -> None:
    w = learn_window([time(6, 10), time(6, 20)], RULE)
    assert (w.start, w.end, w.source) == (RULE.start, RULE.end, "rule")


def test_learned_window_around_the_usual_rise() -> None:
    rises = [time(6, 0), time(6, 10), time(6, 20), time(6, 30), time(6, 40)]
    w = learn_window(rises, RULE)
    assert w.source == "learned" and w.usual == time(6, 20) and w.days == 5
    # spread 1.4826 x 10 min: 3 x 14.8 = 44 min < the 90 min minimum margin
    assert (w.start, w.end) == (time(5, 50), time(7, 50))
    assert w.explanation()["usual_rise"] == "06:20"


def test_wide_spread_widens_the_margin_up_to_its_cap() -> None:
    rises = [time(5, 20), time(6, 0), time(6, 40), time(7, 20), time(8, 0)]
    w = learn_window(rises, RULE)  # spread 1.4826 x 40 = 59 min; 3 x 59 > 150 min cap
    assert w.usual == time(6, 40) and w.end == time(9, 10)


def week(*rises: time) -> list[time]:
    """Seven mornings (a full history): the rises given, then the first repeated."""
    return [*rises, *[rises[0]] * (7 - len(rises))]


def test_a_late_riser_gets_a_late_window_and_bounds_hold() -> None:
    late = learn_window(week(time(10, 0), time(10, 5), time(9, 55)), RULE)
    assert late.start == time(9, 30) and late.end == time(11, 30)  # not 06:00-09:30
    very_late = learn_window(week(time(11, 40), time(11, 45), time(11, 50)), RULE)
    assert very_late.end == RULE.learn_latest and very_late.start < very_late.end
    early = learn_window([time(4, 0), time(4, 5), time(4, 10)], RULE)
    assert early.start == RULE.learn_earliest


def test_a_short_history_can_bring_the_check_forward_but_not_push_it_back() -> None:
    # the held-out week's r-000016: four mornings, two of them late (missed wake-ups?)
    four = [time(7, 20), time(7, 40), time(10, 12), time(11, 32)]
    w = learn_window(four, RULE)
    assert w.source == "learned" and w.end == RULE.end  # not 08:56 + 150 min = 11:26
    assert w.start == time(8, 26)  # usual (median 08:56) - 30 min, an hour before the end
    late = learn_window([time(10, 0), time(10, 5), time(9, 55)], RULE)
    assert late.end == RULE.end  # a late riser: the rule's end until a week is known ...
    six = learn_window(week(time(10, 0), time(10, 5), time(9, 55))[:6], RULE)
    assert six.end == RULE.end
    assert learn_window(week(time(10, 0)), RULE).end == time(11, 30)  # ... then their own
    early = learn_window([time(6, 0), time(6, 10), time(6, 20)], RULE)
    assert early.end == time(7, 40)  # an early riser's window moves forward at once
    short = RULE.model_copy(update={"learn_full_days": 3})
    assert learn_window(four, short).end > RULE.end  # the operator's own threshold


def test_a_toilet_trip_inside_the_window_is_not_being_up() -> None:
    # the held-out week's r-000133: window 06:04-08:04, to the toilet at 06:12, back in bed
    start, end = local(15, 6, 4), local(15, 8, 4)
    trip = activations([motion(local(15, 6, 12)), motion(local(15, 6, 14))], RULE)
    assert rose_by(trip, start, end) is False
    up = activations([motion(local(15, 6, 12)), *morning(15, 7, 0)], RULE)
    assert rose_by(up, start, end) is True
    # the first activation of a morning before the start does not count, the rest do
    assert rose_by(activations(morning(15, 5, 50), RULE), start, end) is True
    # at the window's end the hour after a late activation is still running: wait
    late = activations([motion(local(15, 7, 50))], RULE)
    assert rose_by(late, start, end) is None
    assert rose_by(late, start, local(15, 8, 31)) is None  # slots 4 and 5 could still show
    assert rose_by(late, start, local(15, 8, 41)) is False  # no longer: one slot of six
    busy = [local(15, 7, 50), local(15, 8, 1)]
    assert rose_by(busy, start, local(15, 8, 41)) is None  # two slots, one still open


def test_window_of_the_day_uses_the_days_before_it_only() -> None:
    rises = {date(2026, 1, d): time(6, 0) for d in (10, 11, 12)}
    rises[date(2026, 1, 13)] = time(11, 0)
    w = wakeup_window(RULE, rises, date(2026, 1, 13))
    assert w.source == "learned" and w.usual == time(6, 0)
    old = wakeup_window(RULE.model_copy(update={"learn_days": 2}), rises, date(2026, 1, 13))
    assert old.source == "rule"  # only two days within the last two
    fixed = wakeup_window(RULE, rises, date(2026, 1, 13), fixed_for_resident=True)
    assert (fixed.start, fixed.end, fixed.source) == (RULE.start, RULE.end, "resident")
    off = wakeup_window(RULE.model_copy(update={"learn": False}), rises, date(2026, 1, 13))
    assert off.source == "rule"


def test_window_set_for_the_resident_is_not_learned() -> None:
    book = RuleBook([RuleRow(scope="resident", scope_id="r-2", kind="missed_wakeup", params={})])
    k = AlertKind.MISSED_WAKEUP
    profile = {"missed_wakeup": {"end": "10:00"}}
    assert book.set_for_resident(k, ("start", "end"), resident_id="r-1", care_profile=profile)
    assert not book.set_for_resident(k, ("start", "end"), resident_id="r-1", care_profile={})
    assert not book.set_for_resident(k, ("start", "end"), resident_id="r-2")


@pytest.mark.parametrize(
    "params",
    [
        {"learn_min_days": 20, "learn_days": 14},
        {"learn_margin_min_s": 9000, "learn_margin_max_s": 5400},
        {"learn_earliest": "12:00", "learn_latest": "04:00"},
    ],
)
def test_learning_parameters_that_cannot_work_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(RuleInvalid):
        validate_rule(AlertKind.MISSED_WAKEUP, params)


# -- falls: confidence floor and the worn check -----------------------------------------


def fall_env(confidence: float | None) -> Envelope:
    attrs: dict[str, str | float] = {"source": "careband"}
    if confidence is not None:
        attrs["confidence"] = confidence
    at = datetime(2026, 1, 12, 4, 38, 33, tzinfo=ZoneInfo("UTC"))
    return Envelope(
        id=uuid.uuid4(),
        kind=Kind.EVENT,
        gw="gw-1",
        dev="r-1-band",
        res="r-1",
        site="hh-1",
        room=None,
        ts=at,
        gw_ts=at,
        payload=Payload(code=Code.FALL, value=1, attrs=attrs),
    )


def test_only_low_confidence_fall_alarms_are_held() -> None:
    rule = FallRule()
    assert held_for_worn_check(fall_env(0.38), rule)
    assert not held_for_worn_check(fall_env(0.8), rule)
    assert not held_for_worn_check(fall_env(None), rule)  # no confidence: raised at once
    assert not held_for_worn_check(fall_env(0.38), FallRule(min_confidence=0))


ALARM = datetime(2026, 1, 12, 4, 38, 33, tzinfo=ZoneInfo("UTC"))
FALL = HeldFall("m-1", "r-1-band", "hh-1", "r-1", ALARM, 0.38)


def test_worn_check_decisions() -> None:
    rule = FallRule()
    soon = ALARM + timedelta(seconds=30)
    late = ALARM + timedelta(seconds=rule.worn_check_s + 1)
    off = [WornReport(ALARM + timedelta(seconds=16), False)]
    on = [WornReport(ALARM + timedelta(seconds=16), True)]
    assert judge_held_fall(FALL, off, rule, soon)[0] == "drop"
    assert judge_held_fall(FALL, on, rule, soon)[0] == "raise"
    assert judge_held_fall(FALL, [], rule, soon)[0] == "wait"
    # the band silent after the alarm: raised, never dropped for lack of evidence
    assert judge_held_fall(FALL, [], rule, late)[0] == "raise"
    # reports before the alarm or after the check window say nothing about it
    stale = [WornReport(ALARM - timedelta(seconds=5), False), WornReport(late, False)]
    assert judge_held_fall(FALL, stale, rule, late)[0] == "raise"
    # the first report decides: taken off after being worn is still a worn band
    both = [*on, WornReport(ALARM + timedelta(seconds=200), False)]
    assert judge_held_fall(FALL, both, rule, late)[0] == "raise"


def test_raised_held_fall_is_a_critical_fall_alert_opened_when_judged() -> None:
    now = ALARM + timedelta(minutes=3)
    d = held_fall_draft(FALL, "band still on the wrist after the alarm", now)
    assert (d.kind, d.subject, d.severity.value, d.at) == ("fall", "r-1", "critical", now)
    assert d.explanation["confidence"] == 0.38


# -- the band: offline only with someone at home, low battery only when nearly flat ------

NOW = datetime(2026, 1, 13, 12, 0, tzinfo=ZoneInfo("UTC"))


def band(silent_h: float, battery: float | None = 80) -> DeviceState:
    return DeviceState(
        "r-1-band",
        "hh-1",
        "gw-1",
        "r-1",
        "battery",
        1800,
        "offline",
        NOW - timedelta(hours=silent_h),
        battery,
        "wearable",
    )


def test_band_silent_in_a_quiet_home_has_left_with_its_wearer() -> None:
    off, bat = DeviceOfflineRule(), LowBatteryRule()
    b = band(27)
    # the home's motion sensors since the band went silent: a ghost trigger or two is
    # an empty home, someone moving about is someone at home without the band
    assert evaluate_device(b, off, bat, NOW, False, home_activations=0) == []
    assert evaluate_device(b, off, bat, NOW, False, home_activations=2) == []
    (f,) = evaluate_device(b, off, bat, NOW, False, home_activations=5)
    assert f.draft.kind == "device_offline"
    # no motion sensors to tell: the 24 h floor alone decides
    assert evaluate_device(b, off, bat, NOW, False)
    assert evaluate_device(band(20), off, bat, NOW, False, home_activations=50) == []


def test_band_of_a_resident_living_with_others_waits_two_days() -> None:
    off, bat = DeviceOfflineRule(), LowBatteryRule()

    # the partner moving about at home proves nothing about the wearer (away with it)
    def judge(silent_h: float) -> list[str]:
        found = evaluate_device(
            band(silent_h), off, bat, NOW, False, home_activations=300, shared_home=True
        )
        return [f.draft.kind for f in found]

    assert judge(30) == []
    assert judge(49) == ["device_offline"]


def test_band_battery_alert_only_when_nearly_flat() -> None:
    off, bat = DeviceOfflineRule(), LowBatteryRule()
    assert evaluate_device(band(0, battery=14), off, bat, NOW, False) == []
    (f,) = evaluate_device(band(0, battery=4), off, bat, NOW, False)
    assert f.draft.kind == "low_battery" and f.draft.explanation["below_pct"] == 5
    sensor = DeviceState(
        "s-1", "hh-1", "gw-1", None, "battery", 3600, "online", NOW, 14, "motion_sensor"
    )
    (g,) = evaluate_device(sensor, off, bat, NOW, False)
    assert g.draft.explanation["below_pct"] == 15
    with pytest.raises(RuleInvalid):
        validate_rule(AlertKind.LOW_BATTERY, {"wearable_below_pct": 30})
