"""Gates on the absence checks: a withheld rule finding is recorded, not opened; a
later check the gate lets through opens it (delayed) with the reason on the alert."""

from __future__ import annotations

from datetime import datetime

from carecircle.platform.alerts.gate import (
    PASS,
    Verdict,
    WithheldMark,
    decide,
    released_draft,
)
from carecircle.platform.alerts.jobs import run_absence_checks
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.alerts.repository import AlertDraft
from tests.platform.test_alerts_jobs import TZ, Conn, activity, all_devices_seen, at, make_home


class QuietUntil:
    """Withholds inactivity while the silence started less than ``hours`` ago."""

    name = "test:quiet-until"

    def __init__(self, hours: float) -> None:
        self.hours = hours
        self.asked: list[str] = []

    def review(
        self, conn: Conn, draft: AlertDraft, episode_start: datetime, now: datetime
    ) -> Verdict:
        self.asked.append(draft.kind)
        if (now - episode_start).total_seconds() < self.hours * 3600:
            return Verdict(True, self.name, "usual for this person", {"share": 0.4})
        return PASS


class Broken:
    name = "test:broken"

    def review(
        self, conn: Conn, draft: AlertDraft, episode_start: datetime, now: datetime
    ) -> Verdict:
        raise RuntimeError("model file gone")


def test_decide_first_withholding_gate_wins() -> None:
    w = Verdict(True, "g2", "away")
    assert decide([]) == PASS
    assert decide([PASS, w, Verdict(True, "g3", "x")]) == w
    assert decide([PASS, PASS]).withhold is False


def test_released_draft_says_since_when_and_why() -> None:
    d = AlertDraft("r1", "s1", "missed_wakeup", Severity.MEDIUM, "rule:missed_wakeup", at(29, 11))
    assert released_draft(d, None) is d
    mark = WithheldMark(7, at(29, 9, 31), "ml:g", {"reason": "late riser"})
    out = released_draft(d, mark).explanation["gate"]
    assert out == {
        "withheld_from": at(29, 9, 31).isoformat(),
        "withheld_by": "ml:g",
        "withheld_reason": "late riser",
    }


def test_a_withheld_inactivity_is_recorded_then_opened_later(db: Conn) -> None:
    h = make_home(db)
    activity(db, h, "pir-liv", "motion", 1, at(29, 9, 0))
    gate = QuietUntil(4.5)
    all_devices_seen(db, h, at(29, 12, 30))
    r1 = run_absence_checks(db, at(29, 12, 5), TZ, site_ids=[h.site], gates=[gate])
    assert r1.withheld == [("prolonged_inactivity", h.res)] and r1.opened == []
    all_devices_seen(db, h, at(29, 13, 0))
    r2 = run_absence_checks(db, at(29, 13, 0), TZ, site_ids=[h.site], gates=[gate])
    assert r2.withheld == [("prolonged_inactivity", h.res)]
    assert db.execute("SELECT count(*) FROM alerts WHERE site_id = %s", (h.site,)).fetchone() == (
        0,
    )
    row = db.execute(
        "SELECT first_at, last_seen_at, occurrences, gate, explanation->>'reason', "
        "released_alert_id FROM alert_withheld WHERE subject = %s",
        (h.res,),
    ).fetchone()
    assert row == (at(29, 12, 5), at(29, 13, 0), 2, gate.name, "usual for this person", None)
    # 4.5 h of silence: no longer usual, the alert opens with the gate's note
    all_devices_seen(db, h, at(29, 13, 35))
    r3 = run_absence_checks(db, at(29, 13, 35), TZ, site_ids=[h.site], gates=[gate])
    assert r3.opened == [("prolonged_inactivity", h.res)] and r3.withheld == []
    aid, note = db.execute(
        "SELECT id, explanation->'gate'->>'withheld_from' FROM alerts WHERE subject = %s",
        (h.res,),
    ).fetchone() or (None, None)
    assert note is not None and datetime.fromisoformat(note) == at(29, 12, 5)
    released = db.execute(
        "SELECT released_alert_id FROM alert_withheld WHERE subject = %s", (h.res,)
    ).fetchone()
    assert released == (aid,)
    # the open alert is refreshed, the gate is not asked again for it
    asked = len(gate.asked)
    all_devices_seen(db, h, at(29, 13, 40))
    r4 = run_absence_checks(db, at(29, 13, 40), TZ, site_ids=[h.site], gates=[gate])
    assert r4.refreshed == 1 and len(gate.asked) == asked


def test_a_failing_gate_withholds_nothing_and_other_kinds_are_not_asked(
    db: Conn,
) -> None:
    h = make_home(db)
    activity(db, h, "pir-liv", "motion", 1, at(29, 9, 0))
    all_devices_seen(db, h, at(29, 12, 30))
    r = run_absence_checks(db, at(29, 12, 5), TZ, site_ids=[h.site], gates=[Broken()])
    assert r.opened == [("prolonged_inactivity", h.res)] and r.withheld == []
    # bed exit, device and gateway checks never go through a gate
    gate = QuietUntil(100)
    activity(db, h, "bedmat", "bed_occupancy", 1, at(29, 22, 30))
    activity(db, h, "bedmat", "bed_occupancy", 0, at(30, 2, 0))
    activity(db, h, "pir-bath", "motion", 1, at(30, 2, 5))
    all_devices_seen(db, h, at(30, 2, 46))
    r2 = run_absence_checks(db, at(30, 2, 46), TZ, site_ids=[h.site], gates=[gate])
    assert ("bed_exit_not_returned", h.res) in r2.opened
    assert "bed_exit_not_returned" not in gate.asked
