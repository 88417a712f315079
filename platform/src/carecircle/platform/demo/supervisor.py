"""A small process supervisor for the demo: start children, log them, stop them all.

Every child runs in its own session (so its own process group): a Ctrl-C in the
terminal reaches only the supervisor, which then stops the children in an order it
controls.  Stopping sends each child's ``stop_signal`` to its whole process group,
waits up to ``grace_s``, then sends SIGKILL to whatever group is still there, so no
grandchild is left behind either.

Output of every child goes, line by line, to ``<log_dir>/<name>.log`` and, prefixed
with the child's name, to ``<log_dir>/demo.log``; the terminal stays quiet.  The last
lines of each child are kept in memory (bounded) to explain a failure.

All starting, polling and restarting happens on the thread that owns the
supervisor; reader threads only copy output to files.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from carecircle.common.errors import CareCircleError

log = logging.getLogger(__name__)

_TAIL_LINES = 40


class ProcessFailed(CareCircleError):
    """A supervised process did not start, did not become healthy, or died for good."""


@dataclass(frozen=True)
class PortOpen:
    """Healthy once a TCP connection to ``host:port`` succeeds."""

    host: str
    port: int


@dataclass(frozen=True)
class LogLine:
    """Healthy once a line of the child's output matches ``pattern`` (a regular expression)."""

    pattern: str


HealthCheck = PortOpen | LogLine


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a child that exits on its own at most ``max_restarts`` times."""

    max_restarts: int = 0
    backoff_s: float = 1.0


@dataclass(frozen=True)
class ProcessSpec:
    """One child process.

    ``env`` is added to the supervisor's own environment.  ``user`` (only when the
    supervisor runs as root) starts the child as that user, e.g. PostgreSQL, which
    refuses to run as root.  A ``oneshot`` child is expected to exit; exit status 0
    is success and it is never restarted.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    health: HealthCheck | None = None
    health_timeout_s: float = 30.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: int = signal.SIGTERM
    oneshot: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", self.name):
            raise ValueError(f"process name {self.name!r} must be a short file-name-safe word")
        if not self.argv:
            raise ValueError(f"process {self.name!r} has an empty command line")


@dataclass
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))
    matched: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None
    finished: bool = False


@dataclass(frozen=True)
class ExitReport:
    """A child that exited on its own, as seen by :meth:`Supervisor.poll`."""

    name: str
    returncode: int
    restarted: bool
    tail: tuple[str, ...]


