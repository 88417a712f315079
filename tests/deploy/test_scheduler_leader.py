"""Scheduler leader election on a PostgreSQL advisory lock: one leader, jobs fire once per tick."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from carecircle.platform.scheduler.leader import (
    LeaderLock,
    apscheduler_jobs,
    leader_connection_factory,
    leader_only,
    run_as_leader,
)

KEY = 0x7E57_0001


@pytest.fixture
def ticks_db(fresh_database: Callable[[], str]) -> Iterator[str]:
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ticks (tick timestamptz NOT NULL, instance text NOT NULL)")
    yield url


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT tick, instance FROM ticks ORDER BY tick").fetchall()


def assert_fired_once_per_tick(rows: list[tuple[Any, ...]]) -> None:
    """The job runs every second: two runs of one tick would be milliseconds apart."""
    times = [r[0].timestamp() for r in rows]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap > 0.5 for gap in gaps), f"a tick fired twice: {rows}"


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_only_one_holder_and_release_hands_over(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    a = LeaderLock(leader_connection_factory(url), KEY, check_interval_s=0.2, lease_s=1)
    b = LeaderLock(leader_connection_factory(url), KEY, check_interval_s=0.2, lease_s=1)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        assert a.is_leader and not b.is_leader
        assert a.confirm()
        a.release()
        assert not a.is_leader
        assert b.try_acquire()
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()


def test_terminated_session_means_leadership_lost(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    a = LeaderLock(leader_connection_factory(url), KEY, check_interval_s=0.2, lease_s=1)
    b = LeaderLock(leader_connection_factory(url), KEY, check_interval_s=0.2, lease_s=1)
    try:
        assert a.try_acquire()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (a.backend_pid,))
        assert _wait(lambda: not a.confirm(), 5)
        assert not a.is_leader
        assert b.try_acquire()
    finally:
        a.release()
        b.release()


def test_leadership_is_a_lease_that_expires_without_confirmation(
    fresh_database: Callable[[], str],
) -> None:
    now = [100.0]
    lock = LeaderLock(
        leader_connection_factory(fresh_database()),
        KEY,
        check_interval_s=1,
        lease_s=3,
        monotonic=lambda: now[0],
    )
    try:
        assert lock.try_acquire()
        now[0] += 2.9
        assert lock.is_leader
        now[0] += 0.2  # no confirmation for longer than the lease: e.g. a hung network
        assert not lock.is_leader
        ran: list[int] = []
        leader_only(lock, lambda: ran.append(1))()
        assert ran == []
        assert lock.confirm()
        assert lock.is_leader
        leader_only(lock, lambda: ran.append(1))()
        assert ran == [1]
    finally:
        lock.release()


def test_key_and_lease_are_validated() -> None:
    def never() -> psycopg.Connection[tuple[Any, ...]]:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="63-bit"):
        LeaderLock(never, -1)
    with pytest.raises(ValueError, match="lease"):
        LeaderLock(never, 1, check_interval_s=5, lease_s=5)


def _scheduler_instance(url: str, name: str, stop: threading.Event) -> LeaderLock:
    lock = LeaderLock(
        leader_connection_factory(url), KEY, check_interval_s=0.2, lease_s=1.0, poll_s=0.2
    )

    def tick() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO ticks VALUES (clock_timestamp(), %s)", (name,))

    def add_jobs(scheduler: BackgroundScheduler) -> None:
        scheduler.add_job(tick, "cron", second="*", misfire_grace_time=1)

    threading.Thread(
        target=run_as_leader,
        args=(lock, apscheduler_jobs(lock, add_jobs), stop),
        name=f"sched-{name}",
        daemon=True,
    ).start()
    return lock


@pytest.mark.timeout(60)
def test_two_schedulers_fire_each_tick_once_and_the_survivor_takes_over(ticks_db: str) -> None:
    stop_a, stop_b = threading.Event(), threading.Event()
    a = _scheduler_instance(ticks_db, "a", stop_a)
    assert _wait(lambda: a.is_leader, 5)
    b = _scheduler_instance(ticks_db, "b", stop_b)
    try:
        assert _wait(lambda: len(_rows(ticks_db)) >= 4, 10)
        assert not b.is_leader
        # The leader's database session dies: it must stop, and b must take over.
        with psycopg.connect(ticks_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (a.backend_pid,))
        assert _wait(lambda: b.is_leader, 5)
        assert _wait(lambda: sum(r[1] == "b" for r in _rows(ticks_db)) >= 3, 10)
        # a re-joins as a follower and never fires while b leads.
        assert not a.is_leader
    finally:
        stop_a.set()
        stop_b.set()
        assert _wait(lambda: not a.is_leader and not b.is_leader, 10)
    rows = _rows(ticks_db)
    assert_fired_once_per_tick(rows)
    instances = [r[1] for r in rows]
    first_b = instances.index("b")
    assert set(instances[:first_b]) == {"a"}
    assert set(instances[first_b:]) == {"b"}


INSTANCE = textwrap.dedent(
    """
    import signal, sys, threading
    import psycopg
    from apscheduler.schedulers.background import BackgroundScheduler
    from carecircle.platform.scheduler.leader import (
        LeaderLock, leader_connection_factory, leader_only, run_as_leader)

    url, name, key = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = LeaderLock(leader_connection_factory(url), key, check_interval_s=0.2, lease_s=1.0,
                      poll_s=0.2)

    def tick():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO ticks VALUES (clock_timestamp(), %s)",
                         (name,))

    def start_jobs():
        print("leader", flush=True)
        s = BackgroundScheduler(timezone="UTC")
        s.add_job(leader_only(lock, tick), "cron", second="*", misfire_grace_time=1)
        s.start()
        return lambda: s.shutdown(wait=True)

    print("started", flush=True)
    run_as_leader(lock, start_jobs, stop)
    """
)


@pytest.mark.timeout(60)
def test_two_scheduler_processes_and_the_leader_killed(ticks_db: str) -> None:
    def spawn(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", INSTANCE, ticks_db, name, str(KEY)],
            stdout=subprocess.PIPE,
            text=True,
        )

    first = spawn("p1")
    second = spawn("p2")
    procs = [first, second]
    try:
        assert _wait(lambda: len(_rows(ticks_db)) >= 3, 15)
        leader_name = _rows(ticks_db)[0][1]
        leader = first if leader_name == "p1" else second
        follower_name = "p2" if leader_name == "p1" else "p1"
        leader.send_signal(signal.SIGKILL)  # no goodbye: the server notices the closed socket
        leader.wait(timeout=10)
        assert _wait(lambda: sum(r[1] == follower_name for r in _rows(ticks_db)) >= 3, 15)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    rows = _rows(ticks_db)
    assert_fired_once_per_tick(rows)
    names = [r[1] for r in rows]
    switch = names.index(follower_name)
    assert set(names[:switch]) == {leader_name} and set(names[switch:]) == {follower_name}


def test_apscheduler_jobs_are_wrapped_to_run_only_while_leader(
    fresh_database: Callable[[], str],
) -> None:
    now = [0.0]
    lock = LeaderLock(
        leader_connection_factory(fresh_database()),
        KEY,
        check_interval_s=1,
        lease_s=3,
        monotonic=lambda: now[0],
    )
    ran: list[int] = []
    schedulers: list[BackgroundScheduler] = []

    def add_jobs(scheduler: BackgroundScheduler) -> None:
        schedulers.append(scheduler)
        scheduler.add_job(lambda: ran.append(1), "interval", hours=1, id="job")

    assert lock.try_acquire()
    stop_jobs = apscheduler_jobs(lock, add_jobs)()
    try:
        job = schedulers[0].get_job("job")
        job.func()
        assert ran == [1]
        now[0] += 10  # lease over: the same job object must now do nothing
        job.func()
        assert ran == [1]
    finally:
        stop_jobs()
        lock.release()


#: APScheduler's line for each run: the job's name and the time it was due.
_RUN = re.compile(r'Running job "(.+?) \(trigger: .*\(scheduled at ([^)]+)\)')


@pytest.mark.timeout(120)
def test_two_platform_scheduler_processes_run_each_job_once(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    """The deployable itself: two ``carecircle platform scheduler`` processes on one
    database with every registered job (store, alerts, ML); each due run of each job
    happens once, in the leader only; when the leader is killed the other takes over."""
    from datetime import UTC, datetime

    from carecircle.platform.store import connect, migrate
    from carecircle.platform.store.timeseries import Retention

    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARECIRCLE_")}
    env.update(
        CARECIRCLE_DATABASE_URL=url,
        CARECIRCLE_LOG_LEVEL="INFO",
        CARECIRCLE_ROLLUP_INTERVAL_S="1",
        CARECIRCLE_MAINTAIN_INTERVAL_S="2",
        CARECIRCLE_ALERTS_ABSENCE_INTERVAL_S="1",
    )
    cli = "from carecircle.common.cli import run; run()"
    logs = {n: tmp_path / f"scheduler-{n}.log" for n in ("a", "b")}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def runs(name: str) -> list[tuple[str, str]]:
        return _RUN.findall(logs[name].read_text()) if logs[name].exists() else []

    try:
        for name, log in logs.items():
            out = log.open("ab")
            procs[name] = subprocess.Popen(
                [sys.executable, "-c", cli, "platform", "scheduler"],
                stdout=out,
                stderr=out,
                env=env,
            )
        assert _wait(lambda: len(runs("a")) + len(runs("b")) >= 12, 60), {
            n: log.read_text()[-2000:] for n, log in logs.items()
        }
        leader = "a" if runs("a") else "b"
        follower = "b" if leader == "a" else "a"
        assert runs(follower) == [], "only the leader runs jobs"
        jobs = {job for job, _ in runs(leader)}
        assert {"rollup_job", "maintain_job"} <= jobs, jobs
        procs[leader].send_signal(signal.SIGKILL)  # its session ends: the lock is released
        procs[leader].wait(timeout=10)
        assert _wait(lambda: len(runs(follower)) >= 6, 40), logs[follower].read_text()[-2000:]
        procs[follower].send_signal(signal.SIGTERM)
        assert procs[follower].wait(timeout=30) == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    every = runs("a") + runs("b")
    assert len(every) == len(set(every)), "a due run of a job happened twice"
    assert {job for job, _ in runs(follower)} >= {"rollup_job", "maintain_job"}
    print(f"\n{len(runs(leader))} runs by the first leader, {len(runs(follower))} by the second")
