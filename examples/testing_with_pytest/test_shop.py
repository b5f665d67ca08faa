"""The shop's analytics, tested with the pytest plugin (run: pytest examples/testing_with_pytest)."""

from __future__ import annotations

import shop

from segment_logging.testing import SegmentEvents


def test_sign_up_identifies_then_tracks(segment_events: SegmentEvents) -> None:
    """Signing up sends who the user is, then the Signup event with the plan."""
    shop.sign_up("u1", "ada@example.com", plan="pro")

    segment_events.assert_identified("u1", traits={"email": "ada@example.com"})
    segment_events.assert_tracked("Signup", user_id="u1", properties={"plan": "pro"})
    assert [m["type"] for m in segment_events.messages] == ["identify", "track"]


def test_upgrade_sends_plan_and_seats(segment_events: SegmentEvents) -> None:
    """An upgrade is tracked with every extra field as a property."""
    shop.upgrade("u1", "team", seats=5)

    segment_events.assert_tracked("Upgraded", user_id="u1", properties={"plan": "team", "seats": 5})


def test_a_free_plan_sends_nothing(segment_events: SegmentEvents) -> None:
    """Moving to the free plan is not an upgrade."""
    shop.upgrade("u1", "free", seats=1)

    segment_events.assert_nothing_sent()
