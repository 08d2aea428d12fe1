"""Exactly-once effect on at-least-once, unordered delivery: whatever the order and however
often events arrive, the CRM ends equal to the newest Auth0 truth, with no duplicate contact.

Runs through the local runner (Lambda's retry behaviour) with DynamoDB state and
idempotency in moto and the reference CRM server on loopback."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from auth0_sync.names import DLQ_ATTR_REASON
from auth0_sync.runtime import build_service
from auth0_sync.settings import Settings
from auth0_sync.sync import Outcome
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.runner import LocalRunner
from auth0_sync_cli.tally import Tally
from tests.integration.helpers import dlq_messages
from tests.integration.histories import deliveries, history

pytestmark = pytest.mark.integration


def make_runner(
    aws: LocalResources, crm: CrmServer, tally: Tally | None = None, backoff: float = 0.05
) -> LocalRunner:
    settings = Settings(
        crm_base_url=crm.base_url,
        crm_api_token=crm.token,
        state_table=aws.state_table,
        dlq_url=aws.dlq_url,
    )
    service = build_service(settings, on_outcome=tally.add if tally else None)
    return LocalRunner(service, service.dead_letters, backoff_seconds=backoff)  # type: ignore[arg-type]


def contract_fields(profile: dict[str, Any]) -> dict[str, Any]:
    """What the contact should hold for this final profile, by the README's default mapping
    (written out here, not computed by the mapping code under test)."""
    return {
        "email": profile["email"],
        "name": profile["name"],
        "phone": profile.get("phone_number"),
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=deliveries(history, max_ops=6))
def test_any_interleaving_with_duplicates_ends_at_the_newest_truth(
    aws: LocalResources, crm: CrmServer, case: tuple[list[dict[str, Any]], dict[str, Any], bool]
) -> None:
    # Each example uses a new user, so the shared moto and CRM need no reset between them.
    delivered, final, deleted = case
    runner = make_runner(aws, crm)
    outcomes = [runner.run(event) for event in delivered]
    user_id = final["user_id"]
    contacts = [c for c in crm.contacts() if c.get("auth0_user_id") == user_id]

    assert all(o.status != "dead_lettered" for o in outcomes), outcomes
    if deleted:
        # A delete that arrived first leaves no contact at all; otherwise it is deactivated.
        assert len(contacts) <= 1
        assert all(c["status"] == "deactivated" for c in contacts)
    else:
        assert len(contacts) == 1, contacts
        expected = contract_fields(final)
        assert {k: contacts[0].get(k) for k in expected} == expected
        assert contacts[0]["status"] == "active"
    # Each distinct event applied at most once.
    applied = Counter(o.event_id for o in outcomes if o.status == "applied")
    assert all(n == 1 for n in applied.values()), applied


def test_concurrent_duplicates_apply_once(aws: LocalResources, crm: CrmServer) -> None:
    events, _ = history(["name"], delete=False)
    # Lambda's own retry delays, scaled (1 s, 2 s): a duplicate that found the user leased
    # (its 2 s wait ran out on a busy machine) is retried after the first one is done, as in
    # AWS, instead of racing it with a delay no Lambda would use.
    runner = make_runner(aws, crm, backoff=1.0)
    start = threading.Barrier(8)

    def deliver(_: int) -> Outcome:
        start.wait()
        return runner.run(events[0])

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, range(8)))
    reasons = Counter(f"{o.status}:{o.reason}" for o in outcomes)
    assert reasons["applied:created"] == 1, reasons
    assert reasons["skipped:duplicate"] == 7, reasons
    assert len(crm.contacts()) == 1
    assert crm.stats()["by_method"]["POST"] == 1


def test_concurrent_events_for_one_user_never_apply_older_over_newer(
    aws: LocalResources, crm: CrmServer
) -> None:
    events, final = history(["name", "phone", "name", "email", "name"], delete=False)
    runner = make_runner(aws, crm)
    runner.run(events[0])
    start = threading.Barrier(len(events) - 1)

    def deliver(event: dict[str, Any]) -> Outcome:
        start.wait()
        return runner.run(event)

    with ThreadPoolExecutor(max_workers=len(events) - 1) as pool:
        outcomes = list(pool.map(deliver, reversed(events[1:])))
    assert all(o.status != "dead_lettered" for o in outcomes), outcomes
    [contact] = crm.contacts()
    expected = contract_fields(final)
    assert {k: contact.get(k) for k in expected} == expected


@pytest.mark.parametrize("fault", ["outage", "rate_limit"])
def test_every_event_ends_applied_or_in_the_dlq_with_its_reason(
    aws: LocalResources, crm: CrmServer, fault: str
) -> None:
    users = [history(["name", "login", "phone"], delete=False)[0] for _ in range(6)]
    stream = [event for user in users for event in user]
    tally = Tally()
    runner = make_runner(aws, crm, tally)
    # An outage is waited out until the invocation's time runs short; keep it short here.
    runner.timeout_seconds = 1.8 if fault == "outage" else 10.0
    for number, event in enumerate(stream):
        if number == 6:
            if fault == "outage":
                crm.set_outage(503)
            else:
                crm.set_rate_limit(2)
        if number == 14:
            crm.set_outage(None)
        runner.run(event)
    dead = dlq_messages(aws)
    assert tally.events == len(stream)  # none lost: every event has an outcome
    assert sum(tally.failed.values()) == len(dead)
    assert sum(tally.applied.values()) + sum(tally.skipped.values()) + len(dead) == len(stream)
    if fault == "outage":
        # The first events wait out the 503s; then the circuit opens and the rest fail fast.
        assert tally.failed
        assert set(tally.failed) <= {"crm_503", "crm_circuit_open"}
        for message in dead:  # Lambda's on-failure record, with the reason
            assert message["body"]["requestContext"]["condition"] == "RetriesExhausted"
    else:
        # Rate limiting slows the stream down but loses nothing.
        assert dead == []
        assert crm.stats()["by_status"].get("429", 0) >= 1


def test_permanent_failure_message_format(aws: LocalResources, crm: CrmServer) -> None:
    events, _ = history([], delete=False)
    event = copy.deepcopy(events[0])
    crm.set_outage(422)  # the CRM refuses every request: permanent at once
    outcome = make_runner(aws, crm).run(event)
    assert (outcome.status, outcome.reason) == ("dead_lettered", "crm_422")
    [message] = dlq_messages(aws)
    assert message["body"] == event
    attributes = message["attributes"]
    assert set(attributes) == {"error_class", "reason", "handler", "attempts", "first_failure_at"}
    assert attributes["error_class"] == "CrmRejected"
    assert attributes[DLQ_ATTR_REASON].startswith("crm_422: crm POST /contacts: HTTP 422")
    assert attributes["attempts"] == "1"
    assert attributes["handler"] == "auth0-sync-UserCreated"
