"""Dispatch scenarios through the real pipeline: alerts opened through the alerts
repository, the dispatcher LISTENing on PostgreSQL, offers pushed over Mosquitto,
responders answering through the service functions, webhooks and SMS to local servers."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from carecircle.common.clock import ManualClock
from carecircle.common.contract.provisioning import ResponderSpec
from carecircle.common.contract.topics import Topics
from carecircle.common.errors import Conflict, NotFound
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts.lifecycle import Severity, Status
from carecircle.platform.dispatch import timebank
from carecircle.platform.dispatch.dispatcher import Dispatcher
from carecircle.platform.dispatch.evaluation import dispatch_kpis, eval_section, records_from_db
from carecircle.platform.dispatch.models import Availability, TaskOutcome
from carecircle.platform.dispatch.notify.mqtt import MqttNotifier
from carecircle.platform.dispatch.notify.sms import SmsNotifier
from carecircle.platform.dispatch.notify.webhook import SIGNATURE_HEADER, WebhookNotifier, verify
from carecircle.platform.dispatch.policy import DispatchPolicy
from carecircle.platform.dispatch.registry import save_responder
from carecircle.platform.dispatch.service import Channels, DispatchService
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
LAT, LON = 30.0, 120.0
SECRET = "test-secret"
Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def dispatch_db(fresh_database: Callable[[], str]) -> str:
    """A database of its own: the dispatcher takes on every active alert it finds."""
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return url


@pytest.fixture
def conn(dispatch_db: str) -> Iterator[Conn]:
    with psycopg.connect(dispatch_db, autocommit=True) as c:
        yield c


class Village:
    """Places, one household with a resident, and helpers to add people."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        p = f"d{uuid.uuid4().hex[:6]}"
        self.p = p
        conn.execute(
            "INSERT INTO places (id, parent_id, level, name) VALUES "
            f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
            f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
        )
        conn.execute(
            "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
            f"VALUES ('{p}hh', 'household', '{p}vi', 'H', {LAT}, {LON})"
        )
        conn.execute(
            "INSERT INTO residents (id, site_id, display_name) "
            f"VALUES ('{p}r1', '{p}hh', 'Resident')"
        )
        self.site, self.resident, self.village, self.township = (
            f"{p}hh",
            f"{p}r1",
            f"{p}vi",
            f"{p}tw",
        )

    def responder(self, name: str, metres_north: float, **kw: Any) -> str:
        rid = f"{self.p}{name}"
        spec: dict[str, Any] = {
            "id": rid,
            "display_name": name,
            "kind": "volunteer",
            "lat": LAT + metres_north / 111_195.0,
            "lon": LON,
            "availability": "on_duty",
            "covers": [self.village],
        }
        spec.update(kw)
        save_responder(self.conn, ResponderSpec(**spec))
        return rid

    def family(self, name: str, phone: str) -> str:
        fid = f"{self.p}{name}"
        self.conn.execute(
            "INSERT INTO family_members (id, display_name, phone) VALUES (%s, %s, %s)",
            (fid, name, phone),
        )
        self.conn.execute(
            "INSERT INTO family_links (family_member_id, resident_id) VALUES (%s, %s)",
            (fid, self.resident),
        )
        return fid

    def alert(self, kind: str, at: datetime = T0, severity: Severity = Severity.HIGH) -> int:
        return repo.open_or_refresh(
            self.conn,
            repo.AlertDraft(
                subject=self.resident,
                site_id=self.site,
                kind=kind,
                severity=severity,
                detector=f"test:{kind}",
                at=at,
                resident_id=self.resident,
            ),
        ).id


