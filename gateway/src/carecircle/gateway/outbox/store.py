"""The durable store-and-forward queue: SQLite in WAL mode, one row per canonical message.

A message is committed here *before* the local broker gets its PUBACK and before
anything is sent upstream; a row leaves only when the platform broker has PUBACKed
the publish that carried it (or when the bounds drop it, which is logged and
counted).  Rows are never rewritten: a retry sends the same bytes with the same id.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL`` by default, so a commit
survives a power cut, not only ``kill -9`` (which ``NORMAL`` already survives in WAL
mode).  Edge boxes lose power; the cost is one fsync per native message (measured in
``bench/gateway_queue.py``), far above a household's or a ward's message rate.
``queue_synchronous = "NORMAL"`` trades the last commits before a power cut for speed.

Lanes, sent in this order: ``ALARM`` (alarm codes incl. availability, never dropped),
``STATUS`` (battery, link quality, heartbeats), ``DEADLETTER``, ``ROUTINE`` (readings,
batched).  Over the bounds, the oldest routine rows go first, then dead letters, then
status; alarms are never dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Literal

from carecircle.common.errors import StoreError

log = logging.getLogger(__name__)

Synchronous = Literal["FULL", "NORMAL"]
#: How many fingerprints of recent native messages are kept to spot broker redeliveries.
NATIVE_SEEN_KEEP = 20_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT    NOT NULL,
    lane    INTEGER NOT NULL,
    created REAL    NOT NULL,
    body    BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_lane_seq ON outbox (lane, seq);
CREATE TABLE IF NOT EXISTS memory (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS native_seen (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    digest BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS native_seen_digest ON native_seen (digest);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Lane(IntEnum):
    ALARM = 0
    STATUS = 1
    DEADLETTER = 2
    ROUTINE = 3


#: Dropped first to last when the queue is over its bounds.  ALARM is never dropped.
DROP_ORDER = (Lane.ROUTINE, Lane.DEADLETTER, Lane.STATUS)


@dataclass(frozen=True)
class Item:
    lane: Lane
    id: str
    body: bytes
    created: float  #: unix seconds (gateway receive time)


@dataclass(frozen=True)
class Row:
    seq: int
    lane: Lane
    id: str
    body: bytes
    created: float


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: Synchronous = "FULL",
        max_messages: int = 1_000_000,
        max_age_s: float = 7 * 86400,
    ) -> None:
        self.path = path
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"queue {path}: SQLite refused WAL mode (got {mode})")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(SCHEMA)
            self._count = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.Error as err:
            raise StoreError(f"cannot open queue {path}: {err}") from err
        self.dropped = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------

    def enqueue(
        self,
        items: Sequence[Item],
        *,
        memory: Mapping[str, float] | None = None,
        native_digest: bytes | None = None,
    ) -> None:
        """Commit ``items`` (and the event memory, and the native message's fingerprint)
        in one transaction."""
        if not items and not memory and native_digest is None:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO outbox (id, lane, created, body) VALUES (?, ?, ?, ?)",
                    [(i.id, int(i.lane), i.created, i.body) for i in items],
                )
                if memory:
                    self._db.executemany(
                        "INSERT INTO memory (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        list(memory.items()),
                    )
                if native_digest is not None:
                    cur = self._db.execute(
                        "INSERT INTO native_seen (digest) VALUES (?)", (native_digest,)
                    )
                    last = cur.lastrowid or 0
                    if last % 1000 == 0:
                        self._db.execute(
                            "DELETE FROM native_seen WHERE seq <= ?", (last - NATIVE_SEEN_KEEP,)
                        )
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise StoreError(f"queue {self.path}: cannot enqueue: {err}") from err
            self._count += len(items)
            over = self._count - self.max_messages
        if over > 0:
            self.enforce_bounds(now=None)

    def seen_native(self, digest: bytes) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM native_seen WHERE digest = ? LIMIT 1", (digest,)
            ).fetchone()
        return row is not None

    def delete(self, seqs: Iterable[int]) -> int:
        ids = list(seqs)
        if not ids:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = 0
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    cur = self._db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)  # noqa: S608
                    deleted += cur.rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise StoreError(f"queue {self.path}: cannot delete sent rows: {err}") from err
            self._count -= deleted
        return deleted

    def enforce_bounds(self, now: float | None) -> int:
        """Drop what is over the bounds (oldest routine first, never alarms); return how many."""
        dropped_by_lane: dict[Lane, int] = {}
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                if now is not None:
                    for lane in DROP_ORDER:
                        cur = self._db.execute(
                            "DELETE FROM outbox WHERE lane = ? AND created < ?",
                            (int(lane), now - self.max_age_s),
                        )
                        if cur.rowcount > 0:
                            dropped_by_lane[lane] = dropped_by_lane.get(lane, 0) + cur.rowcount
                count = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
                for lane in DROP_ORDER:
                    over = count - self.max_messages
                    if over <= 0:
                        break
                    cur = self._db.execute(
                        "DELETE FROM outbox WHERE seq IN "
                        "(SELECT seq FROM outbox WHERE lane = ? ORDER BY seq LIMIT ?)",
                        (int(lane), over),
                    )
                    if cur.rowcount > 0:
                        dropped_by_lane[lane] = dropped_by_lane.get(lane, 0) + cur.rowcount
                        count -= cur.rowcount
                self._db.execute("COMMIT")
                self._count = count
            except sqlite3.Error as err:
                self._rollback()
                raise StoreError(f"queue {self.path}: cannot apply bounds: {err}") from err
        total = sum(dropped_by_lane.values())
        if total:
            self.dropped += total
            log.warning(
                "queue over its bounds (max %d messages, %.0f s): dropped %s (oldest first; "
                "alarms are never dropped)",
                self.max_messages,
                self.max_age_s,
                ", ".join(f"{n} {lane.name.lower()}" for lane, n in dropped_by_lane.items()),
            )
        return total

    def save_counters(self, counters: Mapping[str, int]) -> None:
        with self._lock:
            try:
                self._db.executemany(
                    "INSERT INTO counters (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    list(counters.items()),
                )
            except sqlite3.Error as err:
                log.warning("cannot save counters to %s: %s", self.path, err)

    # -- reading ---------------------------------------------------------------------

    def next_rows(self, lane: Lane, after_seq: int, limit: int) -> list[Row]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, lane, id, body, created FROM outbox "
                "WHERE lane = ? AND seq > ? ORDER BY seq LIMIT ?",
                (int(lane), after_seq, limit),
            ).fetchall()
        return [Row(r[0], Lane(r[1]), r[2], bytes(r[3]), r[4]) for r in rows]

    def depth(self) -> dict[Lane, int]:
        with self._lock:
            rows = self._db.execute("SELECT lane, count(*) FROM outbox GROUP BY lane").fetchall()
        out = dict.fromkeys(Lane, 0)
        for lane, n in rows:
            out[Lane(lane)] = int(n)
        return out

    def __len__(self) -> int:
        return self._count

    def memory(self) -> dict[str, float]:
        with self._lock:
            return {k: float(v) for k, v in self._db.execute("SELECT key, value FROM memory")}

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {k: int(v) for k, v in self._db.execute("SELECT name, value FROM counters")}

    def oldest(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT min(created) FROM outbox").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            log.debug("rollback after a failed transaction failed too", exc_info=True)
