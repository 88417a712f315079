"""Export and erasure per resident, on the real PostgreSQL, plus the privacy CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.types.json import Jsonb

from carecircle.common.cli import cli
from carecircle.common.errors import NotFound
from carecircle.platform.alerts import repository as alerts
from carecircle.platform.alerts.lifecycle import Severity, Status
from carecircle.platform.privacy.crypto import PiiCipher, new_key
from carecircle.platform.privacy.service import (
    delete_resident,
    encrypt_existing,
    export_resident,
    find_by_id_number,
    find_by_phone,
    resident_tables,
    set_id_number,
)
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    """Two residents in two households of one village, with everything attached."""

    tag: str
    a: str  # resident A (lives alone)
    b: str  # resident B
    site_a: str
    site_b: str
    alert_a: int
    alert_b: int
    responder: str
    family: str


def _seed_resident(
    conn: Conn, tag: str, who: str, village: str, gateway_suffix: str
) -> tuple[str, str, int]:
    site, room, res = f"s-{tag}-{who}", f"rm-{tag}-{who}", f"r-{tag}-{who}"
    gw, dev = f"gw-{tag}-{who}{gateway_suffix}", f"d-{tag}-{who}"
    conn.execute(
        "INSERT INTO sites (id, kind, place_id, name, address, lat, lon) "
        "VALUES (%s, 'household', %s, %s, %s, 30.123456, 120.654321)",
        (site, village, f"Home of NAME-{who}", f"ADDRESS-{who} 12 Lane"),
    )
    conn.execute(
        "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, 'bedroom', 'bed')",
        (room, site),
    )
    conn.execute(
        "INSERT INTO residents (id, site_id, room_id, display_name, birth_year, lives_alone, "
        "care_profile) VALUES (%s, %s, %s, %s, 1940, true, %s)",
        (res, site, room, f"NAME-{who}", Jsonb({"hr_high": 120})),
    )
    conn.execute("INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (gw, site))
    conn.execute(
        "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family, native_id, "
        "type) VALUES (%s, %s, %s, %s, %s, 'wearable', %s, 'wearable')",
        (dev, gw, site, room, res, f"mac-{who}"),
    )
    door = f"door-{tag}-{who}"
    conn.execute(
        "INSERT INTO devices (id, gateway_id, site_id, room_id, family, native_id, type) "
        "VALUES (%s, %s, %s, %s, 'zigbee2mqtt', %s, 'door_sensor')",
        (door, gw, site, room, f"door-{who}"),
    )
    for i in range(3):
        at = T0 + timedelta(minutes=i)
        conn.execute(
            "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, resident_id, "
            "site_id, code, value) VALUES (%s, %s, %s, %s, %s, %s, %s, 'heart_rate', %s)",
            (at, at, uuid.uuid4(), gw, dev, res, site, 70 + i),
        )
        conn.execute(
            "INSERT INTO events (time, received_at, msg_id, gateway_id, device_id, resident_id, "
            "site_id, kind, code, value) VALUES (%s, %s, %s, %s, %s, NULL, %s, 'event', "
            "'door_open', 1)",
            (at, at, uuid.uuid4(), gw, door, site),
        )
    conn.execute(
        "INSERT INTO events (time, received_at, msg_id, gateway_id, device_id, resident_id, "
        "site_id, kind, code) VALUES (%s, %s, %s, %s, %s, %s, %s, 'event', 'sos')",
        (T0 + timedelta(days=30), T0, uuid.uuid4(), gw, dev, res, site),
    )
    conn.execute(
        "INSERT INTO activity_state (device_id, code, site_id, resident_id, last_value, "
        "last_value_at) VALUES (%s, 'heart_rate', %s, %s, 72, %s)",
        (dev, site, res, T0),
    )
    conn.execute(
        "INSERT INTO alert_rules (scope, scope_id, kind, params, updated_by) "
        "VALUES ('resident', %s, 'tachycardia', '{}', 'test')",
        (res,),
    )
    change = alerts.open_or_refresh(
        conn,
        alerts.AlertDraft(
            subject=res,
            site_id=site,
            kind="fall",
            severity=Severity.CRITICAL,
            detector="test",
            at=T0,
            resident_id=res,
            device_id=dev,
            message="fall detected",
        ),
    )
    alerts.transition(conn, change.id, Status.ACKNOWLEDGED, actor="staff:s1", at=T0)
    conn.execute(
        "INSERT INTO audit_log (actor, action, object_type, object_id) "
        "VALUES ('staff:s1', 'resident.read_vitals', 'resident', %s)",
        (res,),
    )
    return res, site, change.id


@pytest.fixture(scope="module")
def privacy_db(fresh_database: Callable[[], str]) -> str:
    """A database of its own: erasure and encrypt-existing touch whole tables, and the
    residents made here must not show up in other domains' checks."""
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return url


