"""State requests per event (issue 13): each call to the state store is one DynamoDB request
in the DynamoDB store, so counting the calls counts the requests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from auth0_sync.events import looks_like_a_login, parse_event
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore, Settled, SyncState, Unchanged
from auth0_sync.sync import SyncCore
from tests.builders import at, created, updated
from tests.fakes.memory_crm import MemoryCrm

pytestmark = pytest.mark.unit

USER = "auth0|hp1"
NOW = at(60 * 24 * 30)


class CountingStore(MemorySyncStateStore):
    """The in-memory store, counting the requests a DynamoDB store would make."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: Counter[str] = Counter()
        self._within = False

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        if not self._within:
            self.requests["acquire"] += 1
        return super().acquire(user_id, owner, lease_seconds)

    def acquire_if_newer(
        self, user_id: str, owner: str, lease_seconds: float, key: str
    ) -> SyncState | Settled:
        self.requests["acquire_if_newer"] += 1
        self._within = True  # one conditional write in DynamoDB, however memory does it
        try:
            return super().acquire_if_newer(user_id, owner, lease_seconds, key)
        finally:
            self._within = False

    def commit(self, state: SyncState, owner: str) -> None:
        self.requests["commit"] += 1
        super().commit(state, owner)

    def release(self, user_id: str, owner: str) -> None:
        self.requests["release"] += 1
        super().release(user_id, owner)

    def record_unchanged(self, user_id: str, seen: Unchanged) -> SyncState | None:
        self.requests["record_unchanged"] += 1
        return super().record_unchanged(user_id, seen)

    def claim_contact(self, contact_id: str, user_id: str, expected_owner: str | None) -> bool:
        self.requests["claim_contact"] += 1
        return super().claim_contact(contact_id, user_id, expected_owner)

    def mark_linked(self, secondary_id: str, primary_id: str, at: str | None = None) -> None:
        self.requests["mark_linked"] += 1
        super().mark_linked(secondary_id, primary_id, at)


def login(minute: int, **fields: Any) -> dict[str, Any]:
    """A user.updated of a login: Auth0 stamps last_login and updated_at alike."""
    event = updated(USER, at(minute), **fields)
    profile = event["detail"]["data"]["object"]
    profile["last_login"] = profile["updated_at"]
    return event


def edit(minute: int, **fields: Any) -> dict[str, Any]:
    """A user.updated of a profile edit: updated_at moves, last_login stays where it was."""
    event = updated(USER, at(minute), **fields)
    event["detail"]["data"]["object"]["last_login"] = at(0).isoformat()
    return event


@pytest.fixture
def world() -> tuple[SyncCore, CountingStore]:
    store = CountingStore()
    settings = Settings(crm_base_url="http://crm.invalid", crm_api_token="t")
    core = SyncCore(settings, MemoryCrm(), store)
    core.apply(parse_event(created(USER, at(0), email="hp@example.com", name="Hal"), NOW), 30)
    return core, store


def requests_for(world: tuple[SyncCore, CountingStore], raw: dict[str, Any]) -> tuple[str, int]:
    core, store = world
    store.requests.clear()
    outcome = core.apply(parse_event(raw, now=NOW), 30.0)
    return outcome.reason, sum(store.requests.values())


def test_a_login_that_changes_nothing_costs_one_request(world: Any) -> None:
    assert requests_for(world, login(5, email="hp@example.com", name="Hal")) == ("unchanged", 1)


def test_a_profile_edit_costs_two_requests(world: Any) -> None:
    assert requests_for(world, edit(5, email="hp@example.com", name="Hal B")) == ("updated", 2)


def test_a_duplicate_or_stale_edit_costs_one_request(world: Any) -> None:
    change = edit(5, email="hp@example.com", name="Hal B")
    requests_for(world, change)
    assert requests_for(world, change) == ("duplicate", 1)
    older = edit(3, email="hp@example.com", name="Hal B")
    assert requests_for(world, older) == ("stale", 1)


def test_a_duplicate_signup_costs_one_request(world: Any) -> None:
    signup = created("auth0|hp2", at(1), email="hp2@example.com", name="Ida")
    assert requests_for(world, signup) == ("created", 2)
    assert requests_for(world, signup) == ("duplicate", 1)


@pytest.mark.parametrize(
    ("last_login", "updated_at", "expected"),
    [
        ("2026-03-01T09:00:00.000Z", "2026-03-01T09:00:00.000Z", True),  # a login
        ("2026-03-01T09:00:00.000Z", "2026-03-01T09:00:00.400Z", True),  # rounded apart
        ("2026-03-01T09:00:00.000Z", "2026-03-01T09:30:00.000Z", False),  # an edit later
        (None, "2026-03-01T09:30:00.000Z", False),  # never logged in: an edit
        ("yesterday", "2026-03-01T09:30:00.000Z", True),  # unreadable: try the quick path
        ("2026-03-01T09:00:00.000Z", None, True),
    ],
)
def test_what_counts_as_a_login(last_login: Any, updated_at: Any, expected: bool) -> None:
    profile = {"user_id": USER, "last_login": last_login, "updated_at": updated_at}
    assert looks_like_a_login(profile) is expected
