"""Family consent, alerts (filters, pages, actions, timeline), readings, FHIR, audit,
provisioning and the error body."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from carecircle.common.clock import ManualClock

H = dict[str, dict[str, str]]


def audit_count(world: Any, action: str, object_id: str) -> int:
    row = world.conn.execute(
        "SELECT count(*) FROM audit_log WHERE action = %s AND object_id = %s", (action, object_id)
    ).fetchone()
    return int(row[0])


def test_family_sees_only_what_consent_allows(api: TestClient, world: Any, tokens: H) -> None:
    r1 = world["r1"]
    limited = api.get(f"/api/v1/residents/{r1}", headers=tokens["family"]).json()
    full = api.get(f"/api/v1/residents/{r1}", headers=tokens["family_full"]).json()
    assert limited["home"] is None
    assert full["home"]["lat"] == 30.1 and full["home"]["address"] == "1 Lane"
    assert api.get(f"/api/v1/residents/{r1}/readings", headers=tokens["family"]).status_code == 403
    before = audit_count(world, "resident.read_vitals", r1)
    vit = api.get(f"/api/v1/residents/{r1}/readings", headers=tokens["family_full"])
    assert vit.status_code == 200 and vit.json()["items"]
    assert audit_count(world, "resident.read_vitals", r1) == before + 1
    s_limited = api.get(f"/api/v1/residents/{r1}/summary", headers=tokens["family"]).json()
    s_full = api.get(f"/api/v1/residents/{r1}/summary", headers=tokens["family_full"]).json()
    assert s_limited["vitals"] is None
    assert [v["code"] for v in s_full["vitals"]] == ["heart_rate"]
    mine = api.get("/api/v1/family/residents", headers=tokens["family"]).json()
    assert [m["id"] for m in mine] == [r1]
    assert mine[0]["consent"] == {
        "alerts": True,
        "daily_summary": True,
        "vitals": False,
        "location": False,
    }


def test_family_without_alert_consent_sees_no_alerts(
    api: TestClient, world: Any, tokens: H
) -> None:
    world.conn.execute(
        "UPDATE family_links SET consent = consent || '{\"alerts\": false}' "
        "WHERE family_member_id = %s",
        (world["ffull"],),
    )
    try:
        listed = api.get("/api/v1/alerts", headers=tokens["family_full"]).json()["items"]
        assert listed == []
        a1 = world.alerts["a1"]
        r = api.get(f"/api/v1/alerts/{a1}", headers=tokens["family_full"])
        assert r.status_code == 404
        # the resident stays visible: the link is there, only alerts are withheld
        assert (
            api.get(f"/api/v1/residents/{world['r1']}", headers=tokens["family_full"]).status_code
            == 200
        )
    finally:
        world.conn.execute(
            "UPDATE family_links SET consent = consent || '{\"alerts\": true}' "
            "WHERE family_member_id = %s",
            (world["ffull"],),
        )


def test_alert_filters_and_pagination(api: TestClient, world: Any, tokens: H) -> None:
    ids = [world.new_alert("n1", kind="fall") for _ in range(5)]
    h = tokens["staff_fac"]
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"kind": "fall", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/v1/alerts", params=params, headers=h).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert all(
        a["kind"] == "fall"
        for a in api.get("/api/v1/alerts", params={"kind": "fall"}, headers=h).json()["items"]
    )
    crit = api.get(
        "/api/v1/alerts", params={"severity": "low", "site_id": world["n1"]}, headers=h
    ).json()
    assert crit["items"] == []
    bad = api.get("/api/v1/alerts", params={"cursor": "!!not-a-cursor"}, headers=h)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    invalid = api.get("/api/v1/alerts", params={"severity": "apocalyptic"}, headers=h)
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "validation_error"
    assert invalid.json()["error"]["details"][0]["loc"][:2] == ["query", "severity"]


def test_alert_actions_and_timeline(
    api: TestClient, world: Any, tokens: H, clock: ManualClock
) -> None:
    h = tokens["staff"]
    tick = lambda: clock.advance(timedelta(seconds=30))  # noqa: E731
    aid = world.new_alert("h1", kind="fall")
    assert (
        api.post(f"/api/v1/alerts/{aid}/acknowledge", json={"note": "calling"}, headers=h).json()[
            "status"
        ]
        == "acknowledged"
    )
    tick()
    again = api.post(f"/api/v1/alerts/{aid}/acknowledge", json={}, headers=h)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    tick()
    snoozed = api.post(f"/api/v1/alerts/{aid}/snooze", json={"minutes": 10}, headers=h).json()
    assert snoozed["snoozed_until"] is not None and snoozed["status"] == "acknowledged"
    tick()
    d = api.post(
        f"/api/v1/alerts/{aid}/dispatch", json={"responder_id": world["resp1"]}, headers=h
    ).json()
    assert d["status"] == "dispatched" and d["responders"] == [world["resp1"]]
    # the responder now sees the alert and the resident on it
    assert api.get(f"/api/v1/alerts/{aid}", headers=tokens["responder"]).status_code == 200
    tick()
    c = api.post(
        f"/api/v1/alerts/{aid}/comments", json={"body": "on my way"}, headers=tokens["responder"]
    )
    assert c.status_code == 201
    # a responder of another township cannot be sent
    tick()
    other = api.post(
        f"/api/v1/alerts/{aid}/dispatch", json={"responder_id": world["resp2"]}, headers=h
    )
    assert other.status_code == 404
    tick()
    done = api.post(
        f"/api/v1/alerts/{aid}/resolve", json={"outcome": "resident_fine"}, headers=h
    ).json()
    assert done["status"] == "resolved" and done["outcome"] == "resident_fine"
    types = [(e["type"], e["to_status"]) for e in done["timeline"]]
    assert types == [
        ("transition", "open"),
        ("transition", "acknowledged"),
        ("transition", "acknowledged"),  # the snooze, recorded in the trail
        ("assignment", None),
        ("transition", "dispatched"),
        ("comment", None),
        ("transition", "resolved"),
    ]
    assert (
        api.post(f"/api/v1/alerts/{aid}/snooze", json={"minutes": 5}, headers=h).status_code == 409
    )


def test_readings_rollups_and_fhir(api: TestClient, world: Any, tokens: H) -> None:
    h = tokens["admin"]
    r1 = world["r1"]
    page1 = api.get(f"/api/v1/residents/{r1}/readings", params={"limit": 50}, headers=h).json()
    page2 = api.get(
        f"/api/v1/residents/{r1}/readings",
        params={"limit": 100, "cursor": page1["next"]},
        headers=h,
    ).json()
    times = [x["time"] for x in page1["items"] + page2["items"]]
    assert len(times) == 120 and times == sorted(times, reverse=True)
    assert page2["next"] is None
    assert page1["items"][0]["unit"] == "/min"
    hours = api.get(
        f"/api/v1/residents/{r1}/rollups", params={"code": "heart_rate"}, headers=h
    ).json()
    assert sum(b["n"] for b in hours) == 120
    assert all(b["min"] <= b["mean"] <= b["max"] for b in hours)
    bad = api.get(
        f"/api/v1/residents/{r1}/rollups",
        params={"since": "2026-01-01T00:00:00Z", "until": "2026-06-01T00:00:00Z"},
        headers=h,
    )
    assert bad.status_code == 400
    before = audit_count(world, "resident.export_fhir", r1)
    fhir = api.get(
        "/api/v1/fhir/Observation",
        params={"patient": r1, "code": "http://loinc.org|8867-4", "_count": 5},
        headers=h,
    )
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    bundle = fhir.json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 5
    obs = bundle["entry"][0]["resource"]
    assert obs["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "8867-4",
        "display": "heart rate",
    }
    assert obs["category"][0]["coding"][0]["code"] == "vital-signs"
    assert obs["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert obs["subject"] == {"reference": f"Patient/{r1}"}
    assert audit_count(world, "resident.export_fhir", r1) == before + 1
    unknown = api.get(
        "/api/v1/fhir/Observation", params={"patient": r1, "code": "0000-0"}, headers=h
    )
    assert unknown.status_code == 400


def test_status_now(api: TestClient, world: Any, tokens: H) -> None:
    s = api.get(f"/api/v1/residents/{world['rn']}/status", headers=tokens["staff_fac"]).json()
    assert s["active_alerts"] >= 1 and s["worst_active_severity"] == "critical"


def test_admin_provisions_a_gateway_and_device(api: TestClient, world: Any, tokens: H) -> None:
    h = tokens["admin"]
    gw = api.post(
        "/api/v1/gateways", json={"id": f"{world.w}GX", "site_id": world["h1"]}, headers=h
    )
    assert gw.status_code == 201
    secret = gw.json()["secret"]
    stored = world.conn.execute(
        "SELECT secret_hash FROM gateways WHERE id = %s", (f"{world.w}GX",)
    ).fetchone()[0]
    assert secret not in stored and stored.startswith("sha256:")
    dev = api.post(
        f"/api/v1/gateways/{world.w}GX/devices",
        json={
            "id": f"{world.w}DX",
            "site_id": world["h1"],
            "family": "zigbee2mqtt",
            "native_id": "hall_motion",
            "type": "motion_sensor",
            "power": "battery",
        },
        headers=h,
    )
    assert dev.status_code == 201 and dev.json()["gateway_id"] == f"{world.w}GX"
    assert api.get(f"/api/v1/gateways/{world.w}GX", headers=h).json()["config_version"] == 1
    dup = api.post(
        f"/api/v1/gateways/{world.w}GX/devices",
        json={
            "id": f"{world.w}DY",
            "site_id": world["h1"],
            "family": "zigbee2mqtt",
            "native_id": "hall_motion",
            "type": "motion_sensor",
        },
        headers=h,
    )
    assert dup.status_code == 409
    wrong_site = api.post(
        f"/api/v1/gateways/{world.w}GX/devices",
        json={
            "id": f"{world.w}DZ",
            "site_id": world["n1"],
            "family": "zigbee2mqtt",
            "native_id": "x",
            "type": "motion_sensor",
        },
        headers=h,
    )
    assert wrong_site.status_code == 409
    elsewhere = api.post(
        f"/api/v1/gateways/{world.w}GX/devices",
        json={
            "id": f"{world.w}DW",
            "site_id": world["h1"],
            "family": "wearable",
            "native_id": "AABBCCDDEEFF",
            "type": "wearable",
            "resident_id": world["r2"],  # lives in another prefecture
        },
        headers=h,
    )
    assert elsewhere.status_code == 404
    rotated = api.post(f"/api/v1/gateways/{world.w}GX/credentials", headers=h).json()
    assert rotated["secret"] != secret


def test_error_body_shape_for_unknown_routes_and_methods(api: TestClient, tokens: H) -> None:
    r = api.get("/api/v1/nothing-here", headers=tokens["admin"])
    assert r.status_code == 404 and set(r.json()["error"]) == {"code", "message", "details"}
    r = api.put("/api/v1/alerts", headers=tokens["admin"])
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_openapi_document_is_served(api: TestClient) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    assert doc["info"]["title"] == "CareCircle API"
    assert "/api/v1/alerts/{alert_id}/acknowledge" in doc["paths"]
    assert api.get("/api/v1/docs").status_code == 200


def test_healthz_answers_without_credentials_and_refuses_writes(api: TestClient) -> None:
    r = api.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert api.post("/healthz").status_code == 405
