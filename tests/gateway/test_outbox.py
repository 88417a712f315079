"""The durable queue: commit before send, lanes, bounds (never alarms), crash survival."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from carecircle.gateway.outbox import Item, Lane, Outbox


def item(lane: Lane, created: float, n: int = 0) -> Item:
    return Item(lane, str(uuid.uuid4()), f'{{"n":{n}}}'.encode(), created)


def test_wal_mode_and_rows_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    q = Outbox(path)
    q.enqueue([item(Lane.ROUTINE, 1.0, i) for i in range(5)], memory={"dev|smoke": 1.0})
    q.close()
    q = Outbox(path)
    assert len(q) == 5
    assert [r.body for r in q.next_rows(Lane.ROUTINE, 0, 10)] == [
        f'{{"n":{i}}}'.encode() for i in range(5)
    ]
    assert q.memory() == {"dev|smoke": 1.0}
    assert q._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert q._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_commit_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    code = (
        "import os, signal, uuid\n"
        "from pathlib import Path\n"
        "from carecircle.gateway.outbox import Item, Lane, Outbox\n"
        f"q = Outbox(Path({str(path)!r}))\n"
        "q.enqueue([Item(Lane.ALARM, str(uuid.uuid4()), b'{}', 1.0) for _ in range(3)])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=30)
    assert proc.returncode == -9
    assert Outbox(path).depth()[Lane.ALARM] == 3


def test_lanes_and_cursor(tmp_path: Path) -> None:
    q = Outbox(tmp_path / "q.sqlite3")
    q.enqueue([item(Lane.ROUTINE, 1), item(Lane.ALARM, 2), item(Lane.ROUTINE, 3)])
    alarms = q.next_rows(Lane.ALARM, 0, 10)
    routine = q.next_rows(Lane.ROUTINE, 0, 10)
    assert len(alarms) == 1 and len(routine) == 2
    assert q.next_rows(Lane.ROUTINE, routine[0].seq, 10) == routine[1:]
    assert q.delete([r.seq for r in routine]) == 2
    assert q.depth() == {Lane.ALARM: 1, Lane.STATUS: 0, Lane.DEADLETTER: 0, Lane.ROUTINE: 0}


def test_size_bound_drops_oldest_routine_first_never_alarms(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    q = Outbox(tmp_path / "q.sqlite3", max_messages=10)
    q.enqueue([item(Lane.ALARM, 1, i) for i in range(4)])
    q.enqueue([item(Lane.STATUS, 1, i) for i in range(2)])
    q.enqueue([item(Lane.ROUTINE, 1, i) for i in range(4)])
    assert q.dropped == 0
    q.enqueue([item(Lane.ROUTINE, 2, i) for i in range(10, 13)])
    assert q.dropped == 3
    kept = [r.body for r in q.next_rows(Lane.ROUTINE, 0, 100)]
    assert kept == [b'{"n":3}', b'{"n":10}', b'{"n":11}', b'{"n":12}']  # oldest went first
    assert "dropped 3 routine" in caplog.text
    q.enqueue([item(Lane.ALARM, 3, i) for i in range(20)])
    depth = q.depth()
    assert depth[Lane.ALARM] == 24, "alarms are never dropped, even over the bound"
    assert depth[Lane.ROUTINE] == 0 and depth[Lane.STATUS] == 0


def test_age_bound(tmp_path: Path) -> None:
    q = Outbox(tmp_path / "q.sqlite3", max_age_s=100)
    q.enqueue([item(Lane.ROUTINE, 1000), item(Lane.ALARM, 1000), item(Lane.ROUTINE, 1950)])
    assert q.enforce_bounds(now=2000) == 1
    assert q.depth()[Lane.ALARM] == 1 and q.depth()[Lane.ROUTINE] == 1


def test_native_fingerprints(tmp_path: Path) -> None:
    q = Outbox(tmp_path / "q.sqlite3")
    q.enqueue([item(Lane.ROUTINE, 1)], native_digest=b"abc")
    assert q.seen_native(b"abc") and not q.seen_native(b"abd")
