"""One process, several gateways (``[[gateway.sites]]``): each keeps its own identity,
credentials, queue, local session and will.

The settings tests need nothing running.  The process test runs ``carecircle gateway
run --config …`` with four sites against an upstream Mosquitto of its own that has a
password per gateway and the deploy/ ACL rule (a gateway may publish only under its
own id); the fourth site's password is wrong.  Readings of every site arrive under
that site's gateway id only; ``kill -9`` of the process fires every connected
gateway's will; readings published while it is dead and during an uplink outage all
arrive, each with exactly one id; the site with the wrong password never connects and
keeps its readings queued, without disturbing the others.
"""

from __future__ import annotations

import getpass
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carecircle.common.contract import Topics, decode_batch
from carecircle.common.errors import ConfigError
from carecircle.gateway.settings import GatewaySettings

from .conftest import Collector, Publisher, config
from .test_resilience import MOSQUITTO, free_port, wait

# -- settings ---------------------------------------------------------------------------


def test_sites_share_the_gateway_table_and_fill_templates(tmp_path: Path) -> None:
    s = GatewaySettings.model_validate(
        {
            "mqtt_url": "mqtt://shared@127.0.0.1:1883",
            "queue_path": str(tmp_path / "{gateway_id}.sqlite3"),
            "zigbee2mqtt_base": "site/{gateway_id}/zigbee2mqtt",
            "queue_synchronous": "NORMAL",
            "sites": [
                {"gateway_id": "gw-a", "site_id": "hh-a", "mqtt_url": "mqtt://gw-a:pa@h:1883"},
                {"gateway_id": "gw-b", "site_id": "hh-b", "zigbee2mqtt_base": "z2m-b"},
            ],
        }
    )
    a, b = s.gateways()
    assert (a.gateway_id, a.site_id, b.gateway_id, b.site_id) == ("gw-a", "hh-a", "gw-b", "hh-b")
    assert str(a.mqtt_url) == "mqtt://gw-a:pa@h:1883" and b.mqtt_url.username == "shared"
    assert a.queue_path == tmp_path / "gw-a.sqlite3" and b.queue_path == tmp_path / "gw-b.sqlite3"
    assert a.cache_path() != b.cache_path()
    assert a.zigbee2mqtt_base == "site/gw-a/zigbee2mqtt" and b.zigbee2mqtt_base == "z2m-b"
    assert a.queue_synchronous == b.queue_synchronous == "NORMAL"
    assert a.local_client() != b.local_client() and a.uplink_client() != b.uplink_client()
    assert a.sites == [] and b.sites == []
    one = GatewaySettings(gateway_id="gw-x")
    assert one.gateways() == [one]


@pytest.mark.parametrize(
    ("sites", "message"),
    [
        ([{"gateway_id": "gw-a"}, {"gateway_id": "gw-b"}], "share queue_path"),
        (
            [{"gateway_id": "gw-a", "queue_path": "a"}, {"gateway_id": "gw-a", "queue_path": "b"}],
            "share gateway_id",
        ),
        (
            [
                {"gateway_id": "gw-a", "queue_path": "a", "registry_cache_path": "c"},
                {"gateway_id": "gw-b", "queue_path": "b", "registry_cache_path": "c"},
            ],
            "share registry_cache_path",
        ),
        ([{"gateway_id": "bad id!", "queue_path": "a"}], "gateway_id of gateway site 0"),
    ],
)
def test_sites_never_share_identity_queue_or_cache(
    sites: list[dict[str, str]], message: str
) -> None:
    s = GatewaySettings.model_validate({"sites": sites})
    with pytest.raises(ConfigError, match=message):
        s.gateways()


