"""What reaches a log line or a DLQ reason from a foreign message."""

from __future__ import annotations

import pytest

from auth0_sync.privacy import redact

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email ada@example.com is taken", "email <email> is taken"),
        ("GET /contacts?email=ada%40example.com failed", "GET /contacts?email=<email> failed"),
        ("phone +44 7700 900123 invalid", "phone <phone> invalid"),
        ("Bearer sk_live_123 rejected", "Bearer *** rejected"),
        ('{"token": "abc.def"}', '{"token": "***"}'),
        ("contact c_42 not found", "contact c_42 not found"),
    ],
)
def test_personal_values_and_credentials_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_long_messages_are_cut() -> None:
    assert len(redact("x" * 1000)) == 200
