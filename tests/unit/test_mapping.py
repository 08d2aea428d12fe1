"""Field mapping and fingerprints."""

from __future__ import annotations

import pytest

from auth0_sync.mapping import anonymous_email, fingerprint, get_path, map_fields
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


def test_default_mapping_sends_present_values_and_never_blanks() -> None:
    fields = map_fields(PROFILE, DEFAULT_FIELD_MAPPING)
    # given_name "" and family_name None are left out: the CRM keeps what it has.
    assert fields == {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+447700900123"}


def test_custom_mapping_with_nested_source() -> None:
    fields = map_fields(PROFILE, {"user_metadata.company": "name", "email": "email"})
    assert fields == {"name": "Analytical Engines Ltd", "email": "ada@example.com"}


def test_fingerprint_ignores_key_order_and_sees_value_changes() -> None:
    a = fingerprint({"email": "a@x", "name": "A"})
    assert a == fingerprint({"name": "A", "email": "a@x"})
    assert a != fingerprint({"email": "a@x", "name": "B"})


def test_anonymous_email_is_stable_and_does_not_reveal_the_user() -> None:
    email = anonymous_email("auth0|65e5a1f0c2b7d94e1a3f0c11")
    assert email == anonymous_email("auth0|65e5a1f0c2b7d94e1a3f0c11")
    assert email.endswith("@anonymized.invalid")
    assert "65e5a1f0" not in email
