"""``carecircle demo``: start the whole circle on this machine; Ctrl-C stops everything."""

from __future__ import annotations

from pathlib import Path

import click

from carecircle.common.logs import configure_logging
from carecircle.platform.demo.runner import DemoOptions, run_demo
from carecircle.platform.demo.supervisor import stop_requested


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Logs, generated files and (when not root) the servers' data.",
)
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    help="Dashboard port (default 8080, or a free port when 8080 is taken).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Population seed.")
@click.option(
    "--incident-every",
    "incident_every_s",
    type=click.FloatRange(min=10),
    default=180.0,
    show_default=True,
    help="Seconds between injected incidents.",
)
@click.option(
    "--households",
    type=click.IntRange(1, 200),
    default=50,
    show_default=True,
    help="Simulated households (plus a day-care centre and a nursing home); one gateway per site.",
)
@click.option(
    "--gateway-processes",
    type=click.IntRange(1, 200),
    default=2,
    show_default=True,
    help="Processes the sites' gateways are spread over (`gateway run` with several sites).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--topic-root",
    default="cc",
    show_default=True,
    help="Topic root of every component (a shared broker: one per demo).",
)
@click.option(
    "--no-install",
    is_flag=True,
    help="Never install PostgreSQL or Mosquitto (apt-get / pip); fail with a message instead.",
)
def demo_cmd(
    workdir: Path,
    http_port: int | None,
    seed: int,
    incident_every_s: float,
    households: int,
    gateway_processes: int,
    speed: float,
    topic_root: str,
    no_install: bool,
) -> None:
    """The whole circle on this machine with embedded defaults; Ctrl-C stops it.

    Uses CARECIRCLE_DATABASE_URL / CARECIRCLE_MQTT_URL when set; otherwise starts a
    private PostgreSQL and Mosquitto that live only as long as the demo.
    """
    configure_logging("WARNING")
    options = DemoOptions(
        workdir=workdir,
        http_port=http_port,
        seed=seed,
        incident_every_s=incident_every_s,
        households=households,
        gateway_processes=gateway_processes,
        speed=speed,
        topic_root=topic_root,
        allow_install=not no_install,
    )
    with stop_requested() as stop:
        run_demo(options, lambda line: click.echo(line), stop)
