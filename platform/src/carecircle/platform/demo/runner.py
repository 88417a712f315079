"""The body of ``carecircle demo``: services, migration, components, wait, stop."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from carecircle.common.errors import CareCircleError
from carecircle.platform.demo.components import (
    DEMO_COMPONENTS,
    Component,
    DemoContext,
    command_exists,
    gateway_host_config,
)
from carecircle.platform.demo.people import DemoCast, cast_from_population
from carecircle.platform.demo.services import (
    Broker,
    Database,
    DemoPaths,
    provide_broker,
    provide_database,
)
from carecircle.platform.demo.supervisor import (
    PortOpen,
    ProcessSpec,
    RestartPolicy,
    Supervisor,
    free_port,
)
from carecircle.platform.store.db import redact

log = logging.getLogger(__name__)

Say = Callable[[str], None]

#: Exit status of ``sim scenario`` when no simulator answered (BrokerUnavailable).
NO_ANSWER = 3

#: A log line of a child (``2026-01-01 10:00:00,123 INFO …``), as opposed to its report.
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")


class DemoBusy(CareCircleError):
    """Another demo runs from the same directory (it would share the servers' data)."""


class DemoStopped(CareCircleError):
    """A stop was requested while the demo was still starting."""

    exit_code = 130


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    http_port: int | None = None
    seed: int = 7
    topic_root: str = "cc"
    incident_every_s: float = 180.0
    #: The simulator has published every site once by then; a refused injection is
    #: retried 5 s later.
    first_incident_after_s: float = 10.0
    allow_install: bool = True
    components: tuple[Component, ...] = DEMO_COMPONENTS
    grace_s: float = 10.0
    #: Households of the simulated prefecture (plus one day-care centre and one nursing
    #: home); one gateway per site, spread over ``gateway_processes`` processes.
    households: int = 50
    gateway_processes: int = 2
    #: Simulated seconds per real second.
    speed: float = 1.0
    #: Password of the demo logins; a fresh random one per run when not given (it is
    #: printed with the logins: a throwaway local demo on 127.0.0.1).
    password: str | None = None


@dataclass
class DemoState:
    """What the demo started, for the summary and for tests."""

    database: Database | None = None
    broker: Broker | None = None
    started: list[str] = field(default_factory=list)
    unavailable: list[Component] = field(default_factory=list)
    dashboard_url: str | None = None
    context: DemoContext | None = None
    child_env: dict[str, str] = field(default_factory=dict)
    cast: DemoCast | None = None
    password: str = ""
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    gateways: int = 0
    gateway_processes: int = 0


def carecircle_executable() -> Path:
    """The ``carecircle`` script of this environment (next to the running interpreter)."""
    beside = Path(sys.executable).parent / "carecircle"
    if beside.exists():
        return beside
    found = shutil.which("carecircle")
    if found is None:
        raise CareCircleError("the carecircle command is not installed in this environment")
    return Path(found)


def _pick_http_port(requested: int | None) -> int:
    if requested is not None:
        return requested
    default = 8080
    return default if _free(default) else free_port()


def _free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _check(stop: threading.Event) -> None:
    if stop.is_set():
        raise DemoStopped("stopped while starting")


def run_demo(options: DemoOptions, say: Say, stop: threading.Event) -> DemoState:
    """Run the demo until ``stop`` is set; stop everything it started before returning."""
    workdir = options.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "demo.lock").open("w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise DemoBusy(
                f"another `carecircle demo` is running from {workdir}: stop it first "
                "(or give this one another --workdir)"
            ) from err
        return _run_locked(options, workdir, say, stop)


def _run_locked(options: DemoOptions, workdir: Path, say: Say, stop: threading.Event) -> DemoState:
    state = DemoState()
    paths = DemoPaths.for_root(workdir)
    for old in paths.logs.glob("*.log"):
        old.unlink()  # one run's logs at a time
    services = Supervisor(paths.logs, grace_s=options.grace_s, stop=stop)
    components = Supervisor(paths.logs, grace_s=options.grace_s, stop=stop)
    say(f"logs: {paths.logs}/ (demo.log has every process, one file per process beside it)")
    try:
        _start(options, state, paths, services, components, say, stop)
        _watch(options, state, components, say, stop)
    except CareCircleError:
        if not stop.is_set():
            raise
        # Ctrl-C while starting: not an error, just stop what has started.
    finally:
        say("stopping…")
        components.close()
        services.close()
        left = services.running() + components.running()
        if not left:
            paths.remove_runtime()  # a fresh cluster is made at every start anyway
        say("stopped: nothing left running" if not left else f"still running: {left}")
    return state


