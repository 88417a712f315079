"""The live stream over a real HTTP server: each subscriber gets only the alert changes
its scope (and a family member's consent) allows."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from carecircle.common.clock import ManualClock
from carecircle.platform.api.app import create_app
from carecircle.platform.auth import users
from carecircle.platform.auth.policy import Role
from carecircle.platform.auth.tokens import DEMO_SECRET, TokenCodec
from carecircle.platform.dispatch.service import DispatchService
from carecircle.platform.settings import PlatformSettings

from .conftest import NOW, PASSWORD

H = dict[str, dict[str, str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(database_url: str, clock: ManualClock, world: Any) -> Iterator[str]:
    settings = PlatformSettings(
        database_url=database_url, jwt_secret="", demo_mode=True, login_burst=1000
    )  # type: ignore[arg-type]
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, clock),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
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


class Stream:
    """Reads one SSE connection on a thread; events land in a queue."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=30.0))
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "stream did not connect"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url + "/api/v1/live", headers=headers) as r:
                assert r.status_code == 200
                name = "message"
                for line in r.iter_lines():
                    if line.startswith(": connected"):
                        self.connected.set()
                    elif line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        self.events.put({**json.loads(line[6:]), "_event": name})
        except (httpx.HTTPError, RuntimeError):
            return

    def until(self, alert_id: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Every event up to and including the first about ``alert_id``."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no event for alert {alert_id}; got {got}"
            event = self.events.get(timeout=remaining)
            got.append(event)
            if event["_event"] == "alert" and event["id"] == alert_id:
                return got

    def close(self) -> None:
        self._client.close()


def test_live_stream_is_scoped(server: str, world: Any, tokens: H) -> None:
    roles = ["admin", "staff", "staff_fac", "responder", "family", "admin2"]
    streams = {role: Stream(server, tokens[role]) for role in roles}
    try:
        other = world.new_alert("h2", kind="fall")  # world 2: only admin2 may see it
        facility = world.new_alert("n1", kind="fall")  # world 1 nursing home
        home = world.new_alert("h1", kind="fall", assign=world["resp1"])  # world 1 household
        for role in ("admin", "staff", "responder", "family"):
            seen = {e["id"] for e in streams[role].until(home)}
            assert other not in seen, role
        staff_fac_seen = {e["id"] for e in streams["staff_fac"].until(facility)}
        assert other not in staff_fac_seen
        assert streams["admin2"].until(other)[-1]["id"] == other
        # a change to the facility alert reaches facility staff, not the family or responder
        r = httpx.post(
            f"{server}/api/v1/alerts/{facility}/acknowledge",
            json={},
            headers=tokens["staff_fac"],
            timeout=10,
        )
        assert r.status_code == 200
        ack = [e for e in streams["staff_fac"].until(facility) if e["id"] == facility][-1]
        assert ack["status"] == "acknowledged" and ack["change"] == "transition"
        marker = world.new_alert("h1", kind="fall", assign=world["resp1"])
        for role in ("family", "responder"):
            seen_ids = [e["id"] for e in streams[role].until(marker)]
            assert facility not in seen_ids and other not in seen_ids, role
        admin_events = streams["admin"].until(marker)
        assert any(e["id"] == facility and e["status"] == "acknowledged" for e in admin_events)
    finally:
        for s in streams.values():
            s.close()


def test_task_offers_reach_only_their_responder(server: str, world: Any, tokens: H) -> None:
    # a nurse on duty at the nursing home, with a responder login
    nurse = f"{world.w}livenurse"
    world.conn.execute(
        "INSERT INTO responders (id, display_name, kind, site_id, lat, lon, availability) "
        "VALUES (%s, 'nurse', 'facility_staff', %s, 30.1, 120.1, 'on_duty')",
        (nurse, world["n1"]),
    )
    users.create_user(
        world.conn,
        user_id=f"{world.w}ulivenurse",
        username=f"{world.w}_livenurse",
        password=PASSWORD,
        role=Role.RESPONDER,
        responder_id=nurse,
    )
    token = TokenCodec(DEMO_SECRET, timedelta(minutes=15)).issue(
        f"{world.w}ulivenurse", "responder", NOW
    )
    mine = Stream(server, {"Authorization": f"Bearer {token}"})
    others = {role: Stream(server, tokens[role]) for role in ("responder", "staff_fac")}
    try:
        alert_id = world.new_alert("n1", kind="fall")
        DispatchService().open(world.conn, alert_id, NOW)  # the dispatcher takes it on
        task = world.conn.execute(
            "SELECT id FROM tasks WHERE alert_id = %s AND responder_id = %s", (alert_id, nurse)
        ).fetchone()
        assert task is not None, "the nurse at the home was not offered the fall"
        deadline = time.monotonic() + 10
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no task event"
            event = mine.events.get(timeout=remaining)
            if event["_event"] == "task":
                break
        assert (event["task_id"], event["alert_id"], event["status"]) == (
            task[0],
            alert_id,
            "offered",
        )
        assert event["responder_id"] == nurse
        # the others' streams: everything up to a later marker alert, and no such task
        marker = world.new_alert("h1", kind="fall", assign=world["resp1"])
        seen = others["responder"].until(marker)
        theirs = {
            int(r[0])
            for r in world.conn.execute(
                "SELECT id FROM tasks WHERE responder_id = %s", (world["resp1"],)
            ).fetchall()
        }
        assert all(e["task_id"] in theirs for e in seen if e["_event"] == "task")
        staff_seen = others["staff_fac"].until(world.new_alert("n1", kind="sos"))
        assert not [e for e in staff_seen if e["_event"] == "task"]
    finally:
        mine.close()
        for s in others.values():
            s.close()


def test_live_requires_credentials(server: str) -> None:
    r = httpx.get(f"{server}/api/v1/live", timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
