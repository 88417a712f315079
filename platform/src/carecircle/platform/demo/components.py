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

    def fill(self, arg: str) -> str:
        return arg.format(
            workdir=self.workdir,
            database_url=self.database_url,
            mqtt_url=self.mqtt_url,
            topic_root=self.topic_root,
            http_port=self.http_port,
            seed=self.seed,
        )


@dataclass(frozen=True)
class Component:
    """One row: ``carecircle <command…> <args…>``."""

    name: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    kind: Kind = "service"
    #: Long-running rows only: how many copies (``{n}`` is appended to the name).
    copies: Literal["one", "ingest_workers"] = "one"
    every_s: float = 0.0
    #: Wait until this port answers before going on (``{http_port}`` allowed).
    port: str | None = None
    description: str = ""
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def argv(self, carecircle: Path, ctx: DemoContext) -> list[str]:
        return [str(carecircle), *self.command, *(ctx.fill(a) for a in self.args)]


#: The demo, in start order.  Rows for components still on other branches are listed
#: with the interface announced in the brief; check their arguments when they land.
DEMO_COMPONENTS: tuple[Component, ...] = (
    Component(
        "population",
        ("sim", "population"),
        ("--seed", "{seed}", "--out", "{workdir}/population.json"),
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
    ),
    Component("scheduler", ("platform", "scheduler"), description="scheduled jobs (one leader)"),
    Component("dispatcher", ("platform", "dispatcher"), description="responder dispatch"),
    Component(
        "api",
        ("platform", "serve"),
        port="{http_port}",
        description="API and dashboard",
    ),
    Component("gateways", ("gateway", "run"), description="the households' gateways"),
    Component(
        "simulator",
        ("sim", "run"),
        ("--population", "{workdir}/population.json"),
        description="simulated elders and their devices",
    ),
    Component(
        "incident",
        ("sim", "scenario"),
        ("--population", "{workdir}/population.json"),
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