@pytest.fixture
def db(privacy_db: str) -> Iterator[Conn]:
    with psycopg.connect(privacy_db, autocommit=True) as conn:
        yield conn


def _digits(tag: str) -> str:
    """Eight digits unique to this world, for its phone numbers."""
    return f"{int(tag, 16) % 10**8:08d}"


@pytest.fixture
def world(db: Conn) -> World:
    tag = uuid.uuid4().hex[:8]
    places = [
        (f"p-{tag}", None, "prefecture"),
        (f"c-{tag}", f"p-{tag}", "county"),
        (f"t-{tag}", f"c-{tag}", "township"),
        (f"v-{tag}", f"t-{tag}", "village"),
    ]
    for pid, parent, level in places:
        db.execute(
            "INSERT INTO places (id, parent_id, level, name) VALUES (%s, %s, %s, %s)",
            (pid, parent, level, pid),
        )
    village = f"v-{tag}"
    a, site_a, alert_a = _seed_resident(db, tag, "a", village, "")
    b, site_b, alert_b = _seed_resident(db, tag, "b", village, "")
    responder, family = f"vol-{tag}", f"fam-{tag}"
    db.execute(
        "INSERT INTO responders (id, display_name, kind, place_id, lat, lon, phone) "
        "VALUES (%s, 'NAME-volunteer', 'volunteer', %s, 30.1, 120.6, %s)",
        (responder, village, f"138 {_digits(tag)[:4]} {_digits(tag)[4:]}"),
    )
    for alert_id in (alert_a, alert_b):
        db.execute(
            "INSERT INTO dispatches (alert_id, kind, site_id, opened_at, started_at) "
            "SELECT id, kind, site_id, opened_at, opened_at FROM alerts WHERE id = %s",
            (alert_id,),
        )
        task = db.execute(
            "INSERT INTO tasks (alert_id, responder_id, offered_at) VALUES (%s, %s, %s) "
            "RETURNING id",
            (alert_id, responder, T0),
        ).fetchone()
        assert task is not None
        db.execute(
            "INSERT INTO notifications (alert_id, task_id, channel, target, payload, created_at, "
            "next_attempt_at) VALUES (%s, %s, 'mqtt', %s, '{}', %s, %s)",
            (alert_id, task[0], responder, T0, T0),
        )
        db.execute(
            "INSERT INTO escalations (alert_id, target_kind, target, at, reason) "
            "VALUES (%s, 'family', %s, %s, 'no responder')",
            (alert_id, family, T0),
        )
    db.execute(
        "INSERT INTO family_members (id, display_name, phone) VALUES (%s, 'NAME-daughter', %s)",
        (family, f"+86 139-{_digits(tag)[:4]}-{_digits(tag)[4:]}"),
    )
    for res in (a, b):
        db.execute(
            "INSERT INTO family_links (family_member_id, resident_id, relationship) "
            "VALUES (%s, %s, 'daughter')",
            (family, res),
        )
    return World(tag, a, b, site_a, site_b, alert_a, alert_b, responder, family)


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str)


def test_resident_tables_are_discovered(db: Conn) -> None:
    tables = resident_tables(db)
    for table in ("devices", "alerts", "readings", "events", "activity_state", "family_links"):
        assert table in tables
    assert not any(t.startswith("readings_") for t in tables), "partitions are not listed"


def test_export_has_this_resident_and_not_the_other(db: Conn, world: World) -> None:
    data = export_resident(db, world.a)
    assert data["resident"]["id"] == world.a
    assert data["resident"]["display_name"] == "NAME-a"
    assert data["care_profile"] == {"hr_high": 120}
    assert [s["address"] for s in data["sites"]] == ["ADDRESS-a 12 Lane"]
    assert [r["id"] for r in data["room"]] == [f"rm-{world.tag}-a"]
    assert [d["id"] for d in data["devices"]] == [f"d-{world.tag}-a"]
    assert [f["family_member_id"] for f in data["family_links"]] == [world.family]
    assert len(data["readings"]) == 3 and {r["resident_id"] for r in data["readings"]} == {world.a}
    assert len(data["events"]) == 1  # the SOS; door events carry no resident
    [alert] = data["alerts"]
    assert alert["id"] == world.alert_a
    assert [t["to_status"] for t in alert["transitions"]] == ["open", "acknowledged"]
    assert alert["dispatch"]["alert_id"] == world.alert_a
    assert [t["responder_id"] for t in alert["tasks"]] == [world.responder]
    assert len(alert["notifications"]) == 1 and len(alert["escalations"]) == 1
    assert [r["kind"] for r in data["alert_rules"]] == ["tachycardia"]
    actions = {e["action"] for e in data["audit_log"]}
    assert "resident.read_vitals" in actions
    assert [r["device_id"] for r in data["other"]["activity_state"]] == [f"d-{world.tag}-a"]
    text = _dump(data)
    assert "NAME-b" not in text and world.b not in text and "ADDRESS-b" not in text
    assert str(world.alert_b) not in {str(a["id"]) for a in data["alerts"]}


