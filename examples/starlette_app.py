"""segment-logging in a Starlette (or FastAPI) app: who the user is comes from the request.

Run it:  python examples/starlette_app.py   (needs Starlette: python -m pip install starlette)

SegmentContextMiddleware binds the authenticated user for each request, so the
endpoint's logging call does not repeat it; at the app's shutdown the middleware
delivers what is queued. With SEGMENT_WRITE_KEY set, the events go to your Segment
source (set SEGMENT_HOST for an EU workspace). Without it, they go to a fake Segment
running inside this script, and what it received is printed.
"""

from __future__ import annotations

import logging
import warnings

from _target import segment_target, show_received
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import segment_logging
from segment_logging import SegmentHandler
from segment_logging.contrib.starlette import SegmentContextMiddleware

write_key, host, fake = segment_target()
log = logging.getLogger("shop")
log.setLevel(logging.INFO)
log.addHandler(SegmentHandler(write_key, host=host))


class HeaderAuth(AuthenticationBackend):
    """A stand-in for your session or token authentication: trusts an X-User header."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-user")
        return None if name is None else (AuthCredentials(["authenticated"]), SimpleUser(name))


async def upgrade(request: Request) -> JSONResponse:
    # No user id here: the middleware bound request.user.identity for this request.
    log.info("Upgraded", extra={"segment": True, "plan": request.query_params["plan"]})
    return JSONResponse({"bound": segment_logging.bound()})


app = Starlette(
    routes=[Route("/upgrade", upgrade)],
    middleware=[
        Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
        Middleware(SegmentContextMiddleware),  # after the authentication: it reads request.user
    ],
)

if __name__ == "__main__":
    # Serve it with `uvicorn starlette_app:app`; here Starlette's test client plays two users.
    with warnings.catch_warnings():  # Starlette 1.x would rather its test client ran on its httpx2 fork
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    with TestClient(app) as client:  # runs the app's lifespan, whose shutdown delivers the events
        for user, plan in (("u1", "team"), ("u2", "pro")):
            answer = client.get("/upgrade", params={"plan": plan}, headers={"X-User": user}).json()
            print(f"{user} upgraded to {plan}; bound during the request: {answer['bound']}")
    show_received(fake, detail=" by the time the app had shut down")
