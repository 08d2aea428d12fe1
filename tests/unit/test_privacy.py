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
        # Valid addresses with a quoted or a comment local part (RFC 5322 sections 3.4.1, 3.2.2).
        ('"first last"@example.com is taken', "<email> is taken"),
        (r'"ada \"the countess\" king"@example.com', "<email>"),
        ("john(work)@example.com is taken", "<email> is taken"),
        ("(work)john@example.com and ann@(home)example.org", "<email> and <email>"),
        ('reply to "Ada" <ada@example.com>', 'reply to "Ada" <<email>>'),
    ],
)
def test_personal_values_and_credentials_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_long_messages_are_cut() -> None:
    assert len(redact("x" * 1000)) == 200


def test_values_we_sent_are_masked_whatever_their_shape() -> None:
    echoed = "field name: Zebulon Quarternight is not allowed"
    assert redact(echoed, sent=["Zebulon Quarternight", None, 42]) == (
        "field name: <value> is not allowed"
    )


HOSTILE = [
    # The fault campaign's texts: one long run of non-space characters (which the old email
    # mask scanned from every position), unclosed quotes and comments, an echoed huge name.
    "ada@example.com " + "x" * 1_000_000,
    "ada@example.com " + '"' * 1_000_000,
    "ada@example.com " + "(" * 1_000_000,
    "ada@example.com " + "a@" * 500_000,
    "ada@example.com " + "+1 " * 300_000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=["run", "quotes", "parens", "ats", "digits"])
def test_a_hostile_megabyte_is_still_masked_and_cut(text: str) -> None:
    masked = redact(text)
    assert masked.startswith("<email> ")
    assert "ada" not in masked
    assert len(masked) == 200


def test_an_echoed_huge_value_is_masked_whole() -> None:
    name = "Zebulon" * 40_000  # 280 KB, longer than what the masks look at
    assert redact(f"cannot store {name}!", sent=[name]) == "cannot store <value>!"


def test_an_address_cut_at_the_edge_of_what_is_looked_at_is_never_shown() -> None:
    # Long addresses shrink to "<email>": what is shown comes from near the cut, where the
    # quoted address below is split in two (its local part would read as plain text).
    def address(length: int) -> str:
        return "a" * 64 + "@" + "b" * (length - 66) + " "

    head = address(316) * 12  # 3,792 characters
    for offset in range(0, 30, 3):
        filler = address(4096 - len(head) - offset)  # the quoted address starts at the cut
        masked = redact(head + filler + '"first last"@example.com end')
        assert "first" not in masked, (offset, masked)
        assert "last" not in masked, (offset, masked)
        assert masked.startswith("<email> " * 10)
