"""The service the API calls: rules through validation, alert actions with an audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from carecircle.common.errors import Conflict, NotFound
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts import service
from carecircle.platform.alerts.config import RuleInvalid
from carecircle.platform.alerts.lifecycle import Outcome, Severity, Status

Conn = psycopg.Connection[tuple[object, ...]]
T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def make_site(db: Conn) -> tuple[str, str]:
    p = f"s{uuid.uuid4().hex[:7]}"
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    db.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        "VALUES (%s, 'household', %s, 'H', 30.1, 120.1)",
        (f"{p}-hh", f"{p}vi"),
    )
    db.execute(
        "INSERT INTO residents (id, site_id, display_name, conditions) "
        "VALUES (%s, %s, 'Elder', '{copd}')",
        (f"{p}-r", f"{p}-hh"),
    )
    return f"{p}-hh", f"{p}-r"


def test_rules_are_validated_stored_and_resolved(db: Conn) -> None:
    site, res = make_site(db)
    eff = service.effective_rules(db, "resident", res)
    assert eff["low_spo2"]["params"]["threshold"] == 88 and eff["low_spo2"]["origin"] == "default"
    with pytest.raises(RuleInvalid, match="can never happen"):
        service.put_rule(db, "site", site, "tachycardia", {"threshold": 300}, actor="a", at=T0)
    with pytest.raises(RuleInvalid, match="no condition"):
        service.put_rule(
            db, "site", site, "fever", {"duration_s": 0, "repetitions": 0}, actor="a", at=T0
        )
    service.put_rule(db, "site", site, "tachycardia", {"threshold": 110}, actor="admin:1", at=T0)
    # bradycardia at 115 would contradict the site's tachycardia at 110
    with pytest.raises(RuleInvalid, match="bradycardia threshold 115 is not below"):
        service.put_rule(db, "resident", res, "bradycardia", {"threshold": 115}, actor="a", at=T0)
    service.put_rule(db, "resident", res, "bradycardia", {"threshold": 50}, actor="a", at=T0)
    got = service.get_rule(db, "resident", res, "tachycardia")
    assert got["params"]["threshold"] == 110 and got["origin"] == "site"
    assert service.get_rule(db, "resident", res, "bradycardia")["origin"] == "resident"
    assert service.get_rule(db, "site", site, "bradycardia")["origin"] == "default"
    audit = db.execute(
        "SELECT actor, action FROM audit_log WHERE object_id = %s", (f"site:{site}:tachycardia",)
    ).fetchall()
    assert audit == [("admin:1", "alert_rule.put")]
    service.delete_rule(db, "site", site, "tachycardia", actor="admin:1", at=T0)
    assert service.get_rule(db, "resident", res, "tachycardia")["origin"] == "default"
    with pytest.raises(NotFound):
        service.delete_rule(db, "site", site, "tachycardia", actor="admin:1", at=T0)
    with pytest.raises(NotFound):
        service.put_rule(db, "site", "nowhere", "sos", {}, actor="a", at=T0)
    with pytest.raises(RuleInvalid, match="needs the site id"):
        service.put_rule(db, "site", None, "sos", {}, actor="a", at=T0)


def test_alert_actions_leave_a_trail(db: Conn) -> None:
    site, res = make_site(db)
    change = repo.open_or_refresh(
        db,
        repo.AlertDraft(
            subject=res,
            site_id=site,
            kind="fall",
            severity=Severity.CRITICAL,
            detector="rule:fall",
            at=T0,
            resident_id=res,
        ),
    )
    aid = change.id
    service.acknowledge(db, aid, actor="staff:1", at=T0 + timedelta(seconds=20))
    service.comment(db, aid, "called her daughter", actor="staff:1", at=T0 + timedelta(minutes=1))
    with pytest.raises(RuleInvalid):
        service.comment(db, aid, "  ", actor="staff:1", at=T0)
    with pytest.raises(Conflict):
        service.snooze(db, aid, T0, actor="staff:1", at=T0 + timedelta(minutes=2))
    service.snooze(
        db, aid, T0 + timedelta(minutes=30), actor="staff:1", at=T0 + timedelta(minutes=2)
    )
    service.resolve(
        db,
        aid,
        Outcome.REAL_INCIDENT,
        actor="responder:7",
        at=T0 + timedelta(minutes=15),
        note="helped up, no injury",
    )
    with pytest.raises(Conflict):
        service.snooze(db, aid, T0 + timedelta(hours=1), actor="staff:1", at=T0)
    alert = service.get_alert(db, aid)
    assert alert["status"] == Status.RESOLVED and alert["outcome"] == "real_incident"
    assert [(t["to_status"], t["actor"]) for t in alert["trail"]] == [
        ("open", "detector:rule:fall"),
        ("acknowledged", "staff:1"),
        ("acknowledged", "staff:1"),  # snooze (comments live in alert_comments)
        ("resolved", "responder:7"),
    ]
    actions = [
        r[0]
        for r in db.execute(
            "SELECT action FROM audit_log WHERE object_type = 'alert' AND object_id = %s "
            "ORDER BY id",
            (str(aid),),
        ).fetchall()
    ]
    assert actions == [
        "alert.open",
        "alert.acknowledged",
        "alert.comment",
        "alert.snooze",
        "alert.resolved",
    ]


def test_list_alerts_filters(db: Conn) -> None:
    site, res = make_site(db)
    other, _ = make_site(db)
    ids = {}
    for i, kind in enumerate(["sos", "water_leak", "low_battery"]):
        ids[kind] = repo.open_or_refresh(
            db,
            repo.AlertDraft(
                subject=f"{res}-{kind}",
                site_id=site,
                kind=kind,
                severity=Severity.HIGH,
                detector="t",
                at=T0 + timedelta(minutes=i),
                resident_id=res,
            ),
        ).id
    repo.open_or_refresh(
        db,
        repo.AlertDraft(
            subject="x", site_id=other, kind="sos", severity=Severity.HIGH, detector="t", at=T0
        ),
    )
    service.cancel(db, ids["water_leak"], actor="staff:1", at=T0)
    service.snooze(db, ids["low_battery"], T0 + timedelta(hours=1), actor="staff:1", at=T0)
    mine = service.list_alerts(db, site_ids=[site])
    assert [a["kind"] for a in mine] == ["low_battery", "water_leak", "sos"]
    active = service.list_alerts(
        db, site_ids=[site], active_only=True, include_snoozed=False, now=T0 + timedelta(minutes=5)
    )
    assert [a["kind"] for a in active] == ["sos"]
    assert [
        a["kind"]
        for a in service.list_alerts(
            db, site_ids=[site], kinds=["water_leak"], statuses=["cancelled"]
        )
    ] == ["water_leak"]
    assert len(service.list_alerts(db, resident_id=res, limit=2)) == 2
    with pytest.raises(ValueError):
        service.list_alerts(db, statuses=["bogus"])