def _start(
    options: DemoOptions,
    state: DemoState,
    paths: DemoPaths,
    services: Supervisor,
    components: Supervisor,
    say: Say,
    stop: threading.Event,
) -> None:
    env: Mapping[str, str] = os.environ
    database = provide_database(
        services, paths, env, allow_install=options.allow_install, notify=say
    )
    state.database = database
    say(f"database: {redact(database.url)} ({database.origin})")
    _check(stop)
    broker = provide_broker(services, paths, env, allow_install=options.allow_install, notify=say)
    state.broker = broker
    say(f"broker:   {broker.url.split('@')[-1]} ({broker.origin})")
    _check(stop)

    http_port = _pick_http_port(options.http_port)
    ctx = DemoContext(
        workdir=paths.root,
        database_url=database.url,
        mqtt_url=broker.url,
        topic_root=options.topic_root,
        http_port=http_port,
        ingest_workers=2 if broker.shared_subscriptions else 1,
        seed=options.seed,
        households=options.households,
        gateway_processes=options.gateway_processes,
        speed=options.speed,
    )
    child_env = {
        "CARECIRCLE_DATABASE_URL": database.url,
        "CARECIRCLE_MQTT_URL": broker.url,
        "CARECIRCLE_TOPIC_ROOT": options.topic_root,
        "CARECIRCLE_HTTP_PORT": str(http_port),
        # throwaway local servers without passwords: warn, do not refuse (docs/privacy.md)
        "CARECIRCLE_DEMO_MODE": "true",
    }
    state.context = ctx
    state.child_env = child_env
    exe = carecircle_executable()
    migrated = components.run_oneshot(
        ProcessSpec("migrate", [str(exe), "db", "migrate"], env=child_env, oneshot=True),
        timeout_s=300,
    )
    report = [line for line in migrated if not _LOG_LINE.match(line)]  # the command's own
    say("schema:   " + ("; ".join(report) if report else "migrated"))
    _check(stop)

    for row in options.components:
        if not command_exists(row.command):
            state.unavailable.append(row)
            continue
        env_row = {**child_env, **row.env(ctx)}
        if row.kind == "setup":
            out = components.run_oneshot(
                ProcessSpec(row.name, row.argv(exe, ctx), env=env_row, oneshot=True),
                timeout_s=600,
            )
            state.started.append(row.name)
            say(f"{row.name}: done" + (f" ({out[-1]})" if out else ""))
            if row.command == ("platform", "provision"):
                _create_users(options, state, ctx, components, exe, child_env, say)
        elif row.kind == "service":
            copies = _copies(row, ctx, state)
            for i, copy_ctx in enumerate(copies, start=1):
                name = row.name if len(copies) == 1 else f"{row.name}-{i}"
                health = PortOpen("127.0.0.1", int(ctx.fill(row.port))) if row.port else None
                components.start_healthy(
                    ProcessSpec(
                        name,
                        row.argv(exe, copy_ctx),
                        env={**child_env, **row.env(copy_ctx)},
                        health=health,
                        health_timeout_s=60,
                        restart=RestartPolicy(max_restarts=3, backoff_s=2.0),
                    )
                )
                state.started.append(name)
            if row.copies == "gateway_hosts" and state.cast is not None:
                state.gateway_processes = len(copies)
                state.gateways = len(state.cast.gateways)
            if row.command == ("platform", "serve"):
                state.dashboard_url = f"http://127.0.0.1:{http_port}/board"
        _check(stop)

    say("")
    say("running: " + _summarise(state))
    if state.unavailable:
        say("not available yet (command not installed):")
        for row in state.unavailable:
            say(f"  carecircle {' '.join(row.command):<22} {row.name}: {row.description}")
    if state.dashboard_url:
        say(f"dashboard: {state.dashboard_url}")
        for role, username, scope in state.logins:
            say(f"  login {role:<9} {username:<22} password {state.password}  ({scope})")
    say(f"PostgreSQL: {redact(database.url)}")
    say(f"MQTT:       {broker.url.split('@')[-1]} (topic root {options.topic_root!r})")
    say("ready: press Ctrl-C to stop")


