"""What ``carecircle demo`` runs once its database and broker are up: a table, in order.

Each row names the ``carecircle`` sub-command it needs; a row whose command is not
installed is reported as "not available yet" and skipped, so this table can list
components before their branches land.  To wire a component in, adjust its row's
arguments (``{placeholders}`` are filled from :class:`DemoContext`); nothing else.

Kinds of rows:

* ``setup``: runs once to completion before the long-running processes (seed, provision);
* ``service``: long-running, supervised, restarted a few times if it dies;
* ``periodic``: a one-shot run every ``every_s`` seconds (incident injection).

Every child gets ``CARECIRCLE_DATABASE_URL``, ``CARECIRCLE_MQTT_URL``,
``CARECIRCLE_TOPIC_ROOT`` and ``CARECIRCLE_HTTP_PORT`` in its environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import click

Kind = Literal["setup", "service", "periodic"]


@dataclass(frozen=True)
class DemoContext:
    """Values the table's ``{placeholders}`` are filled with."""

    workdir: Path
    database_url: str
    mqtt_url: str
    topic_root: str
    http_port: int
    ingest_workers: int
    seed: int
    #: Size of the simulated prefecture (``sim population``).
    households: int = 12
    #: Simulated seconds per real second (``sim run --speed``).
    speed: float = 1.0
    #: Filled per copy of a ``per_gateway`` row and per run of the incident row.
    copy: int = 1
    gateway_id: str = ""
    site_id: str = ""
    incident_kind: str = "fall"
    incident_target: tuple[str, ...] = ()

    def fill(self, arg: str) -> str:
        return arg.format(
            workdir=self.workdir,
            database_url=self.database_url,
            mqtt_url=self.mqtt_url,
            topic_root=self.topic_root,
            http_port=self.http_port,
            seed=self.seed,
            copy=self.copy,
            households=self.households,
            speed=self.speed,
            gateway_id=self.gateway_id,
            site_id=self.site_id,
            incident_kind=self.incident_kind,
        )


@dataclass(frozen=True)
class Component:
    """One row: ``carecircle <command…> <args…>``."""

    name: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    kind: Kind = "service"
    #: Long-running rows only: how many copies (``{n}`` is appended to the name).
    copies: Literal["one", "ingest_workers", "per_gateway"] = "one"
    every_s: float = 0.0
    #: Wait until this port answers before going on (``{http_port}`` allowed).
    port: str | None = None
    description: str = ""
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def argv(self, carecircle: Path, ctx: DemoContext) -> list[str]:
        argv = [str(carecircle), *self.command, *(ctx.fill(a) for a in self.args)]
        if self.kind == "periodic" and ctx.incident_target:
            argv += list(ctx.incident_target)
        return argv

    def env(self, ctx: DemoContext) -> dict[str, str]:
        return {k: ctx.fill(v) for k, v in self.extra_env}


#: Native topic bases on the demo broker: one bridge per simulated gateway, so that
#: every gateway process subscribes only to its own site's devices.  The simulator
#: fills ``{gw}`` itself; the gateway rows get their own id in the same place.
SIM_BASES: tuple[tuple[str, str], ...] = (
    ("zigbee2mqtt", "{topic_root}/site/{{gw}}/zigbee2mqtt"),
    ("careband", "{topic_root}/site/{{gw}}/careband"),
    ("bedsensor", "{topic_root}/site/{{gw}}/bedsensor"),
    ("homeassistant", "{topic_root}/site/{{gw}}/homeassistant"),
)


def _sim_base_args() -> tuple[str, ...]:
    out: list[str] = []
    for family, base in SIM_BASES:
        out += [f"--{family}-base", base]
    return tuple(out)


def _gateway_base_env() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"CARECIRCLE_{family.upper()}_BASE", base.replace("{{gw}}", "{gateway_id}"))
        for family, base in SIM_BASES
    )


#: The demo, in start order.  Rows for components still on other branches are listed
#: with the interface announced in the brief; check their arguments when they land.
DEMO_COMPONENTS: tuple[Component, ...] = (
    Component(
        "population",
        ("sim", "population"),
        (
            "--households",
            "{households}",
            "--day-care",
            "1",
            "--nursing-homes",
            "1",
            "--seed",
            "{seed}",
            "--out",
            "{workdir}/population.json",
        ),
        kind="setup",
        description="a small prefecture: township, villages, day-care centre, nursing home, "
        "~50 households, responders",
    ),
    Component(
        "provision",
        ("platform", "provision"),
        ("--file", "{workdir}/population.json"),
        kind="setup",
        description="load the population into the platform and push gateway configs",
    ),
    Component(
        "ingest",
        ("platform", "ingest"),
        copies="ingest_workers",
        description="ingest workers on the shared subscription",
        extra_env=(("CARECIRCLE_INGEST_WORKER_ID", "{copy}"),),
    ),
    Component("scheduler", ("platform", "scheduler"), description="scheduled jobs (one leader)"),
    Component("dispatcher", ("platform", "dispatcher"), description="responder dispatch"),
    Component(
        "api",
        ("platform", "serve"),
        ("--demo",),
        port="{http_port}",
        description="API and dashboard",
    ),
    Component(
        "gw",
        ("gateway", "run"),
        copies="per_gateway",
        description="one gateway per simulated site",
        extra_env=(
            ("CARECIRCLE_GATEWAY_ID", "{gateway_id}"),
            ("CARECIRCLE_SITE_ID", "{site_id}"),
            ("CARECIRCLE_LOCAL_MQTT_URL", "{mqtt_url}"),
            ("CARECIRCLE_QUEUE_PATH", "{workdir}/gateways/{gateway_id}.sqlite3"),
            ("CARECIRCLE_QUEUE_SYNCHRONOUS", "NORMAL"),
            *_gateway_base_env(),
        ),
    ),
    Component(
        "simulator",
        ("sim", "run"),
        (
            "--population",
            "{workdir}/population.json",
            "--speed",
            "{speed}",
            "--local-mqtt-url",
            "{mqtt_url}",
            "--truth-out",
            "{workdir}/ground_truth.jsonl",
            *_sim_base_args(),
        ),
        description="simulated elders and their devices",
    ),
    Component(
        "incident",
        ("sim", "scenario"),
        ("{incident_kind}", "--local-mqtt-url", "{mqtt_url}", "--timeout", "30"),
        kind="periodic",
        every_s=180.0,
        description="inject an incident every few minutes",
    ),
)


def command_exists(path: Sequence[str]) -> bool:
    """Whether ``carecircle <path…>`` is an installed command (resolved like the CLI does)."""
    from carecircle.common.cli import cli

    ctx = click.Context(cli, info_name="carecircle")
    command: click.Command | None = cli
    for part in path:
        if not isinstance(command, click.Group):
            return False
        try:
            command = command.get_command(ctx, part)
        except Exception:
            return False
        if command is None:
            return False
    return True