@pytest.mark.parametrize(
    ("site", "message"),
    [({"site_id": "hh-a"}, "no gateway_id"), ({"gateway_id": "a", "batch_max_items": 5}, "cannot")],
)
def test_a_site_table_sets_only_its_own_things(site: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GatewaySettings.model_validate({"sites": [site]})


def test_run_refuses_one_gateway_flags_with_sites(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[gateway]\nqueue_path = "q-{gateway_id}"\n\n[[gateway.sites]]\ngateway_id = "gw-a"\n'
    )
    out = _carecircle("gateway", "run", "--config", str(cfg), "--gateway-id", "gw-x")
    assert out.returncode != 0 and "per site" in out.stderr


def test_status_reads_every_sites_queue(tmp_path: Path) -> None:
    import uuid

    from carecircle.gateway.outbox import Item, Lane, Outbox

    for gw, n in (("gw-a", 2), ("gw-b", 5)):
        q = Outbox(tmp_path / f"{gw}.sqlite3")
        q.enqueue([Item(Lane.ROUTINE, str(uuid.uuid4()), b"{}", 1.0) for _ in range(n)])
        q.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[gateway]\nqueue_path = "{tmp_path}/{{gateway_id}}.sqlite3"\n\n'
        '[[gateway.sites]]\ngateway_id = "gw-a"\n\n[[gateway.sites]]\ngateway_id = "gw-b"\n'
    )
    out = _carecircle("gateway", "status", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(Path(d["queue"]).name, d["depth"]) for d in docs] == [
        ("gw-a.sqlite3", 2),
        ("gw-b.sqlite3", 5),
    ]


# -- the process ------------------------------------------------------------------------

CLI = "from carecircle.common.cli import run; run()"
SITES = ("gw-m1", "gw-m2", "gw-m3")
WRONG = "gw-m4"  # its password is wrong: never connects


def _carecircle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=60
    )


class Upstream:
    """A platform broker of this test's own: a password per gateway, the deploy/ ACL."""

    def __init__(self, tmp: Path, topic_root: str) -> None:
        self.port = free_port()
        self.dir = tmp / "upstream"
        self.dir.mkdir()
        pw = self.dir / "passwd"
        run = ["mosquitto_passwd", "-b"]
        subprocess.run([*run, "-c", str(pw), "platform", "pf"], check=True, timeout=30)
        for gw in (*SITES, WRONG):
            subprocess.run([*run, str(pw), gw, f"{gw}-secret"], check=True, timeout=30)
        acl = self.dir / "acl"
        acl.write_text(
            f"user platform\ntopic readwrite {topic_root}/#\n\n"
            f"pattern write {topic_root}/v1/gw/%u/up/+\n"
            f"pattern write {topic_root}/v1/gw/%u/state\n"
            f"pattern write {topic_root}/v1/gw/%u/deadletter\n"
            f"pattern read {topic_root}/v1/gw/%u/config\n"
        )
        (self.dir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
            f"acl_file {acl}\npersistence true\npersistence_location {self.dir}/\n"
            f"autosave_interval 1\nmax_queued_messages 100000\nuser {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str, password: str) -> str:
        return f"mqtt://{user}:{password}@127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.dir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.dir / "mosquitto.conf")], stdout=log, stderr=log
        )
        wait(lambda: "running" in (self.dir / "mosquitto.log").read_text(), 10, "upstream")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def upstream(tmp_path: Path, topic_root: str) -> Iterator[Upstream]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto binary not installed")
    up = Upstream(tmp_path, topic_root)
    up.start()
    yield up
    if up.proc is not None:
        up.stop()


def _write_config(tmp: Path, topic_root: str, local: str, up: Upstream) -> Path:
    lines = [
        "[gateway]",
        f'topic_root = "{topic_root}"',
        f'local_mqtt_url = "{local}"',
        f'mqtt_url = "{up.url("nobody", "x")}"',
        f'queue_path = "{tmp}/queues/{{gateway_id}}.sqlite3"',
        *(
            f'{fam}_base = "{topic_root}/site/{{gateway_id}}/{fam}"'
            for fam in ("zigbee2mqtt", "careband", "bedsensor", "homeassistant")
        ),
        "batch_max_items = 50",
        "batch_max_delay_ms = 100",
        "heartbeat_interval_s = 5",
        "uplink_reconnect_max_s = 1",
        "status_interval_s = 2",
        "local_session_expiry_s = 600",
        # no ingest worker here, only a collector: nobody would answer gw/{id}/ingest
        "uplink_wait_for_ingest = false",
    ]
    for gw in (*SITES, WRONG):
        password = "wrong" if gw == WRONG else f"{gw}-secret"
        lines += [
            "",
            "[[gateway.sites]]",
            f'gateway_id = "{gw}"',
            f'site_id = "hh-{gw[3:]}"',
            f'mqtt_url = "{up.url(gw, password)}"',
        ]
    cfg = tmp / "sites.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def _state(msgs: list[tuple[str, bytes, bool]], topics: Topics, gw: str) -> str | None:
    last = [p for t, p, _ in msgs if t == topics.gateway_state(gw) and p]
    return json.loads(last[-1])["state"] if last else None