def test_export_bounds_the_time_series(db: Conn, world: World) -> None:
    data = export_resident(
        db, world.a, since=T0 + timedelta(minutes=1), until=T0 + timedelta(days=1)
    )
    assert [r["value"] for r in data["readings"]] == [71, 72]
    assert data["events"] == []


def test_export_of_unknown_resident_is_not_found(db: Conn) -> None:
    with pytest.raises(NotFound):
        export_resident(db, "r-nobody-here")


def _count(db: Conn, query: str, *params: Any) -> int:
    row = db.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def test_delete_removes_everything_about_them_and_nothing_else(db: Conn, world: World) -> None:
    before_b = export_resident(db, world.b)
    report = delete_resident(db, world.a, actor="staff:dpo", reason="request #42")
    assert report.existed and report.household_scrubbed and report.audit_id is not None
    a = world.a
    for query in (
        "SELECT count(*) FROM residents WHERE id = %s",
        "SELECT count(*) FROM readings WHERE resident_id = %s",
        "SELECT count(*) FROM events WHERE resident_id = %s",
        "SELECT count(*) FROM alerts WHERE resident_id = %s",
        "SELECT count(*) FROM devices WHERE resident_id = %s",
        "SELECT count(*) FROM family_links WHERE resident_id = %s",
        "SELECT count(*) FROM activity_state WHERE resident_id = %s",
        "SELECT count(*) FROM alert_rules WHERE scope_id = %s",
    ):
        assert _count(db, query, a) == 0, query
    for table in ("alert_transitions", "dispatches", "tasks", "notifications", "escalations"):
        assert _count(db, f"SELECT count(*) FROM {table} WHERE alert_id = %s", world.alert_a) == 0
    # the emptied household: its sensors' data gone, address and name scrubbed, coarse location
    assert _count(db, "SELECT count(*) FROM events WHERE site_id = %s", world.site_a) == 0
    site = db.execute(
        "SELECT name, address, lat, lon FROM sites WHERE id = %s", (world.site_a,)
    ).fetchone()
    assert site == (world.site_a, None, 30.12, 120.65)
    # devices stay (they belong to the service), unbound
    assert _count(db, "SELECT count(*) FROM devices WHERE site_id = %s", world.site_a) == 2
    # B untouched
    after_b = export_resident(db, world.b)
    assert _dump(after_b) == _dump(before_b)
    # the audit row records the erasure, without the name
    audit = db.execute(
        "SELECT actor, action, object_id, detail FROM audit_log WHERE id = %s", (report.audit_id,)
    ).fetchone()
    assert audit is not None
    assert audit[:3] == ("staff:dpo", "resident.erase", a)
    assert audit[3]["reason"] == "request #42" and audit[3]["counts"]["readings"] == 3
    assert "NAME-a" not in json.dumps(audit[3]) and "ADDRESS-a" not in json.dumps(audit[3])


def test_delete_is_idempotent(db: Conn, world: World) -> None:
    first = delete_resident(db, world.a, actor="staff:dpo", reason="r")
    second = delete_resident(db, world.a, actor="staff:dpo", reason="r")
    assert first.existed and not second.existed
    assert second.audit_id is None
    assert all(n == 0 for n in second.counts.values()), second.counts
    assert (
        _count(
            db,
            "SELECT count(*) FROM audit_log WHERE action = 'resident.erase' AND object_id = %s",
            world.a,
        )
        == 1
    )


def test_delete_is_one_transaction(db: Conn, world: World) -> None:
    """A failure part-way leaves everything as it was."""
    db.execute(
        "CREATE FUNCTION pg_temp.cc_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
    )
    db.execute(
        "CREATE TRIGGER cc_refuse_delete BEFORE DELETE ON residents FOR EACH ROW "
        "EXECUTE FUNCTION pg_temp.cc_refuse()"
    )
    try:
        with pytest.raises(psycopg.errors.RaiseException):
            delete_resident(db, world.a, actor="t", reason="r")
    finally:
        db.execute("DROP TRIGGER cc_refuse_delete ON residents")
    assert _count(db, "SELECT count(*) FROM readings WHERE resident_id = %s", world.a) == 3
    assert _count(db, "SELECT count(*) FROM alerts WHERE resident_id = %s", world.a) == 1


def _cipher() -> PiiCipher:
    return PiiCipher.from_settings(f"k1:{new_key()}", new_key())


