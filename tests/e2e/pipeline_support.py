"""What the end-to-end tests share: one household's deployed pipeline as ``carecircle``
subprocesses (provision → ingest [→ dispatcher] → gateway → simulator) on a test's topic
root, supervised by the demo's supervisor, and the small waits and scenario injection."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from carecircle.platform.demo.supervisor import ProcessSpec, Supervisor

CARECIRCLE = str(Path(sys.executable).parent / "carecircle")
SITE = "hh-000001"
GATEWAY = "gw-hh-000001"


def wait_for(
    what: str,
    check: Callable[[], object],
    timeout_s: float,
    explain: Callable[[], object] = lambda: "",
) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s; {explain()}")


def migrated(url: str) -> str:
    """``url``'s database migrated (a database of its own: the simulator's ids are fixed)."""
    from carecircle.platform.store import connect, migrate
    from carecircle.platform.store.timeseries import Retention

    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return url


def start_household(
    sup: Supervisor,
    tmp_path: Path,
    population: Path,
    db_url: str,
    mqtt_url: str,
    topic_root: str,
    sim_args: Sequence[str],
    *,
    dispatcher: bool = False,
) -> dict[str, str]:
    """Provision ``population`` (one household, ``SITE`` behind ``GATEWAY``) and start its
    pipeline; ``sim_args`` go to ``carecircle sim run`` after the population, broker and
    native bases.  Returns the platform's environment."""
    bases = {f: f"{topic_root}/site/{{gw}}/{f}" for f in ("zigbee2mqtt", "careband", "bedsensor")}
    bases["homeassistant"] = f"{topic_root}/site/{{gw}}/homeassistant"
    env = {
        "CARECIRCLE_DATABASE_URL": db_url,
        "CARECIRCLE_MQTT_URL": mqtt_url,
        "CARECIRCLE_TOPIC_ROOT": topic_root,
        "CARECIRCLE_DEMO_MODE": "true",  # password-less test servers
    }
    sup.run_oneshot(
        ProcessSpec(
            "provision",
            [CARECIRCLE, "platform", "provision", "--file", str(population)],
            env=env,
            oneshot=True,
        ),
        timeout_s=60,
    )
    gw_env = {
        **env,
        "CARECIRCLE_GATEWAY_ID": GATEWAY,
        "CARECIRCLE_SITE_ID": SITE,
        "CARECIRCLE_LOCAL_MQTT_URL": mqtt_url,
        "CARECIRCLE_QUEUE_PATH": str(tmp_path / "gw.sqlite3"),
        "CARECIRCLE_QUEUE_SYNCHRONOUS": "NORMAL",
        **{f"CARECIRCLE_{f.upper()}_BASE": b.replace("{gw}", GATEWAY) for f, b in bases.items()},
    }
    sup.start(ProcessSpec("ingest", [CARECIRCLE, "platform", "ingest"], env=env))
    if dispatcher:
        sup.start(ProcessSpec("dispatcher", [CARECIRCLE, "platform", "dispatcher"], env=env))
    sup.start(ProcessSpec("gateway", [CARECIRCLE, "gateway", "run"], env=gw_env))
    native = [f"--{f}-base={b}" for f, b in bases.items()]
    sup.start(
        ProcessSpec(
            "sim",
            [
                CARECIRCLE,
                "sim",
                "run",
                "--population",
                str(population),
                "--local-mqtt-url",
                mqtt_url,
                *sim_args,
                *native,
            ],
            env=env,
        )
    )
    return env


def scenario(sup: Supervisor, env: dict[str, str], name: str, *args: str) -> dict[str, object]:
    """Inject an incident with ``carecircle sim scenario``; returns its ground truth."""
    out = sup.run_oneshot(
        ProcessSpec(
            name,
            [CARECIRCLE, "sim", "scenario", *args, "--local-mqtt-url", env["CARECIRCLE_MQTT_URL"]],
            env=env,
            oneshot=True,
        ),
        timeout_s=60,
    )
    incident: dict[str, object] = json.loads(out[-1])
    return incident