def _depth(path: Path, lane: int = 3) -> int:
    """Rows waiting in a gateway's queue file in one lane (3 routine, 2 dead letters)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM outbox WHERE lane = ?", (lane,)).fetchone()[0])
    finally:
        db.close()


@pytest.mark.timeout(150)
def test_one_process_many_gateways_isolated_wills_and_exactly_once(
    tmp_path: Path,
    mqtt_url: str,
    topic_root: str,
    upstream: Upstream,
    publisher_factory: Callable[[str], Publisher],
) -> None:
    topics = Topics(topic_root)
    cfg = _write_config(tmp_path, topic_root, mqtt_url, upstream)
    platform = publisher_factory(upstream.url("platform", "pf"))
    for gw in (*SITES, WRONG):
        platform.publish(topics.gateway_config(gw), config(5, gw=gw).model_dump_json(), retain=True)
    collector = Collector(upstream.url("platform", "pf"), f"{topic_root}/v1/gw/#", persistent=True)
    local = publisher_factory(mqtt_url)
    log = (tmp_path / "gateways.log").open("ab")
    argv = [sys.executable, "-c", CLI, "gateway", "run", "--config", str(cfg)]
    base_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    produced: dict[tuple[str, str], str] = {}  # (gw, ts) -> phase
    n = iter(range(1_000_000))

    def readings(phase: str, count: int) -> None:
        for _ in range(count):
            for gw in (*SITES, WRONG):
                ms = base_ms + next(n)
                local.publish(
                    f"{topic_root}/site/{gw}/zigbee2mqtt/bedroom_climate",
                    json.dumps({"temperature": 21.5, "humidity": 40, "last_seen": ms}),
                )
                if gw != WRONG:
                    produced[(gw, datetime.fromtimestamp(ms / 1000, UTC).isoformat())] = phase

    def states(want: str) -> Callable[[list[tuple[str, bytes, bool]]], bool]:
        return lambda m: all(_state(m, topics, gw) == want for gw in SITES)

    def arrived(m: list[tuple[str, bytes, bool]]) -> set[tuple[str, str]]:
        got = set()
        for t, p, _ in m:
            parsed = topics.parse_uplink(t)
            if parsed is not None:
                for item in json.loads(p)["items"]:
                    got.add((item["gw"], datetime.fromisoformat(item["ts"]).isoformat()))
        return got

    def letters(gw: str) -> int:
        return _depth(tmp_path / "queues" / f"{gw}.sqlite3", lane=2)

    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        collector.wait_for(states("online"), 30)
        for gw in (*SITES, WRONG):  # each caches its own pushed config
            cache = tmp_path / "queues" / f"{gw}.sqlite3.config.json"
            if gw != WRONG:
                wait(cache.exists, 10, f"{gw}'s config cached")
        # On the very first start there is no local session yet: what devices publish
        # before the local broker has granted a gateway's subscription (SUBACK) is kept
        # for nobody (MQTT; docs/gateway.md "Delivery assumptions").  The sites start one
        # after the other, and the last one's SUBACK can come after the others are
        # online with their configs cached, so wait for every site's.
        wait(
            lambda: all(
                f"{gw}: local broker granted" in (tmp_path / "gateways.log").read_text()
                for gw in (*SITES, WRONG)
            ),
            10,
            "every site's local subscription",
        )
        readings("up", 20)
        # kill -9 with the link up, after the up readings were sent (and the wrong
        # site's committed): every connected gateway's will says offline
        collector.wait_for(lambda m: set(produced) <= arrived(m), 30)
        wait(lambda: letters(WRONG) == 20, 15, "the wrong site's first 20 dead letters")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        collector.wait_for(states("offline"), 60)  # keepalive 30 s x 1.5 at most
        readings("dead", 20)  # kept by each gateway's own local session
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        collector.wait_for(states("online"), 30)
        upstream.stop()
        readings("outage", 40)
        wait(
            lambda: all(_depth(tmp_path / "queues" / f"{gw}.sqlite3") >= 40 for gw in SITES),
            30,
            "the outage readings queued per gateway",
        )
        upstream.start()
        msgs = collector.wait_for(lambda m: set(produced) <= arrived(m), 60)
        # the wrong site is not waited for by anything above: stopping before it has
        # taken all its readings would leave them in its local session (not lost, but
        # not in its queue either)
        wait(lambda: letters(WRONG) >= 80, 30, "the wrong site's 80 dead letters")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        collector.wait_for(states("offline"), 10)  # a clean stop says so itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        collector.close()

    ids: dict[tuple[str, str], set[str]] = {}
    for t, p, _ in msgs:
        parsed = topics.parse_uplink(t)
        if parsed is None:
            continue
        decoded = decode_batch(p, topic_gateway=parsed[0])  # items carry the topic's gateway
        assert not decoded.rejected, decoded.rejected
        assert parsed[0] in SITES, t
        for env in decoded.items:
            if env.payload.code.value == "room_temperature":
                ids.setdefault((env.gw, env.ts.isoformat()), set()).add(str(env.id))
    assert set(ids) == set(produced), "every reading of every site, under its own gateway"
    assert all(len(v) == 1 for v in ids.values()), "one id per reading"
    # the gateway with the wrong password: never online, never got its config, so its
    # devices are unknown: every message waits in its own queue as a dead letter
    assert _state(msgs, topics, WRONG) is None
    assert letters(WRONG) == 80, "each of its readings once, kept through kill -9 and stop"
    text = (tmp_path / "gateways.log").read_text()
    assert f"{WRONG}: platform broker" in text and "refused" in text


def test_a_failing_gateway_does_not_stop_the_others(
    tmp_path: Path, mqtt_url: str, topic_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's housekeeping: one gateway's tick raising is logged, the next is ticked,
    and every gateway is stopped (queues closed, counters saved) at the end."""
    from carecircle.gateway.runtime import GatewayHost

    s = GatewaySettings.model_validate(
        {
            "mqtt_url": mqtt_url,
            "local_mqtt_url": mqtt_url,
            "topic_root": topic_root,
            "queue_path": str(tmp_path / "{gateway_id}.sqlite3"),
            "zigbee2mqtt_base": f"{topic_root}/site/{{gateway_id}}/zigbee2mqtt",
            "sites": [{"gateway_id": "gw-bad"}, {"gateway_id": "gw-good"}],
        }
    )
    host = GatewayHost(s.gateways())
    bad, good = host.gateways
    ticks: list[str] = []

    def broken(_now: float) -> None:
        ticks.append("bad")
        raise RuntimeError("housekeeping broke")

    good_tick = good.tick

    def counted(now: float) -> None:
        ticks.append("good")
        good_tick(now)

    bad.tick = broken  # type: ignore[method-assign]
    good.tick = counted  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ticks.count("good") < 3:
        time.sleep(0.05)
    stop.set()
    thread.join(20)
    assert not thread.is_alive()
    assert ticks.count("good") >= 3 and ticks.count("bad") >= 3
    assert "gw-bad: housekeeping failed; the other gateways go on" in caplog.text
    for gw in ("gw-bad", "gw-good"):  # each was stopped: counters saved in its own queue
        with sqlite3.connect(tmp_path / f"{gw}.sqlite3") as db:
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
            assert "received" in counters and "sent" in counters, counters