class Supervisor:
    """Start, watch and stop a set of child processes."""

    def __init__(
        self, log_dir: Path, *, grace_s: float = 10.0, stop: threading.Event | None = None
    ) -> None:
        """``stop``, when set, cuts short any wait for health or for a one-shot child."""
        self.log_dir = log_dir
        self.grace_s = grace_s
        self._stop = stop or threading.Event()
        self._children: dict[str, _Child] = {}
        self._order: list[str] = []
        self._combined_lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)
        self._combined: IO[str] = (log_dir / "demo.log").open("a", encoding="utf-8")

    # -- starting ---------------------------------------------------------------

    def start(self, spec: ProcessSpec) -> None:
        """Start ``spec`` (not waiting for health; see :meth:`wait_healthy`)."""
        if spec.name in self._children and self._children[spec.name].proc.poll() is None:
            raise ProcessFailed(f"process {spec.name} is already running")
        previous = self._children.get(spec.name)
        child = self._spawn(spec)
        if previous is not None:
            child.restarts = previous.restarts
        self._children[spec.name] = child
        if spec.name not in self._order:
            self._order.append(spec.name)

    def start_healthy(self, spec: ProcessSpec) -> None:
        """Start ``spec`` and wait until its health check passes."""
        self.start(spec)
        self.wait_healthy(spec.name)

    def _spawn(self, spec: ProcessSpec) -> _Child:
        env = {**os.environ, **spec.env}
        kwargs: dict[str, object] = {}
        if spec.user is not None and os.geteuid() == 0:
            entry = pwd.getpwnam(spec.user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
            env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
        log.info("starting %s: %s", spec.name, " ".join(spec.argv))
        try:
            proc = subprocess.Popen(  # type: ignore[call-overload]
                list(spec.argv),
                env=env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        except OSError as err:
            raise ProcessFailed(f"cannot start {spec.name} ({spec.argv[0]}): {err}") from err
        assert isinstance(proc, subprocess.Popen)
        child = _Child(spec=spec, proc=proc, started_at=time.monotonic())
        child.reader = threading.Thread(
            target=self._copy_output, args=(child,), name=f"log-{spec.name}", daemon=True
        )
        child.reader.start()
        return child

    def _copy_output(self, child: _Child) -> None:
        pattern = (
            re.compile(child.spec.health.pattern)
            if isinstance(child.spec.health, LogLine)
            else None
        )
        stream = child.proc.stdout
        assert stream is not None
        with (self.log_dir / f"{child.spec.name}.log").open("a", encoding="utf-8") as own:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                child.tail.append(line)
                own.write(line + "\n")
                own.flush()
                with self._combined_lock:
                    self._combined.write(f"{child.spec.name:<14}| {line}\n")
                    self._combined.flush()
                if pattern is not None and pattern.search(line):
                    child.matched.set()
        stream.close()

    # -- health -----------------------------------------------------------------

    def wait_healthy(self, name: str) -> None:
        """Wait until ``name``'s health check passes, or raise :class:`ProcessFailed`."""
        child = self._children[name]
        check = child.spec.health
        deadline = time.monotonic() + child.spec.health_timeout_s
        while True:
            if isinstance(check, LogLine) and child.matched.is_set():
                return
            if isinstance(check, PortOpen) and _port_open(check.host, check.port):
                return
            code = child.proc.poll()
            if code is not None:
                if check is None and child.spec.oneshot and code == 0:
                    return
                self._join_reader(child)
                raise ProcessFailed(
                    f"{name} exited with status {code} before it was ready; last output:\n"
                    + "\n".join(child.tail)
                )
            if check is None and not child.spec.oneshot:
                return
            if time.monotonic() > deadline:
                raise ProcessFailed(
                    f"{name} was not ready within {child.spec.health_timeout_s:.0f} s; "
                    "last output:\n" + "\n".join(child.tail)
                )
            if self._stop.wait(0.05):
                raise ProcessFailed(f"stopped while waiting for {name}")

    def run_oneshot(self, spec: ProcessSpec, timeout_s: float) -> tuple[str, ...]:
        """Run a ``oneshot`` child to completion and return its output lines."""
        if not spec.oneshot:
            raise ValueError(f"{spec.name} is not a oneshot process")
        self.start(spec)
        child = self._children[spec.name]
        deadline = time.monotonic() + timeout_s
        while (code := child.proc.poll()) is None:
            if self._stop.wait(0.1):
                self._stop_child(child)
                raise ProcessFailed(f"stopped while {spec.name} was running")
            if time.monotonic() > deadline:
                self._stop_child(child)
                raise ProcessFailed(f"{spec.name} did not finish within {timeout_s:.0f} s")
        self._join_reader(child)
        child.finished = True
        if code != 0:
            raise ProcessFailed(
                f"{spec.name} failed with status {code}; last output:\n" + "\n".join(child.tail)
            )
        return tuple(child.tail)

    # -- watching ---------------------------------------------------------------

    def poll(self) -> list[ExitReport]:
        """Notice children that exited on their own and restart them per their policy."""
        reports: list[ExitReport] = []
        for name in list(self._order):
            child = self._children[name]
            if child.finished:
                continue
            code = child.proc.poll()
            if code is None:
                continue
            self._join_reader(child)
            child.finished = True
            spec = child.spec
            restart = not spec.oneshot and child.restarts < spec.restart.max_restarts
            reports.append(ExitReport(name, code, restart, tuple(child.tail)))
            if spec.oneshot:
                log.info("%s finished with status %s", name, code)
                continue
            log.warning("%s exited with status %s", name, code)
            if restart:
                time.sleep(spec.restart.backoff_s)
                restarts = child.restarts + 1
                self.start(spec)
                self._children[name].restarts = restarts
                log.info("restarted %s (%d of %d)", name, restarts, spec.restart.max_restarts)
        return reports

    def running(self) -> list[str]:
        """Names of children whose process is still alive."""
        return [n for n in self._order if self._children[n].proc.poll() is None]

    def pid(self, name: str) -> int:
        return self._children[name].proc.pid

    def tail(self, name: str) -> tuple[str, ...]:
        return tuple(self._children[name].tail)

    # -- stopping ---------------------------------------------------------------

    def stop(self) -> None:
        """Stop every child: its stop signal to each process group, then SIGKILL after grace."""
        children = [self._children[n] for n in reversed(self._order)]
        for child in children:
            self._signal_group(child, child.spec.stop_signal)
        deadline = time.monotonic() + self.grace_s
        for child in children:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                child.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s did not stop within %.0f s: killing it", child.spec.name, self.grace_s
                )
        for child in children:
            # The group may hold grandchildren even when the leader has exited.
            self._signal_group(child, signal.SIGKILL)
            if child.proc.poll() is None:
                child.proc.wait(timeout=5)
            self._join_reader(child)
            child.finished = True
        with self._combined_lock:
            self._combined.flush()

    def close(self) -> None:
        self.stop()
        with self._combined_lock:
            self._combined.close()

    def _stop_child(self, child: _Child) -> None:
        self._signal_group(child, child.spec.stop_signal)
        with suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=self.grace_s)
        self._signal_group(child, signal.SIGKILL)
        child.proc.wait(timeout=5)
        self._join_reader(child)
        child.finished = True

    @staticmethod
    def _signal_group(child: _Child, sig: int) -> None:
        # start_new_session made the child the leader of a group whose id is its pid.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)

    @staticmethod
    def _join_reader(child: _Child) -> None:
        if child.reader is not None:
            child.reader.join(timeout=5)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def stop_requested(
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[threading.Event]:
    """Turn SIGINT/SIGTERM into an event for the duration of the block (main thread only)."""
    event = threading.Event()
    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received signal %s: stopping", signal.Signals(signum).name)
        event.set()

    for sig in signals:
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
