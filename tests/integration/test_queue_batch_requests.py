"""The buffered handler's CRM requests: a queue batch of independent users' signups goes
to the reference CRM (real HTTP on loopback) in the contract 1.2 batch calls, not in one
request or more per user; each user still ends as exactly one contact holding its fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from auth0_sync.dead_letter import MemoryDeadLetterQueue
from auth0_sync.queue_batches import handle_queue_batch
from auth0_sync.runtime import build_service
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome
from auth0_sync_cli.crm_server import CrmServer
from tests.builders import at, created, sqs_batch

pytestmark = pytest.mark.integration

USERS = 24


@dataclass
class Context:
    function_name: str = "auth0-sync-UserCreated"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def signups() -> list[dict[str, Any]]:
    return [
        created(f"auth0|s{n}", at(n), email=f"s{n}@example.com", name=f"S {n}")
        for n in range(USERS)
    ]


def run_batch(crm: CrmServer, events: list[dict[str, Any]]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    settings = Settings(crm_base_url=crm.base_url, crm_api_token=crm.token)
    service = build_service(
        settings,
        state=MemorySyncStateStore(),
        dead_letters=MemoryDeadLetterQueue(),
        on_outcome=outcomes.append,
    )
    answer = handle_queue_batch(service, sqs_batch(events), Context())
    assert answer == {"batchItemFailures": []}
    return outcomes


def test_a_batch_of_independent_signups_costs_a_few_batch_requests(crm: CrmServer) -> None:
    outcomes = run_batch(crm, signups())

    assert sorted(o.reason for o in outcomes) == ["created"] * USERS
    # One at a time, each signup is its own create (24 requests); gathered, the 24 creates
    # fit one `POST /contacts/batch` (the contract takes up to 100 operations).
    assert crm.stats()["total"] == 1, crm.stats()
    assert sorted((c["auth0_user_id"], c["email"], c["name"]) for c in crm.contacts()) == sorted(
        (f"auth0|s{n}", f"s{n}@example.com", f"S {n}") for n in range(USERS)
    )
