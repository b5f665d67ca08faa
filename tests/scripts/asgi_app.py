"""A bare ASGI app whose every request logs one Segment event; logging is configured at import.

``flush_interval`` is an hour, so nothing is sent before the server stops: what
arrives was delivered by the shutdown path alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from segment_logging import SegmentHandler

log = logging.getLogger("app.asgi")
log.setLevel(logging.INFO)
log.addHandler(SegmentHandler(flush_interval=3600, shutdown_timeout=5))

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    request = scope["path"].strip("/")
    log.info("Request", extra={"segment": {"user_id": f"{os.getpid()}-{request}"}})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
