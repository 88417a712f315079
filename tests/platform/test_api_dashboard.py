"""The dashboard over HTTP: sign-in cookies, CSRF, roles, scoped pages, languages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carecircle.common.clock import ManualClock
from carecircle.platform.api.app import create_app
from carecircle.platform.dashboard.charts import distance_m, line_chart
from carecircle.platform.settings import PlatformSettings

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def app(database_url: str, clock: ManualClock, world: Any) -> Any:
    settings = PlatformSettings(
        database_url=database_url, jwt_secret="", demo_mode=True, login_burst=1000
    )  # type: ignore[arg-type]
    return create_app(settings, clock)


@pytest.fixture
def browser(app: Any) -> Iterator[TestClient]:
    """A client with its own cookie jar, like one browser."""
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def sign_in(client: TestClient, username: str) -> Any:
    return client.post(
        "/login", data={"username": username, "password": PASSWORD, "next": "/board"}
    )


def test_board_needs_a_signed_in_staff_member(browser: TestClient, world: Any) -> None:
    r = browser.get("/board", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    bad = browser.post(
        "/login", data={"username": world.username("staff"), "password": "wrong password!"}
    )
    assert bad.status_code == 401 and 'id="login-error"' in bad.text
    ok = sign_in(browser, world.username("staff"))
    assert ok.status_code == 200 and 'id="board-rows"' in ok.text
    assert "frame-ancestors 'none'" in ok.headers["content-security-policy"]
    assert f'id="alert-{world.alerts["a1"]}"' in ok.text  # world 1 household alert
    assert f'id="alert-{world.alerts["a2"]}"' not in ok.text  # another prefecture


def test_facility_staff_see_only_their_facility(browser: TestClient, world: Any) -> None:
    sign_in(browser, world.username("staff_fac"))
    rows = browser.get("/board/rows").text
    assert f'id="alert-{world.alerts["an"]}"' in rows
    assert f'id="alert-{world.alerts["a1"]}"' not in rows
    assert browser.get(f"/residents/{world['r1']}").status_code == 404
    assert browser.get(f"/residents/{world['rn']}").status_code == 200
    assert browser.get(f"/alerts/{world.alerts['a2']}").status_code == 404


def test_family_and_responders_use_the_api_not_the_dashboard(
    browser: TestClient, world: Any
) -> None:
    r = sign_in(browser, world.username("family"))
    assert r.status_code == 403


def test_cookie_session_needs_the_csrf_header_for_changes(browser: TestClient, world: Any) -> None:
    sign_in(browser, world.username("staff"))
    aid = world.new_alert("h1", kind="fall")
    # the session cookie alone reads...
    assert browser.get(f"/api/v1/alerts/{aid}").status_code == 200
    # ...but cannot change anything without echoing the CSRF cookie
    forged = browser.post(f"/api/v1/alerts/{aid}/acknowledge", json={})
    assert forged.status_code == 403
    wrong = browser.post(
        f"/api/v1/alerts/{aid}/acknowledge", json={}, headers={"X-CSRF-Token": "guess"}
    )
    assert wrong.status_code == 403
    ok = browser.post(
        f"/api/v1/alerts/{aid}/acknowledge",
        json={},
        headers={"X-CSRF-Token": browser.cookies["cc_csrf"]},
    )
    assert ok.status_code == 200 and ok.json()["status"] == "acknowledged"


def test_session_refresh_rotates_cookies(browser: TestClient, world: Any) -> None:
    sign_in(browser, world.username("admin"))
    old = browser.cookies["cc_refresh"]
    assert browser.post("/session/refresh").status_code == 403  # no CSRF header
    r = browser.post("/session/refresh", headers={"X-CSRF-Token": browser.cookies["cc_csrf"]})
    assert r.status_code == 204 and browser.cookies["cc_refresh"] != old
    logout = browser.post("/logout", follow_redirects=False)
    assert logout.status_code == 303
    assert browser.get("/board", follow_redirects=False).status_code == 303


def test_language_switch(browser: TestClient, world: Any) -> None:
    sign_in(browser, world.username("staff"))
    en = browser.get("/board?lang=en").text
    assert "Active alerts" in en and 'lang="en"' in en
    assert "Active alerts" in browser.get("/board").text  # remembered in a cookie
    zh = browser.get("/board?lang=zh").text
    assert "当前告警" in zh and "紧急呼叫" in zh
    assert "15分钟内有可用响应人员到达的老人" in browser.get("/map").text
    # the monitoring-gaps panel: the world's residents have a band each, no smoke detector
    panel = browser.get("/map?lang=en").text.split('id="monitoring"')[1]
    assert "<td>Smoke</td><td>" in panel and "Monitoring gaps" in browser.get("/map").text
    resident = browser.get(f"/residents/{world['r1']}?lang=en").text
    assert "<polyline" in resident and "Heart rate" in resident


def test_charts_are_plain_functions() -> None:
    # 0.009° of latitude is about 1 km
    assert distance_m(30.0, 120.0, 30.009, 120.0) == pytest.approx(1000, rel=0.01)
    assert line_chart([], None, None) == ""  # type: ignore[arg-type]
