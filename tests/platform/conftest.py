"""Fixtures of the API tests: a small two-prefecture world, users of every role, a client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from carecircle.common.clock import ManualClock
from carecircle.platform.alerts import repository as alerts_repo
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.api.app import create_app
from carecircle.platform.auth import users
from carecircle.platform.auth.policy import Role
from carecircle.platform.auth.tokens import DEMO_SECRET, TokenCodec
from carecircle.platform.rollups import mark_dirty, refresh_rollups
from carecircle.platform.settings import PlatformSettings

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
ROLES = ["admin", "staff", "staff_fac", "responder", "family"]


@dataclass
class World:
    """Two prefectures: world 1 is "own" for every test user, world 2 is "other"."""

    w: str
    conn: psycopg.Connection[Any]
    ids: dict[str, str] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    n: int = 0

    def __getitem__(self, key: str) -> str:
        return self.ids[key]

    def username(self, role: str) -> str:
        return f"{self.w}_{role}"

    def new_alert(self, where: str, *, kind: str = "fall", assign: str | None = None) -> int:
        """A fresh open alert on the resident of ``where`` (h1, n1 or h2)."""
        self.n += 1
        res, site = {
            "h1": (self["r1"], self["h1"]),
            "n1": (self["rn"], self["n1"]),
            "h2": (self["r2"], self["h2"]),
        }[where]
        change = alerts_repo.open_or_refresh(
            self.conn,
            alerts_repo.AlertDraft(
                subject=f"{res}.{self.n}",
                site_id=site,
                resident_id=res,
                kind=kind,
                severity=Severity.CRITICAL,
                detector="rule:test",
                at=NOW - timedelta(minutes=self.n),
                message="test alert",
            ),
        )
        if assign:
            alerts_repo.assign(self.conn, change.id, assign, actor="test", at=NOW)
        return change.id

    def new_gateway(self, where: str) -> str:
        """A fresh gateway with one device at ``where`` (h1, n1 or h2); returns its id."""
        self.n += 1
        gw = f"{self.w}G{where}x{self.n}"
        self.conn.execute("INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (gw, self[where]))
        self.conn.execute(
            "INSERT INTO devices (id, gateway_id, site_id, family, native_id, type) "
            "VALUES (%s, %s, %s, 'zigbee2mqtt', 'motion', 'motion_sensor')",
            (f"{gw}D", gw, self[where]),
        )
        return gw

    def new_device(self, where: str) -> str:
        """A fresh device on a fresh gateway at ``where``; returns the device's id."""
        return f"{self.new_gateway(where)}D"

    def new_task(self, where: str, responder: str, *, alert_id: int | None = None) -> int:
        """An open dispatch offer to ``responder`` (a responder id) on a fresh alert at
        ``where`` (or on ``alert_id``), as the dispatch service records one."""
        if alert_id is None:
            alert_id = self.new_alert(where)
        self.conn.execute(
            "INSERT INTO dispatches (alert_id, kind, site_id, opened_at, started_at) "
            "SELECT id, kind, site_id, opened_at, %s FROM alerts WHERE id = %s "
            "ON CONFLICT DO NOTHING",
            (NOW, alert_id),
        )
        row = self.conn.execute(
            "INSERT INTO tasks (alert_id, responder_id, eta_s, distance_m, offered_at, deadline) "
            "VALUES (%s, %s, 120, 150, %s, %s) RETURNING id",
            (alert_id, responder, NOW, NOW + timedelta(minutes=2)),
        ).fetchone()
        assert row is not None
        return int(row[0])


