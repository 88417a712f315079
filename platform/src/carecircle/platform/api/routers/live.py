"""``GET /api/v1/live``: Server-Sent Events of alert changes in the caller's scope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from carecircle.platform.api.deps import StateDep, StreamPrincipalDep
from carecircle.platform.api.live import CLOSE
from carecircle.platform.auth.policy import Action, require_role

router = APIRouter(tags=["live"])
KEEPALIVE_S = 15.0


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def live(request: Request, p: StreamPrincipalDep, st: StateDep) -> StreamingResponse:
    """Alert changes as they happen: ``event: alert`` with the change notification as data;
    a responder also gets their task offers (and offers withdrawn) as ``event: task``.

    Every event is checked against the caller's scope (family members see only alerts
    of linked residents whose consent allows it).  A ``: keep-alive`` comment is sent
    every 15 s.  A client that falls far behind is disconnected; EventSource reconnects.
    """
    require_role(p, Action.LIVE)
    sub = st.hub.subscribe(p)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    async def events() -> AsyncIterator[str]:
        gone = asyncio.create_task(disconnected())
        try:
            yield "retry: 3000\n: connected\n\n"
            while True:
                item = asyncio.create_task(sub.queue.get())
                done, _ = await asyncio.wait(
                    {item, gone}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                if item not in done:
                    item.cancel()
                    if gone in done:
                        return
                    yield ": keep-alive\n\n"
                    continue
                event = item.result()
                if event is CLOSE:
                    return
                name, data = event
                yield f"event: {name}\ndata: {json.dumps(data)}\n\n"
        finally:
            gone.cancel()
            st.hub.unsubscribe(sub)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
