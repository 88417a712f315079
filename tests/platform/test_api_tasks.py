"""Responders' tasks, coverage and alert rules through the API, on the shared test world."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carecircle.common.clock import ManualClock
from carecircle.platform.auth import users
from carecircle.platform.auth.policy import Role
from carecircle.platform.auth.tokens import DEMO_SECRET, TokenCodec

from .conftest import NOW, PASSWORD

H = dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def second(world: Any) -> dict[str, Any]:
    """A second volunteer in world 1's village with a responder login."""
    rid = f"{world.w}resp1b"
    world.conn.execute(
        "INSERT INTO responders (id, display_name, kind, place_id, lat, lon, availability) "
        "VALUES (%s, 'second', 'volunteer', %s, 30.1, 120.1, 'on_duty')",
        (rid, world["v1"]),
    )
    users.create_user(
        world.conn,
        user_id=f"{world.w}uresp1b",
        username=f"{world.w}_resp1b",
        password=PASSWORD,
        role=Role.RESPONDER,
        responder_id=rid,
    )
    token = TokenCodec(DEMO_SECRET, timedelta(minutes=15)).issue(
        f"{world.w}uresp1b", "responder", NOW
    )
    return {"id": rid, "h": {"Authorization": f"Bearer {token}"}}


def test_first_acceptor_wins_the_second_gets_409_and_loses_sight(
    api: TestClient, world: Any, tokens: H, second: dict[str, Any]
) -> None:
    first = world.new_task("h1", world["resp1"])
    alert_id = world.conn.execute("SELECT alert_id FROM tasks WHERE id = %s", (first,)).fetchone()[
        0
    ]
    other = world.new_task("h1", second["id"], alert_id=alert_id)
    # an offer is enough to see the alert and its resident (the responder_alerts view)
    for h in (tokens["responder"], second["h"]):
        assert api.get(f"/api/v1/alerts/{alert_id}", headers=h).status_code == 200
        assert api.get(f"/api/v1/residents/{world['r1']}", headers=h).status_code == 200
    mine = api.get("/api/v1/tasks", params={"active": True}, headers=second["h"]).json()
    assert [t["id"] for t in mine] == [other] and mine[0]["status"] == "offered"

    r = api.post(f"/api/v1/tasks/{first}/accept", headers=tokens["responder"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    late = api.post(f"/api/v1/tasks/{other}/accept", headers=second["h"])
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "conflict"
    assert "already taken" in late.json()["error"]["message"]
    # a repeated tap by the holder changes nothing
    again = api.post(f"/api/v1/tasks/{first}/accept", headers=tokens["responder"])
    assert again.status_code == 200 and again.json()["status"] == "accepted"
    # another responder's task answers like a missing one
    assert api.post(f"/api/v1/tasks/{first}/decline", json={}, headers=second["h"]).status_code == (
        404
    )

    alert = api.get(f"/api/v1/alerts/{alert_id}", headers=tokens["staff"]).json()
    assert alert["status"] == "dispatched"
    staff_view = api.get(f"/api/v1/alerts/{alert_id}/tasks", headers=tokens["staff"]).json()
    assert {(t["responder_id"], t["status"]) for t in staff_view} == {
        (world["resp1"], "accepted"),
        (second["id"], "released"),
    }
    # released: the second responder no longer sees the alert; the holder does
    assert api.get(f"/api/v1/alerts/{alert_id}", headers=second["h"]).status_code == 404
    assert api.get(f"/api/v1/alerts/{alert_id}", headers=tokens["responder"]).status_code == 200
    # staff of another prefecture cannot read the tasks
    assert api.get(f"/api/v1/alerts/{alert_id}/tasks", headers=tokens["admin2"]).status_code == 404


def test_decline_and_wrong_steps(api: TestClient, world: Any, tokens: H) -> None:
    h = tokens["responder"]
    task = world.new_task("h1", world["resp1"])
    bad = api.post(f"/api/v1/tasks/{task}/on-scene", headers=h)
    assert bad.status_code == 409, bad.text  # not accepted yet
    r = api.post(f"/api/v1/tasks/{task}/decline", json={"note": "too far"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert r.json()["note"] == "too far"
    assert api.post(f"/api/v1/tasks/{task}/accept", headers=h).status_code == 409
    wrong = api.post(f"/api/v1/tasks/{task}/resolve", json={"outcome": "cured"}, headers=h)
    assert wrong.status_code == 422


def test_availability(api: TestClient, world: Any, tokens: H, second: dict[str, Any]) -> None:
    r = api.put("/api/v1/me/availability", json={"availability": "busy"}, headers=second["h"])
    assert r.status_code == 200
    assert r.json() == {"responder_id": second["id"], "availability": "busy"}
    row = world.conn.execute(
        "SELECT availability FROM responders WHERE id = %s", (second["id"],)
    ).fetchone()
    assert row == ("busy",)
    bad = api.put("/api/v1/me/availability", json={"availability": "asleep"}, headers=second["h"])
    assert bad.status_code == 422
    staff = api.put(
        "/api/v1/me/availability", json={"availability": "busy"}, headers=tokens["staff"]
    )
    assert staff.status_code == 403


def test_coverage_is_scoped(api: TestClient, world: Any, tokens: H) -> None:
    # a facility nurse on duty at the nursing home covers its residents
    nurse = f"{world.w}nurse"
    world.conn.execute(
        "INSERT INTO responders (id, display_name, kind, site_id, lat, lon, availability) "
        "VALUES (%s, 'nurse', 'facility_staff', %s, 30.1, 120.1, 'on_duty')",
        (nurse, world["n1"]),
    )
    fac = api.get("/api/v1/coverage", headers=tokens["staff_fac"], params={"by_hour": True})
    assert fac.status_code == 200, fac.text
    body = fac.json()
    assert [r["resident_id"] for r in body["residents"]] == [world["rn"]]
    rn = body["residents"][0]
    # the nurse, or another responder of the home at the same spot (ties go by id)
    at_home = {
        str(r[0])
        for r in world.conn.execute(
            "SELECT id FROM responders WHERE site_id = %s", (world["n1"],)
        ).fetchall()
    }
    assert nurse in at_home and rn["responder_id"] in at_home and rn["eta_s"] is not None
    assert rn["eta_s"] <= body["circle_s"] == 900
    assert len(rn["by_hour"]) == 24
    assert body["share_covered"] == 1.0 and body["uncovered_sites"] == []
    township = next(p for p in body["places"] if p["place_id"] == world["t1"])
    assert (township["level"], township["residents"], township["covered"]) == ("township", 1, 1)

    admin = api.get("/api/v1/coverage", headers=tokens["admin"]).json()
    ids = {r["resident_id"] for r in admin["residents"]}
    assert {world["r1"], world["rn"]} <= ids and world["r2"] not in ids
    places = {p["place_id"] for p in admin["places"]}
    assert world["v1"] in places and world["v2"] not in places and world["t2"] not in places
    assert all(not r["by_hour"] for r in admin["residents"])  # only when asked

    other = api.get("/api/v1/coverage", headers=tokens["admin2"]).json()
    ids2 = {r["resident_id"] for r in other["residents"]}
    assert world["r2"] in ids2 and not ids2 & {world["r1"], world["rn"]}
    # the home's responders are outside prefecture 2: never named there
    assert not {r["responder_id"] for r in other["residents"]} & at_home
    assert api.get("/api/v1/coverage", headers=tokens["family"]).status_code == 403
    assert api.get("/api/v1/coverage", headers=tokens["responder"]).status_code == 403


def test_rules_put_get_delete_and_contradictions(api: TestClient, world: Any, tokens: H) -> None:
    h = tokens["staff"]
    site = f"/api/v1/rules/sites/{world['h1']}"
    before = api.get(f"{site}/bradycardia", headers=h).json()
    assert before["origin"] in ("default", "global")

    r = api.put(f"{site}/bradycardia", json={"params": {"threshold": 150}}, headers=h)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "rule_invalid"
    assert "tachycardia" in err["message"] and "150" in err["message"]
    assert api.get(f"{site}/bradycardia", headers=h).json() == before  # nothing stored

    ok = api.put(f"{site}/bradycardia", json={"params": {"threshold": 35}}, headers=h)
    assert ok.status_code == 200, ok.text
    assert ok.json()["scope"] == "site" and ok.json()["params"]["threshold"] == 35
    now = api.get(f"{site}/bradycardia", headers=h).json()
    assert now["origin"] == "site" and now["params"]["threshold"] == 35
    # the resident inherits the site's rule
    res = api.get(f"/api/v1/rules/residents/{world['r1']}", headers=h).json()
    brady = next(x for x in res if x["kind"] == "bradycardia")
    assert brady["origin"] == "site" and brady["params"]["threshold"] == 35

    unknown = api.put(f"{site}/no_such_kind", json={"params": {}}, headers=h)
    assert unknown.status_code == 422 and "no_such_kind" in unknown.json()["error"]["message"]

    assert api.delete(f"{site}/bradycardia", headers=h).status_code == 204
    assert api.get(f"{site}/bradycardia", headers=h).json() == before
    assert api.delete(f"{site}/bradycardia", headers=h).status_code == 404


def test_rules_denied_to_family_and_responders(api: TestClient, world: Any, tokens: H) -> None:
    for role in ("family", "family_full", "responder"):
        h = tokens[role]
        url = f"/api/v1/rules/residents/{world['r1']}"
        assert api.get(url, headers=h).status_code == 403
        put = api.put(f"{url}/fall", json={"params": {}}, headers=h)
        assert put.status_code == 403 and put.json()["error"]["code"] == "forbidden"
        assert api.get("/api/v1/rules", headers=h).status_code == 403
    # facility staff: their home's residents only
    fac = tokens["staff_fac"]
    assert api.get(f"/api/v1/rules/residents/{world['rn']}", headers=fac).status_code == 200
    assert api.get(f"/api/v1/rules/residents/{world['r1']}", headers=fac).status_code == 404


def test_resolve_credits_the_time_bank(
    api: TestClient, world: Any, tokens: H, clock: ManualClock
) -> None:
    h = tokens["responder"]
    task = world.new_task("h1", world["resp1"])
    alert_id = world.conn.execute("SELECT alert_id FROM tasks WHERE id = %s", (task,)).fetchone()[0]
    try:
        assert api.post(f"/api/v1/tasks/{task}/accept", headers=h).status_code == 200
        clock.advance(timedelta(minutes=4))
        assert api.post(f"/api/v1/tasks/{task}/en-route", headers=h).json()["status"] == "en_route"
        clock.advance(timedelta(minutes=5))
        scene = api.post(f"/api/v1/tasks/{task}/on-scene", headers=h)
        assert scene.json()["status"] == "on_scene"
        clock.advance(timedelta(minutes=3))
        r = api.post(
            f"/api/v1/tasks/{task}/resolve",
            json={"outcome": "helped", "note": "helped her up"},
            headers=h,
        )
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["outcome"]) == ("resolved", "helped")
    finally:
        clock.set(NOW)
    credit = world.conn.execute(
        "SELECT responder_id, minutes FROM time_bank WHERE task_id = %s", (task,)
    ).fetchone()
    assert credit == (world["resp1"], 12)
    alert = api.get(f"/api/v1/alerts/{alert_id}", headers=tokens["staff"]).json()
    assert (alert["status"], alert["outcome"]) == ("resolved", "real_incident")
    # a resolved task no longer grants sight of the alert
    assert api.get(f"/api/v1/alerts/{alert_id}", headers=h).status_code == 404
    mine = api.get("/api/v1/tasks", headers=h).json()
    assert any(t["id"] == task and t["status"] == "resolved" for t in mine)
