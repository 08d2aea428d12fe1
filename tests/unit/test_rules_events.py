"""Rules of `auth0_sync/events.py` that no other test held (issue 28): the ids a dead letter
is listed under, how a bad event is described, the clock checks, the order key and the
login hint. Events are written out by hand (tests/builders.py, shaped from Auth0's event
catalog: https://auth0.com/docs/customize/events/event-types); expected values too."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from types import FrameType
from typing import Any

import pytest

from auth0_sync.errors import InvalidEvent
from auth0_sync.events import identity_of, iso, looks_like_a_login, parse_event
from tests.builders import at, bus_event, created, deleted, stamp, updated

pytestmark = pytest.mark.unit

NOW = at(60)


# identity_of: best-effort ids of a raw event, for logs and DLQ listings -----------------


def test_the_ids_of_a_user_event_are_found() -> None:
    raw = updated("auth0|7", at(0), event_id="evt_7")
    assert identity_of(raw) == {
        "event_id": "evt_7",
        "event_type": "user.updated",
        "user_id": "auth0|7",
    }


def test_a_membership_events_user_is_found_under_data_object_user() -> None:
    # organization.member.added: data.object = {organization: {...}, user: {user_id}}
    raw = bus_event(
        "organization.member.added",
        {"organization": {"id": "org_1"}, "user": {"user_id": "auth0|8"}},
        when=at(0),
        event_id="evt_8",
    )
    assert identity_of(raw) == {
        "event_id": "evt_8",
        "event_type": "organization.member.added",
        "user_id": "auth0|8",
    }


def test_a_legacy_type_is_listed_under_its_normal_name() -> None:
    raw = created("auth0|9", at(0), event_id="evt_9")
    raw["detail"]["type"] = "com.auth0.user.created"
    assert identity_of(raw)["event_type"] == "user.created"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw.update(detail="not an object"),
        lambda raw: raw["detail"].update(data=["not", "an", "object"]),
        lambda raw: raw["detail"]["data"].update(object=None),
    ],
)
def test_ids_missing_anywhere_on_the_way_are_none(mangle: Any) -> None:
    raw = updated("auth0|7", at(0), event_id="evt_7")
    mangle(raw)
    assert identity_of(raw)["user_id"] is None


def test_ids_that_are_not_text_are_none() -> None:
    raw = updated("auth0|7", at(0))
    raw["detail"].update(id=17, type=["user.updated"])
    raw["detail"]["data"]["object"]["user_id"] = 42
    assert identity_of(raw) == {"event_id": None, "event_type": None, "user_id": None}
    raw["detail"]["data"]["object"] = {"user": {"user_id": 43}}
    assert identity_of(raw)["user_id"] is None


def test_a_user_id_at_the_top_wins_over_a_members_user() -> None:
    raw = updated("auth0|7", at(0))
    raw["detail"]["data"]["object"]["user"] = {"user_id": "auth0|other"}
    assert identity_of(raw)["user_id"] == "auth0|7"


# How a bad event is described -----------------------------------------------------------


def test_every_problem_of_a_bad_event_is_named_in_one_message() -> None:
    raw = updated("auth0|7", at(0))
    del raw["detail"]["id"]
    del raw["account"]
    with pytest.raises(InvalidEvent) as bad:
        parse_event(raw, now=NOW)
    assert bad.value.message == "account: Field required; detail.id: Field required"


def test_a_bad_user_object_is_named_under_data_object() -> None:
    raw = updated("auth0|7", at(0))
    raw["detail"]["data"]["object"]["user_id"] = ""
    raw["detail"]["data"]["object"]["updated_at"] = "yesterday"
    with pytest.raises(InvalidEvent) as bad:
        parse_event(raw, now=NOW)
    assert bad.value.message.startswith("detail.data.object.user_id: String should have at least")
    assert "; detail.data.object.updated_at: Input should be a valid datetime" in bad.value.message


def test_a_user_id_of_512_characters_is_taken_and_of_513_refused() -> None:
    parse_event(updated("auth0|" + "x" * 506, at(0)), now=NOW)
    with pytest.raises(InvalidEvent, match=r"detail\.data\.object\.user_id: String should"):
        parse_event(updated("auth0|" + "x" * 507, at(0)), now=NOW)


# The clock checks -----------------------------------------------------------------------


def test_a_change_up_to_five_minutes_after_the_events_own_time_is_taken() -> None:
    raw = updated("auth0|7", at(0))
    raw["detail"]["data"]["object"]["updated_at"] = stamp(at(5))
    assert parse_event(raw, now=NOW).change_time == at(5)


def test_a_change_later_than_the_events_own_time_plus_the_skew_is_a_bad_event() -> None:
    raw = updated("auth0|7", at(0))
    raw["detail"]["data"]["object"]["updated_at"] = stamp(at(5) + timedelta(seconds=1))
    with pytest.raises(InvalidEvent) as bad:
        parse_event(raw, now=NOW)
    assert bad.value.message == (
        "detail.data.object.updated_at: 2026-03-01T09:05:01.000000+00:00 is later than the "
        "event's own time 2026-03-01T09:00:00.000000+00:00"
    )


def test_a_delete_in_the_future_names_deleted_at() -> None:
    raw = deleted("auth0|7", NOW + timedelta(minutes=6))
    with pytest.raises(InvalidEvent) as bad:
        parse_event(raw, now=NOW)
    assert bad.value.message == (
        "detail.data.object.deleted_at: 2026-03-01T10:06:00.000000+00:00 is in the future "
        "(now 2026-03-01T10:00:00.000000+00:00)"
    )
    parse_event(deleted("auth0|7", NOW + timedelta(minutes=5)), now=NOW)  # within the skew


def test_without_a_given_now_the_clock_is_the_real_one() -> None:
    ahead = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(InvalidEvent, match="is in the future"):
        parse_event(updated("auth0|7", ahead))


def test_a_test_event_is_not_checked_against_the_clock() -> None:
    raw = updated("auth0|7", NOW + timedelta(days=1))
    raw["detail"]["a0purpose"] = "test"
    assert parse_event(raw, now=NOW).detail.is_test


# The order key and the login hint -------------------------------------------------------


def test_the_order_key_is_the_change_time_the_types_rank_and_the_event_id() -> None:
    key = parse_event(updated("auth0|7", at(0), event_id="evt_k"), now=NOW).order_key
    assert key == ("2026-03-01T09:00:00.000000+00:00", 1, "evt_k")
    delete = parse_event(deleted("auth0|7", at(1)), now=NOW)
    assert delete.order_key[:2] == ("2026-03-01T09:01:00.000000+00:00", 2)
    assert parse_event(created("auth0|7", at(0)), now=NOW).order_key[1] == 0


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's zone is not UTC (Lambda's is; a developer's may not be)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo")
def test_a_time_is_written_fixed_width_in_utc_whatever_the_machines_zone() -> None:
    two_hours_east = timezone(timedelta(hours=2))
    moment = datetime(2026, 3, 1, 11, 0, tzinfo=two_hours_east)
    assert iso(moment) == "2026-03-01T09:00:00.000000+00:00"


@pytest.mark.usefixtures("tokyo")
def test_a_stamp_without_an_offset_is_read_as_utc() -> None:
    raw = updated("auth0|7", at(0))
    raw["detail"]["data"]["object"]["updated_at"] = "2026-03-01T09:00:00"
    assert parse_event(raw, now=NOW).change_time == at(0)


@pytest.mark.parametrize(
    ("profile", "login"),
    [
        ({"updated_at": "2026-03-01T09:00:00.400Z", "last_login": "2026-03-01T09:00:00Z"}, True),
        ({"updated_at": "2026-03-01T09:00:01Z", "last_login": "2026-03-01T09:00:00Z"}, True),
        ({"updated_at": "2026-03-01T09:00:00Z", "last_login": "2026-03-01T09:00:01Z"}, True),
        ({"updated_at": "2026-03-01T09:00:02Z", "last_login": "2026-03-01T09:00:00Z"}, False),
        ({"updated_at": "2026-03-01T09:00:00Z", "last_login": "2026-03-01T09:00:02Z"}, False),
        ({"updated_at": "2026-03-01T10:00:00+01:00", "last_login": "2026-03-01T09:00:00"}, True),
        ({"updated_at": "2026-03-01T09:00:00Z"}, False),
        ({"last_login": "2026-03-01T09:00:00Z"}, True),
        ({"updated_at": "soon", "last_login": "2026-03-01T09:00:00Z"}, True),
    ],
)
def test_a_login_stamps_last_login_and_updated_at_alike(
    profile: dict[str, Any], login: bool
) -> None:
    assert looks_like_a_login(profile) is login


def test_linked_accounts_are_the_other_identities_sorted_once() -> None:
    identities = [
        {"provider": "auth0", "user_id": "7"},  # the user itself
        {"provider": "google-oauth2", "user_id": 1234},
        {"provider": "email", "user_id": "x"},
        {"provider": "email", "user_id": "x"},
        {"provider": None, "user_id": "y"},
        {"provider": "github", "user_id": None},
    ]
    event = parse_event(updated("auth0|7", at(0), identities=identities), now=NOW)
    assert event.user.linked_user_ids == ["email|x", "google-oauth2|1234"]  # type: ignore[union-attr]


def test_an_id_with_a_line_break_is_refused_saying_why() -> None:
    raw = updated("auth0|7\nX-Injected: 1", at(0))
    with pytest.raises(InvalidEvent) as bad:
        parse_event(raw, now=NOW)
    assert bad.value.message == (
        "detail.data.object.user_id: Value error, must not contain control characters "
        "(a line break, a tab...)"
    )


def _depth() -> int:
    frame: FrameType | None = sys._getframe()
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_an_event_that_exhausts_the_stack_is_a_bad_event_not_a_crash() -> None:
    # Python raises RecursionError when validation runs out of stack (a deeply nested
    # event); the stack is shortened here instead of building such an event, whose depth
    # would depend on pydantic's internals. Some limit just above this frame's depth runs
    # out inside validation.
    raw = updated("auth0|7", at(0))
    old = sys.getrecursionlimit()
    messages = set()
    for spare in range(2, 40):
        try:
            sys.setrecursionlimit(_depth() + spare)
            parse_event(raw, now=NOW)
        except InvalidEvent as exc:
            messages.add(exc.message)
        except RecursionError:
            pass  # ran out before validation began: not what this test is about
        finally:
            sys.setrecursionlimit(old)
    assert messages == {"event: nested too deeply to be an Auth0 event"}
