"""Hand-off of newly stored items to the alert engine (and anything else that listens).

After a batch commits, the ingest worker gives the items that were *new* (never the
duplicates) to every registered :class:`HandOff`.  Handlers run on one dedicated
thread fed by a bounded queue, in commit order:

* the worker acknowledges the MQTT messages as soon as the batch has committed, so a
  slow handler never holds the broker's in-flight window;
* a handler that raises is logged and counted and the next batch is handed off as
  usual: a handler can never stop ingest;
* when handlers fall behind by ``max_pending`` batches, ``dispatch`` blocks, which
  slows the writer (bounded memory) instead of dropping items.

The price of acknowledging before the hand-off: if the process dies between a
commit and the handlers' return, those items are stored but were not handed off
(at most ``max_pending`` batches).  Detectors that must survive that read the tables
on start-up.  ``inline=True`` calls handlers on the writer thread before the
acknowledgement instead (at-least-once hand-off, at the cost of ack latency).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from carecircle.platform.ingest.items import EnvelopeView

log = logging.getLogger(__name__)


@runtime_checkable
class HandOff(Protocol):
    def on_committed(self, items: Sequence[EnvelopeView]) -> None:
        """Called once per committed batch with the newly stored items, in order."""
        ...


ErrorHook = Callable[[HandOff, BaseException], None]
_STOP = object()


class HandOffDispatcher:
    """Runs registered handlers after each commit (see the module docstring)."""

    def __init__(
        self,
        *,
        inline: bool = False,
        max_pending: int = 64,
        on_error: ErrorHook | None = None,
        on_done: Callable[[float], None] | None = None,
    ) -> None:
        self._handlers: list[HandOff] = []
        self._inline = inline
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._on_error = on_error
        self._on_done = on_done
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def inline(self) -> bool:
        return self._inline

    def register(self, handler: HandOff) -> None:
        if not isinstance(handler, HandOff):
            raise TypeError(f"{handler!r} has no on_committed(items) method")
        with self._lock:
            self._handlers.append(handler)

    @property
    def handlers(self) -> list[HandOff]:
        with self._lock:
            return list(self._handlers)

    def start(self) -> None:
        if self._inline or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="ingest-handoff", daemon=True)
        self._thread.start()

    def dispatch(self, items: Sequence[EnvelopeView]) -> None:
        if not items or not self.handlers:
            return
        if self._inline or self._thread is None:
            self._call(items)
        else:
            self._queue.put(items)

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Hand off what is queued, then stop the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.warning("hand-off queue still full at shutdown; pending items not handed off")
            return
        thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            items = self._queue.get()
            if items is _STOP:
                return
            assert isinstance(items, list)
            self._call(items)

    def _call(self, items: Sequence[EnvelopeView]) -> None:
        started = time.perf_counter()
        for handler in self.handlers:
            try:
                handler.on_committed(items)
            except Exception as err:
                log.exception("hand-off handler %r failed on %d items", handler, len(items))
                if self._on_error is not None:
                    self._on_error(handler, err)
        if self._on_done is not None:
            self._on_done(time.perf_counter() - started)
