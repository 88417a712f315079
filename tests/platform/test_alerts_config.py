"""Rule configuration: validation with reasons, precedence, care-profile defaults."""

from __future__ import annotations

from datetime import time

import pytest

from carecircle.platform.alerts.config import (
    InactivityRule,
    RuleBook,
    RuleInvalid,
    RuleRow,
    ThresholdRule,
    check_consistency,
    default_params,
    validate_rule,
)
from carecircle.platform.alerts.kinds import AlertKind

K = AlertKind


@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("tachycardia", {"duration_s": 0, "repetitions": 0}, "no condition"),
        ("tachycardia", {"threshold": 260}, "can never happen"),
        ("low_spo2", {"threshold": 40}, "can never happen"),
        ("bradycardia", {"threshold": 20}, "can never happen"),
        ("tachycardia", {"repetitions": 3, "within_s": 0, "duration_s": 0}, "within_s"),
        ("cold_room", {"months": []}, "never fire"),
        ("cold_room", {"months": [13]}, "1-12"),
        ("missed_wakeup", {"start": "09:00", "end": "09:00"}, "empty"),
        ("missed_wakeup", {"start": "10:00", "end": "06:00"}, "wrap midnight"),
        ("night_wandering", {"rooms": []}, "no door"),
        ("prolonged_inactivity", {"night_start": "22:00", "night_end": "22:00"}, "empty"),
        ("low_battery", {"below_pct": 30, "clear_at_pct": 20}, "clear"),
        ("tachycardia", {"bogus": 1}, "bogus"),
        ("not_a_kind", {}, "unknown alert kind"),
        ("vitals_anomaly", {}, "models"),
    ],
)
def test_refused_rules_say_why(kind: str, params: dict[str, object], reason: str) -> None:
    with pytest.raises(RuleInvalid, match=reason):
        validate_rule(kind, params)


def test_valid_rules_fill_defaults() -> None:
    rule = validate_rule("tachycardia", {"threshold": 110})
    assert isinstance(rule, ThresholdRule)
    assert rule.threshold == 110 and rule.duration_s == 300 and rule.repetitions == 3
    wake = validate_rule("missed_wakeup", {"start": "06:30", "end": "09:00"})
    assert wake.model_dump()["start"] == time(6, 30)


def test_contradicting_rules_are_reported() -> None:
    brady = validate_rule("bradycardia", {"threshold": 125})
    tachy = validate_rule("tachycardia", {"threshold": 120})
    problems = check_consistency({K.BRADYCARDIA: brady, K.TACHYCARDIA: tachy})
    assert problems and "bradycardia threshold 125 is not below" in problems[0]
    ok = validate_rule("bradycardia", {"threshold": 45})
    assert check_consistency({K.BRADYCARDIA: ok, K.TACHYCARDIA: tachy}) == []
    cold = validate_rule("cold_room", {"threshold": 35})
    heat = validate_rule("heat", {"threshold": 30})
    assert check_consistency({K.COLD_ROOM: cold, K.HEAT: heat})


def test_care_profile_defaults() -> None:
    assert default_params(K.LOW_SPO2)["threshold"] == 90
    assert default_params(K.LOW_SPO2, conditions=["copd"])["threshold"] == 88
    assert default_params(K.PROLONGED_INACTIVITY, care_level="dependent")["default_day_s"] == 9000


def test_rulebook_precedence() -> None:
    rows = [
        RuleRow(scope="global", scope_id=None, kind=K.TACHYCARDIA, params={"threshold": 130}),
        RuleRow(scope="site", scope_id="hh1", kind=K.TACHYCARDIA, params={"threshold": 125}),
        RuleRow(scope="resident", scope_id="r1", kind=K.TACHYCARDIA, params={"threshold": 115}),
        RuleRow(scope="site", scope_id="hh2", kind=K.SOS, params={}, enabled=False),
    ]
    book = RuleBook(rows)

    def thr(**where: object) -> float:
        rule = book.rule(K.TACHYCARDIA, **where)
        assert isinstance(rule, ThresholdRule)
        return rule.threshold

    assert thr(site_id="hh1", resident_id="r1") == 115
    assert thr(site_id="hh1", resident_id="r2") == 125
    assert thr(site_id="hh9", resident_id="r3") == 130
    # care profile overrides what the site/global says, but not a resident rule
    assert (
        thr(site_id="hh1", resident_id="r4", care_profile={"tachycardia": {"threshold": 100}})
        == 100
    )
    assert book.rule(K.SOS, site_id="hh2") is None
    assert book.rule(K.SOS, site_id="hh1") is not None
    # with no rows at all, the care profile decides
    empty = RuleBook([])
    spo2 = empty.rule(K.LOW_SPO2, site_id="x", resident_id="y", conditions=("copd",))
    assert isinstance(spo2, ThresholdRule) and spo2.threshold == 88


def test_inactivity_limit_depends_on_room_and_night() -> None:
    rule = InactivityRule()
    assert rule.limit_for("bathroom", time(3, 0)) == 3600
    assert rule.limit_for("bedroom", time(3, 0)) == 12 * 3600
    assert rule.limit_for("bedroom", time(14, 0)) == 4 * 3600
    assert rule.limit_for("living_room", time(14, 0)) == 3 * 3600
    assert rule.limit_for("entrance", time(14, 0)) == 8 * 3600
    assert rule.limit_for(None, time(23, 0)) == 6 * 3600
