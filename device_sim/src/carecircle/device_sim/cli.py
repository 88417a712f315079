"""``carecircle sim …`` commands."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.clock import utcnow
from carecircle.common.contract.provisioning import Provisioning
from carecircle.common.errors import ConfigError, ContractError
from carecircle.device_sim.devices.formats import TopicBases
from carecircle.device_sim.incidents.model import ALERT_KINDS, ALL_KINDS
from carecircle.device_sim.settings import SimSettings
from carecircle.device_sim.simtime import DAY_MS, iso_utc, parse_time, to_ms

DEFAULT_START = "2026-01-12T00:00:00+08:00"


def _bases(s: SimSettings) -> TopicBases:
    return TopicBases(
        s.zigbee2mqtt_base, s.careband_base, s.bedsensor_base, s.topic_root, s.homeassistant_base
    )


def _settings(cli: CliContext, **flags: Any) -> SimSettings:
    return cli.settings(SimSettings, **flags)


def load_population(path: Path) -> Provisioning:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read population file {path}: {err.strerror}") from err
    try:
        return Provisioning.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ContractError(
            f"{path} is not a provisioning document: {loc}: {first['msg']}"
        ) from err


def topic_options(func: Any) -> Any:
    for name, help_text in (
        ("--homeassistant-base", "Home Assistant discovery prefix [homeassistant]"),
        ("--bedsensor-base", "bed-mat base topic [bedsensor]"),
        ("--careband-base", "wearable base topic [careband]"),
        ("--zigbee2mqtt-base", "zigbee2mqtt base topic; {site}/{gw} allowed [zigbee2mqtt]"),
        ("--topic-root", "CareCircle topic root for sim control/truth [cc]"),
    ):
        func = click.option(name, default=None, help=help_text)(func)
    return func


def population_options(func: Any) -> Any:
    func = click.option("--nursing-homes", type=click.IntRange(0), default=0, show_default=True)(
        func
    )
    func = click.option("--day-care", type=click.IntRange(0), default=0, show_default=True)(func)
    func = click.option("--households", type=click.IntRange(0), default=None)(func)
    func = click.option(
        "--population",
        "population_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="population.json from `carecircle sim population` (instead of --households …)",
    )(func)
    return func


def _population(
    population_file: Path | None,
    households: int | None,
    day_care: int,
    nursing_homes: int,
    seed: int,
) -> Provisioning:
    from carecircle.device_sim.population.generate import PopulationParams, generate_population

    if population_file is not None:
        return load_population(population_file)
    if households is None:
        raise click.UsageError("give --population FILE or --households N")
    return generate_population(PopulationParams(households, day_care, nursing_homes, seed))


@click.group("sim")
def sim() -> None:
    """Simulated households, day-care centres and nursing homes."""


@sim.command("population")
@click.option("--households", type=click.IntRange(0), required=True)
@click.option("--day-care", type=click.IntRange(0), default=0, show_default=True)
@click.option("--nursing-homes", type=click.IntRange(0), default=0, show_default=True)
@click.option("--seed", type=int, default=None, help="master seed [CARECIRCLE_SEED, 1]")
@click.option(
    "--radar-bathroom-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="share of households with a radar fall sensor (HEIMAN HS2FD) in the bathroom",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@pass_cli
def population_cmd(
    cli: CliContext,
    households: int,
    day_care: int,
    nursing_homes: int,
    seed: int | None,
    radar_bathroom_share: float,
    out: Path,
) -> None:
    """Write a reproducible population as a provisioning document (population.json)."""
    from carecircle.device_sim.population.generate import PopulationParams, generate_population

    s = _settings(cli, seed=seed)
    params = PopulationParams(households, day_care, nursing_homes, s.seed, radar_bathroom_share)
    pop = generate_population(params)
    out.write_text(pop.model_dump_json(indent=1) + "\n", encoding="utf-8")
    click.echo(
        f"wrote {out}: {len(pop.sites)} sites, {len(pop.residents)} residents, "
        f"{len(pop.devices)} devices, {len(pop.responders)} responders, "
        f"{len(pop.family_members)} family members (seed {s.seed})"
    )


@sim.command("generate")
@population_options
@click.option("--seed", type=int, default=None)
@click.option("--start", default=DEFAULT_START, show_default=True, help="RFC 3339 start")
@click.option("--days", type=click.FloatRange(min=0.001), default=1.0, show_default=True)
@click.option("--incident-scale", type=click.FloatRange(0), default=None)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--no-stream", is_flag=True, help="only ground truth and summary, not the stream")
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="processes rendering sites (0 = one per core, at most 4; same bytes either way)",
)
@topic_options
@pass_cli
def generate_cmd(
    cli: CliContext,
    /,
    population_file: Path | None,
    households: int | None,
    day_care: int,
    nursing_homes: int,
    seed: int | None,
    start: str,
    days: float,
    incident_scale: float | None,
    out: Path | None,
    no_stream: bool,
    workers: int,
    **topics: str | None,
) -> None:
    """Generate the stream and ground truth as fast as possible (simulated clock)."""
    import os

    from carecircle.device_sim.engine.files import generate_files
    from carecircle.device_sim.engine.parallel import ParallelSimulation
    from carecircle.device_sim.engine.stream import Simulation
    from carecircle.device_sim.engine.world import SimConfig, build_world

    s = _settings(cli, seed=seed, incident_scale=incident_scale, **topics)
    pop = _population(population_file, households, day_care, nursing_homes, s.seed)
    config = SimConfig(seed=s.seed, bases=_bases(s), incident_scale=s.incident_scale)
    start_ms = _parse_start(start)
    end_ms = start_ms + int(days * DAY_MS)
    n_workers = workers or min(4, os.cpu_count() or 1)
    sim_: Simulation | ParallelSimulation
    if n_workers > 1:
        sim_ = ParallelSimulation(pop, config, start_ms, end_ms, n_workers)
    else:
        sim_ = Simulation(build_world(pop, config), start_ms, end_ms)
    span = end_ms - start_ms
    with click.progressbar(length=1000, label="simulating", file=sys.stderr) as bar:
        done = [0]

        def progress(n: int, t: int) -> None:
            step = int((t - start_ms) / span * 1000)
            if step > done[0]:
                bar.update(step - done[0])
                done[0] = step

        summary = generate_files(sim_, out, write_stream=not no_stream, progress=progress)
        bar.update(1000 - done[0])
    click.echo(
        f"{summary.messages} messages from {summary.devices} devices at {summary.sites} sites, "
        f"{iso_utc(start_ms)} .. {iso_utc(end_ms)}, in {summary.seconds:.1f} s"
    )
    click.echo(f"stream sha256 {summary.stream_sha256}")
    click.echo(f"ground truth sha256 {summary.truth_sha256}")
    click.echo("incidents by kind:")
    for kind in ALL_KINDS:
        click.echo(f"  {kind:24s} {summary.incidents.get(kind, 0)}")
    if out is not None:
        click.echo(f"written to {out}/")


def _parse_start(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as err:
        raise click.BadParameter(f"{text!r} is not an RFC 3339 time") from err


@sim.command("run")
@population_options
@click.option("--seed", type=int, default=None)
@click.option("--speed", type=float, default=None, help="simulated seconds per second [1]")
@click.option("--start", default=None, help="simulated start time (default: now)")
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="wall seconds")
@click.option("--incident-scale", type=click.FloatRange(0), default=None)
@click.option("--local-mqtt-url", default=None, help="broker of the gateways [mqtt://127.0.0.1]")
@click.option("--truth-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@topic_options
@pass_cli
def run_cmd(
    cli: CliContext,
    /,
    population_file: Path | None,
    households: int | None,
    day_care: int,
    nursing_homes: int,
    seed: int | None,
    speed: float | None,
    start: str | None,
    duration: float | None,
    incident_scale: float | None,
    local_mqtt_url: str | None,
    truth_out: Path | None,
    **topics: str | None,
) -> None:
    """Publish the simulated devices live to the local broker (Ctrl-C stops)."""
    from carecircle.device_sim.engine.stream import Simulation
    from carecircle.device_sim.engine.world import SimConfig, build_world
    from carecircle.device_sim.live.edge import run_live
    from carecircle.device_sim.live.publisher import Stats

    s = _settings(
        cli,
        seed=seed,
        speed=speed,
        incident_scale=incident_scale,
        local_mqtt_url=local_mqtt_url,
        **topics,
    )
    pop = _population(population_file, households, day_care, nursing_homes, s.seed)
    bases = _bases(s)
    world = build_world(pop, SimConfig(seed=s.seed, bases=bases, incident_scale=s.incident_scale))
    start_ms = _parse_start(start) if start else to_ms(utcnow())
    source = Simulation(world, start_ms, None)
    source.prime()
    click.echo(
        f"simulating {world.device_count} devices at {len(world.sites)} sites from "
        f"{iso_utc(start_ms)} at x{s.speed:g}; scenario commands on {bases.control}",
        err=True,
    )

    def report(st: Stats) -> None:
        click.echo(
            f"\rsim {iso_utc(st.sim_ms)}  published {st.published}  "
            f"({st.rate():.0f}/s)  incidents {st.incidents}  commands {st.commands}",
            err=True,
            nl=False,
        )

    stop = threading.Event()
    fh = truth_out.open("a", encoding="utf-8") if truth_out else None
    try:
        stats = run_live(
            source,
            str(s.local_mqtt_url),
            bases,
            speed=s.speed,
            stop=stop,
            duration_s=duration,
            truth_out=fh,
            report=report,
        )
    except KeyboardInterrupt:
        stop.set()
        click.echo("\nstopped", err=True)
        return
    finally:
        if fh is not None:
            fh.close()
    click.echo(
        f"\npublished {stats.published} messages ({stats.rate():.0f}/s), "
        f"{stats.incidents} incidents, {stats.commands} commands",
        err=True,
    )


@sim.command("scenario")
@click.argument("kind", type=click.Choice(sorted(ALL_KINDS)))
@click.option("--resident", default=None, help="resident id (for resident incidents)")
@click.option("--site", default=None, help="site id (for smoke, gas, cold_room, gateway_offline…)")
@click.option("--device", default=None, help="device id (device_offline, low_battery…)")
@click.option("--duration-s", type=click.IntRange(1), default=None)
@click.option("--via", type=click.Choice(["band", "button"]), help="how an SOS is raised")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--local-mqtt-url", default=None)
@click.option("--topic-root", default=None)
@pass_cli
def scenario_cmd(
    cli: CliContext,
    kind: str,
    resident: str | None,
    site: str | None,
    device: str | None,
    duration_s: int | None,
    via: str | None,
    timeout: float,
    local_mqtt_url: str | None,
    topic_root: str | None,
) -> None:
    """Start one incident now in a running `carecircle sim run` (for demos and tests)."""
    from carecircle.device_sim.live.edge import send_scenario

    if resident is None and site is None and device is None:
        raise click.UsageError("say where: --resident, --site or --device")
    s = _settings(cli, local_mqtt_url=local_mqtt_url, topic_root=topic_root)
    answer = send_scenario(
        str(s.local_mqtt_url),
        _bases(s),
        {
            "kind": kind,
            "resident_id": resident,
            "site_id": site,
            "device_id": device,
            "duration_s": duration_s,
            "via": via,
        },
        timeout_s=timeout,
    )
    if not answer.get("ok"):
        raise click.ClickException(f"the simulator refused: {answer.get('error')}")
    click.echo(json.dumps(answer["incident"], ensure_ascii=False))


@sim.command("replay")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--population",
    "population_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
)
@click.option("--speed", type=float, default=None)
@click.option("--keep-time", is_flag=True, help="keep the recorded times (default: start now)")
@click.option("--strict", is_flag=True, help="refuse the whole file if any row is bad")
@click.option("--seed", type=int, default=None)
@click.option("--local-mqtt-url", default=None)
@topic_options
@pass_cli
def replay_cmd(
    cli: CliContext,
    /,
    csv_file: Path,
    population_file: Path,
    speed: float | None,
    keep_time: bool,
    strict: bool,
    seed: int | None,
    local_mqtt_url: str | None,
    **topics: str | None,
) -> None:
    """Publish a recorded CSV (time,resident_or_device,kind,value) as native device messages."""
    from carecircle.device_sim.engine.world import SimConfig, build_world
    from carecircle.device_sim.live.edge import run_live
    from carecircle.device_sim.live.publisher import ListSource
    from carecircle.device_sim.replay.csv_replay import ReplayError, build_replay, read_rows

    s = _settings(cli, speed=speed, seed=seed, local_mqtt_url=local_mqtt_url, **topics)
    bases = _bases(s)
    world = build_world(load_population(population_file), SimConfig(seed=s.seed, bases=bases))
    try:
        rows, errors = read_rows(csv_file)
    except ReplayError as err:
        raise ContractError(str(err)) from err
    start_ms = None if keep_time else to_ms(utcnow())
    result = build_replay(world, rows, start_ms=start_ms)
    errors += result.errors
    for line in errors[:20]:
        click.echo(f"skipped {line}", err=True)
    if errors and strict:
        raise ContractError(f"{len(errors)} bad rows in {csv_file}; nothing published")
    if not result.messages:
        raise ContractError(f"no row of {csv_file} could be replayed")
    first = result.messages[0][0]
    source = ListSource(result.messages, start_ms if start_ms is not None else first)
    stats = run_live(
        source, str(s.local_mqtt_url), bases, speed=s.speed, stop=threading.Event(), listen=False
    )
    click.echo(
        f"replayed {stats.published} of {result.rows} rows ({len(errors)} skipped) at x{s.speed:g}"
    )


__all__ = ["ALERT_KINDS", "sim"]
