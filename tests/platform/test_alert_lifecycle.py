"""Alert lifecycle: pure transition rules and the repository on a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from carecircle.common.errors import Conflict, NotFound
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts.lifecycle import Outcome, Severity, Status, check_transition

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        (Status.OPEN, Status.ACKNOWLEDGED, True),
        (Status.OPEN, Status.DISPATCHED, True),
        (Status.ACKNOWLEDGED, Status.ON_SCENE, True),
        (Status.ON_SCENE, Status.RESOLVED, True),
        (Status.DISPATCHED, Status.CANCELLED, True),
        (Status.DISPATCHED, Status.ACKNOWLEDGED, False),
        (Status.ACKNOWLEDGED, Status.OPEN, False),
        (Status.RESOLVED, Status.CANCELLED, False),
        (Status.CANCELLED, Status.RESOLVED, False),
    ],
)
def test_transition_rules(current: Status, target: Status, ok: bool) -> None:
    if ok:
        check_transition(current, target)
    else:
        with pytest.raises(Conflict):
            check_transition(current, target)


def make_site(db: psycopg.Connection[tuple[object, ...]]) -> str:
    p = f"l{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    db.execute(
        f"INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        f"VALUES ('{p}hh', 'household', '{p}vi', 'H', 30.1, 120.1)"
    )
    return f"{p}hh"


def test_repeat_refreshes_and_lifecycle_is_audited(
    db: psycopg.Connection[tuple[object, ...]], database_url: str
) -> None:
    site = make_site(db)
    draft = repo.AlertDraft(
        subject=f"{site}-dev",
        site_id=site,
        kind="water_leak",
        severity=Severity.HIGH,
        detector="rule:water_leak",
        at=T0,
    )
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {repo.NOTIFY_CHANNEL}")
        first = repo.open_or_refresh(db, draft)
        again = repo.open_or_refresh(
            db,
            repo.AlertDraft(
                **{**draft.__dict__, "at": T0 + timedelta(minutes=1), "severity": Severity.CRITICAL}
            ),
        )
        notes = [
            repo.parse_notification(n.payload) for n in listener.notifies(timeout=2, stop_after=2)
        ]
    assert first.change == "opened" and again.change == "refreshed" and first.id == again.id
    assert [n["change"] for n in notes] == ["opened", "refreshed"]
    row = repo.get(db, first.id)
    assert row["occurrences"] == 2 and row["severity"] == "critical"
    repo.transition(db, first.id, Status.ACKNOWLEDGED, actor="staff:s1", at=T0)
    with pytest.raises(Conflict):
        repo.transition(db, first.id, Status.OPEN, actor="staff:s1", at=T0)
    repo.transition(
        db, first.id, Status.RESOLVED, actor="staff:s1", at=T0, outcome=Outcome.FALSE_ALARM
    )
    row = repo.get(db, first.id)
    assert row["status"] == "resolved" and row["outcome"] == "false_alarm"
    trail = db.execute(
        "SELECT from_status, to_status, actor FROM alert_transitions "
        "WHERE alert_id = %s ORDER BY id",
        (first.id,),
    ).fetchall()
    assert trail == [
        (None, "open", "detector:rule:water_leak"),
        ("open", "acknowledged", "staff:s1"),
        ("acknowledged", "resolved", "staff:s1"),
    ]
    assert repo.open_or_refresh(db, draft).id != first.id  # closed: a new alert opens
    with pytest.raises(NotFound):
        repo.transition(db, 10**12, Status.RESOLVED, actor="x", at=T0)
