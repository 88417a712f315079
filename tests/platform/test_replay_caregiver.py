"""The replay's simulated caregiver: human-facing alerts are resolved a fixed time after
they opened; technical ones are left to their own clearing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.alerts.repository import AlertDraft, open_or_refresh
from carecircle.platform.replay import ReplayOptions
from carecircle.platform.replay.harness import Replay
from carecircle.platform.settings import PlatformSettings
from tests.platform.seed import household as seed_household
from tests.platform.test_alerts_jobs import Conn

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def test_caregiver_resolves_human_facing_alerts_after_the_delay(
    db: Conn, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "summary.json").write_text(
        json.dumps({"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat()})
    )
    site = seed_household(db, f"c{uuid.uuid4().hex[:7]}")

    def alert(kind: str, minutes: int) -> int:
        draft = AlertDraft(
            f"{site}-x-{kind}", site, kind, Severity.HIGH, f"rule:{kind}",
            T0 + timedelta(minutes=minutes),
        )  # fmt: skip
        return open_or_refresh(db, draft).id

    old, young, technical = alert("fall", 0), alert("sos", 50), alert("device_offline", 0)
    r = Replay(
        tmp_path, PlatformSettings(database_url=database_url), ReplayOptions(resolve_after_s=3600)
    )
    r.clock.set(T0 + timedelta(minutes=61))
    r._caregiver()
    status = dict(
        db.execute(
            "SELECT id, status FROM alerts WHERE id = ANY(%s)", ([old, young, technical],)
        ).fetchall()
    )
    assert status == {old: "resolved", young: "open", technical: "open"}
    assert r.report.resolved_by_caregiver == 1
    outcome = db.execute("SELECT outcome FROM alerts WHERE id = %s", (old,)).fetchone()
    assert outcome == ("resident_fine",)
