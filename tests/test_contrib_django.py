"""segment_logging.contrib.django with real Django: auth, sessions, the test clients, sync and async."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import django
import pytest
from conftest import framework_snippets
from django.conf import settings
from django.core.management import call_command
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client
from django.test.utils import override_settings
from django.urls import path

import segment_logging
from segment_logging import SegmentHandler
from segment_logging.contrib.django import SegmentContextMiddleware
from segment_logging.testing import SegmentServer

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MakeHandler = Callable[..., SegmentHandler]
log = logging.getLogger("test.django.views")
_both_inside = threading.Barrier(2, timeout=10)


def upgrade(request: HttpRequest) -> JsonResponse:
    log.info("Upgraded", extra={"segment": True, "plan": "team"})
    return JsonResponse(segment_logging.bound())


def checkout(request: HttpRequest) -> JsonResponse:
    """Waits until two requests are inside, so they overlap."""
    _both_inside.wait()
    log.info("Checked out", extra={"segment": True})
    return JsonResponse(segment_logging.bound())


class Arrivals:
    """How many async requests must be inside async_checkout before any of them goes on."""

    expected = 2
    count = 0
    all_inside = asyncio.Event()

    @classmethod
    def expect(cls, count: int) -> None:
        cls.expected, cls.count, cls.all_inside = count, 0, asyncio.Event()


async def async_checkout(request: HttpRequest) -> JsonResponse:
    """The async twin of checkout: requests in flight at once on one event loop."""
    Arrivals.count += 1
    if Arrivals.count == Arrivals.expected:
        Arrivals.all_inside.set()
    await asyncio.wait_for(Arrivals.all_inside.wait(), timeout=10)
    log.info("Checked out", extra={"segment": True})
    return JsonResponse(segment_logging.bound())


urlpatterns = [path("upgrade", upgrade), path("checkout", checkout), path("async-checkout", async_checkout)]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "segment_logging.contrib.django.SegmentContextMiddleware",
]


class PlanContext(SegmentContextMiddleware):
    """An override: binds the user and a property read from the request."""

    def context(self, request: Any) -> dict[str, Any] | None:
        return {"anonymous_id": request.COOKIES.get("ajs_anonymous_id"), "path": request.path}


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> dict[str, User]:
    """Django configured once, on a file database (shared by the threads sync_to_async uses)."""
    if not settings.configured:
        database = Path(tmp_path_factory.mktemp("django")) / "db.sqlite3"
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=MIDDLEWARE,
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}},
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            USE_TZ=True,
            LOGGING_CONFIG=None,  # Django's dictConfig() would close every handler of the other tests
        )
        django.setup()
        call_command("migrate", run_syncdb=True, verbosity=0)
    from django.contrib.auth.models import User  # only once the settings exist

    return {name: User.objects.get_or_create(username=name)[0] for name in ("ada", "bob")}


@pytest.fixture
def handler(make_handler: MakeHandler) -> Iterator[SegmentHandler]:
    made = make_handler()
    log.addHandler(made)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield made
    log.removeHandler(made)


def test_logged_in_user_is_bound_for_the_request(
    users: dict[str, User], handler: SegmentHandler, server: SegmentServer
) -> None:
    """A logged-in user's primary key is bound as user_id during the view; an anonymous visitor, nothing."""
    client = Client()
    assert client.get("/upgrade").json() == {}
    client.force_login(users["ada"])
    assert client.get("/upgrade").json() == {"user_id": str(users["ada"].pk)}
    assert handler.flush(timeout=10)
    [message] = server.messages  # the anonymous event had no id: reported, not sent
    assert (message["userId"], message["properties"]) == (str(users["ada"].pk), {"plan": "team"})