class Inbox:
    """Collects the task messages of every responder under ``topic_root``."""

    def __init__(self, mqtt_url: str, topic_root: str) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=1000)
        address = BrokerAddress.from_url(mqtt_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.put(
            (m.topic.split("/")[-2], json.loads(m.payload))
        )
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            Topics(topic_root).responder_tasks("+"), qos=1
        )
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert subscribed.wait(5), "could not subscribe to the broker"

    def take(self, n: int, timeout_s: float = 5.0) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for _ in range(n):
            out.append(self.messages.get(timeout=timeout_s))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Recorder(BaseHTTPRequestHandler):
    """Stores each POST; answers with the server's next status (default 200)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        server: Any = self.server
        server.requests.append((self.path, dict(self.headers), body))
        status = server.statuses.pop(0) if server.statuses else 200
        payload = b'{"code": 0, "message_id": "m1"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def http_server() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []
    server.statuses = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def inbox(mqtt_url: str, topic_root: str) -> Iterator[Inbox]:
    box = Inbox(mqtt_url, topic_root)
    yield box
    box.close()


def make_dispatcher(
    url: str,
    mqtt_url: str,
    topic_root: str,
    clock: ManualClock,
    policy: DispatchPolicy,
    *,
    channels: Channels = Channels(),  # noqa: B008
    extra: dict[str, Any] | None = None,
) -> Dispatcher:
    service = DispatchService(policy=policy, channels=channels)
    notifiers: dict[str, Any] = {
        "mqtt": MqttNotifier(BrokerAddress.from_url(mqtt_url), Topics(topic_root))
    }
    notifiers.update(extra or {})
    return Dispatcher(url, service, clock, notifiers)


def tasks_of(conn: Conn, alert_id: int) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "SELECT responder_id, status, via FROM tasks WHERE alert_id = %s", (alert_id,)
    ).fetchall()
    return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


def task_id(conn: Conn, alert_id: int, responder_id: str) -> int:
    row = conn.execute(
        "SELECT id FROM tasks WHERE alert_id = %s AND responder_id = %s", (alert_id, responder_id)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_first_acceptor_wins_and_the_others_are_told(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str, inbox: Inbox
) -> None:
    v = Village(conn)
    a, b, c = v.responder("a", 100), v.responder("b", 200), v.responder("c", 300)
    far = v.responder("far", 900)
    clock = ManualClock(T0)
    policy = DispatchPolicy(k=3)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, policy) as d:
        alert_id = v.alert("tachycardia")
        report = d.step(5)
        assert report.opened == [alert_id] and report.delivered == 3
        assert tasks_of(conn, alert_id) == {r: ("offered", "offer") for r in (a, b, c)}
        offers = dict(inbox.take(3))
        assert set(offers) == {a, b, c} and far not in offers
        assert {o["type"] for o in offers.values()} == {"offer"}
        assert offers[a]["eta_s"] < offers[b]["eta_s"] < offers[c]["eta_s"]
        assert offers[a]["alert_id"] == alert_id and offers[a]["kind"] == "tachycardia"

        # b and c press "I go" at the same moment from two connections: one wins
        barrier = threading.Barrier(2)
        results: dict[str, str] = {}

        def press(rid: str) -> None:
            with psycopg.connect(dispatch_db, autocommit=True) as own:
                barrier.wait(5)
                try:
                    d.service.accept(own, offers[rid]["task_id"], rid, clock.now())
                    results[rid] = "won"
                except Conflict as err:
                    results[rid] = str(err)

        threads = [threading.Thread(target=press, args=(r,)) for r in (b, c)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        winner = next(r for r, res in results.items() if res == "won")
        loser = next(r for r in (b, c) if r != winner)
        assert "already taken" in results[loser]
        # a late acceptor gets the same clear answer
        with pytest.raises(Conflict, match="already taken"):
            d.service.accept(conn, offers[a]["task_id"], a, clock.now())
        assert repo.get(conn, alert_id)["status"] == "dispatched"
        states = tasks_of(conn, alert_id)
        assert states[winner] == ("accepted", "offer")
        assert {states[a][0], states[loser][0]} == {"released"}
        d.step(0.1)
        told = dict(inbox.take(2))
        assert set(told) == {a, loser} and {m["type"] for m in told.values()} == {"taken"}
        # accepting twice is harmless
        again = d.service.accept(conn, offers[winner]["task_id"], winner, clock.now())
        assert again["status"] == "accepted"
        trail = conn.execute(
            "SELECT to_status, actor FROM alert_transitions WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        ).fetchall()
        assert trail[-1] == ("dispatched", f"responder:{winner}")


def test_timeout_and_decline_reassign_and_timeouts_survive_a_restart(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str, inbox: Inbox
) -> None:
    v = Village(conn)
    a, b, c, e = (v.responder(n, 100 * (i + 1)) for i, n in enumerate("abce"))
    clock = ManualClock(T0)
    policy = DispatchPolicy(k=1, offer_timeout_s=60, escalate_after_s=3600)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, policy) as d:
        alert_id = v.alert("low_spo2")
        d.step(5)
        assert tasks_of(conn, alert_id) == {a: ("offered", "offer")}
        assert inbox.take(1)[0][0] == a
        clock.advance(timedelta(seconds=59))
        assert d.step(0.1).ticked == 0
        clock.advance(timedelta(seconds=1))
        d.step(0.1)
        assert tasks_of(conn, alert_id) == {a: ("expired", "offer"), b: ("offered", "offer")}
        got = inbox.take(2)
        assert sorted((r, m["type"]) for r, m in got) == [(a, "expired"), (b, "offer")]
        # b declines: c is asked at once
        d.service.decline(conn, task_id(conn, alert_id, b), b, clock.now(), note="at the market")
        assert tasks_of(conn, alert_id)[c] == ("offered", "offer")
        deadline = conn.execute(
            "SELECT deadline FROM tasks WHERE alert_id = %s AND responder_id = %s",
            (alert_id, c),
        ).fetchone()
        assert deadline is not None and deadline[0] == clock.now() + timedelta(seconds=60)
    # the dispatcher is down while c's offer runs out; the next one re-evaluates at start-up
    clock.advance(timedelta(seconds=300))
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, policy) as d2:
        states = tasks_of(conn, alert_id)
        assert states[c] == ("expired", "offer") and states[e] == ("offered", "offer")
        assert d2.service.due(conn, clock.now()) == []


def test_critical_alert_escalates_in_parallel_to_every_channel(
    conn: Conn,
    dispatch_db: str,
    mqtt_url: str,
    topic_root: str,
    inbox: Inbox,
    http_server: Any,
) -> None:
    v = Village(conn)
    a, b = v.responder("a", 100), v.responder("b", 250)
    cw = v.responder(
        "cw",
        3000,
        kind="care_worker",
        travel_mode="car",
        covers=[v.township],
        phone="+8613800000001",
    )
    v.responder("cwoff", 3000, kind="care_worker", covers=[v.township], availability="off_duty")
    fam = v.family("son", "+8613800000002")
    base = f"http://127.0.0.1:{http_server.server_address[1]}"
    clock = ManualClock(T0)
    channels = Channels(sms=True, webhook_url=f"{base}/hook", emergency_via="webhook")
    extra = {
        "webhook": WebhookNotifier(SECRET),
        "sms": SmsNotifier(f"{base}/sms", "key-1"),
    }
    policy = DispatchPolicy(k=2)
    with make_dispatcher(
        dispatch_db, mqtt_url, topic_root, clock, policy, channels=channels, extra=extra
    ) as d:
        alert_id = v.alert("smoke", severity=Severity.CRITICAL)
        report = d.step(5)
        assert report.opened == [alert_id] and report.failed == 0
        assert tasks_of(conn, alert_id) == {
            a: ("offered", "offer"),
            b: ("offered", "offer"),
            cw: ("offered", "escalation"),  # the available care worker, not the one off duty
        }
        escalations = conn.execute(
            "SELECT target_kind, target, at, reason FROM escalations WHERE alert_id = %s "
            "ORDER BY target_kind",
            (alert_id,),
        ).fetchall()
        assert escalations == [
            ("care_worker", cw, T0, "critical"),
            ("emergency", "120", T0, "critical"),
            ("family", fam, T0, "critical"),
        ]
        msgs = dict(inbox.take(3))
        assert msgs[cw]["type"] == "escalation" and msgs[a]["type"] == "offer"
        posts = sorted(
            (p, json.loads(body).get("type", "sms")) for p, _, body in http_server.requests
        )
        assert posts == [
            ("/hook", "emergency"),
            ("/hook", "escalation"),
            ("/sms", "sms"),
            ("/sms", "sms"),
        ]
        for path, headers, body in http_server.requests:
            if path == "/hook":
                assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        sms_to = sorted(json.loads(b)["to"] for p, _, b in http_server.requests if p == "/sms")
        assert sms_to == ["+8613800000001", "+8613800000002"]
        # every notification was stored with its delivery
        rows = conn.execute(
            "SELECT channel, status, attempts FROM notifications WHERE alert_id = %s",
            (alert_id,),
        ).fetchall()
        assert len(rows) == 7 and all(r[1:] == ("delivered", 1) for r in rows)
        # the care worker goes: the volunteers are released
        d.service.accept(conn, task_id(conn, alert_id, cw), cw, clock.now())
        assert {s for r, (s, _) in tasks_of(conn, alert_id).items() if r != cw} == {"released"}


def test_no_available_responder_escalates_at_once_and_unanswered_offers_at_T(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str, inbox: Inbox
) -> None:
    v = Village(conn)
    v.responder("off1", 100, availability="off_duty")  # no shifts, not on duty
    v.responder("busy", 150, availability="busy")
    cw = v.responder("cw", 2000, kind="care_worker", covers=[v.township], availability="off_duty")
    clock = ManualClock(T0)
    policy = DispatchPolicy(k=1, offer_timeout_s=100, escalate_after_s=150)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, policy) as d:
        alert_id = v.alert("prolonged_inactivity")
        d.step(5)
        row = conn.execute(
            "SELECT at, reason FROM escalations WHERE alert_id = %s AND target_kind = "
            "'care_worker'",
            (alert_id,),
        ).fetchone()
        assert row == (T0, "nobody_available")
        assert tasks_of(conn, alert_id) == {cw: ("offered", "escalation")}

        # a second village where volunteers are available but never answer
        w = Village(conn)
        x, y = w.responder("x", 100), w.responder("y", 200)
        w.responder("cw", 2500, kind="care_worker", covers=[w.township])
        start = clock.now()
        alert2 = w.alert("missed_wakeup", at=start)
        d.step(5)
        assert tasks_of(conn, alert2) == {x: ("offered", "offer")}
        clock.advance(timedelta(seconds=100))
        d.step(0.1)
        assert tasks_of(conn, alert2)[y] == ("offered", "offer")
        assert conn.execute(
            "SELECT count(*) FROM escalations WHERE alert_id = %s", (alert2,)
        ).fetchone() == (0,)
        clock.advance(timedelta(seconds=50))
        d.step(0.1)
        escalated = conn.execute(
            "SELECT DISTINCT at, reason FROM escalations WHERE alert_id = %s", (alert2,)
        ).fetchall()
        assert escalated == [(start + timedelta(seconds=150), "no_acceptance")]


def test_task_lifecycle_resolves_the_alert_credits_time_and_records_kpis(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str, inbox: Inbox
) -> None:
    v = Village(conn)
    a = v.responder("a", 100)
    clock = ManualClock(T0)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, DispatchPolicy(k=1)) as d:
        alert_id = v.alert("tachycardia")
        d.step(5)
        tid = task_id(conn, alert_id, a)
        svc = d.service
        with pytest.raises(Conflict):
            svc.resolve(conn, tid, a, TaskOutcome.HELPED, clock.now())  # not accepted yet
        clock.advance(timedelta(seconds=40))
        svc.accept(conn, tid, a, clock.now())
        clock.advance(timedelta(seconds=20))
        svc.en_route(conn, tid, a, clock.now())
        clock.advance(timedelta(seconds=200))
        svc.on_scene(conn, tid, a, clock.now())
        assert repo.get(conn, alert_id)["status"] == "on_scene"
        clock.advance(timedelta(minutes=25))
        done = svc.resolve(conn, tid, a, TaskOutcome.HELPED, clock.now(), note="helped up")
        assert done["status"] == "resolved" and done["outcome"] == "helped"
        alert = repo.get(conn, alert_id)
        assert alert["status"] == "resolved" and alert["outcome"] == "real_incident"
        assert [t["status"] for t in svc.tasks_of(conn, a)] == ["resolved"]
        assert svc.tasks_of(conn, a, active_only=True) == []
        d.step(0.1)
        account = timebank.account(conn, a)
        assert account.total_minutes == 29 and account.tasks == 1  # 1720 s → 28.7 → 29 min
        records = records_from_db(conn, T0, T0 + timedelta(hours=1))
        mine = next(r for r in records if r.alert_id == alert_id)
        assert mine.time_to_accept_s == 40 and mine.time_to_arrive_s == 260
        kpis = dispatch_kpis([mine])
        assert kpis.share_within_circle == 1.0
        section = eval_section(conn, T0, T0 + timedelta(hours=1))
        assert alert_id in [a["alert_id"] for a in section["alerts"]]
        assert section["kpis"]["alerts"] == len(records)
        assert section["simulated_week"]["ratio_share_within_circle"] >= 0.9
        # statuses follow the lifecycle only
        with pytest.raises(Conflict):
            svc.en_route(conn, tid, a, clock.now())


def test_alert_closed_by_staff_releases_pending_offers(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str, inbox: Inbox
) -> None:
    v = Village(conn)
    a, b = v.responder("a", 100), v.responder("b", 200)
    clock = ManualClock(T0)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, DispatchPolicy(k=2)) as d:
        alert_id = v.alert("night_wandering")
        d.step(5)
        inbox.take(2)
        repo.transition(conn, alert_id, Status.CANCELLED, actor="staff:s1", at=clock.now())
        report = d.step(5)
        assert report.closed == [alert_id]
        assert tasks_of(conn, alert_id) == {a: ("released", "offer"), b: ("released", "offer")}
        assert {m["type"] for _, m in inbox.take(2)} == {"released"}
        with pytest.raises(Conflict):
            d.service.accept(conn, task_id(conn, alert_id, a), a, clock.now())


def test_non_dispatchable_alerts_are_left_alone(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str
) -> None:
    v = Village(conn)
    v.responder("a", 100)
    clock = ManualClock(T0)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, DispatchPolicy()) as d:
        tech = v.alert("low_battery")
        mild = v.alert("routine_drift", severity=Severity.LOW)
        assert d.step(5).opened == []
        assert tasks_of(conn, tech) == {} and tasks_of(conn, mild) == {}


def test_accepted_but_not_on_scene_when_the_circle_ends_escalates(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str, inbox: Inbox
) -> None:
    v = Village(conn)
    a = v.responder("a", 100)
    cw = v.responder("cw", 3000, kind="care_worker", travel_mode="car", covers=[v.township])
    clock = ManualClock(T0)
    policy = DispatchPolicy(k=1, escalate_after_s=600)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, policy) as d:
        alert_id = v.alert("tachycardia")
        d.step(5)
        assert inbox.take(1)[0][0] == a
        clock.advance(timedelta(seconds=30))
        d.service.accept(conn, task_id(conn, alert_id, a), a, clock.now())
        clock.advance(timedelta(minutes=14))
        assert d.step(0.1).ticked == 0
        clock.advance(timedelta(seconds=31))  # 15 min after the alert opened
        assert d.step(0.1).ticked == 1
        rows = conn.execute(
            "SELECT target_kind, target, reason FROM escalations WHERE alert_id = %s",
            (alert_id,),
        ).fetchall()
        assert ("care_worker", cw, "not_on_scene") in rows
        # the care worker is told, not offered: a still holds the alert
        assert tasks_of(conn, alert_id) == {a: ("accepted", "offer")}
        who, note = inbox.take(1)[0]
        assert who == cw and note["type"] == "escalation" and "task_id" not in note
        assert d.step(0.1).ticked == 0  # once


def test_missed_alerts_hand_over_and_availability(
    conn: Conn, dispatch_db: str, mqtt_url: str, topic_root: str, inbox: Inbox
) -> None:
    v = Village(conn)
    a, b = v.responder("a", 100), v.responder("b", 200)
    clock = ManualClock(T0)
    policy = DispatchPolicy(k=1)
    # an alert opens while no dispatcher runs: the next one takes it on at start-up
    alert_id = v.alert("sos", severity=Severity.CRITICAL)
    with make_dispatcher(dispatch_db, mqtt_url, topic_root, clock, policy) as d:
        assert tasks_of(conn, alert_id)[a] == ("offered", "offer")
        svc = d.service
        tid = task_id(conn, alert_id, a)
        svc.accept(conn, tid, a, clock.now())
        clock.advance(timedelta(minutes=5))
        svc.on_scene(conn, tid, a, clock.now())
        clock.advance(timedelta(minutes=10))
        done = svc.hand_over(conn, tid, a, clock.now(), note="to the township doctor")
        assert done["status"] == "handed_over" and done["note"] == "to the township doctor"
        assert repo.get(conn, alert_id)["status"] == "on_scene"  # staff close it
        assert timebank.account(conn, a).total_minutes == 15
        state = conn.execute(
            "SELECT state FROM dispatches WHERE alert_id = %s", (alert_id,)
        ).fetchone()
        assert state == ("closed",)
        # a says they are busy: the next alert goes to b
        svc.set_availability(conn, a, Availability.BUSY)
        repo.transition(conn, alert_id, Status.RESOLVED, actor="staff:s1", at=clock.now())
        second = v.alert("tachycardia", at=clock.now())
        d.step(5)
        assert tasks_of(conn, second) == {b: ("offered", "offer")}
        with pytest.raises(NotFound):
            svc.set_availability(conn, "nobody", Availability.ON_DUTY)
        with pytest.raises(NotFound):
            svc.accept(conn, task_id(conn, second, b), a, clock.now())  # not a's task