def _copies(row: Component, ctx: DemoContext, state: DemoState) -> list[DemoContext]:
    if row.copies == "ingest_workers":
        return [replace(ctx, copy=i) for i in range(1, ctx.ingest_workers + 1)]
    if row.copies == "gateway_hosts":
        if state.cast is None or not state.cast.gateways:
            return []
        sites = state.cast.gateways
        n = max(1, min(ctx.gateway_processes, len(sites)))
        out = []
        for i in range(n):
            path = ctx.workdir / "gateways" / f"gateways-{i + 1}.toml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(gateway_host_config(ctx, sites[i::n]), encoding="utf-8")
            out.append(replace(ctx, copy=i + 1, gateway_config=str(path)))
        return out
    return [ctx]


def _summarise(state: DemoState) -> str:
    if not state.started:
        return "database and broker only"
    others = [n for n in state.started if not n.startswith("gateways")]
    if state.gateways:
        others.append(
            f"{state.gateways} gateways in {state.gateway_processes} processes (gateways-<n>)"
        )
    return ", ".join(others)


def _create_users(
    options: DemoOptions,
    state: DemoState,
    ctx: DemoContext,
    components: Supervisor,
    exe: Path,
    child_env: Mapping[str, str],
    say: Say,
) -> None:
    """Read the population, pick the demo cast and create its three logins."""
    population = ctx.workdir / "population.json"
    if not population.exists():
        return
    state.cast = cast_from_population(population)
    if not command_exists(("platform", "create-user")):
        return
    state.password = options.password or secrets.token_urlsafe(9)
    env = {**child_env, "CARECIRCLE_NEW_USER_PASSWORD": state.password}
    for role, username, flag, value, scope in state.cast.logins():
        components.run_oneshot(
            ProcessSpec(
                f"user-{role}",
                [
                    str(exe),
                    "platform",
                    "create-user",
                    "--username",
                    username,
                    "--role",
                    role,
                    flag,
                    value,
                    "--locale",
                    "en",
                ],
                env=env,
                oneshot=True,
            ),
            timeout_s=120,
        )
        state.logins.append((role, username, scope))
    say(f"users: {', '.join(u for _, u, _ in state.logins)} created")


def _watch(
    options: DemoOptions,
    state: DemoState,
    components: Supervisor,
    say: Say,
    stop: threading.Event,
) -> None:
    periodic = [
        row for row in options.components if row.kind == "periodic" and row not in state.unavailable
    ]
    next_run = {row.name: time.monotonic() + options.first_incident_after_s for row in periodic}
    count = dict.fromkeys(next_run, 0)
    exe = carecircle_executable()
    assert state.context is not None
    while not stop.wait(0.5):
        for report in components.poll():
            if report.restarted:
                say(f"{report.name} exited (status {report.returncode}); restarting")
            elif report.name in next_run:
                if report.returncode != 0:
                    # refused (status 1, e.g. the resident is out): the next incident soon;
                    # nobody answered (status 3, the simulator still starting): this one again
                    say(f"{report.name} failed (status {report.returncode}); see its log")
                    next_run[report.name] = min(next_run[report.name], time.monotonic() + 5)
                    if report.returncode == NO_ANSWER:
                        count[report.name] -= 1
            else:
                say(f"{report.name} exited (status {report.returncode}) for good; see its log")
        now = time.monotonic()
        for row in periodic:
            if now < next_run[row.name]:
                continue
            interval = row.every_s or options.incident_every_s
            next_run[row.name] = now + interval
            count[row.name] += 1
            name = row.name
            if name in components.running():
                continue
            ctx = replace(state.context, seed=options.seed + count[row.name])
            what = ""
            if row.command == ("sim", "scenario") and state.cast is not None:
                kind, target = state.cast.incident(count[row.name] - 1)
                ctx = replace(ctx, incident_kind=kind, incident_target=target)
                what = f": {kind} {' '.join(target[1:])}"
            spec = ProcessSpec(
                name, row.argv(exe, ctx), env={**state.child_env, **row.env(ctx)}, oneshot=True
            )
            components.start(spec)
            say(f"{name}: run {count[row.name]} started{what}")