def build_world(conn: psycopg.Connection[Any]) -> World:
    w = f"w{uuid.uuid4().hex[:6]}"
    world = World(w, conn)
    i = world.ids
    for n in ("1", "2"):
        i[f"p{n}"], i[f"c{n}"], i[f"t{n}"], i[f"v{n}"] = (f"{w}{x}{n}" for x in "PCTV")
        conn.execute(
            "INSERT INTO places (id, parent_id, level, name, lat, lon) VALUES "
            "(%s, NULL, 'prefecture', 'P', 30, 120), (%s, %s, 'county', 'C', 30, 120), "
            "(%s, %s, 'township', 'T', 30, 120), (%s, %s, 'village', 'V', 30.1, 120.1)",
            (i[f"p{n}"], i[f"c{n}"], i[f"p{n}"], i[f"t{n}"], i[f"c{n}"], i[f"v{n}"], i[f"t{n}"]),
        )
    sites = [("h1", "household", "v1"), ("n1", "nursing_home", "t1"), ("h2", "household", "v2")]
    for key, kind, place in sites:
        i[key] = f"{w}{key.upper()}"
        conn.execute(
            "INSERT INTO sites (id, kind, place_id, name, address, lat, lon) "
            "VALUES (%s, %s, %s, %s, '1 Lane', 30.1, 120.1)",
            (i[key], kind, i[place], key),
        )
    for key, site in (("r1", "h1"), ("rn", "n1"), ("r2", "h2")):
        i[key] = f"{w}{key.upper()}"
        conn.execute(
            "INSERT INTO residents (id, site_id, display_name, lives_alone) "
            "VALUES (%s, %s, %s, true)",
            (i[key], i[site], f"Resident {key}"),
        )
    for key, site, res in (("1", "h1", "r1"), ("n", "n1", "rn"), ("2", "h2", "r2")):
        i[f"g{key}"], i[f"d{key}"] = f"{w}G{key}", f"{w}D{key}"
        conn.execute("INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (i[f"g{key}"], i[site]))
        conn.execute(
            "INSERT INTO devices (id, gateway_id, site_id, resident_id, family, native_id, type) "
            "VALUES (%s, %s, %s, %s, 'wearable', %s, 'wearable')",
            (i[f"d{key}"], i[f"g{key}"], i[site], i[res], f"AA{key}"),
        )
    for key, place in (("resp1", "v1"), ("resp2", "v2")):
        i[key] = f"{w}{key}"
        conn.execute(
            "INSERT INTO responders (id, display_name, kind, place_id, lat, lon, availability) "
            "VALUES (%s, %s, 'volunteer', %s, 30.1, 120.1, 'on_duty')",
            (i[key], key, i[place]),
        )
    consent = {"alerts": True, "daily_summary": True, "vitals": False, "location": False}
    for key, res, c in (
        ("f1", "r1", consent),
        ("f2", "r2", consent),
        ("ffull", "r1", dict.fromkeys(consent, True)),
    ):
        i[key] = f"{w}{key}"
        conn.execute("INSERT INTO family_members (id, display_name) VALUES (%s, %s)", (i[key], key))
        conn.execute(
            "INSERT INTO family_links (family_member_id, resident_id, consent) VALUES (%s, %s, %s)",
            (i[key], i[res], Jsonb(c)),
        )
    # readings: one heart rate a minute for R1 and R2 over the last two hours
    for res, site, dev, gw in (("r1", "h1", "d1", "g1"), ("r2", "h2", "d2", "g2")):
        conn.execute(
            "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, "
            "resident_id, site_id, code, value) "
            "SELECT %(now)s - make_interval(mins => g), %(now)s, gen_random_uuid(), %(gw)s, "
            "%(dev)s, %(res)s, %(site)s, 'heart_rate', 60 + g %% 20 FROM generate_series(1, 120) g",
            {"now": NOW, "gw": i[gw], "dev": i[dev], "res": i[res], "site": i[site]},
        )
    # as ingest and the scheduler's rollup job would: fold them into rollup_1m/rollup_1h
    mark_dirty(conn, NOW - timedelta(hours=3), NOW + timedelta(minutes=1))
    while refresh_rollups(conn, NOW).minute_buckets:
        pass
    scopes: dict[str, dict[str, str]] = {
        "admin": {"role": "admin", "place_id": i["c1"]},
        "staff": {"role": "staff", "place_id": i["t1"]},
        "staff_fac": {"role": "staff", "site_id": i["n1"]},
        "responder": {"role": "responder", "responder_id": i["resp1"]},
        "family": {"role": "family", "family_member_id": i["f1"]},
        "family_full": {"role": "family", "family_member_id": i["ffull"]},
        "admin2": {"role": "admin", "place_id": i["p2"]},
    }
    for name, sc in scopes.items():
        sc = dict(sc)
        role = Role(sc.pop("role"))
        users.create_user(
            conn,
            user_id=f"{w}u{name}",
            username=world.username(name),
            password=PASSWORD,
            role=role,
            **sc,
        )
    world.alerts["a1"] = world.new_alert("h1", kind="sos", assign=i["resp1"])
    world.alerts["an"] = world.new_alert("n1", kind="sos")
    world.alerts["a2"] = world.new_alert("h2", kind="sos", assign=i["resp2"])
    # dispatch offers on them: task1 to resp1 (world 1), task2 to resp2 (world 2)
    i["task1"] = str(world.new_task("h1", i["resp1"], alert_id=world.alerts["a1"]))
    i["task2"] = str(world.new_task("h2", i["resp2"], alert_id=world.alerts["a2"]))
    return world


@pytest.fixture(scope="session")
def world(database_url: str) -> Iterator[World]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield build_world(conn)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture(scope="module")
def api(database_url: str, clock: ManualClock, world: World) -> Iterator[TestClient]:
    settings = PlatformSettings(
        database_url=database_url, jwt_secret="", demo_mode=True, login_burst=1000, api_pool_size=4
    )  # type: ignore[arg-type]
    with TestClient(create_app(settings, clock)) as client:
        yield client


@pytest.fixture(scope="session")
def tokens(world: World) -> dict[str, dict[str, str]]:
    """Authorization headers per role name: access tokens issued at ``NOW`` with the demo
    secret (signing in through the API is tested in test_api_auth.py)."""
    codec = TokenCodec(DEMO_SECRET, timedelta(minutes=15))
    out = {}
    for name in [*ROLES, "family_full", "admin2"]:
        user = users.by_username(world.conn, world.username(name))
        assert user is not None
        out[name] = {"Authorization": f"Bearer {codec.issue(user.id, user.role.value, NOW)}"}
    return out
