"""Live alert changes for browsers and integrations (Server-Sent Events).

One thread per API process LISTENs on ``cc_alert``; for each notification it loads
the alert's access facts once and hands the event to every subscriber whose
principal may read that alert (the same :func:`~carecircle.platform.auth.policy.can`
as everywhere else).  It also LISTENs on dispatch's ``cc_task`` and hands a task
offer (or its withdrawal) only to the streams of the responder it is for.  Each
subscriber has a bounded queue: a client that falls that far behind is disconnected
(its EventSource reconnects and reloads the board), so one slow browser never holds
memory or other clients back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg

from carecircle.platform.alerts.repository import NOTIFY_CHANNEL
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Action, Principal, Role, can
from carecircle.platform.dispatch.service import TASK_CHANNEL

log = logging.getLogger(__name__)

#: One item of a stream: the SSE event name (``alert``, ``task``) and its data.
Event = tuple[str, dict[str, Any]]
#: Sentinel telling a subscriber's stream to end (it fell behind, or shutdown).
CLOSE: Event = ("close", {})


@dataclass(eq=False)
class Subscriber:
    principal: Principal
    queue: asyncio.Queue[Event]
    loop: asyncio.AbstractEventLoop
    closed: bool = field(default=False)

    def offer(self, event: Event) -> None:
        """Runs on the event loop: enqueue, or close the stream if the client is behind."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.closed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CLOSE)


class LiveHub:
    def __init__(self, database_url: str, queue_size: int) -> None:
        self._url = database_url
        self._queue_size = queue_size
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.delivered = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cc-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.loop.call_soon_threadsafe(sub.offer, CLOSE)

    def subscribe(self, principal: Principal) -> Subscriber:
        sub = Subscriber(principal, asyncio.Queue(self._queue_size + 1), asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with (
                    psycopg.connect(self._url, autocommit=True, connect_timeout=5) as listen,
                    psycopg.connect(self._url, autocommit=True, connect_timeout=5) as query,
                ):
                    listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    listen.execute(f"LISTEN {TASK_CHANNEL}")
                    self.ready.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        for note in listen.notifies(timeout=0.5):
                            if note.channel == TASK_CHANNEL:
                                self._deliver_task(note.payload)
                            else:
                                self._deliver(query, note.payload)
                            if self._stop.is_set():
                                break
            except psycopg.Error as err:
                self.ready.clear()
                log.warning("live stream lost its database connection (%s); retrying", err)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _deliver(self, conn: psycopg.Connection[Any], payload: str) -> None:
        try:
            event = json.loads(payload)
            alert_id = int(event["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s notification", NOTIFY_CHANNEL)
            return
        with self._lock:
            subs = list(self._subs)
        if not subs:
            return
        resource = scope.load(conn, "alert", alert_id)
        if resource is None:
            return
        for sub in subs:
            if can(sub.principal, Action.ALERT_READ, resource):
                sub.loop.call_soon_threadsafe(sub.offer, ("alert", event))
                self.delivered += 1

    def _deliver_task(self, payload: str) -> None:
        """A task offer goes to the streams of its responder, and nobody else's."""
        try:
            event = json.loads(payload)
            responder_id = str(event["responder_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s notification", TASK_CHANNEL)
            return
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            p = sub.principal
            if (
                p.role is Role.RESPONDER
                and p.responder_id == responder_id
                and p.allowed(Action.TASK_ACT)
            ):
                sub.loop.call_soon_threadsafe(sub.offer, ("task", event))
                self.delivered += 1
