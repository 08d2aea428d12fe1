"""Field mapping: what a write contains, and how removals are seen."""

from __future__ import annotations

from decimal import Decimal

import pytest

from auth0_sync.errors import InvalidEvent
from auth0_sync.mapping import (
    AbsentPolicy,
    changed,
    desired_fields,
    digest,
    get_path,
    present_fields,
)
from auth0_sync.settings import DEFAULT_FIELD_MAPPING

pytestmark = pytest.mark.unit

PROFILE = {
    "user_id": "auth0|1",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "given_name": "",
    "family_name": None,
    "phone_number": "+447700900123",
    "user_metadata": {"company": "Analytical Engines Ltd", "address": {"city": "London"}},
}


def test_dotted_paths_reach_nested_attributes() -> None:
    assert get_path(PROFILE, "user_metadata.address.city") == "London"
    assert get_path(PROFILE, "user_metadata.missing.city") is None
    assert get_path(PROFILE, "email.domain") is None  # a string has no children


def test_explicit_null_and_empty_clear_and_absent_is_kept() -> None:
    fields = desired_fields(PROFILE, None, DEFAULT_FIELD_MAPPING)
    assert fields == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "given_name": None,
        "family_name": None,
        "phone": "+447700900123",
    }
    assert desired_fields({"user_id": "auth0|1"}, None, {"name": "name"}) == {}


def test_absent_is_cleared_when_the_tenant_says_profiles_are_full() -> None:
    fields = desired_fields(
        {"user_id": "auth0|1"}, None, {"name": "name"}, absent=AbsentPolicy.CLEAR
    )
    assert fields == {"name": None}


def test_a_value_gone_since_previous_object_is_cleared() -> None:
    previous = {"phone_number": "+44", "name": ""}
    fields = desired_fields(
        {"user_id": "auth0|1"}, previous, {"phone_number": "phone", "name": "name"}
    )
    # The phone was there and is gone; the name was empty before too, so nothing is said.
    assert fields == {"phone": None}


def test_a_required_field_is_never_cleared() -> None:
    fields = desired_fields({"email": None}, None, {"email": "email"}, required={"email"})
    assert fields == {}


def test_custom_mapping_with_nested_source() -> None:
    fields = desired_fields(PROFILE, None, {"user_metadata.company": "name", "email": "email"})
    assert fields == {"name": "Analytical Engines Ltd", "email": "ada@example.com"}


@pytest.mark.parametrize("value", [float("nan"), {"a": 1}, [1], float("inf")])
def test_a_value_that_is_not_text_is_a_bad_event_naming_the_attribute(value: object) -> None:
    with pytest.raises(InvalidEvent, match=r"detail\.data\.object\.name: "):
        desired_fields({"name": value}, None, {"name": "name"})


def test_numbers_and_booleans_are_written_as_text() -> None:
    assert desired_fields({"n": 7, "b": True}, None, {"n": "name", "b": "phone"}) == {
        "name": "7",
        "phone": "true",
    }


def test_only_fields_whose_digest_differs_are_changes() -> None:
    written = {"email": digest("a@x"), "name": digest("A"), "phone": digest(None)}
    assert changed({"email": "a@x", "name": "B", "phone": None}, written) == {"name": "B"}
    assert changed({"given_name": None}, written) == {"given_name": None}  # never written


def test_a_false_flag_is_written_as_false() -> None:
    assert desired_fields({"b": False}, None, {"b": "phone"}) == {"phone": "false"}


def test_a_digest_is_the_first_16_hex_digits_of_the_sha256_of_the_json_value() -> None:
    # Stored per field in the state table: it must not change between versions. Expected
    # values from `printf '"Ada"' | sha256sum` and `printf 'null' | sha256sum`.
    assert digest("Ada") == "a39afeed7d331921"
    assert digest(None) == "74234e98afe7498f"


def test_a_naive_sync_sends_every_mapped_attribute_that_has_a_value() -> None:
    # bench/naive.py: what a sync without field-level rules would write.
    assert present_fields(PROFILE, DEFAULT_FIELD_MAPPING) == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+447700900123",
    }


def test_an_attribute_absent_before_and_after_the_change_is_not_a_removal() -> None:
    previous = {"user_id": "auth0|1", "email": "ada@example.com"}
    assert desired_fields({"user_id": "auth0|1"}, previous, {"phone_number": "phone"}) == {}


def test_any_json_value_has_one_digest_whatever_its_key_order_or_type() -> None:
    # Expected: `printf '{"a":[1,2],"b":1}' | sha256sum` (keys sorted, no spaces), and a
    # value JSON cannot hold is digested as its text: `printf '"1.5"' | sha256sum`.
    assert digest({"b": 1, "a": [1, 2]}) == "94a786c3662bc7be"
    assert digest(Decimal("1.5")) == "24c74279834561bd"


def test_a_value_that_is_not_text_says_its_type_and_what_to_do() -> None:
    with pytest.raises(InvalidEvent) as bad:
        desired_fields({"user_metadata": {"tags": ["a"]}}, None, {"user_metadata.tags": "name"})
    assert bad.value.message == (
        "detail.data.object.user_metadata.tags: a list cannot be written to a CRM text field "
        "(map a text attribute)"
    )