def test_encrypt_existing_seals_and_is_idempotent(db: Conn, world: World) -> None:
    cipher = _cipher()
    encrypt_existing(db, cipher)
    row = db.execute(
        "SELECT display_name, display_name_enc FROM residents WHERE id = %s", (world.a,)
    ).fetchone()
    assert row is not None and row[1] is not None
    assert b"NAME-a" not in bytes(row[1])
    assert cipher.decrypt(bytes(row[1]), "residents.display_name") == "NAME-a"
    again = encrypt_existing(db, cipher)
    assert sum(again.sealed.values()) == 0 and sum(again.rotated.values()) == 0
    # an edited name is re-sealed
    db.execute("UPDATE residents SET display_name = 'NAME-a2' WHERE id = %s", (world.a,))
    edited = encrypt_existing(db, cipher)
    assert edited.sealed["residents.display_name"] == 1
    # blind index finds the phone however it is written
    digits = _digits(world.tag)
    assert find_by_phone(db, cipher, "responders", f"138{digits}") == [world.responder]
    assert find_by_phone(db, cipher, "family_members", f"+86 139 {digits}") == [world.family]
    assert find_by_phone(db, cipher, "responders", "139" + digits) == []
    # the export opens sealed values when given the cipher
    data = export_resident(db, world.a, cipher=cipher)
    assert data["resident"]["display_name_sealed"] == "NAME-a2"
    assert "display_name_enc" not in data["resident"]


def test_rotation_reseals_with_the_new_key(db: Conn, world: World) -> None:
    old_key, index_key = new_key(), new_key()
    old = PiiCipher.from_settings(f"k1:{old_key}", index_key)
    encrypt_existing(db, old)
    new = PiiCipher.from_settings(f"k2:{new_key()},k1:{old_key}", index_key)
    report = encrypt_existing(db, new)
    assert report.rotated["residents.display_name"] >= 2
    token = db.execute(
        "SELECT display_name_enc FROM residents WHERE id = %s", (world.b,)
    ).fetchone()
    assert token is not None and bytes(token[0]).startswith(b"k2:")


def test_id_numbers_are_stored_only_sealed(db: Conn, world: World) -> None:
    cipher = _cipher()
    set_id_number(db, cipher, world.a, "110101194001011234")
    assert find_by_id_number(db, cipher, "110101194001011234") == world.a
    assert find_by_id_number(db, cipher, "110101194001019999") is None
    cols = {
        str(r[0])
        for r in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'residents'"
        ).fetchall()
    }
    assert "id_number" not in cols
    assert export_resident(db, world.a, cipher=cipher)["resident"]["id_number"] == (
        "110101194001011234"
    )
    with pytest.raises(NotFound):
        set_id_number(db, cipher, "r-nobody-here", "1")


def test_cli_export_and_delete(
    privacy_db: str, db: Conn, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARECIRCLE_DATABASE_URL", privacy_db)
    runner = CliRunner()
    out = tmp_path / "export.json"
    result = runner.invoke(cli, ["privacy", "export", "--resident", world.a, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["resident"]["id"] == world.a and len(data["readings"]) == 3
    assert out.stat().st_mode & 0o077 == 0

    refused = runner.invoke(cli, ["privacy", "delete", "--resident", world.a, "--reason", "x"])
    assert refused.exit_code != 0 and "--yes" in refused.output
    assert _count(db, "SELECT count(*) FROM residents WHERE id = %s", world.a) == 1

    done = runner.invoke(
        cli, ["privacy", "delete", "--resident", world.a, "--reason", "request #7", "--yes"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["existed"] is True
    assert _count(db, "SELECT count(*) FROM residents WHERE id = %s", world.a) == 0
    assert _count(db, "SELECT count(*) FROM residents WHERE id = %s", world.b) == 1


def test_cli_encrypt_existing_needs_the_setting_and_keys(
    privacy_db: str, db: Conn, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARECIRCLE_DATABASE_URL", privacy_db)
    for name in ("CARECIRCLE_PII_ENCRYPTION", "CARECIRCLE_PII_KEYS", "CARECIRCLE_PII_INDEX_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    off = runner.invoke(cli, ["privacy", "encrypt-existing"])
    assert off.exit_code != 0 and "pii_encryption is off" in str(off.exception)
    monkeypatch.setenv("CARECIRCLE_PII_ENCRYPTION", "true")
    no_keys = runner.invoke(cli, ["privacy", "encrypt-existing"])
    assert no_keys.exit_code != 0 and "pii_keys" in str(no_keys.exception)
    monkeypatch.setenv("CARECIRCLE_PII_KEYS", f"k1:{new_key()}")
    monkeypatch.setenv("CARECIRCLE_PII_INDEX_KEY", new_key())
    done = runner.invoke(cli, ["privacy", "encrypt-existing"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["sealed"]["residents.display_name"] >= 2
    assert (
        _count(
            db,
            "SELECT count(*) FROM residents WHERE id = %s AND display_name_enc IS NOT NULL",
            world.a,
        )
        == 1
    )
