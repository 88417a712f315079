"""``GET /monitoring-coverage`` and ``GET /residents/{id}/monitoring-coverage`` against
the real database: content, scopes, redaction for family members, 4xx on bad input.
(Every role × own/other object is also in the authorization matrix.)"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from carecircle.platform.auth import users
from carecircle.platform.auth.policy import Role
from carecircle.platform.auth.tokens import DEMO_SECRET, TokenCodec
from tests.platform.conftest import NOW, PASSWORD
from tests.platform.monitoring_support import seed_township

H = dict[str, dict[str, str]]
URL = "/api/v1/monitoring-coverage"


@pytest.fixture(scope="module")
def town(world: Any) -> tuple[dict[str, str], H]:
    """The monitoring township in its own prefecture, with its admin, township staff
    and two family members of ``her`` (with and without the daily-summary consent)."""
    p = f"m{uuid.uuid4().hex[:6]}"
    conn = world.conn
    ids = seed_township(conn, p, NOW)
    for fam, summary in (("fam", True), ("famno", False)):
        conn.execute("INSERT INTO family_members (id, display_name) VALUES (%s, 'F')", (p + fam,))
        conn.execute(
            "INSERT INTO family_links (family_member_id, resident_id, consent) VALUES (%s, %s, %s)",
            (p + fam, ids["her"], Jsonb({"alerts": True, "daily_summary": summary})),
        )
    scopes: dict[str, dict[str, Any]] = {
        "admin": {"role": Role.ADMIN, "place_id": f"{p}pf"},
        "staff": {"role": Role.STAFF, "place_id": f"{p}tw"},
        "staff_nh": {"role": Role.STAFF, "site_id": ids["nh"]},
        "fam": {"role": Role.FAMILY, "family_member_id": p + "fam"},
        "famno": {"role": Role.FAMILY, "family_member_id": p + "famno"},
    }
    codec = TokenCodec(DEMO_SECRET, timedelta(minutes=15))
    tokens: H = {}
    for name, sc in scopes.items():
        user = users.create_user(
            conn, user_id=f"{p}u{name}", username=f"{p}_{name}", password=PASSWORD, **sc
        )
        tokens[name] = {"Authorization": f"Bearer {codec.issue(user.id, user.role.value, NOW)}"}
    return ids, tokens


def _det(resident: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(d for d in resident["detections"] if d["kind"] == kind)


def test_admin_report_gaps_and_summary(api: TestClient, town: tuple[dict[str, str], H]) -> None:
    ids, tok = town
    r = api.get(URL, headers=tok["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    by = {x["resident_id"]: x for x in body["residents"]}
    assert set(by) == {ids[k] for k in ("her", "him", "solo", "a", "b")}
    her, him = by[ids["her"]], by[ids["him"]]
    inact = _det(her, "prolonged_inactivity")
    assert inact["status"] == "not_watched" and "lives with 1 other resident" in inact["why"]
    assert "band" in inact["fix"]
    assert _det(him, "prolonged_inactivity")["status"] == "watched"
    assert _det(him, "tachycardia")["devices"] == [ids["band"]]
    smoke = _det(by[ids["solo"]], "smoke")
    assert (smoke["status"], smoke["installed"], smoke["offline"]) == (
        "not_watched",
        "watched",
        [ids["smoke2"]],
    )
    township = next(s for s in body["summary"] if s["level"] == "township")
    assert township["id"] == ids["township"] and township["residents"] == 5
    assert township["not_watched"]["prolonged_inactivity"] == 4


def test_site_filter_and_scopes(api: TestClient, town: tuple[dict[str, str], H], tokens: H) -> None:
    ids, tok = town
    one = api.get(URL, headers=tok["admin"], params={"site_id": ids["hh"]}).json()
    assert {x["resident_id"] for x in one["residents"]} == {ids["her"], ids["him"]}
    assert {s["id"] for s in one["summary"] if s["level"] == "site"} == {ids["hh"]}
    # township staff see their township; a nursing home's staff only their home
    staff = api.get(URL, headers=tok["staff"]).json()
    assert len(staff["residents"]) == 5
    nh = api.get(URL, headers=tok["staff_nh"]).json()
    assert {x["resident_id"] for x in nh["residents"]} == {ids["a"], ids["b"]}
    # ... and another site of the township is not theirs: 404, as a missing one
    hidden = api.get(URL, headers=tok["staff_nh"], params={"site_id": ids["hh"]})
    missing = api.get(URL, headers=tok["staff_nh"], params={"site_id": "no-such-site"})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    # the shared world's admin (another prefecture) sees none of it
    other = api.get(URL, headers=tokens["admin"]).json()
    assert not {x["resident_id"] for x in other["residents"]} & set(ids.values())
    detail = f"/api/v1/residents/{ids['her']}/monitoring-coverage"
    assert api.get(detail, headers=tokens["admin"]).status_code == 404
    # family members and responders have no report of a whole area
    assert api.get(URL, headers=tok["fam"]).status_code == 403
    assert api.get(URL, headers=tokens["responder"]).status_code == 403


def test_one_resident_and_family(api: TestClient, town: tuple[dict[str, str], H]) -> None:
    ids, tok = town
    her = f"/api/v1/residents/{ids['her']}/monitoring-coverage"
    staff = api.get(her, headers=tok["staff"]).json()
    assert staff["resident_id"] == ids["her"] and staff["housemates"] == 1
    assert _det(staff, "sos")["devices"] == [ids["sos"]]
    # a family member with the daily-summary consent: the same report, no device ids
    fam = api.get(her, headers=tok["fam"])
    assert fam.status_code == 200, fam.text
    body = fam.json()
    assert [d["status"] for d in body["detections"]] == [d["status"] for d in staff["detections"]]
    assert all(d["devices"] == [] and d["offline"] == [] for d in body["detections"])
    # without that consent 403; another resident 404
    assert api.get(her, headers=tok["famno"]).status_code == 403
    him = f"/api/v1/residents/{ids['him']}/monitoring-coverage"
    assert api.get(him, headers=tok["fam"]).status_code == 404


def test_bad_input(api: TestClient, town: tuple[dict[str, str], H]) -> None:
    _, tok = town
    for params in ({"site_id": "bad id!"}, {"site_id": "x" * 65}, {"site_id": ""}):
        r = api.get(URL, headers=tok["admin"], params=params)
        assert r.status_code == 422, (params, r.status_code)
        assert r.json()["error"]["code"] == "validation_error"
    r = api.get("/api/v1/residents/bad%20id/monitoring-coverage", headers=tok["admin"])
    assert r.status_code == 422
    r = api.get("/api/v1/residents/nobody-here/monitoring-coverage", headers=tok["admin"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert api.get(URL).status_code == 401
