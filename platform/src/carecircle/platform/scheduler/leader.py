"""One scheduler leader among many platform instances: a PostgreSQL session advisory lock.

Every instance runs ``carecircle platform scheduler``; only the one holding the
advisory lock ``key`` runs jobs.  The lock belongs to a database *session*: it is
released when the leader unlocks, when its process dies (the server sees the socket
close) or when the server ends the session (``pg_terminate_backend``, a dead TCP
peer detected by keepalives).  The others wait and try again every ``poll_s``.

The leader must notice when it has lost the lock, or two instances would fire the
same job.  :class:`LeaderLock` confirms its session every ``check_interval_s`` with a
query and treats leadership as a *lease*: :attr:`LeaderLock.is_leader` turns false
``lease_s`` after the last successful confirmation, even if the confirming query
hangs on a broken network.  The session's server-side TCP keepalives are set so the
server gives up on a silent leader only after that lease has run out, so the old
leader has stopped before a new one can take the lock.

Jobs should also be idempotent per tick (rollups are), which covers a job already
running at the moment leadership is lost.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from carecircle.common.errors import StoreUnavailable

log = logging.getLogger(__name__)

#: Advisory lock key of the platform scheduler (the migrator uses 0x43430001).
SCHEDULER_LOCK_KEY = 0x43430002

Conn = psycopg.Connection[tuple[Any, ...]]
ConnFactory = Callable[[], Conn]


def leader_connection_factory(url: str, *, connect_timeout_s: int = 5) -> ConnFactory:
    """Connections for a :class:`LeaderLock`: autocommit, with client TCP keepalives."""

    def connect() -> Conn:
        try:
            return psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=connect_timeout_s,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )
        except psycopg.OperationalError as err:
            raise StoreUnavailable(f"scheduler cannot reach PostgreSQL: {err}") from err

    return connect


class LeaderLock:
    """A session advisory lock held as a lease; see the module docstring."""

    def __init__(
        self,
        conn_factory: ConnFactory,
        key: int = SCHEDULER_LOCK_KEY,
        *,
        check_interval_s: float = 2.0,
        lease_s: float = 8.0,
        poll_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= key < 2**63:
            raise ValueError("the advisory lock key must be a non-negative 63-bit integer")
        if lease_s <= check_interval_s:
            raise ValueError("lease_s must be longer than check_interval_s")
        self._factory = conn_factory
        self.key = key
        self.check_interval_s = check_interval_s
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._monotonic = monotonic
        self._conn: Conn | None = None
        self._confirmed_at: float | None = None
        self._lock = threading.Lock()

    # -- state ------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True while the lock is held and was confirmed less than ``lease_s`` ago."""
        with self._lock:
            return (
                self._conn is not None
                and self._confirmed_at is not None
                and self._monotonic() - self._confirmed_at < self.lease_s
            )

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lock's session (for operators and tests)."""
        conn = self._conn
        return conn.info.backend_pid if conn is not None else None

    # -- acquiring ----------------------------------------------------------------

    def try_acquire(self) -> bool:
        """One attempt: take the lock if nobody holds it."""
        if self._conn is not None:
            return self.confirm()
        try:
            conn = self._factory()
        except StoreUnavailable as err:
            log.warning("scheduler leader election: %s", err)
            return False
        try:
            # The server drops a silent session only after our lease has run out.
            silent_s = int(self.lease_s) + 5
            conn.execute(
                f"SET tcp_keepalives_idle = {max(1, silent_s // 2)};"
                f" SET tcp_keepalives_interval = {max(1, silent_s // 6)};"
                " SET tcp_keepalives_count = 3"
            )
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error as err:
            log.warning("scheduler leader election failed: %s", err)
            conn.close()
            return False
        if not row or not row[0]:
            conn.close()
            return False
        with self._lock:
            self._conn = conn
            self._confirmed_at = self._monotonic()
        log.info("became scheduler leader (lock %#x, session %s)", self.key, conn.info.backend_pid)
        return True

    def acquire_or_wait(self, stop: threading.Event | None = None) -> bool:
        """Block until leader (True) or until ``stop`` is set (False)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.try_acquire():
                return True
            stop.wait(self.poll_s)
        return False

    # -- keeping ------------------------------------------------------------------

    def confirm(self) -> bool:
        """Check the session still holds the lock; on any doubt, give leadership up."""
        conn = self._conn
        if conn is None:
            return False
        try:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid()"
                " AND ((classid::bigint << 32) | objid::bigint) = %s AND objsubid = 1",
                (self.key,),
            ).fetchone()
        except psycopg.Error as err:
            log.warning("scheduler leadership lost: %s", str(err).strip() or type(err).__name__)
            self._drop()
            return False
        if not row or row[0] != 1:
            log.warning("scheduler leadership lost: the lock is no longer held")
            self._drop()
            return False
        with self._lock:
            self._confirmed_at = self._monotonic()
        return True

    def release(self) -> None:
        """Give leadership up (unlock and close the session)."""
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(psycopg.Error):  # if the session is gone, so is the lock
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop()
        log.info("released scheduler leadership (lock %#x)", self.key)

    def _drop(self) -> None:
        with self._lock:
            conn, self._conn, self._confirmed_at = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def __enter__(self) -> LeaderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def leader_only(lock: LeaderLock, job: Callable[[], None]) -> Callable[[], None]:
    """Wrap a job so it does nothing unless this instance is the leader right now."""

    def guarded() -> None:
        if lock.is_leader:
            job()
        else:
            log.warning("skipping %s: not the scheduler leader", getattr(job, "__name__", job))

    guarded.__name__ = getattr(job, "__name__", "job")
    return guarded


def run_as_leader(
    lock: LeaderLock,
    start_jobs: Callable[[], Callable[[], None]],
    stop: threading.Event,
) -> None:
    """Wait for leadership, run jobs while leader, stop them as soon as it is lost; repeat.

    After losing leadership it waits ``lease_s`` before competing again, so another
    instance takes over.

    ``start_jobs`` starts the jobs (e.g. builds and starts an APScheduler
    ``BackgroundScheduler`` whose jobs are wrapped with :func:`leader_only`) and
    returns a function that stops them.  Returns when ``stop`` is set.
    """
    while not stop.is_set():
        if not lock.acquire_or_wait(stop):
            break
        stop_jobs = start_jobs()
        lost = False
        try:
            while not stop.wait(lock.check_interval_s):
                if not lock.confirm():
                    lost = True
                    break
        finally:
            stop_jobs()
            lock.release()
        if lost:
            # Whatever cost us the lock (a dropped session, a sick host) may cost it
            # again: let a healthier instance take over before trying once more.
            stop.wait(lock.lease_s)


def apscheduler_jobs(
    lock: LeaderLock, add_jobs: Callable[[Any], None], *, timezone: str = "UTC"
) -> Callable[[], Callable[[], None]]:
    """A ``start_jobs`` for :func:`run_as_leader` built on an APScheduler 3 scheduler.

    ``add_jobs(scheduler)`` adds the jobs (``scheduler.add_job(...)``) to a fresh
    ``BackgroundScheduler``; each job is then wrapped with :func:`leader_only`, so it
    does nothing once leadership is lost, even before the scheduler is shut down.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    def start_jobs() -> Callable[[], None]:
        scheduler = BackgroundScheduler(timezone=timezone)
        add_jobs(scheduler)
        for job in scheduler.get_jobs():
            job.modify(func=leader_only(lock, job.func))
        scheduler.start()
        log.info("scheduler started %d jobs as leader", len(scheduler.get_jobs()))

        def stop_jobs() -> None:
            scheduler.shutdown(wait=True)

        return stop_jobs

    return start_jobs
