"""The monitoring-coverage report from the real database, and ``carecircle alerts coverage``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
from click.testing import CliRunner

from carecircle.common.cli import cli
from carecircle.platform.alerts import store
from carecircle.platform.alerts.config import RuleBook
from carecircle.platform.alerts.coverage import Watch, counts_for
from carecircle.platform.alerts.coverage_store import (
    load_devices,
    load_residents,
    monitoring_report,
)
from carecircle.platform.alerts.kinds import AlertKind as K
from tests.platform.monitoring_support import seed_township

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _prefix() -> str:
    return f"m{uuid.uuid4().hex[:6]}"


def test_report_from_the_database(db: Conn) -> None:
    ids = seed_township(db, _prefix(), NOW)
    report = monitoring_report(db, NOW, site_ids=[ids["hh"], ids["hh2"], ids["nh"]])
    by = {r.resident_id: r for r in report.residents}
    assert set(by) == {ids[k] for k in ("her", "him", "solo", "a", "b")}
    her, him, solo = by[ids["her"]], by[ids["him"]], by[ids["solo"]]
    assert her.housemates == 1 and solo.housemates == 0
    assert her.status(K.PROLONGED_INACTIVITY) is Watch.NOT_WATCHED
    assert him.status(K.PROLONGED_INACTIVITY) is Watch.WATCHED
    assert her.status(K.FALL) is Watch.NOT_WATCHED and him.status(K.FALL) is Watch.PARTIAL
    # solo's smoke detector sits behind a gateway offline for two days: a gap now
    smoke = next(d for d in solo.detections if d.kind is K.SMOKE)
    assert (smoke.status, smoke.installed, smoke.offline) == (
        Watch.NOT_WATCHED,
        Watch.WATCHED,
        (ids["smoke2"],),
    )
    # the summary: the township counts all five residents
    township = next(s for s in report.summary if s.id == ids["township"])
    assert township.level == "township" and township.residents == 5
    # her, solo (no motion sensor) and both nursing-home residents (others around, no band)
    assert township.not_watched["prolonged_inactivity"] == 4
    assert township.not_watched["smoke"] == 3  # solo (offline) and the two in the home
    # resident_ids limits the residents reported, not the housemates counted
    only = monitoring_report(db, NOW, resident_ids=[ids["her"]])
    assert [r.resident_id for r in only.residents] == [ids["her"]]
    assert only.residents[0].housemates == 1


def test_attribution_agrees_with_the_rules(db: Conn) -> None:
    """Which devices feed a resident: counts_for (the report) ≡ store.activity_entries
    (the absence checks), for a nursing home with own rooms and a couple at home."""
    ids = seed_township(db, _prefix(), NOW)
    sites = [ids["hh"], ids["nh"]]
    devices = load_devices(db, sites, RuleBook([]), NOW)
    for d in devices:
        db.execute(
            "INSERT INTO activity_state (device_id, code, site_id, resident_id, room_id, "
            "last_active_at, last_value, last_value_at) VALUES (%s, 'motion', %s, %s, %s, "
            "%s, 1, %s)",
            (d.id, d.site_id, d.resident_id, d.room_id, NOW, NOW),
        )
    entries = store.activity_entries(db, sites)
    residents = load_residents(db, sites)
    own_rooms = {r.room_id for r in residents if r.room_id}
    for r in residents:
        rules = {e.device_id for e in entries.get(r.ctx.id, [])}
        report = {d.id for d in devices if counts_for(r, d, own_rooms)}
        assert report == rules, r.ctx.id
    a = next(r for r in residents if r.ctx.id == ids["a"])
    b = next(r for r in residents if r.ctx.id == ids["b"])
    pir = next(d for d in devices if d.id == ids["pir-101"])
    assert counts_for(a, pir, own_rooms) and not counts_for(b, pir, own_rooms)


def test_cli_table_gaps_and_summary(db: Conn, database_url: str) -> None:
    ids = seed_township(db, _prefix(), NOW)
    run = CliRunner()
    args = ["alerts", "coverage", "--database-url", database_url, "--at", NOW.isoformat()]
    out = run.invoke(cli, [*args, "--site", ids["hh"], "--site", ids["hh2"]])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].endswith(": 3 residents")
    head = next(line for line in lines if line.startswith("resident"))
    cols = head.split()
    row = next(line for line in lines if line.startswith(ids["her"] + " ")).split()
    assert row[cols.index("inact")] == "X" and row[cols.index("smoke")] == "+"
    him = next(line for line in lines if line.startswith(ids["him"] + " ")).split()
    assert him[cols.index("inact")] == "+" and him[cols.index("fall")] == "~"
    at = lines.index(f"  {ids['her']} ({ids['hh']}, housemates 1):")
    gap = next(line for line in lines[at:] if line.startswith("    X inact"))
    assert "lives with 1 other resident" in gap and "-> fix: a band for this resident" in gap
    summary = next(line for line in lines if line.startswith(f"  township {ids['township']}"))
    assert "3 residents" in summary and "inact 2X/0~" in summary
    # JSON
    js = run.invoke(cli, [*args, "--site", ids["hh"], "--json"])
    body = json.loads(js.stdout)
    assert {r["resident_id"] for r in body["residents"]} == {ids["her"], ids["him"]}
    # an unknown site is refused, not reported empty
    bad = run.invoke(cli, [*args, "--site", "nowhere-x"])
    assert bad.exit_code == 2 and "no such site: nowhere-x" in bad.output
    # --at without an offset
    naive = run.invoke(cli, ["alerts", "coverage", "--database-url", database_url, "--at", "x"])
    assert naive.exit_code == 2
