"""The deactivation brake's limit (`auth0_sync.brake`): how a limit is written, how many
deactivations it allows, and where it stops. Expected values worked out by hand."""

from __future__ import annotations

import pytest

from auth0_sync.brake import DeactivationLimit, check
from auth0_sync.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "contacts", "allowed"),
    [
        ("250", 10_000, 250),  # a bare number is a count, whatever the CRM's size
        ("0", 10, 0),
        ("10%", 1000, 100),
        ("10%", 1001, 101),  # a share is rounded up
        ("10%", 5, 1),  # so a small CRM may still lose one contact
        ("10%", 0, 0),
        ("2.5%", 200, 5),
        (" 50 % ", 3, 2),
        ("100%", 7, 7),
    ],
)
def test_a_count_or_a_share_of_the_contacts(text: str, contacts: int, allowed: int) -> None:
    assert DeactivationLimit.parse(text).allowed(contacts) == allowed


@pytest.mark.parametrize("text", ["", "ten", "-1", "10 percent", "101%", "1e3", "%"])
def test_anything_else_is_an_error_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match="DEACTIVATION_LIMIT="):
        DeactivationLimit.parse(text)


def test_the_default_is_ten_percent() -> None:
    assert DeactivationLimit.from_env({}).allowed(1000) == 100
    assert DeactivationLimit.from_env({"DEACTIVATION_LIMIT": "7"}).allowed(1000) == 7


@pytest.mark.parametrize(("planned", "stopped"), [(99, False), (100, False), (101, True)])
def test_it_stops_only_above_the_limit(planned: int, stopped: bool) -> None:
    assert check(planned, 1000, DeactivationLimit.parse("10%")).stopped is stopped


@pytest.mark.parametrize(("planned", "stopped"), [(4, False), (5, False), (6, True)])
def test_a_persons_allowance_replaces_the_limit(planned: int, stopped: bool) -> None:
    verdict = check(planned, 1000, DeactivationLimit.parse("1"), allow=5)
    assert verdict.stopped is stopped


def test_the_message_says_how_many_and_how_to_proceed() -> None:
    verdict = check(900, 1000, DeactivationLimit.parse("10%"))
    assert verdict.message("backfill") == (
        "backfill would deactivate 900 contact(s) of 1000, above the limit of 100 "
        "(DEACTIVATION_LIMIT=10%): nothing was written. Check the export and the CRM it "
        "runs against; if these deactivations are right, run again with "
        "--allow-deactivations 900"
    )
