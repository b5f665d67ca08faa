"""The sink's live page in a real headless Chromium: newest first, expandable JSON, filter, live updates.

Driven through Debian's chromium and chromium-driver packages (.ci/run installs them).
Without them the tests skip locally, but fail when $CI is set.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from segment_logging import SegmentHandler
from segment_logging._sink import Sink

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 15.0
"""Seconds a condition on the page may take (the page polls every second)."""

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if os.environ.get("CI"):
        raise RuntimeError(
            f"CI needs {CHROMIUM} and {CHROMEDRIVER}: .ci/run installs chromium and chromium-driver"
        )
    pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only with a browser to drive
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the module, with a profile of its own, never reaching the network."""
    profile = tempfile.mkdtemp(prefix="segment-logging-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink(port=0, out=io.StringIO()).start() as started:
        yield started


@pytest.fixture
def send(sink: Sink, logger: logging.Logger) -> Iterator[SegmentHandlerSend]:
    handler = SegmentHandler("any-key", host=sink.url, shutdown_timeout=2)
    logger.addHandler(handler)
    yield SegmentHandlerSend(handler, logger)
    logger.removeHandler(handler)
    handler.close()


class SegmentHandlerSend:
    """Log events through a handler pointed at the sink, and wait until they arrived."""

    def __init__(self, handler: SegmentHandler, logger: logging.Logger) -> None:
        self.handler = handler
        self.logger = logger

    def __call__(self, name: str, **segment: object) -> None:
        self.logger.info(name, extra={"segment": segment})
        assert self.handler.flush(5)


def _rows(browser: WebDriver, visible_only: bool = True) -> list[WebElement]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#events > li")
    return [row for row in rows if row.is_displayed()] if visible_only else rows


def _wait_rows(browser: WebDriver, count: int) -> list[WebElement]:
    WebDriverWait(browser, WAIT, poll_frequency=0.05).until(lambda b: len(_rows(b)) == count)
    return _rows(browser)


def test_events_are_listed_newest_first(browser: WebDriver, sink: Sink, send: SegmentHandlerSend) -> None:
    """Events already received show at once, the newest on top, with type, name and user."""
    send("Signup", user_id="u1", properties={"plan": "pro"})
    send("Upgraded", user_id="u2", properties={"plan": "team"})
    browser.get(sink.url + "/")
    rows = _wait_rows(browser, 2)
    assert rows[0].find_element(By.CLASS_NAME, "name").text == "Upgraded"
    assert rows[0].find_element(By.CLASS_NAME, "type").text == "track"
    assert rows[0].find_element(By.CLASS_NAME, "user").text == "user u2"
    assert rows[1].find_element(By.CLASS_NAME, "name").text == "Signup"
    assert "plan=pro" in rows[1].find_element(By.CLASS_NAME, "props").text


def test_new_events_appear_without_reloading(
    browser: WebDriver, sink: Sink, send: SegmentHandlerSend
) -> None:
    """An event sent while the page is open appears on top, without a reload."""
    browser.get(sink.url + "/")
    WebDriverWait(browser, WAIT, poll_frequency=0.05).until(
        lambda b: "0 received" in b.find_element(By.ID, "status").text
    )
    assert browser.find_element(By.ID, "empty").is_displayed()
    send("Signup", user_id="u1")
    send("Home", type="page", user_id="u1")
    rows = _wait_rows(browser, 2)
    assert rows[0].find_element(By.CLASS_NAME, "type").text == "page"
    assert not browser.find_element(By.ID, "empty").is_displayed()


def test_a_click_shows_the_full_json(browser: WebDriver, sink: Sink, send: SegmentHandlerSend) -> None:
    """Clicking a row expands the message's full JSON (messageId, context, ...); a second click folds it."""
    send("Signup", user_id="u1", properties={"plan": "pro"})
    browser.get(sink.url + "/")
    (row,) = _wait_rows(browser, 1)
    detail = row.find_element(By.CSS_SELECTOR, "pre.json")
    assert not detail.is_displayed()
    row.find_element(By.CLASS_NAME, "summary").click()
    assert detail.is_displayed()
    message = json.loads(detail.text)
    assert message["event"] == "Signup"
    assert message["properties"] == {"plan": "pro"}
    assert message["context"]["library"]["name"] == "segment-logging"
    assert message["messageId"]
    row.find_element(By.CLASS_NAME, "summary").click()
    assert not detail.is_displayed()


def test_filter_by_event_name_or_user(browser: WebDriver, sink: Sink, send: SegmentHandlerSend) -> None:
    """The filter box keeps rows whose event name or user contains the text, case-insensitively."""
    send("Signup", user_id="alice")
    send("Upgraded", user_id="bob")
    send("Signup", user_id="carol")
    browser.get(sink.url + "/")
    _wait_rows(browser, 3)
    _type_filter(browser, "signup")
    rows = _wait_rows(browser, 2)
    assert [row.find_element(By.CLASS_NAME, "user").text for row in rows] == ["user carol", "user alice"]
    assert browser.find_element(By.ID, "status").text == "2 of 3 shown"
    _type_filter(browser, "BOB")
    (row,) = _wait_rows(browser, 1)
    assert row.find_element(By.CLASS_NAME, "name").text == "Upgraded"
    _type_filter(browser, "")
    _wait_rows(browser, 3)


def _type_filter(browser: WebDriver, text: str) -> None:
    """Replace the filter's text by typing, as a user would (so the page sees input events)."""
    box = browser.find_element(By.ID, "filter")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    if text:
        box.send_keys(text)


def test_rejected_batches_show_with_the_reason(browser: WebDriver, sink: Sink) -> None:
    """A batch the sink rejected is listed, marked rejected, with Segment's reason."""
    import httpx

    batch = {"batch": [{"type": "track", "event": "Signup"}], "sentAt": "2026-01-01T00:00:00Z"}
    assert httpx.post(f"{sink.url}/v1/batch", json=batch, auth=("k", "")).status_code == 400
    browser.get(sink.url + "/")
    (row,) = _wait_rows(browser, 1)
    assert "rejected" in (row.get_attribute("class") or "").split()
    assert row.find_element(By.CLASS_NAME, "name").text.startswith(
        "400 batch[0]: userId or anonymousId is required"
    )


def test_event_text_is_never_run_as_html(browser: WebDriver, sink: Sink, send: SegmentHandlerSend) -> None:
    """Markup in an event (name, user, properties) is shown as text, not run."""
    payload = "<img src=x onerror=\"document.title='pwned'\">"
    send(payload, user_id=payload, properties={"html": payload})
    browser.get(sink.url + "/")
    (row,) = _wait_rows(browser, 1)
    assert row.find_element(By.CLASS_NAME, "name").text == payload
    assert browser.find_elements(By.CSS_SELECTOR, "#events img") == []
    assert browser.title != "pwned"
