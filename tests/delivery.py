"""Delivering events to the core as Lambda's asynchronous invoke does, for the tests that
replay every arrival order: a `TransientError` is retried (the next round), a
`PermanentError` goes to the DLQ (its reason is kept)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from auth0_sync.errors import PermanentError, TransientError
from auth0_sync.events import parse_event
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome, SyncCore
from tests.builders import at
from tests.fakes.memory_crm import MemoryCrm

NOW = at(60 * 24 * 30)

Event = dict[str, Any]


def deliver(
    apply: Callable[[Event], object], events: Iterable[Event], dead: list[str], rounds: int = 4
) -> list[Event]:
    """Apply each event, retrying the transient failures up to `rounds` times in all;
    the permanent ones' reasons go to `dead`. Returns the events still being retried."""
    queue = list(events)
    for _ in range(rounds):
        retry = []
        for raw in queue:
            try:
                apply(raw)
            except TransientError:
                retry.append(raw)
            except PermanentError as exc:
                dead.append(exc.reason)
        queue = retry
    return queue


def orders_with_a_duplicate(*events: Event) -> list[list[Event]]:
    """Every order of the events, each with a duplicate of the first one delivered last."""
    return [[*order, order[0]] for order in itertools.permutations(events)]


class ModeWorld:
    """One in-memory CRM, state store and core under `SYNC_MODE=mode`."""

    def __init__(self, mode: str) -> None:
        self.crm = MemoryCrm()
        self.state = MemorySyncStateStore()
        config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", sync_mode=mode)
        self.core = SyncCore(config, self.crm, self.state)
        self.outcomes: list[Outcome] = []
        self.dead: list[str] = []

    def apply(self, raw: Event) -> None:
        self.outcomes.append(self.core.apply(parse_event(raw, now=NOW), lease_seconds=30.0))

    def deliver(self, events: list[Event]) -> None:
        assert not deliver(self.apply, events, self.dead)
