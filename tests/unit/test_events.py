"""The event model: fixtures parse, types normalise, malformed events name the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auth0_sync.errors import InvalidEvent
from auth0_sync.events import DeletedUser, UserProfile, identity_of, parse_event
from auth0_sync.routing import route_for
from tests.conftest import EVENTS_DIR, load_event

pytestmark = pytest.mark.unit

VALID_FIXTURES = sorted(
    p.stem for p in EVENTS_DIR.glob("*.json") if not p.stem.startswith("malformed")
)


@pytest.mark.parametrize("name", VALID_FIXTURES)
def test_every_fixture_is_valid_for_the_model_the_handlers_use(name: str) -> None:
    event = parse_event(load_event(name))
    assert event.event_id.startswith("evt_")
    assert "." in event.event_type


def test_updated_event_exposes_ids_and_change_time() -> None:
    event = parse_event(load_event("user_updated"))
    assert event.event_type == "user.updated"
    assert event.event_id == "evt_4fPq9XkR2mTz8LwB7nVc1d"
    assert isinstance(event.user, UserProfile)
    assert event.user_id == "auth0|65e5a1f0c2b7d94e1a3f0c11"
    # The ordering key is data.object.updated_at, not the envelope or event time.
    assert event.change_time == datetime(2026, 3, 4, 10, 15, 30, 900000, tzinfo=UTC)


def test_legacy_com_auth0_type_is_normalised_and_routed() -> None:
    event = parse_event(load_event("legacy_type_user_created"))
    assert event.event_type == "user.created"
    route = route_for(event.event_type)
    assert route is not None
    assert route.module == "auth0_sync.handlers.user_created"


def test_delete_with_only_user_id_and_deleted_at_is_valid() -> None:
    event = parse_event(load_event("user_deleted_minimal"))
    assert isinstance(event.user, DeletedUser)
    assert event.user.email is None
    assert event.change_time == datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def test_delete_without_deleted_at_names_the_field() -> None:
    raw = load_event("user_deleted_minimal")
    del raw["detail"]["data"]["object"]["deleted_at"]
    with pytest.raises(InvalidEvent, match=r"detail\.data\.object\.deleted_at: Field required"):
        parse_event(raw)


def test_missing_user_id_names_the_field() -> None:
    with pytest.raises(
        InvalidEvent, match=r"detail\.data\.object\.user_id: Field required"
    ) as info:
        parse_event(load_event("malformed_missing_user_id"))
    assert info.value.reason == "invalid_event"


def test_missing_optional_fields_are_fine_and_change_time_falls_back_to_event_time() -> None:
    raw = load_event("user_updated")
    raw["detail"]["data"]["object"] = {"user_id": "auth0|x"}
    event = parse_event(raw)
    assert event.user.email is None
    assert event.change_time == datetime(2026, 3, 4, 10, 15, 30, 912000, tzinfo=UTC)


def test_envelope_errors_name_the_field() -> None:
    raw = load_event("user_updated")
    del raw["detail"]["id"]
    with pytest.raises(InvalidEvent, match=r"detail\.id: Field required"):
        parse_event(raw)


@pytest.mark.parametrize("where", ["event id", "user id"])
@pytest.mark.parametrize("control", ["\r\n", "\n", "\t", "\x00"])
def test_an_id_with_a_control_character_is_an_invalid_event(where: str, control: str) -> None:
    # Not a header the CRM call cannot send (`crm_config`), nor a line break in a listing.
    raw = load_event("user_updated")
    if where == "event id":
        raw["detail"]["id"] = f"evt_1{control}X-Injected: 1"
        field = r"detail\.id"
    else:
        raw["detail"]["data"]["object"]["user_id"] = f"auth0|1{control}x"
        field = r"detail\.data\.object\.user_id"
    with pytest.raises(InvalidEvent, match=rf"{field}: .*control characters"):
        parse_event(raw)


def test_non_object_event_is_rejected_clearly() -> None:
    with pytest.raises(InvalidEvent, match="expected a JSON object, got list"):
        parse_event([1, 2])


def test_unknown_type_parses_without_user_validation() -> None:
    event = parse_event(load_event("unknown_type"))
    assert event.event_type == "group.created"
    assert route_for(event.event_type) is None


def test_test_event_is_flagged() -> None:
    assert parse_event(load_event("test_event")).detail.is_test
    assert not parse_event(load_event("user_updated")).detail.is_test


def test_identity_of_survives_garbage() -> None:
    assert identity_of("nonsense") == {"event_id": None, "event_type": None, "user_id": None}
    assert identity_of(load_event("malformed_missing_user_id")) == {
        "event_id": "evt_BaD000000000000000001",
        "event_type": "user.updated",
        "user_id": None,
    }
