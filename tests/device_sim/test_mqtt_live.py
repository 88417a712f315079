"""Live publishing read back from the real Mosquitto: native formats, scenarios, replay."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from carecircle.common.contract.provisioning import Provisioning
from carecircle.device_sim.devices.formats import TopicBases
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, World, build_world
from carecircle.device_sim.live.edge import close, connect, run_live, send_scenario
from carecircle.device_sim.simtime import parse_time

CLI = [sys.executable, "-c", "from carecircle.common.cli import run; run()"]
START = parse_time("2026-01-13T09:00:00+08:00")
MAC = re.compile(r"^[0-9A-F]{12}$")


@dataclass
class Got:
    topic: str
    payload: str
    retain: bool


class Collector:
    def __init__(self, url: str, topic: str) -> None:
        self.q: queue.Queue[Got] = queue.Queue(maxsize=500_000)
        self.client = connect(
            url,
            f"collector-{os.getpid()}-{threading.get_ident()}-{id(self)}",
            subscribe=[topic],
            on_message=self._on,
        )

    def _on(self, topic: str, payload: bytes) -> None:
        self.q.put_nowait(Got(topic, payload.decode(), False))

    def drain(self) -> list[Got]:
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        close(self.client)


def _bases(root: str) -> TopicBases:
    return TopicBases(
        f"{root}/zigbee2mqtt",
        f"{root}/careband",
        f"{root}/bedsensor",
        root,
        f"{root}/homeassistant",
    )


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def clean_retained(mqtt_url: str, topic_root: str) -> Iterator[None]:
    yield
    # Remove the retained availability this test left on the shared broker.
    seen: queue.Queue[str] = queue.Queue()
    c = connect(
        mqtt_url,
        f"cleaner-{topic_root}",
        subscribe=[f"{topic_root}/#"],
        on_message=lambda t, p: seen.put(t) if p else None,
    )
    try:
        topics = set()
        while True:
            try:
                topics.add(seen.get(timeout=1.0))
            except queue.Empty:
                break
        for t in topics:
            c.publish(t, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        close(c)


def _world(pop: Provisioning, root: str) -> World:
    return build_world(pop, SimConfig(seed=2, bases=_bases(root), incident_scale=0))


def _alone_with_button_and_band(world: World) -> str:
    for site in world.sites:
        if site.spec.kind == "household" and len(site.residents) == 1:
            rid = site.residents[0].id
            if site.band_of(rid) and site.devices_of("sos_button"):
                return rid
    raise AssertionError("no resident alone with band and button")


def test_live_formats_scenarios_and_truth_follow_the_contract(
    small_population: Provisioning,
    mqtt_url: str,
    topic_root: str,
    tmp_path: Path,
    clean_retained: None,
) -> None:
    world = _world(small_population, topic_root)
    z2m_styles = {s.z2m_v2 for s in world.sites if s.devices_of("motion_sensor")}
    assert z2m_styles == {True, False}, "population mixes zigbee2mqtt 1.x and 2.x bridges"
    bases = _bases(topic_root)
    col = Collector(mqtt_url, f"{topic_root}/#")
    stop = threading.Event()
    truth_file = tmp_path / "truth.jsonl"
    resident = _alone_with_button_and_band(world)
    result: dict[str, object] = {}

    def run() -> None:
        with truth_file.open("a") as fh:
            result["stats"] = run_live(
                Simulation(world, START, None),
                mqtt_url,
                bases,
                speed=300,
                stop=stop,
                duration_s=30,
                truth_out=fh,
            )

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        sos = _cli(
            "sim",
            "scenario",
            "sos",
            "--resident",
            resident,
            "--via",
            "button",
            "--local-mqtt-url",
            mqtt_url,
            "--topic-root",
            topic_root,
            "--timeout",
            "15",
        )
        assert sos.returncode == 0, sos.stderr
        sos_inc = json.loads(sos.stdout)
        fall = send_scenario(
            mqtt_url,
            bases,
            {"kind": "fall", "resident_id": resident, "duration_s": 3600},
            timeout_s=15,
        )
        assert not fall["ok"] and "already has an incident" in fall["error"]
        bad = send_scenario(
            mqtt_url, bases, {"kind": "fall", "resident_id": "r-999999"}, timeout_s=15
        )
        assert not bad["ok"] and "unknown resident r-999999" in bad["error"]
        stop.wait(1.5)
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    got = col.drain()
    col.close()
    assert sos_inc["kind"] == "sos" and sos_inc["resident_id"] == resident
    assert sos_inc["detail"]["via"] == "button"

    z2m = [g for g in got if g.topic.startswith(bases.zigbee2mqtt + "/")]
    avail = [g for g in z2m if g.topic.endswith("/availability")]
    plain = {g.payload for g in avail if not g.payload.startswith("{")}
    js = [json.loads(g.payload) for g in avail if g.payload.startswith("{")]
    assert plain == {"online"} and js and all(j == {"state": "online"} for j in js)
    bridge = [g for g in z2m if g.topic == f"{bases.zigbee2mqtt}/bridge/state"]
    assert bridge
    states = [g for g in z2m if not g.topic.endswith(("/availability", "/bridge/state"))]
    by_type = {d.topic: d.type for s in world.sites for d in s.devices}
    seen_types: set[str] = set()
    actions = []
    for g in states:
        body = json.loads(g.payload)
        dtype = by_type[g.topic]
        seen_types.add(dtype)
        assert 0 <= body["linkquality"] <= 255
        if "battery" in body:
            assert isinstance(body["battery"], int) and 0 <= body["battery"] <= 100
        if dtype == "door_sensor":
            assert isinstance(body["contact"], bool)
        if dtype == "motion_sensor":
            assert isinstance(body["occupancy"], bool)
        if dtype == "temperature_humidity_sensor":
            assert isinstance(body["temperature"], float) and 0 <= body["humidity"] <= 100
        if dtype in ("smoke_detector", "gas_detector", "co_detector", "water_leak_sensor"):
            field = {
                "smoke_detector": "smoke",
                "gas_detector": "gas",
                "co_detector": "carbon_monoxide",
                "water_leak_sensor": "water_leak",
            }[dtype]
            assert body[field] is False
        if "action" in body:
            actions.append((g.topic, body["action"]))
    assert {"motion_sensor", "door_sensor", "temperature_humidity_sensor"} <= seen_types
    assert any(a == "emergency" for _, a in actions), "the SOS press arrives as action"

    bands = [g for g in got if g.topic.startswith(bases.careband + "/")]
    telemetry = [g for g in bands if g.topic.endswith("/telemetry")]
    assert telemetry
    for g in telemetry:
        body = json.loads(g.payload)
        mac = g.topic.split("/")[-2]
        assert MAC.match(mac) and body["mac"] == mac
        assert isinstance(body["ts"], int) and abs(body["ts"] - START) < 6 * 3600_000
        assert isinstance(body["worn"], bool) and 0 <= body["battery"] <= 100
        if "hr" in body:
            assert 20 <= body["hr"] <= 250
    beds = [
        json.loads(g.payload)
        for g in got
        if g.topic.startswith(bases.bedsensor + "/") and g.topic.endswith("/state")
    ]
    assert beds and all(
        b["ts"].endswith("+08:00") and isinstance(b["occupied"], bool) for b in beds
    )
    assert any("hr" in b and "rr" in b for b in beds if b["occupied"])

    # Home Assistant homes: retained discovery configs, ON/OFF and numeric states.
    ha = [g for g in got if g.topic.startswith(bases.homeassistant + "/")]
    configs = [json.loads(g.payload) for g in ha if g.topic.endswith("/config")]
    assert configs, "the population has a Home Assistant home"
    state_topics = {c["state_topic"]: c for c in configs}
    for c in configs:
        assert c["device_class"] and c["state_topic"].startswith(bases.homeassistant + "/")
        assert c["availability_topic"].endswith("/availability")
    ha_states = [g for g in ha if g.topic in state_topics]
    assert ha_states
    for g in ha_states:
        c = state_topics[g.topic]
        if "/binary_sensor/" in g.topic:
            assert g.payload in ("ON", "OFF")
        else:
            float(g.payload)
    assert any(state_topics[g.topic]["device_class"] == "motion" for g in ha_states)

    truth_topic = [json.loads(g.payload) for g in got if g.topic == bases.truth]
    assert any(t["incident_id"] == sos_inc["incident_id"] for t in truth_topic)
    lines = [json.loads(x) for x in truth_file.read_text().splitlines()]
    assert any(t["incident_id"] == sos_inc["incident_id"] for t in lines)

    # Availability is retained: a late subscriber still gets it.
    late = Collector(mqtt_url, f"{bases.zigbee2mqtt}/+/availability")
    retained = []
    try:
        while True:
            retained.append(late.q.get(timeout=1))
    except queue.Empty:
        pass
    late.close()
    assert len(retained) == sum(
        1 for s in world.sites for d in s.devices if d.family.value == "zigbee2mqtt"
    )


def test_scenario_without_a_running_simulator_fails_clearly(mqtt_url: str, topic_root: str) -> None:
    out = _cli(
        "sim",
        "scenario",
        "fall",
        "--resident",
        "r-000001",
        "--timeout",
        "0.5",
        "--local-mqtt-url",
        mqtt_url,
        "--topic-root",
        topic_root,
    )
    assert out.returncode == 3
    assert "no running simulator answered" in out.stderr


def test_replay_round_trip(
    small_population: Provisioning,
    mqtt_url: str,
    topic_root: str,
    tmp_path: Path,
    clean_retained: None,
) -> None:
    world = _world(small_population, topic_root)
    home = next(
        s for s in world.sites if s.spec.kind == "household" and s.band_of(s.residents[0].id)
    )
    rid = home.residents[0].id
    band = home.band_of(rid)
    assert band is not None
    door = home.devices_of("door_sensor")[0]
    pir = home.devices_of("motion_sensor")[0]
    climate = home.devices_of("temperature_humidity_sensor")[0]
    nh = next(s for s in world.sites if s.spec.kind == "nursing_home")
    bed = nh.devices_of("bed_sensor")[0]
    pop_file = tmp_path / "population.json"
    pop_file.write_text(small_population.model_dump_json())
    csv = tmp_path / "rec.csv"
    csv.write_text(
        "time,resident_or_device,kind,value\n"
        f"2026-02-01T08:00:00+08:00,{rid},heart_rate,71\n"
        f"2026-02-01T08:00:01+08:00,{rid},spo2,96\n"
        f"2026-02-01T08:00:02+08:00,{door.id},door,open\n"
        f"2026-02-01T08:00:03+08:00,{door.native_id},door,closed\n"
        f"2026-02-01T08:00:04+08:00,{pir.id},motion,1\n"
        f"2026-02-01T08:00:05+08:00,{climate.id},room_temperature,6.5\n"
        f"2026-02-01T08:00:06+08:00,{bed.resident_id},bed_occupancy,false\n"
        f"2026-02-01T08:00:07+08:00,{rid},fall,true\n"
        f"2026-02-01T08:00:08+08:00,{band.native_id},worn,false\n"
        "2026-02-01T08:00:09+08:00,r-999999,heart_rate,70\n"
        "not-a-time,x,heart_rate,70\n"
    )
    col = Collector(mqtt_url, f"{topic_root}/#")
    out = _cli(
        "sim",
        "replay",
        "--csv",
        str(csv),
        "--population",
        str(pop_file),
        "--speed",
        "100",
        "--keep-time",
        "--local-mqtt-url",
        mqtt_url,
        "--topic-root",
        topic_root,
        "--zigbee2mqtt-base",
        f"{topic_root}/zigbee2mqtt",
        "--careband-base",
        f"{topic_root}/careband",
        "--homeassistant-base",
        f"{topic_root}/homeassistant",
        "--bedsensor-base",
        f"{topic_root}/bedsensor",
    )
    assert out.returncode == 0, out.stderr
    assert "replayed 9 of 10 rows (2 skipped)" in out.stdout
    assert "line 11" in out.stderr and "line 12" in out.stderr
    got: list[Got] = []
    try:
        while len(got) < 9:
            got.append(col.q.get(timeout=10))
    finally:
        col.close()
    bodies = [(g.topic, json.loads(g.payload)) for g in got]
    tel = [b for t, b in bodies if t == band.topic]
    assert tel[0]["hr"] == 71 and tel[1]["spo2"] == 96 and tel[2]["worn"] is False
    assert tel[0]["ts"] == parse_time("2026-02-01T08:00:00+08:00")
    doors = [b["contact"] for t, b in bodies if t == door.topic]
    assert doors == [False, True], "open is contact false, closed is contact true"
    assert [b["occupancy"] for t, b in bodies if t == pir.topic] == [True]
    assert [b["temperature"] for t, b in bodies if t == climate.topic] == [6.5]
    beds = [b for t, b in bodies if t == bed.topic]
    assert beds[0]["occupied"] is False and beds[0]["ts"] == "2026-02-01T08:00:06+08:00"
    alarm_topic = band.topic.rsplit("/", 1)[0] + "/alarm"
    assert [b["type"] for t, b in bodies if t == alarm_topic] == ["fall"]
