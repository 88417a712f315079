"""Decommissioning devices and gateways, and the config push that follows every change."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest

from carecircle.common.contract import DeviceBinding, DeviceSpec, GatewayConfig, Topics
from carecircle.common.errors import BrokerUnavailable, ContractError, NotFound
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.alerts import repository as alerts_repo
from carecircle.platform.alerts import store as alerts_store
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.ingest.writer import DeviceDirectory
from carecircle.platform.registry import (
    gateway_config,
    provision,
    push_pending_configs,
    retire_device,
    retire_gateway,
)
from tests.platform.ingest_support import clear_retained, population

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def _offline_alert(db: Conn, device: str, site: str, kind: str = "device_offline") -> int:
    return alerts_repo.open_or_refresh(
        db,
        alerts_repo.AlertDraft(
            subject=device,
            site_id=site,
            resident_id=None,
            device_id=device,
            kind=kind,
            severity=Severity.MEDIUM,
            detector="rule:test",
            at=NOW - timedelta(hours=1),
            message="silent",
        ),
    ).id


def _status(db: Conn, alert_id: int) -> str:
    row = db.execute("SELECT status FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return str(row[0])


def _retained(mqtt_url: str, topic: str, wait_s: float = 2.0) -> bytes | None:
    """The retained message on ``topic`` (None when there is none)."""
    got: list[bytes] = []
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain and msg.payload:
            got.append(msg.payload)
            done.set()

    conn = new_connection(BrokerAddress.from_url(mqtt_url))
    conn.client.on_message = on_message
    conn.connect()
    conn.client.loop_start()
    try:
        conn.client.subscribe(topic, qos=1)
        done.wait(wait_s)
    finally:
        conn.client.disconnect()
        conn.client.loop_stop()
    return got[0] if got else None


def test_a_retired_device_leaves_config_registry_and_checks_but_keeps_history(db: Conn) -> None:
    p = f"x{uuid.uuid4().hex[:6]}"
    doc = population(p, gateways=1, devices=2)
    provision(db, doc)
    gw, dev, site = f"{p}gw0", f"{p}gw0-d0", f"{p}hh0"
    db.execute(
        "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, resident_id, "
        "site_id, code, value) VALUES (%s, %s, gen_random_uuid(), %s, %s, %s, %s, "
        "'heart_rate', 70)",
        (NOW, NOW, gw, dev, f"{p}r0", site),
    )
    offline = _offline_alert(db, dev, site)
    battery = _offline_alert(db, dev, site, kind="low_battery")
    before = gateway_config(db, gw)
    assert before is not None and len(before.devices) == 2

    report = retire_device(db, dev, actor="admin:test", at=NOW, reason="band broken")

    assert report.devices == [dev] and report.gateways == [gw]
    assert sorted(report.alerts_cancelled) == sorted([offline, battery])
    assert _status(db, offline) == _status(db, battery) == "cancelled"
    after = gateway_config(db, gw)
    assert after is not None and after.version == before.version + 1
    assert [d.id for d in after.devices] == [f"{p}gw0-d1"]
    assert dev not in DeviceDirectory().resolve(db, {dev, f"{p}gw0-d1"})
    assert dev not in {d.id for d in alerts_store.device_states(db, [site])}
    kept = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (dev,)).fetchone()
    assert kept == (1,)
    audit = db.execute(
        "SELECT actor, detail->>'reason' FROM audit_log WHERE action = 'device.retire' "
        "AND object_id = %s",
        (dev,),
    ).fetchall()
    assert audit == [("admin:test", "band broken")]

    again = retire_device(db, dev, actor="admin:test", at=NOW)
    assert again.devices == [] and again.gateways == [] and again.alerts_cancelled == []

    # provisioning the same document brings it back, and the gateway learns it
    back = provision(db, doc)
    assert back.gateways == [gw]
    cfg = gateway_config(db, gw)
    assert cfg is not None and {d.id for d in cfg.devices} == {dev, f"{p}gw0-d1"}
    assert dev in DeviceDirectory().resolve(db, {dev})

    with pytest.raises(NotFound):
        retire_device(db, f"{p}nope", actor="admin:test", at=NOW)


def test_a_retired_gateway_takes_its_devices_and_frees_their_native_ids(db: Conn) -> None:
    p = f"y{uuid.uuid4().hex[:6]}"
    doc = population(p, gateways=2, devices=2)
    provision(db, doc)
    gw, site = f"{p}gw0", f"{p}hh0"
    db.execute("UPDATE gateways SET secret_hash = 'sha256:x' WHERE id = %s", (gw,))
    gw_alert = _offline_alert(db, gw, site, kind="gateway_offline")

    report = retire_gateway(db, gw, actor="admin:test", at=NOW, reason="household moved")

    assert report.devices == [f"{gw}-d0", f"{gw}-d1"] and report.gateways == [gw]
    assert gw_alert in report.alerts_cancelled and _status(db, gw_alert) == "cancelled"
    row = db.execute("SELECT secret_hash, retired_at FROM gateways WHERE id = %s", (gw,)).fetchone()
    assert row is not None and row[0] is None and row[1] == NOW
    assert gateway_config(db, gw) is None
    assert gw not in {g.id for g in alerts_store.gateway_states(db, [site])}
    # the other gateway is untouched
    other = gateway_config(db, f"{p}gw1")
    assert other is not None and len(other.devices) == 2

    # a replacement sensor may take a retired one's native id on a live gateway
    old = doc.devices[2].binding  # gw1-d0
    retire_device(db, old.id, actor="admin:test", at=NOW)
    new = DeviceSpec(
        gateway_id=f"{p}gw1",
        binding=DeviceBinding(**{**old.model_dump(), "id": f"{p}gw1-new"}),
    )
    provision(db, doc.model_copy(update={"devices": [new], "gateways": []}))
    cfg = gateway_config(db, f"{p}gw1")
    assert cfg is not None and sorted(d.id for d in cfg.devices) == [f"{p}gw1-d1", f"{p}gw1-new"]
    # but not while the old one is active
    clash = DeviceSpec(
        gateway_id=f"{p}gw1",
        binding=DeviceBinding(**{**doc.devices[3].binding.model_dump(), "id": f"{p}gw1-dup"}),
    )
    with pytest.raises(ContractError):
        provision(db, doc.model_copy(update={"devices": [clash], "gateways": []}))


def test_pending_configs_are_pushed_once_and_a_retired_gateway_is_cleared(
    db: Conn, mqtt_url: str, topic_root: str
) -> None:
    p = f"z{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=2, devices=1))
    broker, topics = BrokerAddress.from_url(mqtt_url), Topics(topic_root)
    mine = [f"{p}gw0", f"{p}gw1"]  # the run's database holds other tests' gateways too
    cfg_topics = [topics.gateway_config(g) for g in mine]
    try:
        assert push_pending_configs(db, broker, topics, only=mine) == [f"{p}gw0", f"{p}gw1"]
        assert push_pending_configs(db, broker, topics, only=mine) == []  # nothing changed since
        got = _retained(mqtt_url, cfg_topics[0])
        assert got is not None and GatewayConfig.model_validate_json(got).version == 1

        retire_device(db, f"{p}gw1-d0", actor="admin:test", at=NOW)
        retire_gateway(db, f"{p}gw0", actor="admin:test", at=NOW)
        assert push_pending_configs(db, broker, topics, only=mine) == [f"{p}gw0", f"{p}gw1"]
        assert _retained(mqtt_url, cfg_topics[0]) is None  # deleted
        got = _retained(mqtt_url, cfg_topics[1])
        assert got is not None
        cfg = GatewayConfig.model_validate_json(got)
        assert cfg.version == 2 and cfg.devices == []
        assert push_pending_configs(db, broker, topics, only=mine) == []
    finally:
        clear_retained(mqtt_url, topics, mine)


def test_a_push_the_broker_does_not_take_stays_pending(db: Conn, topic_root: str) -> None:
    p = f"w{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=1, devices=1))
    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = BrokerAddress.from_url(f"mqtt://127.0.0.1:{s.getsockname()[1]}")
        with pytest.raises(BrokerUnavailable):
            push_pending_configs(db, dead, Topics(topic_root), timeout_s=1)
    row = db.execute(
        "SELECT config_version, config_pushed_version FROM gateways WHERE id = %s", (f"{p}gw0",)
    ).fetchone()
    assert row == (1, 0)


def test_retire_commands_report_and_push(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str
) -> None:
    from click.testing import CliRunner

    from carecircle.common.cli import cli

    p = f"c{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=1, devices=2))
    common = ["--database-url", database_url, "--mqtt-url", mqtt_url, "--topic-root", topic_root]
    runner = CliRunner()
    try:
        dev = runner.invoke(
            cli, ["platform", "retire-device", f"{p}gw0-d0", "--reason", "lost", *common]
        )
        assert dev.exit_code == 0, dev.output
        out = json.loads(dev.stdout.strip().splitlines()[-1])
        assert out["retired_devices"] == [f"{p}gw0-d0"] and out["configs_pushed"] == 1
        gw = runner.invoke(cli, ["platform", "retire-gateway", f"{p}gw0", "--no-push", *common])
        out = json.loads(gw.stdout.strip().splitlines()[-1])
        assert out["retired_devices"] == [f"{p}gw0-d1"] and out["configs_pushed"] == 0
        missing = runner.invoke(cli, ["platform", "retire-device", f"{p}nope", *common])
        # `carecircle` (common.cli.run) prints a CareCircleError as one line and exits 1
        assert missing.exit_code != 0 and isinstance(missing.exception, NotFound)
    finally:
        clear_retained(mqtt_url, Topics(topic_root), [f"{p}gw0"])
