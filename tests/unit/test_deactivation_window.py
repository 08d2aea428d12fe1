"""The live path's deactivation brake in the core (`auth0_sync.deactivation_window`): past
the window's limit a delete goes to the DLQ under `deactivation_limit` with its contact and
state untouched; only deactivations count; a later window (or a replay past the counter)
applies it (the window slides: `test_deactivation_window_slides.py`). In-memory CRM
and state; expected values written by hand."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_sync.deactivation_window import MemoryDeactivationWindow
from auth0_sync.errors import PermanentError
from auth0_sync.events import parse_event
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome, SyncCore
from tests.builders import at, created, deleted, updated
from tests.fakes.memory_crm import MemoryCrm

pytestmark = pytest.mark.unit

NOW = at(60 * 24 * 30)
USERS = [f"auth0|w{k}" for k in range(5)]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, limit: int, **settings: Any) -> None:
        self.crm = MemoryCrm()
        self.state = MemorySyncStateStore()
        self.clock = Clock()
        self.window = MemoryDeactivationWindow(limit, 3600, clock=self.clock)
        config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", **settings)
        self.core = SyncCore(config, self.crm, self.state, self.window)
        self.held: list[str] = []

    def apply(self, raw: dict[str, Any]) -> Outcome | None:
        try:
            return self.core.apply(parse_event(raw, now=NOW), lease_seconds=30.0)
        except PermanentError as exc:
            self.held.append(exc.reason)
            return None

    def status(self, user_id: str) -> str:
        (contact,) = self.crm.owned_by(user_id)
        return str(contact["status"])


def signed_up(world: World) -> None:
    for k, user in enumerate(USERS):
        world.apply(created(user, at(k), email=f"w{k}@example.com", name=f"W {k}"))


def test_past_the_limit_deletes_are_held_and_their_contacts_untouched() -> None:
    world = World(limit=3)
    signed_up(world)

    for user in USERS:
        world.apply(deleted(user, at(10)))

    assert [world.status(u) for u in USERS] == ["deactivated"] * 3 + ["active"] * 2
    assert world.held == ["deactivation_limit", "deactivation_limit"]
    # The held users' state did not move: the delete is not a duplicate when it comes back.
    held_state = world.state.get(USERS[3])
    assert held_state is not None
    assert held_state.deleted_at is None


def test_at_the_limit_every_delete_passes() -> None:
    world = World(limit=5)
    signed_up(world)

    for user in USERS:
        world.apply(deleted(user, at(10)))

    assert [world.status(u) for u in USERS] == ["deactivated"] * 5
    assert world.held == []


def test_only_deactivations_count() -> None:
    """Signups, updates, a duplicate delete and a delete without a contact leave the
    counter alone."""
    world = World(limit=1)
    signed_up(world)
    world.apply(updated(USERS[0], at(5), email="w0@example.com", name="Renamed"))
    world.apply(deleted("auth0|never-synced", at(6)))  # no contact: skipped
    assert len(world.window.admitted) == 0

    gone = deleted(USERS[0], at(10))
    world.apply(gone)
    world.apply(gone)  # Auth0 delivers it again: a duplicate

    assert len(world.window.admitted) == 1
    assert world.held == []
    world.apply(deleted(USERS[1], at(11)))
    assert world.held == ["deactivation_limit"]


def test_a_held_delete_applies_once_the_window_slid_past_the_burst() -> None:
    world = World(limit=1)
    signed_up(world)
    world.apply(deleted(USERS[0], at(10)))
    held = deleted(USERS[1], at(11))
    assert world.apply(held) is None

    world.clock.now += 3600  # the first delete is a window old: it no longer counts
    outcome = world.apply(held)

    assert outcome is not None
    assert (outcome.status, outcome.reason) == ("applied", "deactivated")
    assert world.status(USERS[1]) == "deactivated"


def test_without_a_window_nothing_is_held() -> None:
    """A replay a person allowed (`--allow-deactivations`) runs the core without one."""
    world = World(limit=0)
    world.core.window = None
    signed_up(world)

    for user in USERS:
        world.apply(deleted(user, at(10)))

    assert [world.status(u) for u in USERS] == ["deactivated"] * 5


def test_anonymize_is_braked_too() -> None:
    world = World(limit=1, delete_policy="anonymize")
    signed_up(world)

    world.apply(deleted(USERS[0], at(10)))
    world.apply(deleted(USERS[1], at(10)))

    assert world.held == ["deactivation_limit"]
    assert world.status(USERS[1]) == "active"
    assert world.crm.owned_by(USERS[0]) == []  # anonymized: no longer carries the user
