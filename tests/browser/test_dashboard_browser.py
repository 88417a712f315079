"""A real headless Chromium on the dashboard: sign in as staff, watch a simulated fall
appear on the board live, acknowledge it, dispatch it, see the board follow.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skips
with a reason only when they are absent.  The screenshot lands in
``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn

from carecircle.platform.alerts import repository as alerts_repo
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.api.app import create_app
from carecircle.platform.auth import users
from carecircle.platform.auth.policy import Role
from carecircle.platform.rollups import mark_dirty, refresh_rollups
from carecircle.platform.settings import PlatformSettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "staff password 123"
WAIT_S = 20

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium and chromium-driver are not installed (apt-get install chromium "
    "chromium-driver; .ci/run does this)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(conn: psycopg.Connection[Any]) -> dict[str, str]:
    w = f"b{uuid.uuid4().hex[:6]}"
    ids = {
        "site": f"{w}H",
        "resident": f"{w}R",
        "township": f"{w}T",
        "user": f"{w}_staff",
        "responder": f"{w}resp",
    }
    for suffix, parent, level, name in (
        ("P", None, "prefecture", "示范市"),
        ("C", "P", "county", "示范区"),
        ("T", "C", "township", "幸福街道"),
        ("V", "T", "village", "和平社区"),
    ):
        conn.execute(
            "INSERT INTO places (id, parent_id, level, name, lat, lon) "
            "VALUES (%s, %s, %s, %s, 41.8, 123.4)",
            (w + suffix, w + parent if parent else None, level, name),
        )
    conn.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) VALUES "
        "(%s, 'household', %s, '和平社区 3-201', 41.801, 123.402)",
        (ids["site"], f"{w}V"),
    )
    conn.execute(
        "INSERT INTO residents (id, site_id, display_name, lives_alone) VALUES (%s, %s, %s, true)",
        (ids["resident"], ids["site"], "王奶奶"),
    )
    conn.execute(
        "INSERT INTO responders (id, display_name, kind, place_id, lat, lon, availability) "
        "VALUES (%s, '李志愿者', 'volunteer', %s, 41.803, 123.401, 'on_duty')",
        (f"{w}resp", f"{w}V"),
    )
    # a day of heart rate (every 10 min) and motion for the resident page's charts
    conn.execute(
        "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, resident_id, "
        "site_id, code, value) SELECT now() - make_interval(mins => g * 10), now(), "
        "gen_random_uuid(), 'gw', 'band', %s, %s, c, CASE c WHEN 'heart_rate' THEN "
        "66 + 8 * sin(g / 9.0) ELSE (g %% 3 = 0)::int END "
        "FROM generate_series(1, 143) g, unnest(ARRAY['heart_rate', 'motion']) c",
        (ids["resident"], ids["site"]),
    )
    # as ingest and the scheduler's rollup job would: fold them into the rollups
    now = datetime.now(UTC)
    mark_dirty(conn, now - timedelta(days=2), now + timedelta(minutes=1))
    while refresh_rollups(conn, now).minute_buckets:
        pass
    users.create_user(
        conn,
        user_id=f"{w}u",
        username=ids["user"],
        password=PASSWORD,
        role=Role.STAFF,
        place_id=ids["township"],
    )
    return ids


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    settings = PlatformSettings(database_url=database_url, jwt_secret="", demo_mode=True)  # type: ignore[arg-type]
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_staff_see_a_fall_live_acknowledge_and_dispatch_it(
    server: str, browser: Any, db: psycopg.Connection[Any]
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    ids = seed(db)
    # rows are redrawn whenever an alert changes, so an element found a moment ago may
    # be gone: every wait retries stale elements until its deadline
    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))

    def do(action: Any) -> None:
        """Run a UI action, again if the row was redrawn under it (bounded by WAIT_S)."""
        wait.until(lambda d: action(d) or True)

    browser.get(f"{server}/board?lang=en")  # not signed in: sent to the login page
    wait.until(ec.presence_of_element_located((By.ID, "username")))
    browser.find_element(By.ID, "username").send_keys(ids["user"])
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    wait.until(ec.presence_of_element_located((By.ID, "board-rows")))
    # the EventSource is connected before anything happens
    wait.until(ec.text_to_be_present_in_element_attribute((By.ID, "live"), "class", "on"))
    assert not browser.find_elements(By.CSS_SELECTOR, "tr[data-id]")

    # the alert engine raises a fall for the resident (what it will do in production)
    change = alerts_repo.open_or_refresh(
        db,
        alerts_repo.AlertDraft(
            subject=ids["resident"],
            site_id=ids["site"],
            resident_id=ids["resident"],
            kind="fall",
            severity=Severity.CRITICAL,
            detector="rule:fall",
            at=datetime.now(UTC),
            message="fall detected by the wrist band",
        ),
    )
    row = (By.ID, f"alert-{change.id}")
    wait.until(ec.presence_of_element_located(row))  # appeared without a reload
    wait.until(lambda d: d.find_element(*row).get_attribute("data-status") == "open")
    wait.until(
        lambda d: "Fall" in d.find_element(*row).text and "王奶奶" in d.find_element(*row).text
    )

    do(
        lambda d: d.find_element(
            By.CSS_SELECTOR, f"#alert-{change.id} button[data-action=acknowledge]"
        ).click()
    )
    wait.until(lambda d: d.find_element(*row).get_attribute("data-status") == "acknowledged")
    # staff pick the nearest on-duty volunteer offered next to the alert, then dispatch
    wait.until(
        lambda d: (
            "李志愿者" in Select(d.find_element(By.ID, f"responder-{change.id}")).options[1].text
        )
    )

    def dispatch(d: Any) -> None:
        Select(d.find_element(By.ID, f"responder-{change.id}")).select_by_index(1)
        d.find_element(By.CSS_SELECTOR, f"#alert-{change.id} button[data-action=dispatch]").click()

    do(dispatch)
    wait.until(lambda d: d.find_element(*row).get_attribute("data-status") == "dispatched")
    wait.until(lambda d: "dispatched" in d.find_element(*row).text)

    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-board.png"))

    trail = db.execute(
        "SELECT to_status, actor FROM alert_transitions WHERE alert_id = %s ORDER BY id",
        (change.id,),
    ).fetchall()
    assert [t[0] for t in trail] == ["open", "acknowledged", "dispatched"]
    sent = db.execute(
        "SELECT responder_id FROM alert_assignments WHERE alert_id = %s", (change.id,)
    ).fetchall()
    assert sent == [(ids["responder"],)]
    assert trail[1][1] == trail[2][1] == f"user:{ids['user'].replace('_staff', 'u')}"

    # the other pages render for the same session: map (Chinese) and the resident
    browser.get(f"{server}/map?lang=zh")
    wait.until(ec.presence_of_element_located((By.ID, "coverage")))
    assert "1/1" in browser.find_element(By.ID, "coverage").text
    browser.save_screenshot(str(ARTIFACTS / "dashboard-map.png"))
    browser.get(f"{server}/residents/{ids['resident']}?lang=en")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.timeline li")))
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-resident.png"))
