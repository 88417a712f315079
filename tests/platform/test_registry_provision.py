"""Provisioning: idempotent upserts in one transaction, versioned retained gateway configs."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest

from carecircle.common.contract import DeviceBinding, DeviceSpec, GatewayConfig, Topics
from carecircle.common.errors import ConfigError, ContractError
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.registry import (
    gateway_config,
    gateway_configs,
    load_provisioning,
    provision,
    publish_configs,
)
from tests.platform.ingest_support import clear_retained, population

Conn = psycopg.Connection[tuple[object, ...]]


def test_provisioning_twice_changes_nothing_and_bumps_no_version(db: Conn) -> None:
    p = f"p{uuid.uuid4().hex[:6]}"
    doc = population(p, gateways=2, devices=2)
    first = provision(db, doc)
    assert first.gateways == [f"{p}gw0", f"{p}gw1"]
    assert first.changed["devices"] == 4 and first.changed["places"] == 4
    cfg = gateway_config(db, f"{p}gw0")
    assert cfg is not None and cfg.version == 1 and len(cfg.devices) == 2
    second = provision(db, doc)
    assert second.total == 0 and second.gateways == []
    again = gateway_config(db, f"{p}gw0")
    assert again is not None and again.version == 1


def test_moving_a_device_bumps_both_gateways(db: Conn) -> None:
    p = f"m{uuid.uuid4().hex[:6]}"
    doc = population(p, gateways=2, devices=1)
    provision(db, doc)
    moved = doc.devices[0]
    binding = moved.binding.model_copy(update={"site": f"{p}hh1", "room": None, "res": None})
    doc2 = doc.model_copy(
        update={"devices": [DeviceSpec(gateway_id=f"{p}gw1", binding=binding), doc.devices[1]]}
    )
    report = provision(db, doc2)
    assert report.gateways == [f"{p}gw0", f"{p}gw1"]
    cfgs = {c.gw: c for c in gateway_configs(db, [f"{p}gw0", f"{p}gw1"])}
    assert cfgs[f"{p}gw0"].version == 2 and cfgs[f"{p}gw0"].devices == []
    assert cfgs[f"{p}gw1"].version == 2 and len(cfgs[f"{p}gw1"].devices) == 2


def test_a_bad_reference_is_refused_whole_with_a_clear_reason(db: Conn) -> None:
    p = f"b{uuid.uuid4().hex[:6]}"
    doc = population(p, gateways=1, devices=1)
    bad = DeviceSpec(
        gateway_id=f"{p}gw0",
        binding=DeviceBinding(
            id=f"{p}orphan", family="wearable", native_id="X1", site=f"{p}nowhere", type="wearable"
        ),
    )
    doc = doc.model_copy(update={"devices": [*doc.devices, bad]})
    with pytest.raises(ContractError, match="devices"):
        provision(db, doc)
    # nothing of the document was stored
    row = db.execute("SELECT count(*) FROM places WHERE id LIKE %s", (f"{p}%",)).fetchone()
    assert row == (0,)


def test_duplicate_ids_and_invalid_files_are_reported(db: Conn, tmp_path: Path) -> None:
    p = f"d{uuid.uuid4().hex[:6]}"
    doc = population(p, gateways=1, devices=1)
    dup = doc.model_copy(update={"sites": doc.sites * 2})
    with pytest.raises(ContractError, match="sites: duplicate ids"):
        provision(db, dup)
    path = tmp_path / "population.json"
    path.write_text(json.dumps({"v": 1, "sites": [{"id": "x"}]}))
    with pytest.raises(ContractError, match=r"sites\.0\.kind"):
        load_provisioning(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_provisioning(tmp_path / "missing.json")
    path.write_text(doc.model_dump_json())
    assert load_provisioning(path) == doc


def test_configs_are_published_retained(db: Conn, mqtt_url: str, topic_root: str) -> None:
    p = f"r{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=2, devices=2))
    topics = Topics(topic_root)
    configs = gateway_configs(db, [f"{p}gw0", f"{p}gw1"])
    assert publish_configs(BrokerAddress.from_url(mqtt_url), topics, configs) == 2
    # a gateway connecting later still gets its config (retained)
    got: dict[str, GatewayConfig] = {}
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return  # our own clean-up below
        cfg = GatewayConfig.model_validate_json(msg.payload)
        got[cfg.gw] = cfg
        assert msg.retain
        if len(got) == 2:
            done.set()

    conn = new_connection(BrokerAddress.from_url(mqtt_url))
    conn.client.on_message = on_message
    conn.connect()
    conn.client.loop_start()
    try:
        conn.client.subscribe(f"{topic_root}/v1/gw/+/config", qos=1)
        assert done.wait(10), "retained configs not received"
    finally:
        conn.client.disconnect()
        conn.client.loop_stop()
        clear_retained(mqtt_url, topics, [c.gw for c in configs])
    assert got[f"{p}gw0"].version == 1 and len(got[f"{p}gw0"].devices) == 2
    assert got[f"{p}gw0"].devices[0].res == f"{p}r0"


def test_provision_and_push_configs_commands(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from carecircle.common.cli import cli

    p = f"k{uuid.uuid4().hex[:6]}"
    path = tmp_path / "population.json"
    path.write_text(population(p, gateways=2, devices=1).model_dump_json())
    common = ["--database-url", database_url, "--mqtt-url", mqtt_url, "--topic-root", topic_root]
    runner = CliRunner()
    try:
        first = runner.invoke(cli, ["platform", "provision", "--file", str(path), *common])
        assert first.exit_code == 0, first.output
        out = json.loads(first.stdout.strip().splitlines()[-1])
        assert out["gateways"] == [f"{p}gw0", f"{p}gw1"] and out["configs_pushed"] == 2
        again = runner.invoke(cli, ["platform", "provision", "--file", str(path), *common])
        assert json.loads(again.stdout.strip().splitlines()[-1])["configs_pushed"] == 0
        push = runner.invoke(cli, ["platform", "push-configs", "--gateway", f"{p}gw1", *common])
        assert (
            push.exit_code == 0
            and json.loads(push.stdout.strip().splitlines()[-1])["configs_pushed"] == 1
        )
        bad = tmp_path / "bad.json"
        bad.write_text('{"v": 2}')
        refused = runner.invoke(cli, ["platform", "provision", "--file", str(bad), *common])
        assert refused.exit_code != 0
    finally:
        clear_retained(mqtt_url, Topics(topic_root), [f"{p}gw0", f"{p}gw1"])


def test_simulated_population_provisions_responder_shifts_and_room_kinds(
    fresh_database: Callable[[], str],
) -> None:
    """Dispatch reads responder_shifts; the gateway reads room_kind from pushed configs."""
    from datetime import UTC, datetime

    from carecircle.device_sim.population.generate import PopulationParams, generate_population
    from carecircle.platform.dispatch.registry import load_responders
    from carecircle.platform.store import connect, migrate
    from carecircle.platform.store.timeseries import Retention

    doc = generate_population(PopulationParams(3, 1, 0, 5))
    assert doc.responders and all(r.shifts for r in doc.responders)
    url = fresh_database()  # the simulator's ids are fixed: a database of its own
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
        provision(conn, doc)
        row = conn.execute("SELECT count(*) FROM responder_shifts").fetchone()
        assert row is not None and row[0] == sum(len(r.shifts) for r in doc.responders)
        loaded = {r.id: r for r in load_responders(conn)}
        first = doc.responders[0]
        assert len(loaded[first.id].shifts) == len(first.shifts)
        provision(conn, doc)  # again: replaced, not doubled
        again = conn.execute("SELECT count(*) FROM responder_shifts").fetchone()
        assert again == row
        cfg = gateway_config(conn, "gw-hh-000001")
    assert cfg is not None
    kinds = {d.room: d.room_kind for d in cfg.devices if d.room is not None}
    assert kinds["hh-000001-bath"] == "bathroom"
    assert all(kinds.values()), kinds


def test_stated_usual_wake_time_is_checked_and_stored(db: Conn, tmp_path: Path) -> None:
    p = f"w{uuid.uuid4().hex[:6]}"
    doc = population(p, gateways=1, devices=1)
    raw = json.loads(doc.model_dump_json())
    raw["residents"][0]["care_profile"] = {"usual_wake_time": "18:30"}
    path = tmp_path / "population.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ContractError, match="usual_wake_time 18:30 is not a plausible"):
        load_provisioning(path)
    raw["residents"][0]["care_profile"] = {"usual_wake_time": "06:30"}
    path.write_text(json.dumps(raw))
    provision(db, load_provisioning(path))
    row = db.execute(
        "SELECT care_profile->>'usual_wake_time' FROM residents WHERE id = %s",
        (raw["residents"][0]["id"],),
    ).fetchone()
    assert row == ("06:30",)
