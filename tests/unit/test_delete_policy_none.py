"""DELETE_POLICY=none in the core, in every arrival order with a duplicate: the delete
records the tombstone (so older events of the past life are skipped) and touches no
contact: no CRM call, the contact stays active with what it held. In-memory CRM and state;
Lambda's retries of transient failures replayed; expected values written by hand."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from auth0_sync.errors import TransientError
from auth0_sync.events import parse_event
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome, SyncCore
from tests.builders import at, created, deleted, updated
from tests.fakes.memory_crm import MemoryCrm

pytestmark = pytest.mark.unit

NOW = at(60 * 24 * 30)
USER = "auth0|n1"
SIGNUP = created(USER, at(0), email="noa@example.com", name="Noa A")
RENAMED = updated(USER, at(5), email="noa@example.com", name="Noa B")
GONE = deleted(USER, at(9))
AGAIN = created(USER, at(20), email="noa@example.com", name="Noa Again")

# Arrived before the delete -> what the contact holds afterwards (by hand: a later-arriving
# older event belongs to the past life and is skipped; nothing arrived: no contact at all).
EXPECTED_NAME = {
    (): None,
    ("signup",): "Noa A",
    ("renamed",): "Noa B",
    ("signup", "renamed"): "Noa B",
    ("renamed", "signup"): "Noa B",
}
NAMES = {id(SIGNUP): "signup", id(RENAMED): "renamed"}


def deliver(core: SyncCore, events: list[dict[str, Any]]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for raw in events:
        for _ in range(4):
            try:
                outcomes.append(core.apply(parse_event(raw, now=NOW), lease_seconds=30.0))
                break
            except TransientError:
                continue
    return outcomes


def world(policy: str = "none") -> tuple[MemoryCrm, SyncCore]:
    crm = MemoryCrm()
    config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", delete_policy=policy)
    return crm, SyncCore(config, crm, MemorySyncStateStore())


@pytest.mark.parametrize("order", list(itertools.permutations([SIGNUP, RENAMED, GONE])))
def test_none_records_the_delete_and_touches_no_contact(order: tuple[dict[str, Any], ...]) -> None:
    crm, core = world()
    events = [*order, order[0]]  # the first one delivered again at the end
    before = tuple(NAMES[id(e)] for e in order[: order.index(GONE)])

    outcomes = []
    for raw in events:
        calls = crm.calls_made()
        outcomes.extend(deliver(core, [raw]))
        if raw is GONE:
            assert crm.calls_made() == calls  # the delete costs no CRM call

    expected = EXPECTED_NAME[before]
    if expected is None:
        assert crm.contacts == {}
    else:
        (contact,) = crm.contacts.values()
        assert (contact["status"], contact["name"], contact["auth0_user_id"]) == (
            "active",
            expected,
            USER,
        )
    assert next(o.reason for o in outcomes if o.event_type == "user.deleted") == (
        "delete_policy_none"
    )


def test_a_new_life_after_none_updates_the_same_contact() -> None:
    crm, core = world()
    deliver(core, [SIGNUP, GONE, AGAIN])

    (contact,) = crm.contacts.values()
    assert (contact["status"], contact["name"]) == ("active", "Noa Again")


def test_deactivate_still_deactivates() -> None:
    crm, core = world("deactivate")
    deliver(core, [SIGNUP, GONE])

    (contact,) = crm.contacts.values()
    assert contact["status"] == "deactivated"