def test_threaded_requests_never_see_each_others_user(
    users: dict[str, User], handler: SegmentHandler, server: SegmentServer
) -> None:
    """Two requests served at once on two threads each log and see only their own user."""
    answers: dict[str, Any] = {}

    def request(name: str) -> None:
        client = Client()
        client.force_login(users[name])
        answers[name] = client.get("/checkout").json()

    threads = [threading.Thread(target=request, args=(name,)) for name in ("ada", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert answers == {name: {"user_id": str(users[name].pk)} for name in ("ada", "bob")}
    assert handler.flush(timeout=10)
    assert sorted(m["userId"] for m in server.messages) == sorted(str(u.pk) for u in users.values())


def test_async_requests_never_see_each_others_user(
    users: dict[str, User], handler: SegmentHandler, server: SegmentServer
) -> None:
    """Under ASGI the middleware runs async (request.auser()); two requests in flight keep their own users."""
    Arrivals.expect(2)
    clients = {name: AsyncClient() for name in ("ada", "bob")}
    for name, client in clients.items():
        client.force_login(users[name])

    async def main() -> list[Any]:
        responses = await asyncio.gather(*(client.get("/async-checkout") for client in clients.values()))
        return [response.json() for response in responses]

    assert asyncio.run(main()) == [{"user_id": str(users["ada"].pk)}, {"user_id": str(users["bob"].pk)}]
    assert handler.flush(timeout=10)
    assert sorted(m["userId"] for m in server.messages) == sorted(str(u.pk) for u in users.values())


def test_a_subclass_binds_what_its_context_returns(
    users: dict[str, User], handler: SegmentHandler, server: SegmentServer
) -> None:
    """Overriding context() binds other values, for sync and (through a thread) async requests alike."""
    middleware = [*MIDDLEWARE[:-1], f"{__name__}.PlanContext"]
    with override_settings(MIDDLEWARE=middleware):
        client = Client()
        client.cookies["ajs_anonymous_id"] = "a-1"
        assert client.get("/upgrade").json() == {"anonymous_id": "a-1", "path": "/upgrade"}
        async_client = AsyncClient()
        async_client.cookies["ajs_anonymous_id"] = "a-2"
        Arrivals.expect(1)
        answer = asyncio.run(async_client.get("/async-checkout")).json()
        assert answer == {"anonymous_id": "a-2", "path": "/async-checkout"}
    assert handler.flush(timeout=10)
    assert sorted((m["anonymousId"], m["properties"]["path"]) for m in server.messages) == [
        ("a-1", "/upgrade"),
        ("a-2", "/async-checkout"),
    ]


def test_a_failing_context_is_reported_and_the_request_goes_on(
    users: dict[str, User], handler: SegmentHandler, caplog: pytest.LogCaptureFixture
) -> None:
    """A context that returns what bind() refuses never fails the request: it runs unbound, reported once."""
    middleware = [*MIDDLEWARE[:-1], f"{__name__}.BrokenContext"]
    with override_settings(MIDDLEWARE=middleware), caplog.at_level(logging.ERROR, logger="segment_logging"):
        response = Client().get("/upgrade")
    assert (response.status_code, response.json()) == (200, {})
    [record] = [r for r in caplog.records if r.name == "segment_logging"]
    assert "could not bind the context" in record.getMessage()


class BrokenContext(SegmentContextMiddleware):
    def context(self, request: Any) -> dict[str, Any] | None:
        return {"user_id": 1.5}  # neither a str nor an int


ReadmeMiddleware: Any = None
"""The README's subclass, once a test has run its snippet (MIDDLEWARE names it by its dotted path)."""


def test_the_readme_snippets_work(
    users: dict[str, User], handler: SegmentHandler, server: SegmentServer
) -> None:
    """The README's MIDDLEWARE is the one these tests run; its subclass binds the user and a header's id."""
    global ReadmeMiddleware
    settings_snippet, subclass_snippet = framework_snippets("segment_logging.contrib.django")
    namespace: dict[str, Any] = {}
    exec(settings_snippet, namespace)
    assert namespace["MIDDLEWARE"] == MIDDLEWARE
    exec(subclass_snippet, namespace)
    ReadmeMiddleware = namespace["ShopContextMiddleware"]
    with override_settings(MIDDLEWARE=[*MIDDLEWARE[:-1], f"{__name__}.ReadmeMiddleware"]):
        client = Client()
        client.force_login(users["ada"])
        answer = client.get("/upgrade", headers={"X-Anonymous-Id": "a-1"}).json()
        assert answer == {"user_id": str(users["ada"].pk), "anonymous_id": "a-1"}
        assert Client().get("/upgrade", headers={"X-Anonymous-Id": "a-2"}).json() == {"anonymous_id": "a-2"}
    assert handler.flush(timeout=10)
    assert [(m.get("userId"), m["anonymousId"]) for m in server.messages] == [
        (str(users["ada"].pk), "a-1"),
        (None, "a-2"),
    ]
